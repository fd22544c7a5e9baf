"""inner_loop updates the weights (conv*, w4) only and forgets the biases b0..b4."""

EXPECT = {
    "inner_loop: adapted parameters": "did not change at all: does your update leave them out?",
    "inner_loop: support accuracies": "",
    "outer_loop: outer loss and accuracies": "",
    "outer_loop: first-order meta-gradient": "",
    "outer_loop: second-order meta-gradient": "",
    "inner_loop on new tasks": "did not change at all: does your update leave them out?",
    "outer_loop on 4 new tasks": "",
    "outer_loop: meta-gradients of the inner learning rates": "",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        weights = [name for name in params if not name.startswith("b")]
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
            for name in weights:
                params[name] = params[name] - self.inner_lrs[name] * grads[name]
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
