"""First order without stopping the gradients: each step's gradient comes from a tape on a constant copy."""


class MAML:
    def inner_loop(self, images, labels, train):
        first_order = self.first_order or not train
        adapted = dict(self.meta_parameters)
        accuracies = []
        for _ in range(self.num_inner_steps):
            # First order: differentiate a copy the outer tape cannot see into, so d(gradient)/d(theta) = 0.
            point = {k: tf.stop_gradient(v) for k, v in adapted.items()} if first_order else adapted
            with tf.GradientTape() as tape:
                tape.watch(point)
                logits = forward(images, point)
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            gradient = tape.gradient(loss, point)
            adapted = {k: adapted[k] - self.inner_lrs[k] * gradient[k] for k in adapted}
        accuracies.append(accuracy(forward(images, adapted), labels))
        return adapted, tf.stack(accuracies)
