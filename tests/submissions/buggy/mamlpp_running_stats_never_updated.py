"""MAML++: batch_norm_step normalises with the batch's statistics but never updates the running ones
(which evaluation does not use, so only the saved statistics are wrong)."""

EXPECT = {
    "MAML++: per-step batch norm": "the running statistic",
    "MAML++ on new tasks and settings": "the running statistic",
}
DIAGNOSED_BY = "structural"


class MAMLPlusPlus:
    def batch_norm_step(self, x, layer, step, train):
        key = f"{layer}_step{step}"
        mean = tf.reduce_mean(x, axis=[0, 1, 2])
        variance = tf.reduce_mean(tf.square(x - mean), axis=[0, 1, 2])
        x_hat = (x - mean) * tf.math.rsqrt(variance + BN_EPSILON)
        if self.per_step_bn_weights:
            x_hat = self.bn_weights[f"gamma{key}"] * x_hat + self.bn_weights[f"beta{key}"]
        return x_hat
