"""transfer_learn fits the head on the query set (the labels it is then measured on)."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "did you train the head on the query set",
    "transfer_learn: frozen layers unchanged; the head never sees query labels": "the adapted head changes when the query labels change",
    "transfer_learn on a new task": "did you train the head on the query set",
    "transfer_learn: frozen layers untouched": "the head changes when only the query images and labels change",
}
DIAGNOSED_BY = "hint"


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features = extract_features(images_query, frozen)
    head = {"w4": tf.zeros((features.shape[-1], num_way), features.dtype), "b4": tf.zeros((num_way,), features.dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features, head), labels_query)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(features, head), labels_query), head
