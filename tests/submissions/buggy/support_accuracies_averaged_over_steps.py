"""outer_loop averages the support accuracies over the steps too (no axis): one number, not one per step."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "has shape (), expected (3,)",
    "outer_loop on 4 new tasks": "has shape (), expected (4,)",
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
        return tf.reduce_mean(losses), tf.reduce_mean(support_accuracies), tf.reduce_mean(query_accuracies)
