"""transfer_learn trains with a Keras SGD over every variable it finds, the frozen layers included."""

EXPECT = {
    "transfer_learn: adapted head and query accuracy": "did you train the convolutional layers too",
    "transfer_learn: frozen layers unchanged; the head never sees query labels": "transfer_learn changed the frozen parameters",
    "transfer_learn on a new task": "did you train the convolutional layers too",
    "transfer_learn: frozen layers untouched": "transfer_learn changed the frozen tf.Variables",
    "transfer_learn runs inside tf.function": "",
}
DIAGNOSED_BY = "hint"


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    images_support, labels_support, images_query, labels_query = task
    variables = {k: v if isinstance(v, tf.Variable) else tf.Variable(v) for k, v in feature_parameters(frozen).items()}
    num_features = variables["b3"].shape[0]
    variables["w4"] = tf.Variable(tf.zeros((num_features, num_way), variables["b3"].dtype))
    variables["b4"] = tf.Variable(tf.zeros((num_way,), variables["b3"].dtype))
    optimizer = tf.keras.optimizers.SGD(learning_rate=learning_rate)
    for _ in range(int(num_steps)):
        with tf.GradientTape() as tape:
            loss = cross_entropy(maml.forward(images_support, variables), labels_support)
        grads = tape.gradient(loss, list(variables.values()))
        optimizer.apply_gradients(zip(grads, list(variables.values())))
    head = {"w4": tf.identity(variables["w4"]), "b4": tf.identity(variables["b4"])}
    return accuracy(maml.forward(images_query, variables), labels_query), head
