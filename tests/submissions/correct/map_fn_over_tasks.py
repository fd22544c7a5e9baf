"""outer_loop stacks the tasks and maps one task's loss over them with tf.map_fn."""


class MAML:
    def outer_loop(self, task_batch, train):
        stacked = tuple(tf.stack([task[i] for task in task_batch]) for i in range(4))
        dtype = self.meta_parameters["w4"].dtype

        def one_task(task):
            images_support, labels_support, images_query, labels_query = task
            adapted, support_accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, adapted)
            return cross_entropy(logits, labels_query), support_accuracies, accuracy(logits, labels_query)

        losses, support, query = tf.map_fn(one_task, stacked, fn_output_signature=(dtype, tf.float32, tf.float32))
        return tf.reduce_mean(losses), tf.reduce_mean(support, axis=0), tf.reduce_mean(query)
