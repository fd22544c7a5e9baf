"""outer_loop vectorizes one task's loss over the stacked tasks with tf.vectorized_map."""


class MAML:
    def outer_loop(self, task_batch, train):
        stacked = tuple(tf.stack([task[i] for task in task_batch]) for i in range(4))

        def one_task(task):
            images_support, labels_support, images_query, labels_query = task
            adapted, support_accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, adapted)
            return cross_entropy(logits, labels_query), support_accuracies, accuracy(logits, labels_query)

        losses, support, query = tf.vectorized_map(one_task, stacked)
        return tf.reduce_mean(losses), tf.reduce_mean(support, axis=0), tf.reduce_mean(query)
