"""inner_loop never stops the inner gradients: always second order, even with first_order=True."""

EXPECT = {
    "outer_loop: first-order meta-gradient": "did you forget tf.stop_gradient",
    "outer_loop on 4 new tasks": "did you forget tf.stop_gradient",
    "outer_loop: meta-gradients of the inner learning rates": "did you forget tf.stop_gradient",
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
            phi = {k: phi[k] - self.inner_lrs[k] * grads[k] for k in phi}
        accuracies.append(accuracy(forward(images, phi), labels))
        return phi, tf.stack(accuracies)
