"""outer_loop adapts, but evaluates the query set with self.meta_parameters instead of the adapted ones."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "did you evaluate the query set with self.meta_parameters",
    "outer_loop: first-order meta-gradient": "did you evaluate the query set with self.meta_parameters",
    "outer_loop: second-order meta-gradient": "did you evaluate the query set with self.meta_parameters",
    "outer_loop on 4 new tasks": "did you evaluate the query set with self.meta_parameters",
    "outer_loop: meta-gradients of the inner learning rates": "does not depend on self.inner_lrs",
}
DIAGNOSED_BY = "hint"


class MAML:
    def outer_loop(self, task_batch, train):
        outer_losses, accuracies_support, accuracies_query = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            _, accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, self.meta_parameters)
            outer_losses.append(cross_entropy(logits, labels_query))
            accuracies_support.append(accuracies)
            accuracies_query.append(accuracy(logits, labels_query))
        return (tf.reduce_mean(tf.stack(outer_losses)), tf.reduce_mean(tf.stack(accuracies_support), axis=0),
                tf.reduce_mean(tf.stack(accuracies_query)))
