"""inner_loop counts its steps from 1, so it takes num_inner_steps - 1 of them."""

EXPECT = {
    "inner_loop: output types and shapes": "has shape (2,), expected (3,)",
    "inner_loop: adapted parameters": "did you take one inner step too few",
    "inner_loop: support accuracies": "has shape (2,), expected (3,)",
    "outer_loop: outer loss and accuracies": "did you take one inner step too few",
    "outer_loop: first-order meta-gradient": "did you take one inner step too few",
    "outer_loop: second-order meta-gradient": "did you take one inner step too few",
    "inner_loop on new tasks": "did you take one inner step too few",
    "outer_loop on 4 new tasks": "did you take one inner step too few",
    "outer_loop: meta-gradients of the inner learning rates": "did you take one inner step too few",
}
DIAGNOSED_BY = "hint"


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        accs = []
        for step in range(1, self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(v) for k, v in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
