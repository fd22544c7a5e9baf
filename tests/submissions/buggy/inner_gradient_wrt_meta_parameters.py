"""inner_loop differentiates each step's support loss with respect to self.meta_parameters instead of the
current parameters: from the second step on those were computed before this step's tape started, so the
tape records no path from the variables to the loss and the gradients are None."""

EXPECT = {
    'inner_loop: output types and shapes': 'differentiates with respect to the meta-parameters',
    'inner_loop: adapted parameters': 'differentiates with respect to the meta-parameters',
    'inner_loop: support accuracies': 'differentiates with respect to the meta-parameters',
    'outer_loop: outer loss and accuracies': 'differentiates with respect to the meta-parameters',
    'outer_loop: first-order meta-gradient': 'differentiates with respect to the meta-parameters',
    'outer_loop: second-order meta-gradient': 'differentiates with respect to the meta-parameters',
    'inner_loop on new tasks': 'differentiates with respect to the meta-parameters',
    'outer_loop on 4 new tasks': 'differentiates with respect to the meta-parameters',
    'outer_loop: meta-gradients of the inner learning rates': 'differentiates with respect to the meta-parameters',
    'outer_loop: every task adapts': 'differentiates with respect to the meta-parameters',
}
DIAGNOSED_BY = "structural"  # written UNSEEN and named by nothing; the error rule of grader.failures._none_hint for tape.gradient(..., self.meta_parameters) was then
# written with it in view, so it counts as known


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, self.meta_parameters)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
