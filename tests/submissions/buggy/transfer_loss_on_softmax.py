"""transfer_learn feeds softmax probabilities to cross_entropy, which applies softmax again."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "a softmax or a loss computed twice",
    "transfer_learn on a new task": "a softmax or a loss computed twice",
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
            probabilities = tf.nn.softmax(head_logits(features_support, head))
            loss = cross_entropy(probabilities, labels_support)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
