"""transfer_learn computes its own query accuracy with the argmax over axis 0 (the examples)."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "did you take the argmax over axis 0",
    "transfer_learn: frozen layers unchanged; the head never sees query labels": "",
    "transfer_learn on a new task": "did you take the argmax over axis 0",
    "transfer_learn: frozen layers untouched": "",
    "transfer_learn runs inside tf.function": "",
}
DIAGNOSED_BY = "hint"


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
    logits = head_logits(extract_features(images_query, frozen), head)
    predictions = tf.argmax(logits, axis=0, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(predictions, labels_query), tf.float32)), head
