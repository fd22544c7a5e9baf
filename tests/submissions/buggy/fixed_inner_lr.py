"""inner_loop uses the default inner learning rate 0.4 for every parameter instead of self.inner_lrs."""

EXPECT = {
    "inner_loop: adapted parameters": "did you use a fixed inner learning rate",
    "inner_loop: support accuracies": "did you use a fixed inner learning rate",
    "outer_loop: outer loss and accuracies": "did you use a fixed inner learning rate",
    "outer_loop: first-order meta-gradient": "did you use a fixed inner learning rate",
    "outer_loop: second-order meta-gradient": "did you use a fixed inner learning rate",
    "inner_loop on new tasks": "did you use a fixed inner learning rate",
    "outer_loop on 4 new tasks": "did you use a fixed inner learning rate",
    "outer_loop: meta-gradients of the inner learning rates": "does not depend on self.inner_lrs",
}
DIAGNOSED_BY = "hint"


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
                grads = {k: tf.stop_gradient(v) for k, v in grads.items()}
            params = {k: params[k] - 0.4 * grads[k] for k in params}
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
