"""transfer_learn without a tape: the gradient of softmax cross-entropy w.r.t. a linear head, by hand."""


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features = extract_features(images_support, frozen)
    count = tf.cast(tf.shape(features)[0], features.dtype)
    targets = tf.one_hot(labels_support, num_way, dtype=features.dtype)
    w = tf.zeros((features.shape[-1], num_way), features.dtype)
    b = tf.zeros((num_way,), features.dtype)
    for _ in tf.range(num_steps):
        error = (tf.nn.softmax(tf.matmul(features, w) + b) - targets) / count  # d loss / d logits
        w = w - learning_rate * tf.matmul(features, error, transpose_a=True)
        b = b - learning_rate * tf.reduce_sum(error, axis=0)
    head = {"w4": w, "b4": b}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
