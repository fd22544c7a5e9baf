"""outer_loop adapts once, on the support sets of all tasks together, and evaluates every query set
with those parameters: the tasks share one adaptation."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "",
    "outer_loop: first-order meta-gradient": "",
    "outer_loop: second-order meta-gradient": "",
    "outer_loop on 4 new tasks": "",
    "outer_loop: meta-gradients of the inner learning rates": "",
    "outer_loop: every task adapts": "something of one task's adaptation carries over to the next",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


class MAML:
    def outer_loop(self, task_batch, train):
        images = tf.concat([task[0] for task in task_batch], axis=0)
        labels = tf.concat([task[1] for task in task_batch], axis=0)
        adapted, accuracies_support = self.inner_loop(images, labels, train)  # one adaptation for the batch
        losses, query_accuracies = [], []
        for _, _, images_query, labels_query in task_batch:
            logits = forward(images_query, adapted)
            losses.append(cross_entropy(logits, labels_query))
            query_accuracies.append(accuracy(logits, labels_query))
        return tf.reduce_mean(losses), accuracies_support, tf.reduce_mean(query_accuracies)
