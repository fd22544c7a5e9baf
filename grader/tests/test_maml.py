"""Public tests of part 1: MAML.inner_loop and MAML.outer_loop (maml.py).

Each test builds a small float64 MAML whose meta-parameters are the fixture's
(``checks.maml_from_fixture``) and compares what your code computes on real
Omniglot tasks with what the reference solution computed.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from grader import checks
from grader.plugin import points


def _tasks(fixture):
    return [tuple(tf.constant(part) for part in task) for task in checks.tasks_from_fixture(fixture)]


def _theta(fixture):
    return {name: fixture[f"theta/{name}"] for name in checks.parameter_names(fixture)}


def _inner_loop(maml_module, fixture):
    model = checks.maml_from_fixture(maml_module, fixture, first_order=True)
    images, labels = _tasks(fixture)[0][:2]
    result = model.inner_loop(images, labels, train=True)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(f"inner_loop should return (parameters, accuracies), got {type(result).__name__}")
    return model, result


def _meta_gradient(maml_module, fixture, first_order: bool):
    model = checks.maml_from_fixture(maml_module, fixture, first_order=first_order)
    with tf.GradientTape() as tape:
        loss = model.outer_loop(_tasks(fixture), train=True)[0]
    gradients = tape.gradient(loss, model.meta_parameters)
    missing = [name for name, g in gradients.items() if g is None]
    if missing:
        raise AssertionError(f"the outer loss does not depend on the meta-parameters {missing}: compute "
                             f"the adapted parameters from self.meta_parameters with TensorFlow ops "
                             f"(no .numpy(), no tf.stop_gradient on the parameters themselves).")
    return gradients


@points(2)
def test_inner_loop_outputs(maml_module, maml_fixture):
    """inner_loop: output types and shapes; meta-parameters unchanged"""
    model, (parameters, accuracies) = _inner_loop(maml_module, maml_fixture)
    theta = _theta(maml_fixture)
    if not isinstance(parameters, dict):
        raise AssertionError(f"the adapted parameters should be a dict, got {type(parameters).__name__}")
    if sorted(parameters) != sorted(theta):
        raise AssertionError(f"the adapted parameters have keys {sorted(parameters)}, expected {sorted(theta)}")
    for name, value in theta.items():
        checks.check_shape(parameters[name], value.shape, f"adapted parameter {name!r}")
    steps = int(maml_fixture["num_inner_steps"])
    checks.check_shape(accuracies, (steps + 1,), f"the accuracies (num_inner_steps={steps})")
    for name, variable in model.meta_parameters.items():
        if not np.array_equal(variable.numpy(), theta[name]):
            raise AssertionError(f"inner_loop changed self.meta_parameters[{name!r}]: build new tensors "
                                 f"for the adapted parameters instead (no assign).")


@points(4)
def test_inner_loop_adapted_parameters(maml_module, maml_fixture):
    """inner_loop: adapted parameters match the reference"""
    _, (parameters, _) = _inner_loop(maml_module, maml_fixture)
    theta = _theta(maml_fixture)
    expected = {name: maml_fixture[f"inner/phi/{name}"] for name in theta}
    checks.check_parameters(parameters, expected, theta, "adapted parameter")


@points(1)
def test_inner_loop_support_accuracies(maml_module, maml_fixture):
    """inner_loop: support accuracies match the reference"""
    _, (_, accuracies) = _inner_loop(maml_module, maml_fixture)
    expected = maml_fixture["inner/accuracies"]
    got = checks.check_shape(accuracies, expected.shape, "the support accuracies")
    if np.max(np.abs(got - expected)) > checks.ATOL_ACCURACY:
        raise AssertionError(f"the support accuracies are {np.round(got, 4).tolist()}, expected "
                             f"{np.round(expected, 4).tolist()} (entry 0: before the first step, "
                             f"last entry: after the last step).")


@points(3)
def test_outer_loop_loss_and_accuracies(maml_module, maml_fixture):
    """outer_loop: outer loss and accuracies match the reference"""
    model = checks.maml_from_fixture(maml_module, maml_fixture, first_order=True)
    result = model.outer_loop(_tasks(maml_fixture), train=True)
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise AssertionError("outer_loop should return (outer_loss, accuracies_support, accuracy_query)")
    loss, accuracies_support, accuracy_query = result
    checks.check_close(loss, maml_fixture["outer/loss"], "the outer loss",
                       hint="It is the mean over tasks of the query loss after adaptation.")
    checks.check_close(accuracies_support, maml_fixture["outer/accuracies_support"],
                       "accuracies_support (mean over tasks)", rtol=checks.ATOL_ACCURACY)
    checks.check_close(accuracy_query, maml_fixture["outer/accuracy_query"],
                       "accuracy_query (mean over tasks)", rtol=checks.ATOL_ACCURACY)


@points(3)
def test_outer_loop_first_order_meta_gradient(maml_module, maml_fixture):
    """outer_loop: first-order meta-gradient matches the reference"""
    gradients = _meta_gradient(maml_module, maml_fixture, first_order=True)
    expected = {name: maml_fixture[f"grad_fo/{name}"] for name in gradients}
    for name, value in gradients.items():
        checks.check_close(value, expected[name], f"the first-order meta-gradient of {name!r}",
                           hint="With first_order=True the inner gradients are constants "
                                "(tf.stop_gradient) and the loss is averaged over tasks.")


@points(2)
def test_outer_loop_second_order_meta_gradient(maml_module, maml_fixture):
    """outer_loop: second-order meta-gradient matches the reference"""
    gradients = _meta_gradient(maml_module, maml_fixture, first_order=False)
    for name, value in gradients.items():
        checks.check_close(value, maml_fixture[f"grad_so/{name}"], f"the second-order meta-gradient of {name!r}",
                           hint="With first_order=False and train=True the inner gradients must "
                                "not be stopped, so the outer tape differentiates through them.")


@points(1)
def test_training_step_runs_as_a_graph(maml_module, maml_fixture):
    """train_step: runs as a compiled graph (no eager fallback)"""
    model = checks.maml_from_fixture(maml_module, maml_fixture, first_order=True)
    before = {name: v.numpy().copy() for name, v in model.meta_parameters.items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.train_step(checks.tasks_from_fixture(maml_fixture))
    fallback = [str(w.message) for w in caught if "tf.function" in str(w.message)]
    if fallback:
        raise AssertionError(fallback[0])
    if all(np.array_equal(before[name], v.numpy()) for name, v in model.meta_parameters.items()):
        raise AssertionError("train_step did not change the meta-parameters")
