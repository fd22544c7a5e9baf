"""inner_loop always takes 5 steps (the assignment's default) instead of self.num_inner_steps."""

EXPECT = {
    "inner_loop: output types and shapes": "accuracies (num_inner_steps=2) has shape (6,), expected (3,)",
    "inner_loop: adapted parameters": "did you take 5 inner steps",
    "inner_loop: support accuracies": "has shape (6,), expected (3,)",
    "outer_loop: outer loss and accuracies": "did you take 5 inner steps",
    "outer_loop: first-order meta-gradient": "did you take 5 inner steps",
    "outer_loop: second-order meta-gradient": "did you take 5 inner steps",
    "inner_loop on new tasks": "did you take 5 inner steps",
    "outer_loop on 4 new tasks": "did you take 5 inner steps",
    "outer_loop: meta-gradients of the inner learning rates": "did you take 5 inner steps",
}
DIAGNOSED_BY = "hint"


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        accs = []
        for step in range(5):
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
