"""inner_loop loops while step <= num_inner_steps: one inner step too many."""

EXPECT = {
    "inner_loop: output types and shapes": "has shape (4,), expected (3,)",
    "inner_loop: adapted parameters": "did you take one inner step too many",
    "inner_loop: support accuracies": "",
    "outer_loop: outer loss and accuracies": "",
    "outer_loop: first-order meta-gradient": "",
    "outer_loop: second-order meta-gradient": "",
    "inner_loop on new tasks": "",
    "outer_loop on 4 new tasks": "",
    "outer_loop: meta-gradients of the inner learning rates": "",
}
DIAGNOSED_BY = "hint"


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        accs = []
        step = 0
        while step <= self.num_inner_steps:
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
            step += 1
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
