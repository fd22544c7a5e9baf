"""inner_loop sums the per-example support losses (tf.reduce_sum) instead of averaging them: the
first step is N*K times too large."""

EXPECT = {
    "inner_loop: adapted parameters": "a sum over the support examples where a mean is meant",
    "inner_loop: support accuracies": "",
    "outer_loop: outer loss and accuracies": "",
    "outer_loop: first-order meta-gradient": "",
    "outer_loop: second-order meta-gradient": "",
    "inner_loop on new tasks": "a sum over the support examples where a mean is meant",
    "outer_loop on 4 new tasks": "",
    "outer_loop: meta-gradients of the inner learning rates": "",
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
                loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
