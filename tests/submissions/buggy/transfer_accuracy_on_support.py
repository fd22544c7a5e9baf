"""transfer_learn returns the head's accuracy on the support set it was trained on, not the query set."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "not on the support set",
    "transfer_learn on a new task": "",
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
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(features_support, head), labels_support), head
