"""Writes its own accuracy with tf.argmax(logits, axis=0): the argmax over the examples, not the classes.

With 6 examples of 3 classes the comparison with the labels has mismatched shapes, which `==` turns
into False: accuracy 0. The hidden tasks have as many examples as classes: the known mistake is named.
"""

EXPECT = {
    "inner_loop: support accuracies": "the support accuracies are [0.0, 0.0, 0.0]",
    "outer_loop: outer loss and accuracies": "accuracies_support (mean over tasks) differs from the reference",
    "inner_loop on new tasks": "did you take the argmax over axis 0",
    "outer_loop on 4 new tasks": "did you take the argmax over axis 0",
}
DIAGNOSED_BY = "hint"


class MAML:
    def inner_loop(self, images, labels, train):
        def acc(logits):
            predictions = tf.argmax(logits, axis=0, output_type=tf.int32)
            return tf.reduce_mean(tf.cast(predictions == labels, tf.float32))

        params = dict(self.meta_parameters)
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            accs.append(acc(logits))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(v) for k, v in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(acc(forward(images, params)))
        return params, tf.stack(accs)

    def outer_loop(self, task_batch, train):
        losses, support_accuracies, query_accuracies = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            params, accs = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, params)
            losses.append(cross_entropy(logits, labels_query))
            support_accuracies.append(accs)
            predictions = tf.argmax(logits, axis=0, output_type=tf.int32)
            query_accuracies.append(tf.reduce_mean(tf.cast(predictions == labels_query, tf.float32)))
        return tf.reduce_mean(losses), tf.reduce_mean(support_accuracies, axis=0), tf.reduce_mean(query_accuracies)
