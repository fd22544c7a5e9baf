"""transfer_learn starts the head's weights at a small constant (0.01) instead of zeros, "so that
gradients flow": a deterministic but wrong starting point."""

EXPECT = {
    'transfer_learn: adapted head and query accuracy': 'start w4 and b4 at zero',
    'transfer_learn on a new task': 'start w4 and b4 at zero',
    'transfer_learn: frozen layers untouched': 'start w4 and b4 at zero',
}
DIAGNOSED_BY = "structural"
UNSEEN = True


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    num_features = features_support.shape[-1]
    head = {"w4": tf.fill((num_features, num_way), tf.constant(0.01, features_support.dtype)),
            "b4": tf.zeros((num_way,), features_support.dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
