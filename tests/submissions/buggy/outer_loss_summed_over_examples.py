"""outer_loop sums the query losses over the examples of each task (then averages over tasks): the
outer loss and meta-gradients are N*Q times the mean."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "a sum over the query examples of a task where a mean is meant",
    "outer_loop: first-order meta-gradient": "",
    "outer_loop: second-order meta-gradient": "",
    "outer_loop on 4 new tasks": "where a mean is meant",
    "outer_loop: meta-gradients of the inner learning rates": "",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


class MAML:
    def outer_loop(self, task_batch, train):
        losses, support_accuracies, query_accuracies = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            adapted, accuracies = self.inner_loop(images_support, labels_support, train)
            logits = forward(images_query, adapted)
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels_query, logits=logits)
            losses.append(tf.reduce_sum(per_example))
            support_accuracies.append(accuracies)
            query_accuracies.append(accuracy(logits, labels_query))
        return tf.reduce_mean(losses), tf.reduce_mean(support_accuracies, axis=0), tf.reduce_mean(query_accuracies)
