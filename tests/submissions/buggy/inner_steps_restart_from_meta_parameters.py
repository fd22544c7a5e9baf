"""inner_loop computes each step's gradient at the current parameters but subtracts it from the
meta-parameters: every step starts again from theta, so only the last step counts."""

EXPECT = {
    "inner_loop: adapted parameters": "is subtracted from self.meta_parameters instead of from the previous step's parameters",
    "inner_loop: support accuracies": "",
    "outer_loop: outer loss and accuracies": "",
    "outer_loop: first-order meta-gradient": "",
    "outer_loop: second-order meta-gradient": "",
    "inner_loop on new tasks": "is subtracted from self.meta_parameters instead of from the previous step's parameters",
    "outer_loop on 4 new tasks": "",
    "outer_loop: meta-gradients of the inner learning rates": "",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


class MAML:
    def inner_loop(self, images, labels, train):
        theta = self.meta_parameters
        phi = dict(theta)
        accuracies = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(phi)
                logits = forward(images, phi)
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            grads = tape.gradient(loss, phi)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            phi = {k: theta[k] - self.inner_lrs[k] * grads[k] for k in theta}
        accuracies.append(accuracy(forward(images, phi), labels))
        return phi, tf.stack(accuracies)
