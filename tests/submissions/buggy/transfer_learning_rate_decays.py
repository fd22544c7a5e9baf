"""transfer_learn divides the learning rate by the step number (a decay nobody asked for): the first step is
right, later steps are smaller and smaller."""

EXPECT = {
    'transfer_learn: adapted head and query accuracy': 'The first step is right, later ones are not',
    'transfer_learn on a new task': 'The first step is right, later ones are not',
}
DIAGNOSED_BY = "structural"
UNSEEN = True


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    features_query = extract_features(images_query, frozen)
    head = {"w4": tf.zeros((features_support.shape[1], num_way), features_support.dtype),
            "b4": tf.zeros((num_way,), features_support.dtype)}
    for step in range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        grads = tape.gradient(loss, head)
        rate = learning_rate / (step + 1)
        head = {k: head[k] - rate * grads[k] for k in head}
    return accuracy(head_logits(features_query, head), labels_query), head
