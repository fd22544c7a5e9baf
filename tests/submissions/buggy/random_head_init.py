"""transfer_learn starts the head from random numbers instead of zeros (and without a seed).

The grader seeds every call the same way, so one call at a time the head is repeatable and the public
checks only see wrong numbers; the hidden ones call it several times in a row and see the randomness.
"""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": ("Two calls with the same inputs give different heads",
                                                        "No random numbers here"),
    "transfer_learn on a new task": "differs from the reference",
    "transfer_learn: frozen layers untouched": "start w4 and b4 at zero",
    "transfer_learn runs inside tf.function": "two calls with the same inputs give different heads",
}
DIAGNOSED_BY = "structural"


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    num_features = features_support.shape[-1]
    head = {"w4": tf.random.normal((num_features, num_way), stddev=0.01, dtype=features_support.dtype),
            "b4": tf.zeros((num_way,), features_support.dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        grads = tape.gradient(loss, head)
        head = {k: head[k] - learning_rate * grads[k] for k in head}
    return accuracy(head_logits(extract_features(images_query, frozen), head), labels_query), head
