"""outer_loop measures the loss of the adapted parameters on the support set, not the query set."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "did you compute the outer loss on the support set",
    "outer_loop: first-order meta-gradient": "did you compute the outer loss on the support set",
    "outer_loop: second-order meta-gradient": "did you compute the outer loss on the support set",
    "outer_loop on 4 new tasks": "did you compute the outer loss on the support set",
    "outer_loop: meta-gradients of the inner learning rates": "did you compute the outer loss on the support set",
}
DIAGNOSED_BY = "hint"


class MAML:
    def outer_loop(self, task_batch, train):
        outer_losses, accuracies_support, accuracies_query = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            parameters, accuracies = self.inner_loop(images_support, labels_support, train)
            outer_losses.append(cross_entropy(forward(images_support, parameters), labels_support))
            accuracies_support.append(accuracies)
            accuracies_query.append(accuracy(forward(images_query, parameters), labels_query))
        return (tf.reduce_mean(tf.stack(outer_losses)), tf.reduce_mean(tf.stack(accuracies_support), axis=0),
                tf.reduce_mean(tf.stack(accuracies_query)))
