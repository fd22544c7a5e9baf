"""inner_loop as an explicit tf.while_loop over the steps, the accuracies written to a TensorArray."""


class MAML:
    def inner_loop(self, images, labels, train):
        stop = self.first_order or not train
        accuracies = tf.TensorArray(tf.float32, size=self.num_inner_steps + 1)

        def step(i, params, accuracies):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            grads = tape.gradient(loss, params)
            if stop:
                grads = tf.nest.map_structure(tf.stop_gradient, grads)
            new = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
            return i + 1, new, accuracies.write(i, accuracy(logits, labels))

        _, params, accuracies = tf.while_loop(lambda i, params, accuracies: i < self.num_inner_steps, step,
                                              (tf.constant(0), dict(self.meta_parameters), accuracies))
        accuracies = accuracies.write(self.num_inner_steps, accuracy(forward(images, params), labels))
        return params, accuracies.stack()
