"""transfer_learn makes the head for 5 classes (the assignment's 5-way) instead of num_way."""

EXPECT = {
    'transfer_learn on a new task': 'A label 5 met something with 5 classes',
    'transfer_learn: frozen layers untouched': 'A label 5 met something with 5 classes',
    'transfer_learn runs inside tf.function': 'A label 5 met something with 5 classes',
}
DIAGNOSED_BY = "structural"  # written UNSEEN and named by nothing; the general rule that names it was then
# written with it in view (grader.failures._index_hint), so it counts as known


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    features_query = extract_features(images_query, frozen)
    head = {"w4": tf.zeros((features_support.shape[1], 5), features_support.dtype),
            "b4": tf.zeros((5,), features_support.dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(features_query, head), labels_query), head
