"""transfer_learn trains the head's weights only: b4 stays at zero."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "is still all zeros after num_steps steps",
    "transfer_learn on a new task": "is still all zeros after num_steps steps",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    w = tf.zeros((features_support.shape[-1], num_way), features_support.dtype)
    b = tf.zeros((num_way,), features_support.dtype)
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(w)
            loss = cross_entropy(tf.matmul(features_support, w) + b, labels_support)
        w = w - learning_rate * tape.gradient(loss, w)
    head = {"w4": w, "b4": b}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
