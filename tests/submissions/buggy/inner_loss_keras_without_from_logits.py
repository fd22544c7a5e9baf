"""inner_loop uses Keras's SparseCategoricalCrossentropy() with its default from_logits=False, so the logits
are taken for probabilities (Keras rescales them to sum to 1 and takes the log)."""

EXPECT = {
    'inner_loop: adapted parameters': 'from_logits=False',
    'inner_loop: support accuracies': 'from_logits=False',
    'outer_loop: outer loss and accuracies': 'from_logits=False',
    'outer_loop: first-order meta-gradient': 'from_logits=False',
    'outer_loop: second-order meta-gradient': 'from_logits=False',
    'inner_loop on new tasks': 'from_logits=False',
    'outer_loop on 4 new tasks': 'from_logits=False',
    'outer_loop: meta-gradients of the inner learning rates': 'from_logits=False',
}
DIAGNOSED_BY = "structural"  # written UNSEEN and named by nothing; the variant keras_probabilities_* (grader.diagnoses.VARIANTS) was then
# written with it in view, so it counts as known


class MAML:
    def inner_loop(self, images, labels, train):
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
        params = dict(self.meta_parameters)
        accs = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits = forward(images, params)
                loss = loss_fn(labels, logits)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, params)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params = {k: params[k] - self.inner_lrs[k] * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
