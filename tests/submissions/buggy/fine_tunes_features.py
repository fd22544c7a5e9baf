"""transfer_learn trains the convolutional layers along with the head (new tensors, no assign)."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "did you train the convolutional layers too",
    "transfer_learn on a new task": "did you train the convolutional layers too",
}
DIAGNOSED_BY = "hint"


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    num_features = frozen["b3"].shape[0]
    params = {**{k: frozen[k] for k in FEATURE_KEYS},
              "w4": tf.zeros((num_features, num_way), frozen["b3"].dtype),
              "b4": tf.zeros((num_way,), frozen["b3"].dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = cross_entropy(maml.forward(images_support, params), labels_support)
        grads = tape.gradient(loss, params)
        params = {k: params[k] - learning_rate * grads[k] for k in params}
    head = {"w4": params["w4"], "b4": params["b4"]}
    return accuracy(maml.forward(images_query, params), labels_query), head
