"""transfer_learn trains one (F+1, N) matrix on features with a column of ones appended, and splits it
into w4 and b4 at the end."""


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features = extract_features(images_support, frozen)
    ones = tf.ones_like(features[:, :1])
    augmented = tf.concat([features, ones], axis=1)  # (n, F + 1)
    theta = tf.zeros((features.shape[-1] + 1, num_way), features.dtype)
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(theta)
            loss = cross_entropy(tf.linalg.matmul(augmented, theta), labels_support)
        theta = theta - learning_rate * tape.gradient(loss, theta)
    head = {"w4": theta[:-1], "b4": theta[-1]}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
