"""transfer_learn trains the head with heavy-ball momentum (0.9), as the pre-training optimiser did,
instead of plain gradient descent."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "is each a plain gradient step",
    "transfer_learn on a new task": "",
}
DIAGNOSED_BY = "structural"
UNSEEN = True


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    head = {"w4": tf.zeros((features_support.shape[-1], num_way), features_support.dtype),
            "b4": tf.zeros((num_way,), features_support.dtype)}
    velocity = {k: tf.zeros_like(v) for k, v in head.items()}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        grads = tape.gradient(loss, head)
        velocity = {k: 0.9 * velocity[k] + grads[k] for k in head}
        head = {k: head[k] - learning_rate * velocity[k] for k in head}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
