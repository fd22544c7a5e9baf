"""inner_loop stops the inner gradients only when first_order AND not train (`and` where `or` is meant):
first-order training differentiates through the inner loop, and evaluation with first_order=False does too."""

EXPECT = {
    'outer_loop: first-order meta-gradient': 'did you forget tf.stop_gradient on the inner gradients',
    'outer_loop on 4 new tasks': 'did you forget tf.stop_gradient on the inner gradients',
    'outer_loop: meta-gradients of the inner learning rates': ('did you forget tf.stop_gradient on the inner gradients',
                                                               'Stop them also when train is False'),
}
DIAGNOSED_BY = "hint"
UNSEEN = True


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
            if self.first_order and not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
