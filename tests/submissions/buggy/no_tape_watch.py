"""inner_loop never calls tape.watch: after the first step the parameters are plain tensors, gradients None."""

EXPECT = {
    "inner_loop: output types and shapes": "A gradient is None",
    "inner_loop: adapted parameters": "A gradient is None",
    "inner_loop: support accuracies": "A gradient is None",
    "outer_loop: outer loss and accuracies": "A gradient is None",
    "outer_loop: first-order meta-gradient": "A gradient is None",
    "outer_loop: second-order meta-gradient": "A gradient is None",
    "train_step: runs as a compiled graph": "A gradient is None",
    "inner_loop on new tasks": "A gradient is None",
    "outer_loop on 4 new tasks": "A gradient is None",
    "outer_loop: meta-gradients of the inner learning rates": "A gradient is None",
    "outer_loop: every task adapts": "A gradient is None",
}
DIAGNOSED_BY = "structural"


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(v) for k, v in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
