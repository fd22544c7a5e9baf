"""transfer_learn steps with the module's TRANSFER_LR whatever learning_rate it is given."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "did you use TRANSFER_LR instead of the learning_rate argument",
    "transfer_learn on a new task": "did you use TRANSFER_LR instead of the learning_rate argument",
}
DIAGNOSED_BY = "hint"


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    features_query = extract_features(images_query, frozen)
    w = tf.zeros((features_support.shape[1], num_way), features_support.dtype)
    b = tf.zeros((num_way,), features_support.dtype)
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch([w, b])
            loss = cross_entropy(tf.matmul(features_support, w) + b, labels_support)
        dw, db = tape.gradient(loss, [w, b])
        w, b = w - TRANSFER_LR * dw, b - TRANSFER_LR * db
    head = {"w4": w, "b4": b}
    return accuracy(head_logits(features_query, head), labels_query), head
