"""outer_loop adapts each task on its support and query sets together ("more data for the inner loop")."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "did you adapt on the support and query sets together",
    "outer_loop: first-order meta-gradient": "",
    "outer_loop: second-order meta-gradient": "",
    "outer_loop on 4 new tasks": "",
    "outer_loop: meta-gradients of the inner learning rates": "",
}
DIAGNOSED_BY = "hint"


class MAML:
    def outer_loop(self, task_batch, train):
        losses, support_accuracies, query_accuracies = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            images = tf.concat([images_support, images_query], axis=0)
            labels = tf.concat([labels_support, labels_query], axis=0)
            adapted, accuracies = self.inner_loop(images, labels, train)
            logits = forward(images_query, adapted)
            losses.append(cross_entropy(logits, labels_query))
            support_accuracies.append(accuracies)
            query_accuracies.append(accuracy(logits, labels_query))
        return tf.reduce_mean(losses), tf.reduce_mean(support_accuracies, axis=0), tf.reduce_mean(query_accuracies)
