"""inner_loop turns the inner learning rates into Python floats: right numbers, but learned rates get no
gradient and the training step cannot be compiled."""

EXPECT = {
    "train_step: runs as a compiled graph": "cannot run inside tf.function",
    "outer_loop: meta-gradients of the inner learning rates": "does not depend on self.inner_lrs",
}
DIAGNOSED_BY = "structural"


class MAML:
    def inner_loop(self, images, labels, train):
        lrs = {name: float(lr.numpy()) for name, lr in self.inner_lrs.items()}
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
                grads = {k: tf.stop_gradient(v) for k, v in grads.items()}
            params = {k: params[k] - lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
