"""outer_loop reports the adapted parameters' accuracy on the support set as the query accuracy."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "the difference is in how the accuracies are computed",
    "outer_loop on 4 new tasks": "",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


class MAML:
    def outer_loop(self, task_batch, train):
        losses, support_accuracies, query_accuracies = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            adapted, accuracies = self.inner_loop(images_support, labels_support, train)
            losses.append(cross_entropy(forward(images_query, adapted), labels_query))
            support_accuracies.append(accuracies)
            query_accuracies.append(accuracy(forward(images_support, adapted), labels_support))
        return tf.reduce_mean(losses), tf.reduce_mean(support_accuracies, axis=0), tf.reduce_mean(query_accuracies)
