"""transfer_learn with Keras' sparse categorical cross-entropy on logits and tf.nest for the update."""


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features = extract_features(images_support, frozen)
    head = {"w4": tf.zeros((features.shape[-1], num_way), features.dtype),
            "b4": tf.zeros((num_way,), features.dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            logits = head_logits(features, head)
            loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(labels_support, logits,
                                                                                  from_logits=True))
        grads = tape.gradient(loss, head)
        head = tf.nest.map_structure(lambda value, grad: value - learning_rate * grad, head, grads)
    query_logits = head_logits(extract_features(images_query, frozen), head)
    correct = tf.equal(tf.argmax(query_logits, axis=1, output_type=labels_query.dtype), labels_query)
    return tf.reduce_mean(tf.cast(correct, tf.float32)), head
