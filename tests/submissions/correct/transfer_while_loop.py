"""transfer_learn with an explicit tf.while_loop over the gradient steps."""


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features = extract_features(images_support, frozen)
    start = (tf.constant(0), tf.zeros((features.shape[-1], num_way), features.dtype),
             tf.zeros((num_way,), features.dtype))

    def step(i, w, b):
        with tf.GradientTape() as tape:
            tape.watch([w, b])
            loss = cross_entropy(tf.matmul(features, w) + b, labels_support)
        dw, db = tape.gradient(loss, [w, b])
        return i + 1, w - learning_rate * dw, b - learning_rate * db

    _, w, b = tf.while_loop(lambda i, w, b: i < num_steps, step, start)
    head = {"w4": w, "b4": b}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
