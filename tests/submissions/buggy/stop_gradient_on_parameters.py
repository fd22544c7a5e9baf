"""For first order, inner_loop stops the gradient of the parameters instead of the inner gradients:
the first-order meta-gradient then reaches the meta-parameters only through the inner gradients, not
through the parameters themselves (the opposite of first-order MAML)."""

EXPECT = {
    "outer_loop: first-order meta-gradient": "stop the inner gradients, not the parameters",
    "outer_loop on 4 new tasks": "stop the inner gradients, not the parameters",
    "outer_loop: meta-gradients of the inner learning rates": "",
}
DIAGNOSED_BY = "hint"  # written UNSEEN; named by no diagnosis, it became a known mistake (parameters_stopped)


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
                params = {k: tf.stop_gradient(v) for k, v in params.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
