"""outer_loop returns the query accuracy of the last task of the batch instead of the mean."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "did you return the query accuracy of the last task",
    "outer_loop on 4 new tasks": "did you return the query accuracy of the last task",
}
DIAGNOSED_BY = "hint"


class MAML:
    def outer_loop(self, task_batch, train):
        losses, support_accuracies = [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            parameters, accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, parameters)
            losses.append(cross_entropy(logits, labels_query))
            support_accuracies.append(accuracies)
            query_accuracy = accuracy(logits, labels_query)
        return tf.reduce_mean(losses), tf.reduce_mean(support_accuracies, axis=0), query_accuracy
