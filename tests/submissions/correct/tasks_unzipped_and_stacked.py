"""outer_loop adapts every task in a list comprehension, then unzips the results and stacks them."""


class MAML:
    def outer_loop(self, task_batch, train):
        def run(task):
            images_support, labels_support, images_query, labels_query = task
            adapted, support_accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, adapted)
            return cross_entropy(logits, labels_query), support_accuracies, accuracy(logits, labels_query)

        losses, support, query = zip(*[run(task) for task in task_batch])
        return tf.reduce_mean(tf.stack(losses)), tf.reduce_mean(tf.stack(support), axis=0), \
            tf.reduce_mean(tf.stack(query))
