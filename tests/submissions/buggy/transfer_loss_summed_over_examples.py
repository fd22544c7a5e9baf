"""transfer_learn sums the support losses over the examples instead of averaging them: every step is
N*K times too large."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "a sum over the support examples where a mean is meant",
    "transfer_learn on a new task": "a sum over the support examples where a mean is meant",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    head = {"w4": tf.zeros((features_support.shape[-1], num_way), features_support.dtype),
            "b4": tf.zeros((num_way,), features_support.dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            logits = head_logits(features_support, head)
            loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels_support, logits=logits))
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
