"""transfer_learn computes support and query features in one batch: batch norm mixes their statistics."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "did you compute the support and query features in one call",
    "transfer_learn on a new task": "did you compute the support and query features in one call",
    "transfer_learn: frozen layers untouched": "the head changes when only the query images and labels change",
}
DIAGNOSED_BY = "hint"


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    n = tf.shape(images_support)[0]
    features = extract_features(tf.concat([images_support, images_query], axis=0), frozen)  # one forward pass
    features_support, features_query = features[:n], features[n:]
    head = {"w4": tf.zeros((features.shape[-1], num_way), features.dtype), "b4": tf.zeros((num_way,), features.dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(features_query, head), labels_query), head
