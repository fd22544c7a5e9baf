"""Parameters as parallel lists (names, values) zipped back into dicts; running sums over the tasks."""


class MAML:
    def inner_loop(self, images, labels, train):
        names = list(self.meta_parameters)
        values = [self.meta_parameters[name] for name in names]
        constant_gradients = self.first_order or not train
        accuracies = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(values)
                logits = forward(images, dict(zip(names, values)))
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            gradients = tape.gradient(loss, values)
            if constant_gradients:
                gradients = [tf.stop_gradient(g) for g in gradients]
            values = [v - self.inner_lrs[n] * g for n, v, g in zip(names, values, gradients)]
        adapted = dict(zip(names, values))
        accuracies.append(accuracy(forward(images, adapted), labels))
        return adapted, tf.convert_to_tensor(accuracies)

    def outer_loop(self, task_batch, train):
        total_loss, total_support, total_query = 0.0, 0.0, 0.0
        for images_support, labels_support, images_query, labels_query in task_batch:
            adapted, support = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, adapted)
            total_loss += cross_entropy(logits, labels_query)
            total_support += support
            total_query += accuracy(logits, labels_query)
        count = len(task_batch)
        return total_loss / count, total_support / count, total_query / count
