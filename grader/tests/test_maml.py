"""Public tests of part 1: MAML.inner_loop and MAML.outer_loop (maml.py).

Each test has your code build a small float64 MAML whose meta-parameters are
the fixture's (``compare.maml_from_fixture``, run in a separate process by
``grader/probes.py``) and compares what it computes on real Omniglot tasks
with what the reference solution computed.
"""

from __future__ import annotations

import numpy as np

from grader import compare, feedback, probes
from grader.plugin import points

PROBLEM = "FO-MAML implementation"  # the part of the assignment these points count for (README, Grading)


def _theta(fixture):
    return {name: fixture[f"theta/{name}"] for name in compare.parameter_names(fixture)}


def _kind(value) -> str:
    return getattr(value, "type_name", type(value).__name__)


def _inner_loop(student, fixture):
    out = student.call(probes.inner_loop, {"inputs": compare.inputs(fixture)})
    result = out["result"]
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(f"inner_loop should return (parameters, accuracies), got {_kind(result)}")
    return out["meta_parameters"], result


def _meta_gradient(student, fixture, first_order: bool):
    """The meta-gradient (first or second order) and outer_loop's results (the rest of the evidence)."""
    out = student.call(probes.meta_gradient, {"inputs": compare.inputs(fixture), "first_order": first_order})
    if out["gradients"] is None:
        raise AssertionError(f"outer_loop should return (outer_loss, accuracies_support, accuracy_query), "
                             f"got {_kind(out['result'])}")
    gradients = out["gradients"]
    missing = [name for name, g in gradients.items() if g is None]
    if missing:
        raise AssertionError(f"the outer loss does not depend on the meta-parameters {missing}: compute "
                             f"the adapted parameters from self.meta_parameters with TensorFlow ops "
                             f"(no .numpy(), no tf.stop_gradient on the parameters themselves).")
    return gradients, feedback.outer_results(out)


@points(2)
def test_inner_loop_outputs(student, maml_fixture):
    """inner_loop: output types and shapes; meta-parameters unchanged"""
    meta_parameters, (parameters, accuracies) = _inner_loop(student, maml_fixture)
    theta = _theta(maml_fixture)
    if not isinstance(parameters, dict):
        raise AssertionError(f"the adapted parameters should be a dict, got {_kind(parameters)}")
    if sorted(parameters) != sorted(theta):
        raise AssertionError(f"the adapted parameters have keys {sorted(parameters)}, expected {sorted(theta)}")
    for name, value in theta.items():
        compare.assert_shape(parameters[name], value.shape, f"adapted parameter {name!r}")
    steps = int(maml_fixture["num_inner_steps"])
    compare.assert_shape(accuracies, (steps + 1,), f"the accuracies (num_inner_steps={steps})")
    for name, value in meta_parameters.items():
        if not np.array_equal(compare.as_numpy(value, name), theta[name]):
            raise AssertionError(f"inner_loop changed self.meta_parameters[{name!r}]: build new tensors "
                                 f"for the adapted parameters instead (no assign).")


@points(4)
def test_inner_loop_adapted_parameters(student, maml_fixture):
    """inner_loop: adapted parameters match the reference"""
    _, (parameters, accuracies) = _inner_loop(student, maml_fixture)
    theta = _theta(maml_fixture)
    feedback.assert_expected(maml_fixture, "inner/phi", parameters, "adapted parameter", start=theta,
                             others={"inner/accuracies": accuracies})


@points(1)
def test_inner_loop_support_accuracies(student, maml_fixture):
    """inner_loop: support accuracies match the reference"""
    _, (parameters, accuracies) = _inner_loop(student, maml_fixture)
    expected = maml_fixture["inner/accuracies"]
    got = compare.assert_shape(accuracies, expected.shape, "the support accuracies")
    if np.max(np.abs(got - expected)) > compare.ATOL_ACCURACY:
        diagnosis, _ = feedback.diagnose(maml_fixture, "inner/accuracies", got, others={"inner/phi": parameters})
        raise AssertionError(f"the support accuracies are {np.round(got, 4).tolist()}, expected "
                             f"{np.round(expected, 4).tolist()} (entry 0: before the first step, "
                             f"last entry: after the last step). " + diagnosis)


@points(3)
def test_outer_loop_loss_and_accuracies(student, maml_fixture):
    """outer_loop: outer loss and accuracies match the reference"""
    out = student.call(probes.outer_loop, {"inputs": compare.inputs(maml_fixture)})
    results = feedback.outer_results(out)
    if not results:
        raise AssertionError("outer_loop should return (outer_loss, accuracies_support, accuracy_query)")
    evidence = {**results, "grad_fo": out["gradients"]} if out["gradients"] is not None else results
    feedback.assert_expected(maml_fixture, "outer/loss", results["outer/loss"], "the outer loss", others=evidence,
                             hint="It is the mean over tasks of the query loss after adaptation.")
    feedback.assert_expected(maml_fixture, "outer/accuracies_support", results["outer/accuracies_support"],
                             "accuracies_support (mean over tasks)", rtol=compare.ATOL_ACCURACY, others=evidence)
    feedback.assert_expected(maml_fixture, "outer/accuracy_query", results["outer/accuracy_query"],
                             "accuracy_query (mean over tasks)", rtol=compare.ATOL_ACCURACY, others=evidence)


@points(3)
def test_outer_loop_first_order_meta_gradient(student, maml_fixture):
    """outer_loop: first-order meta-gradient matches the reference"""
    gradients, results = _meta_gradient(student, maml_fixture, first_order=True)
    feedback.assert_expected(maml_fixture, "grad_fo", gradients, "the first-order meta-gradient", others=results,
                             hint="With first_order=True the inner gradients are constants "
                                  "(tf.stop_gradient) and the loss is averaged over tasks.")


@points(1)  # as severe as learned inner rates that never learn (hidden: 1.5 points): README, Grading
def test_outer_loop_second_order_meta_gradient(student, maml_fixture):
    """outer_loop: second-order meta-gradient matches the reference"""
    gradients, results = _meta_gradient(student, maml_fixture, first_order=False)
    feedback.assert_expected(maml_fixture, "grad_so", gradients, "the second-order meta-gradient", others=results,
                             hint="With first_order=False and train=True the inner gradients must "
                                  "not be stopped, so the outer tape differentiates through them.")


@points(1)
def test_training_step_runs_as_a_graph(student, maml_fixture):
    """train_step: runs as a compiled graph (no eager fallback)"""
    out = student.call(probes.train_step, {"inputs": compare.inputs(maml_fixture)})
    if out["warnings"]:
        raise AssertionError(str(out["warnings"][0]))
    before, after = out["before"], out["after"]
    if all(np.array_equal(before[name], compare.as_numpy(after[name], name)) for name in before):
        raise AssertionError("train_step did not change the meta-parameters")
