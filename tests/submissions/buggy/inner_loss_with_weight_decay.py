"""inner_loop adds an L2 penalty (1e-2 * sum of squares) to the support loss, as a student used to
regularising would: the inner gradients are no longer the support loss's."""

EXPECT = {
    'inner_loop: adapted parameters': 'pulls the parameters towards 0',
    'inner_loop: support accuracies': '',  # the same as the reference's on the public fixture, not on its twin
    'outer_loop: outer loss and accuracies': '',
    'outer_loop: first-order meta-gradient': '',
    'outer_loop: second-order meta-gradient': '',
    'inner_loop on new tasks': '',
    'outer_loop on 4 new tasks': '',
    'outer_loop: meta-gradients of the inner learning rates': '',
}
DIAGNOSED_BY = "structural"  # written UNSEEN and named by nothing; the structural diagnoses
# grader.diagnoses.shrinks and .factors were then written with it in view, so it counts as known


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = cross_entropy(logits, labels) + 1e-2 * tf.add_n([tf.reduce_sum(p ** 2) for p in params.values()])
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
