"""inner_loop updates self.meta_parameters in place with assign: each task starts where the last ended."""

EXPECT = {
    "inner_loop: output types and shapes": "inner_loop changed self.meta_parameters",
    "outer_loop: outer loss and accuracies": "did you assign the adapted values to self.meta_parameters",
    "outer_loop: first-order meta-gradient": "did you assign the adapted values to self.meta_parameters",
    "outer_loop: second-order meta-gradient": "did you assign the adapted values to self.meta_parameters",
    "outer_loop on 4 new tasks": "did you assign the adapted values to self.meta_parameters",
    "outer_loop: meta-gradients of the inner learning rates": "",
    "outer_loop: every task adapts": "outer_loop changed self.meta_parameters",
}
DIAGNOSED_BY = "hint"


class MAML:
    def inner_loop(self, images, labels, train):
        accuracies = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                logits = forward(images, self.meta_parameters)
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            gradients = tape.gradient(loss, self.meta_parameters)
            for name, variable in self.meta_parameters.items():
                variable.assign_sub(self.inner_lrs[name] * gradients[name])
        accuracies.append(accuracy(forward(images, self.meta_parameters), labels))
        return dict(self.meta_parameters), tf.stack(accuracies)
