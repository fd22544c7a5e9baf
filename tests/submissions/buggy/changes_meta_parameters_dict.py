"""inner_loop starts from `params = self.meta_parameters` and sets params[name]: the model's dict changes."""

EXPECT = {
    "inner_loop: output types and shapes": "inner_loop changed self.meta_parameters",
    "outer_loop: outer loss and accuracies": "did you write `parameters = self.meta_parameters`",
    "outer_loop: first-order meta-gradient": "differs from the reference",
    "outer_loop: second-order meta-gradient": "differs from the reference",
    "train_step: runs as a compiled graph": "A tensor made inside tf.function outlived the call",
    "outer_loop on 4 new tasks": "did you write `parameters = self.meta_parameters`",
    "outer_loop: meta-gradients of the inner learning rates": "",
    "outer_loop: every task adapts": "no longer holds the tf.Variables",
}
DIAGNOSED_BY = "hint"


class MAML:
    def inner_loop(self, images, labels, train):
        params = self.meta_parameters
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(v) for k, v in grads.items()}
            for k in params:
                params[k] = params[k] - self.inner_lrs[k] * grads[k]
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
