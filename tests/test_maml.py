"""The model and the reference MAML, checked against the mathematics they implement.

Gradient checks run in float64 on small real Omniglot tasks: on real drawings,
float32 and float64 agree closely, but finite differences need float64.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf

import load_data
import maml
from maml import MAML, cross_entropy, forward
from scaffold import mean_and_ci95


def as_float64(task):
    return tuple(tf.constant(part.astype(np.float64)) if part.dtype == np.float32 else tf.constant(part)
                 for part in task)


@pytest.fixture(scope="module")
def tasks64(omniglot):
    sampler = load_data.TaskSampler(omniglot, "train", num_way=3, num_support=2, num_query=3, seed=5)
    return [as_float64(sampler.task(i)) for i in range(2)]


@pytest.fixture(scope="module")
def tasks32(omniglot):
    return load_data.TaskSampler(omniglot, "train", 5, 5, 15, seed=9).batch(0, 4)


def flat(values):
    return np.concatenate([np.ravel(v) for v in values])


def directional_fd(model, tasks, direction, eps):
    """(L(theta + eps d) - L(theta - eps d)) / 2 eps for the outer loss, theta restored after."""
    base = [v.numpy() for v in model.trainable_variables]

    def loss_at(sign):
        for var, b, d in zip(model.trainable_variables, base, direction):
            var.assign(b + sign * eps * d)
        return float(model.outer_loop(tasks, train=False)[0])

    try:
        return (loss_at(1) - loss_at(-1)) / (2 * eps)
    finally:
        for var, b in zip(model.trainable_variables, base):
            var.assign(b)


# ------------------------------------------------------------------ model


def test_parameters_have_the_documented_names_shapes_and_seed():
    params = maml.init_parameters(num_way=5, seed=3)
    shapes = {name: tuple(v.shape) for name, v in params.items()}
    assert shapes == {
        "conv0": (3, 3, 1, 64), "b0": (64,), "conv1": (3, 3, 64, 64), "b1": (64,),
        "conv2": (3, 3, 64, 64), "b2": (64,), "conv3": (3, 3, 64, 64), "b3": (64,),
        "w4": (64, 5), "b4": (5,),
    }
    again = maml.init_parameters(num_way=5, seed=3)
    other = maml.init_parameters(num_way=5, seed=4)
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert not np.array_equal(params["conv1"], other["conv1"])
    limit = np.sqrt(6 / (9 * 64 + 9 * 64))  # Glorot uniform bound of conv1
    assert 0.9 * limit < np.abs(params["conv1"]).max() <= limit


def test_batch_norm_uses_the_statistics_of_the_batch():
    x = tf.constant(np.random.default_rng(0).normal(3.0, 2.0, (6, 4, 4, 8)))
    y = maml.batch_norm(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1, rtol=1e-4)  # eps = 1e-5 in the denominator


def test_batch_norm_second_derivatives_match_finite_differences():
    """tf.nn.moments would fail this: it stops the gradient through the mean inside the variance."""
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(5, 2, 2, 3)))
    w = tf.constant(rng.normal(size=(5, 2, 2, 3)))
    v = tf.constant(rng.normal(size=(5, 2, 2, 3)))

    def g(x):  # gradient of a scalar function of batch_norm(x), itself differentiable
        with tf.GradientTape() as tape:
            tape.watch(x)
            f = tf.reduce_sum(w * tf.tanh(maml.batch_norm(x)))
        return tape.gradient(f, x)

    with tf.GradientTape() as outer:
        outer.watch(x)
        directional = tf.reduce_sum(g(x) * v)
    hessian_v = outer.gradient(directional, x).numpy()
    eps = 1e-6
    fd = (g(x + eps * v) - g(x - eps * v)).numpy() / (2 * eps)
    np.testing.assert_allclose(hessian_v, fd, rtol=1e-6, atol=1e-8)


def test_forward_shapes_and_purity(tasks32):
    params = maml.init_parameters(5)
    images = tasks32[0].images_query
    logits = forward(tf.constant(images), params)
    assert logits.shape == (75, 5) and logits.dtype == tf.float32
    np.testing.assert_array_equal(logits, forward(tf.constant(images), params))


# ------------------------------------------------------------- inner loop


def manual_adaptation(meta, lrs, images, labels, steps):
    """Independent SGD on the support loss: one fresh tape per parameter set."""
    params = {k: tf.constant(v.numpy()) for k, v in meta.items()}
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = cross_entropy(forward(images, params), labels)
        grads = tape.gradient(loss, params)
        params = {k: params[k] - float(lrs[k].numpy()) * grads[k] for k in params}
    return params


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_inner_loop_is_sgd_on_the_support_loss(tasks64, steps):
    model = MAML(3, num_inner_steps=steps, inner_lr=0.4, dtype=tf.float64)
    before = {k: v.numpy().copy() for k, v in model.meta_parameters.items()}
    images, labels = tasks64[0][:2]
    adapted, accuracies = model.inner_loop(images, labels, train=True)
    expected = manual_adaptation(model.meta_parameters, model.inner_lrs, images, labels, steps)
    assert set(adapted) == set(expected)
    for name in expected:
        np.testing.assert_allclose(adapted[name], expected[name], rtol=1e-10, atol=1e-12)
    assert accuracies.shape == (steps + 1,)
    final = maml.accuracy(forward(images, expected), labels)
    np.testing.assert_allclose(accuracies[-1], final)
    for name, value in before.items():  # meta-parameters untouched
        np.testing.assert_array_equal(model.meta_parameters[name].numpy(), value)


def test_inner_loop_accuracies_are_taken_before_each_step(tasks64):
    model = MAML(3, num_inner_steps=2, dtype=tf.float64)
    images, labels = tasks64[0][:2]
    _, accuracies = model.inner_loop(images, labels, train=False)
    for step in range(3):
        params = manual_adaptation(model.meta_parameters, model.inner_lrs, images, labels, step)
        np.testing.assert_allclose(accuracies[step], maml.accuracy(forward(images, params), labels))


def test_inner_loop_uses_the_inner_learning_rate_variables(tasks64):
    model = MAML(3, num_inner_steps=1, inner_lr=0.4, dtype=tf.float64)
    images, labels = tasks64[0][:2]
    model.inner_lrs["w4"].assign(0.0)
    adapted, _ = model.inner_loop(images, labels, train=True)
    np.testing.assert_array_equal(adapted["w4"], model.meta_parameters["w4"].numpy())
    assert not np.allclose(adapted["conv0"], model.meta_parameters["conv0"].numpy())


# ------------------------------------------------------------- outer loop


def test_outer_loss_is_the_mean_query_loss_after_adaptation(tasks64):
    model = MAML(3, num_inner_steps=2, dtype=tf.float64)
    loss, accuracies_support, accuracy_query = model.outer_loop(tasks64, train=True)
    losses, query_accuracies, support_accuracies = [], [], []
    for images_s, labels_s, images_q, labels_q in tasks64:
        params = manual_adaptation(model.meta_parameters, model.inner_lrs, images_s, labels_s, 2)
        logits = forward(images_q, params)
        losses.append(float(cross_entropy(logits, labels_q)))
        query_accuracies.append(float(maml.accuracy(logits, labels_q)))
        support_accuracies.append(model.inner_loop(images_s, labels_s, False)[1].numpy())
    np.testing.assert_allclose(loss, np.mean(losses), rtol=1e-10)
    np.testing.assert_allclose(accuracy_query, np.mean(query_accuracies), rtol=1e-6)
    np.testing.assert_allclose(accuracies_support, np.mean(support_accuracies, axis=0), rtol=1e-6)
    assert accuracies_support.shape == (3,)


def test_first_order_meta_gradient_is_the_query_gradient_at_the_adapted_parameters(tasks64):
    model = MAML(3, num_inner_steps=2, first_order=True, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss, _, _ = model.outer_loop(tasks64, train=True)
    meta_gradient = tape.gradient(loss, model.meta_parameters)
    expected = {k: 0.0 for k in model.meta_parameters}
    for images_s, labels_s, images_q, labels_q in tasks64:
        params = manual_adaptation(model.meta_parameters, model.inner_lrs, images_s, labels_s, 2)
        with tf.GradientTape() as direct:
            direct.watch(params)
            query_loss = cross_entropy(forward(images_q, params), labels_q)
        for k, g in direct.gradient(query_loss, params).items():
            expected[k] = expected[k] + g.numpy() / len(tasks64)
    for name in expected:
        np.testing.assert_allclose(meta_gradient[name], expected[name], rtol=1e-8, atol=1e-12)


def test_second_order_meta_gradient_matches_finite_differences(tasks64):
    model = MAML(3, num_inner_steps=2, inner_lr=0.4, first_order=False, dtype=tf.float64)
    with tf.GradientTape() as tape:
        loss, _, _ = model.outer_loop(tasks64, train=True)
    gradient = tape.gradient(loss, model.trainable_variables)
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = [rng.standard_normal(v.shape) for v in model.trainable_variables]
        norm = np.linalg.norm(flat(direction))
        direction = [d / norm for d in direction]
        analytic = float(np.dot(flat([g.numpy() for g in gradient]), flat(direction)))
        # The outer loss is smooth only at small scales (ReLU kinks, batch norm over 6 images):
        # a unit step of 1e-4 can cross a kink, 1e-6 agrees to ~1e-7 in float64.
        numeric = directional_fd(model, tasks64, direction, eps=1e-6)
        assert analytic == pytest.approx(numeric, rel=1e-6)


def test_first_and_second_order_differ_and_first_order_misses_fd(tasks64):
    grads = {}
    for first_order in (True, False):
        model = MAML(3, num_inner_steps=2, first_order=first_order, dtype=tf.float64)
        with tf.GradientTape() as tape:
            loss, _, _ = model.outer_loop(tasks64, train=True)
        grads[first_order] = flat([g.numpy() for g in tape.gradient(loss, model.trainable_variables)])
    relative = np.linalg.norm(grads[True] - grads[False]) / np.linalg.norm(grads[False])
    assert relative > 0.05


def test_learned_inner_learning_rates_get_meta_gradients(tasks64):
    fixed = MAML(3, num_inner_steps=1, learn_inner_lrs=False, dtype=tf.float64)
    assert len(fixed.trainable_variables) == 10
    model = MAML(3, num_inner_steps=2, learn_inner_lrs=True, dtype=tf.float64)
    assert len(model.trainable_variables) == 20
    with tf.GradientTape() as tape:
        loss, _, _ = model.outer_loop(tasks64, train=True)
    lr_gradients = tape.gradient(loss, list(model.inner_lrs.values()))
    assert all(g is not None and g.shape == () for g in lr_gradients)
    # d loss / d lr_k, checked by finite differences on one learning rate
    eps, lr = 1e-7, model.inner_lrs["w4"]
    lr.assign(0.4 + eps)
    plus = float(model.outer_loop(tasks64, train=False)[0])
    lr.assign(0.4 - eps)
    minus = float(model.outer_loop(tasks64, train=False)[0])
    lr.assign(0.4)
    # first order: the inner gradients are constants, so d loss/d lr is the FO term only
    with tf.GradientTape() as tape:
        loss, _, _ = model.outer_loop(tasks64, train=True)
    assert float(tape.gradient(loss, lr)) == pytest.approx((plus - minus) / (2 * eps), rel=0.2)


# ------------------------------------------------------------- training step


def test_train_step_traces_once_and_moves_the_meta_parameters(tasks32, omniglot):
    model = MAML(5, num_inner_steps=1)
    sampler = load_data.TaskSampler(omniglot, "train", 5, 5, 15)
    before = model.meta_parameters["conv0"].numpy().copy()
    for index in range(3):
        loss, accuracies_support, accuracy_query = model.train_step(sampler.batch(index, 2))
        assert np.isfinite(loss.numpy()) and accuracies_support.shape == (2,)
    assert model._train_step.graph_fn.experimental_get_tracing_count() == 1
    assert not model._train_step.eager
    assert not np.array_equal(model.meta_parameters["conv0"].numpy(), before)
    assert int(model.optimizer.iterations.numpy()) == 3


class NumpyInTheLoop(MAML):
    """A student solution that works eagerly but cannot be traced (Python float of a tensor)."""

    def inner_loop(self, images, labels, train):
        parameters, accuracies = super().inner_loop(images, labels, train)
        lr = float(self.inner_lrs["w4"].numpy())  # needs eager execution
        return {k: v * (lr / lr) for k, v in parameters.items()}, accuracies


def test_untraceable_student_code_falls_back_to_eager_with_one_warning(tasks32):
    model = NumpyInTheLoop(5, num_inner_steps=1)
    reference = MAML(5, num_inner_steps=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            loss, _, _ = model.train_step(tasks32[:2])
            expected, _, _ = reference.train_step(tasks32[:2])
            np.testing.assert_allclose(loss, expected, rtol=1e-5)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "runs eagerly" in messages[0]
    assert model._train_step.eager


class NotImplemented(MAML):
    def outer_loop(self, task_batch, train):
        raise NotImplementedError("MAML.outer_loop")


def test_a_stub_raises_its_own_error_not_a_fallback_warning(tasks32):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(NotImplementedError, match="MAML.outer_loop"):
            NotImplemented(5).train_step(tasks32[:1])


class Disconnected(MAML):
    def outer_loop(self, task_batch, train):
        loss, accuracies_support, accuracy_query = super().outer_loop(task_batch, train)
        return tf.constant(float(loss.numpy())), accuracies_support, accuracy_query


def test_a_loss_cut_off_from_the_meta_parameters_gets_a_clear_error(tasks32):
    with pytest.raises(ValueError, match="outer_loss does not depend on"):
        Disconnected(5, num_inner_steps=1).train_step(tasks32[:1])


# ----------------------------------------------------------------- evaluate


def test_evaluate_is_per_task_and_pads_the_last_chunk(tasks32):
    model = MAML(5, num_inner_steps=2)
    support, query = model.evaluate(tasks32[:3], chunk_size=2)
    assert support.shape == (3, 3) and query.shape == (3,)
    for i, task in enumerate(tasks32[:3]):
        _, s, q = model.outer_loop([tuple(map(tf.constant, task))], train=False)
        np.testing.assert_allclose(query[i], q, atol=1e-6)
        np.testing.assert_allclose(support[i], s, atol=1e-6)
    assert model._evaluate.graph_fn.experimental_get_tracing_count() == 1
    assert int(model.optimizer.iterations.numpy()) == 0


def test_the_evaluation_loop_gives_each_task_what_outer_loop_gives_it_alone(tasks32):
    """One compiled loop over the stacked tasks (tf.map_fn) = outer_loop per task, bit for bit, in any chunks."""
    model = MAML(5, num_inner_steps=2)
    tasks = tasks32  # 4 tasks
    support, query = model.evaluate(tasks)  # one call for all of them
    alone = tf.function(lambda *task: model.outer_loop([task], train=False))
    for i, task in enumerate(tasks):
        _, s, q = alone(*map(tf.constant, task))
        np.testing.assert_array_equal(support[i], s.numpy())
        np.testing.assert_array_equal(query[i], q.numpy())
    for chunk_size in (3,):  # the last chunk padded
        chunked = model.evaluate(tasks, chunk_size=chunk_size)
        np.testing.assert_array_equal(chunked[0], support)
        np.testing.assert_array_equal(chunked[1], query)


def test_untraceable_student_code_is_evaluated_eagerly_with_one_warning(tasks32):
    model, reference = NumpyInTheLoop(5, num_inner_steps=1), MAML(5, num_inner_steps=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        support, query = model.evaluate(tasks32[:3])
    assert model._evaluate.eager
    assert sum(issubclass(w.category, RuntimeWarning) and "runs eagerly" in str(w.message) for w in caught) == 1
    expected_support, expected_query = reference.evaluate(tasks32[:3])
    np.testing.assert_allclose(support, expected_support, atol=1e-6)
    np.testing.assert_allclose(query, expected_query, atol=1e-6)


def test_mean_and_ci95():
    values = np.array([0.6, 0.8, 1.0, 0.8])
    mean, half_width = mean_and_ci95(values)
    assert mean == pytest.approx(0.8)
    assert half_width == pytest.approx(1.96 * np.sqrt(((0.04 + 0 + 0.04 + 0) / 3)) / 2)


# ------------------------------------------------------------------ weights


def test_weights_round_trip_and_wrong_shapes_are_named(tmp_path):
    model = MAML(5, seed=1)
    path = tmp_path / "weights.npz"
    model.save_weights(path)
    other = MAML(5, seed=2)
    other.load_weights(path)
    for name, value in model.weights().items():
        np.testing.assert_array_equal(other.weights()[name], value)
    with pytest.raises(ValueError, match=r"w4 has shape \(64, 5\), expected \(64, 3\)"):
        MAML(3).load_weights(path)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a weights file"):
        model.load_weights(tmp_path / "junk.npz")
