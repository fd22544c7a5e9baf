"""inner_loop appends the accuracy of the last step's logits again at the end, so its last support
accuracy is the one before the last step, not after it."""

EXPECT = {
    "inner_loop: support accuracies": "the difference is in how the accuracies are computed",
    "outer_loop: outer loss and accuracies": "the difference is in how the accuracies are computed",
    "outer_loop on 4 new tasks": "",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(logits, labels))  # final accuracy
        return params, tf.stack(accs)
