"""inner_loop uses the learning rate of the last layer's weights for every parameter: with per-parameter
(learned) rates the other parameters take the wrong step."""

EXPECT = {
    'inner_loop: adapted parameters': 'differs between parameters',
    'inner_loop: support accuracies': '',
    'outer_loop: outer loss and accuracies': '',
    'outer_loop: first-order meta-gradient': '',
    'outer_loop: second-order meta-gradient': '',
    'inner_loop on new tasks': 'differs between parameters',
    'outer_loop on 4 new tasks': '',
    'outer_loop: meta-gradients of the inner learning rates': 'use the variables self.inner_lrs[name]',
}
DIAGNOSED_BY = "structural"  # written UNSEEN and named by nothing; the structural diagnoses
# grader.diagnoses.shrinks and .factors were then written with it in view, so it counts as known


class MAML:
    def inner_loop(self, images, labels, train):
        params = dict(self.meta_parameters)
        lr = self.inner_lrs["w4"]
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = cross_entropy(logits, labels)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - lr * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
