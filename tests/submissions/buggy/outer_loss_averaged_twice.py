"""outer_loop takes the mean over tasks and then divides by the number of tasks again."""

EXPECT = {
    'outer_loop: outer loss and accuracies': 'divided by it once too often',
    'outer_loop: first-order meta-gradient': 'divided by it once too often',
    'outer_loop: second-order meta-gradient': 'divided by it once too often',
    'outer_loop on 4 new tasks': 'divided by it once too often',
    'outer_loop: meta-gradients of the inner learning rates': 'divided by it once too often',
    'outer_loop: every task adapts': '',
}
DIAGNOSED_BY = "structural"
UNSEEN = True


class MAML:
    def outer_loop(self, task_batch, train):
        losses, support_accuracies, query_accuracies = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            adapted, accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, adapted)
            losses.append(cross_entropy(logits, labels_query))
            support_accuracies.append(accuracies)
            query_accuracies.append(accuracy(logits, labels_query))
        outer_loss = tf.reduce_mean(tf.stack(losses)) / len(task_batch)
        return outer_loss, tf.reduce_mean(support_accuracies, axis=0), tf.reduce_mean(query_accuracies)
