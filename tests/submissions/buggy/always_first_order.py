"""inner_loop always stops the inner gradients: second-order MAML silently becomes first order."""

EXPECT = {
    "outer_loop: second-order meta-gradient": "do you always stop the inner gradients",
    "outer_loop on 4 new tasks": "do you always stop the inner gradients",
    "outer_loop: meta-gradients of the inner learning rates": "do you always stop the inner gradients",
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
            phi = {k: phi[k] - self.inner_lrs[k] * tf.stop_gradient(grads[k]) for k in phi}  # FO-MAML
        accuracies.append(accuracy(forward(images, phi), labels))
        return phi, tf.stack(accuracies)
