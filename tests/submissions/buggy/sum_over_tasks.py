"""outer_loop adds the query losses of the tasks up (tf.add_n) instead of averaging them."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "It is 2x the expected one. Looks like a known mistake: did you sum",
    "outer_loop: first-order meta-gradient": "did you sum the query losses",
    "outer_loop: second-order meta-gradient": "did you sum the query losses",
    "outer_loop on 4 new tasks": "It is 4x the expected one. Looks like a known mistake: did you sum",
    "outer_loop: meta-gradients of the inner learning rates": "did you sum the query losses",
    "outer_loop: every task adapts": "must be their mean",
}
DIAGNOSED_BY = "hint"


class MAML:
    def outer_loop(self, task_batch, train):
        losses, support_accuracies, query_accuracies = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            adapted, accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, adapted)
            losses.append(cross_entropy(logits, labels_query))
            support_accuracies.append(accuracies)
            query_accuracies.append(accuracy(logits, labels_query))
        outer_loss = tf.add_n(losses)  # total loss of the meta-batch
        return outer_loss, tf.reduce_mean(support_accuracies, axis=0), tf.reduce_mean(query_accuracies)
