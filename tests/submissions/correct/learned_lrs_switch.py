"""Stops the gradient of the inner learning rates unless they are learned (learn_inner_lrs), with
tf.nest.map_structure over the parameter dicts."""


class MAML:
    def inner_loop(self, images, labels, train):
        if self.learn_inner_lrs:
            lrs = dict(self.inner_lrs)
        else:
            lrs = {name: tf.stop_gradient(lr) for name, lr in self.inner_lrs.items()}
        parameters = dict(self.meta_parameters)
        accuracies = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(parameters)
                logits = forward(images, parameters)
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            gradients = tape.gradient(loss, parameters)
            if self.first_order or not train:
                gradients = tf.nest.map_structure(tf.stop_gradient, gradients)
            parameters = tf.nest.map_structure(lambda p, lr, g: p - lr * g, parameters, lrs, gradients)
        accuracies.append(accuracy(forward(images, parameters), labels))
        return parameters, tf.stack(accuracies)
