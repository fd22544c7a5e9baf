"""inner_loop records the support accuracy after each step only: it misses the one before adapting."""

EXPECT = {
    "inner_loop: output types and shapes": "has shape (2,), expected (3,)",
    "inner_loop: support accuracies": "has shape (2,), expected (3,)",
    "outer_loop: outer loss and accuracies": "has shape (2,), expected (3,)",
    "inner_loop on new tasks": "has shape (3,), expected (4,)",
    "outer_loop on 4 new tasks": "has shape (3,), expected (4,)",
}
DIAGNOSED_BY = "structural"


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = cross_entropy(forward(images, params), labels)
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(v) for k, v in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
            accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
