"""Structural diagnoses (``grader.diagnoses``, ``grader.feedback.diagnose``), stated as the math they rest on.

Each test runs a slip of the inner or outer loop for real (TensorFlow, float64,
the public fixture's Omniglot tasks and meta-parameters) and checks what the
diagnosis says about its numbers: a flipped sign is the opposite direction, a
doubled loss a doubled update, a sum over N examples N times the mean, every
step restarting from theta one step's result. None of these slips is a known
mistake of ``instructor/mistakes.py``.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from grader import compare, diagnoses, feedback

tf = pytest.importorskip("tensorflow")
maml = pytest.importorskip("maml")
FIXTURE = compare.load_fixture("maml")


def _mean_loss(logits, labels):
    return maml.cross_entropy(logits, labels)


def _summed_loss(logits, labels):
    return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def _inner_loop(update=lambda value, lr, gradient: value - lr * gradient, loss=_mean_loss, restart=False,
                skip=(), accuracy_after_step=False):
    """An inner loop as a student might write it, with one slip chosen by the arguments."""

    def inner_loop(self, images, labels, train):
        parameters = dict(self.meta_parameters)
        accuracies = []
        for _ in range(self.num_inner_steps):
            if restart:
                parameters = dict(self.meta_parameters)
            with tf.GradientTape() as tape:
                tape.watch(parameters)
                logits = maml.forward(images, parameters)
                value = loss(logits, labels)
            if not accuracy_after_step:
                accuracies.append(maml.accuracy(logits, labels))
            gradients = {name: tf.stop_gradient(g) for name, g in tape.gradient(value, parameters).items()}
            parameters = {name: p if skip and name.startswith(skip) else
                          update(p, self.inner_lrs[name], gradients[name]) for name, p in parameters.items()}
            if accuracy_after_step:
                accuracies.append(maml.accuracy(maml.forward(images, parameters), labels))
        accuracies.append(maml.accuracy(maml.forward(images, parameters), labels))
        return parameters, tf.stack(accuracies)

    return inner_loop


def _outer_loop(loss):
    """An outer loop as a student might write it, with the query loss computed by ``loss``."""

    def outer_loop(self, task_batch, train):
        losses, support, query = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            parameters, accuracies = self.inner_loop(images_support, labels_support, train)
            logits = maml.forward(images_query, parameters)
            losses.append(loss(logits, labels_query))
            support.append(accuracies)
            query.append(maml.accuracy(logits, labels_query))
        return tf.reduce_mean(tf.stack(losses)), tf.reduce_mean(tf.stack(support), axis=0), tf.reduce_mean(query)

    return outer_loop


def _student(inner_loop=None, outer_loop=None):
    model = compare.maml_from_fixture(maml, FIXTURE, first_order=True)
    for name, method in (("inner_loop", inner_loop), ("outer_loop", outer_loop)):
        if method is not None:
            setattr(model, name, types.MethodType(method, model))
    return model


def _tasks():
    return [tuple(tf.constant(part) for part in task) for task in compare.tasks_from_fixture(FIXTURE)]


def _inner_evidence(inner_loop) -> dict:
    images, labels = _tasks()[0][:2]
    phi, accuracies = _student(inner_loop).inner_loop(images, labels, True)
    return {"inner/phi": phi, "inner/accuracies": accuracies}


def _diagnose_inner(inner_loop, quantity="inner/phi") -> str:
    results = _inner_evidence(inner_loop)
    text, _ = feedback.diagnose(FIXTURE, quantity, results[quantity], others=results)
    return text


def _outer_evidence(outer_loop) -> dict:
    model = _student(outer_loop=outer_loop)
    with tf.GradientTape() as tape:
        loss, support, query = model.outer_loop(_tasks(), True)
    return {"outer/loss": loss, "outer/accuracies_support": support, "outer/accuracy_query": query,
            "grad_fo": tape.gradient(loss, model.meta_parameters)}


def test_the_reference_written_again_gets_no_diagnosis():
    results = _inner_evidence(_inner_loop())
    assert feedback.evidence(FIXTURE, results).results.keys() == results.keys()
    assert feedback.singled_out(feedback.evidence(FIXTURE, results)) == []
    assert feedback.singled_out(feedback.evidence(FIXTURE, results), "variant") == []


def test_a_flipped_sign_in_the_inner_update_moves_the_parameters_the_opposite_way():
    text = _diagnose_inner(_inner_loop(update=lambda value, lr, gradient: value + lr * gradient))
    assert "moves the parameters the opposite way" in text and "sign flipped" in text, text
    assert "Looks like a known mistake" not in text


def test_a_loss_counted_twice_doubles_the_inner_update():
    text = _diagnose_inner(_inner_loop(loss=lambda logits, labels: 2 * _mean_loss(logits, labels)))
    assert "Your inner update is 2x the reference's" in text and "used twice" in text, text


def test_an_inner_loss_summed_over_the_support_examples_is_n_times_the_update():
    text = _diagnose_inner(_inner_loop(loss=_summed_loss))
    n = FIXTURE["labels_support"].shape[1]
    assert f"Your inner update is {n}x the reference's" in text, text
    assert "a sum over the support examples where a mean is meant?" in text, text


def test_the_learning_rate_applied_twice_is_recognised():
    text = _diagnose_inner(_inner_loop(update=lambda value, lr, gradient: value - lr * (lr * gradient)))
    assert "is self.inner_lrs[name] applied twice?" in text, text


def test_every_inner_step_restarting_from_the_meta_parameters_is_recognised_not_one_step_too_few():
    """With 2 steps, restarting gives one step's parameters, as one step too few does; the support
    accuracies ([theta, theta, phi_1] here) tell them apart."""
    text = _diagnose_inner(_inner_loop(restart=True))
    assert "Each inner step starts again from self.meta_parameters" in text, text
    assert "one inner step too few" not in text


def test_weight_decay_in_the_inner_update_pulls_the_parameters_towards_zero():
    """phi_{s+1} = phi_s - lr (g + lambda phi_s): besides the reference's steps, each step subtracts lr lambda phi_s,
    so the difference from the reference's phi points along -theta (cosine below diagnoses.SHRINK_COSINE)."""
    text = _diagnose_inner(_inner_loop(update=lambda value, lr, gradient: value - lr * (gradient + 0.01 * value)))
    assert "in the direction of minus the meta-parameters themselves" in text and "weight decay" in text, text
    assert "Looks like a known mistake" not in text


def test_clipped_inner_gradients_change_each_parameters_step_by_its_own_factor():
    """clip_by_norm(g, 1) scales each parameter's gradient by min(1, 1/|g|): each change keeps about its
    direction and shrinks by a factor of its own, unlike a scaled learning rate (one factor for all)."""
    text = _diagnose_inner(_inner_loop(update=lambda value, lr, gradient: value - lr * tf.clip_by_norm(gradient, 1.0)))
    assert "its size is off by a factor that differs between parameters" in text and "clipped" in text, text
    doubled = _diagnose_inner(_inner_loop(update=lambda value, lr, gradient: value - 2 * lr * gradient))
    assert "differs between parameters" not in doubled and "2x the reference's" in doubled, doubled


def test_parameters_left_out_of_the_update_are_named():
    results = _inner_evidence(_inner_loop(skip="b"))
    text, _ = feedback.diagnose(FIXTURE, "inner/phi", results["inner/phi"], others=results)
    biases = ", ".join(repr(name) for name in sorted(compare.parameter_names(FIXTURE)) if name.startswith("b"))
    assert f"{biases} did not change at all: does your update leave them out?" in text, text
    text, _ = feedback.diagnose(FIXTURE, "inner/accuracies", results["inner/accuracies"], others=results)
    assert text == ("The adapted parameters differ from the reference's too, and the accuracies follow from them: "
                    "fix them first."), text


def test_right_parameters_with_wrong_accuracies_blame_the_accuracies():
    text = _diagnose_inner(_inner_loop(accuracy_after_step=True), "inner/accuracies")
    assert text.startswith("The adapted parameters are right, so the difference is in how the accuracies"), text


def test_accuracies_alone_never_name_a_mistake_the_parameters_do():
    """A fixed inner learning rate (a known mistake): its accuracies alone move in steps of 1/6, so they
    could be another mistake's; with the adapted parameters they single it out."""
    results = _inner_evidence(_inner_loop(update=lambda value, lr, gradient: value - 0.4 * gradient))
    accuracies_only = feedback.evidence(FIXTURE, {"inner/accuracies": results["inner/accuracies"]})
    assert feedback.singled_out(accuracies_only) == []
    assert feedback.singled_out(feedback.evidence(FIXTURE, results)) == ["inner_lr_ignored"]
    text, cause = feedback.diagnose(FIXTURE, "inner/accuracies", results["inner/accuracies"], others=results)
    assert cause == text == "Looks like a known mistake: " + feedback.HINTS["inner_lr_ignored"]


def test_an_outer_loss_summed_over_the_query_examples_is_n_times_the_mean():
    results = _outer_evidence(_outer_loop(_summed_loss))
    n = FIXTURE["labels_query"].shape[1]
    expected = float(FIXTURE["outer/loss"])
    assert float(results["outer/loss"]) == pytest.approx(n * expected, rel=1e-9)  # the math the sentence rests on
    text, _ = feedback.diagnose(FIXTURE, "outer/loss", results["outer/loss"], others=results)
    assert text.startswith(f"It is {n}x the expected one. {n} is the number of query examples of a task: a sum "
                           f"over the query examples of a task where a mean is meant?"), text
    gradient_text, _ = feedback.diagnose(FIXTURE, "grad_fo", results["grad_fo"], others=results)
    assert gradient_text.startswith(f"It is {n}x the expected one."), gradient_text


def test_an_outer_loss_of_probabilities_is_recognised():
    results = _outer_evidence(_outer_loop(lambda logits, labels: _mean_loss(tf.nn.softmax(logits), labels)))
    text, cause = feedback.diagnose(FIXTURE, "outer/loss", results["outer/loss"], others=results)
    assert cause == diagnoses.VARIANTS["probabilities_outer"], text


def test_a_gradient_pointing_the_other_way_is_named_by_its_cosine():
    """The first-order meta-gradient of the negated loss: exactly -1 times the reference's."""
    results = _outer_evidence(_outer_loop(lambda logits, labels: -_mean_loss(logits, labels)))
    text, _ = feedback.diagnose(FIXTURE, "grad_fo", results["grad_fo"], others=results)
    assert text.startswith("It is -1x the expected one. It is exactly the reference's with the opposite sign"), text
    expected = feedback.expected_value(FIXTURE, "grad_fo")
    rotated = {name: -0.5 * value + 0.1 * np.roll(value, 1) for name, value in expected.items()}
    assert diagnoses.direction(rotated, expected).startswith("It points the opposite way from the reference's")


def test_a_query_accuracy_of_the_untrained_head_is_recognised():
    """A zero head gives equal logits, so argmax picks class 0 for every example: its accuracy on a query set
    is the share of class 0 there. Accuracies equal to those (and not the reference's) were measured before
    any step."""
    from grader import diagnoses_transfer

    fixture = compare.load_fixture("transfer")
    untrained = np.mean(np.asarray(fixture["labels_query"]) == 0, axis=1)
    text = diagnoses_transfer.accuracy_findings(fixture, untrained)
    assert "the accuracy of the head before any step" in text, text
    assert "before any step" not in diagnoses_transfer.accuracy_findings(fixture, untrained + 0.02)


def test_keras_cross_entropy_without_from_logits_is_recognised():
    """Keras's sparse categorical cross-entropy defaults to from_logits=False: it rescales the logits to sum to
    1 and takes the log, a loss of other numbers than the softmax cross-entropy's (a stored variant)."""
    keras_loss = _inner_loop(loss=lambda logits, labels: tf.reduce_mean(
        tf.keras.losses.sparse_categorical_crossentropy(labels, logits)))
    text = _diagnose_inner(keras_loss)
    assert "Keras's sparse categorical cross-entropy with its default from_logits=False gives in the inner loop" \
        in text, text
