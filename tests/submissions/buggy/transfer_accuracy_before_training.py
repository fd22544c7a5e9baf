"""transfer_learn measures the query accuracy with the head it starts from (zeros), before the loop, and
returns that number with the trained head."""

EXPECT = {
    'transfer_learn: adapted head and query accuracy': 'the accuracy of the head before any step',
    'transfer_learn on a new task': 'the accuracy of the head before any step',
}
DIAGNOSED_BY = "structural"  # written UNSEEN and named by nothing; the general rule that names it was then
# written with it in view (grader.diagnoses_transfer.accuracy_findings: the untrained head), so it counts as known


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    features_query = extract_features(images_query, frozen)
    head = {"w4": tf.zeros((features_support.shape[1], num_way), features_support.dtype),
            "b4": tf.zeros((num_way,), features_support.dtype)}
    query_accuracy = accuracy(head_logits(features_query, head), labels_query)
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return query_accuracy, head
