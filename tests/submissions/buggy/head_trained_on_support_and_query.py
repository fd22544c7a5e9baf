"""transfer_learn trains the head on the support and query sets together ("use all the labels")."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "did you train the head on the support and query sets together",
    "transfer_learn: frozen layers unchanged; the head never sees query labels": "",
    "transfer_learn on a new task": "",
    "transfer_learn: frozen layers untouched": "",
}
DIAGNOSED_BY = "hint"


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    features_query = extract_features(images_query, frozen)
    features = tf.concat([features_support, features_query], axis=0)
    labels = tf.concat([labels_support, labels_query], axis=0)
    head = {"w4": tf.zeros((features.shape[-1], num_way), features.dtype), "b4": tf.zeros((num_way,), features.dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features, head), labels)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(features_query, head), labels_query), head
