"""The losses from Keras (SparseCategoricalCrossentropy(from_logits=True), a mean over examples) and
the accuracy from tf.keras.metrics' function, in both loops."""


class MAML:
    def inner_loop(self, images, labels, train):
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        params = dict(self.meta_parameters)
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = loss_fn(labels, logits)
            accs.append(tf.reduce_mean(tf.keras.metrics.sparse_categorical_accuracy(labels, logits)))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        final = forward(images, params)
        accs.append(tf.reduce_mean(tf.keras.metrics.sparse_categorical_accuracy(labels, final)))
        return params, tf.cast(tf.stack(accs), tf.float32)

    def outer_loop(self, task_batch, train):
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        losses, support, query = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            adapted, accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, adapted)
            losses.append(loss_fn(labels_query, logits))
            support.append(accuracies)
            query.append(tf.reduce_mean(tf.keras.metrics.sparse_categorical_accuracy(labels_query, logits)))
        return tf.reduce_mean(losses), tf.reduce_mean(support, axis=0), tf.cast(tf.reduce_mean(query), tf.float32)
