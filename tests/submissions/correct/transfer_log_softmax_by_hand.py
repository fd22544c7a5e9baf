"""transfer_learn with the cross-entropy written by hand (one-hot labels times tf.nn.log_softmax)."""


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features = extract_features(images_support, frozen)
    targets = tf.one_hot(labels_support, depth=num_way, dtype=features.dtype)
    w = tf.zeros((features.shape[-1], num_way), features.dtype)
    b = tf.zeros((num_way,), features.dtype)
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch([w, b])
            log_probabilities = tf.nn.log_softmax(features @ w + b, axis=-1)
            loss = -tf.reduce_mean(tf.reduce_sum(targets * log_probabilities, axis=-1))
        dw, db = tape.gradient(loss, [w, b])
        w -= learning_rate * dw
        b -= learning_rate * db
    head = {"w4": w, "b4": b}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
