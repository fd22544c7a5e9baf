"""inner_loop stops the inner gradients only when first_order is set, not when train is False."""

EXPECT = {
    "outer_loop: meta-gradients of the inner learning rates": "do you stop the inner gradients only when self.first_order",
}
DIAGNOSED_BY = "hint"


class MAML:
    def inner_loop(self, images, labels, train):
        phi = dict(self.meta_parameters)
        accuracies = []
        for step in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(phi)
                logits = forward(images, phi)
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            grads = tape.gradient(loss, phi)
            if self.first_order:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            phi = {k: phi[k] - self.inner_lrs[k] * grads[k] for k in phi}
        accuracies.append(accuracy(forward(images, phi), labels))
        return phi, tf.stack(accuracies)
