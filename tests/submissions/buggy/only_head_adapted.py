"""inner_loop adapts the head (w4, b4) only; the convolutional layers keep the meta-parameters."""

EXPECT = {
    "inner_loop: adapted parameters": "did not change at all: does your update leave them out?",
    "inner_loop: support accuracies": "",
    "outer_loop: outer loss and accuracies": "",
    "outer_loop: first-order meta-gradient": "",
    "outer_loop: second-order meta-gradient": "",
    "inner_loop on new tasks": "did not change at all: does your update leave them out?",
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
            head = {"w4": params["w4"], "b4": params["b4"]}
            with tf.GradientTape() as tape:
                tape.watch(head)
                logits = forward(images, {**params, **head})
                loss = cross_entropy(logits, labels)
            accs.append(accuracy(logits, labels))
            grads = tape.gradient(loss, head)
            if self.first_order or not train:
                grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
            params.update({k: head[k] - self.inner_lrs[k] * grads[k] for k in head})
        accs.append(accuracy(forward(images, params), labels))
        return params, tf.stack(accs)
