"""outer_loop adapts each task on its query set (and then evaluates on it)."""

EXPECT = {
    "outer_loop: outer loss and accuracies": "did you adapt on the query set",
    "outer_loop: first-order meta-gradient": "did you adapt on the query set",
    "outer_loop: second-order meta-gradient": "did you adapt on the query set",
    "outer_loop on 4 new tasks": "did you adapt on the query set",
    "outer_loop: meta-gradients of the inner learning rates": "did you adapt on the query set",
}
DIAGNOSED_BY = "hint"


class MAML:
    def outer_loop(self, task_batch, train):
        outer_losses, accuracies_support, accuracies_query = [], [], []
        for x_s, y_s, x_q, y_q in task_batch:
            phi, acc_s = self.inner_loop(x_q, y_q, train)
            logits_q = forward(x_q, phi)
            outer_losses.append(cross_entropy(logits_q, y_q))
            accuracies_support.append(acc_s)
            accuracies_query.append(accuracy(logits_q, y_q))
        return (tf.reduce_mean(tf.stack(outer_losses)), tf.reduce_mean(tf.stack(accuracies_support), axis=0),
                tf.reduce_mean(tf.stack(accuracies_query)))
