"""Hidden tests of part 1 (FO-MAML implementation): what the public tests do not cover.

New tasks and shapes (5-way 1-shot, 1 query per class, 4 tasks, 3 inner steps,
8 filters, a different inner learning rate per parameter), the meta-gradients
of the inner learning rates, evaluation without second order, and tasks that
must not influence each other. Every check has partial credit and names the
known mistake a wrong result matches (``grader.feedback``).
"""

from __future__ import annotations

import numpy as np

from grader import compare, feedback, probes
from grader.plugin import Parts, points

from . import probes_hidden

PROBLEM = "FO-MAML implementation"  # the part of the assignment these points count for (README, Grading)
INDEPENDENCE_RTOL = compare.RTOL  # the same numbers in another order: round-off only (a Keras loss: float32)


def _theta(fixture):
    return {name: fixture[f"theta/{name}"] for name in compare.parameter_names(fixture)}


def _kind(value) -> str:
    return getattr(value, "type_name", type(value).__name__)


def _outer_loop(student, fixture, first_order: bool, train: bool = True, of: str = "meta_parameters") -> dict:
    out = student.call(probes_hidden.gradients, {"inputs": compare.inputs(fixture), "first_order": first_order,
                                                 "train": train, "of": of})
    if out["gradients"] is None:
        raise AssertionError(f"outer_loop should return (outer_loss, accuracies_support, accuracy_query), "
                             f"got {_kind(out['result'])}")
    return out


def _check_gradients(fixture, quantity: str, gradients: dict, what: str, of: str = "meta-parameters",
                     others: dict | None = None) -> None:
    missing = sorted(name for name, g in gradients.items() if g is None)
    if missing and of == "inner learning rates":
        raise AssertionError(f"the outer loss does not depend on self.inner_lrs {missing}: use the variables "
                             f"self.inner_lrs[name] in the inner update (not a float, not .numpy()), so that "
                             f"learned inner learning rates get their gradient.")
    if missing:
        raise AssertionError(f"the outer loss does not depend on the meta-parameters {missing}: compute the "
                             f"adapted parameters from self.meta_parameters with TensorFlow ops.")
    feedback.assert_expected(fixture, quantity, gradients, what, others=others)


@points(1)
def test_inner_loop_on_new_tasks(student, maml_hidden):
    """inner_loop on new tasks (5-way 1-shot, 3 steps): adapted parameters and support accuracies"""
    out = student.call(probes.inner_loop, {"inputs": compare.inputs(maml_hidden)})
    result = out["result"]
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(f"inner_loop should return (parameters, accuracies), got {_kind(result)}")
    parameters, accuracies = result
    steps = int(maml_hidden["num_inner_steps"])
    parts = Parts()
    with parts.part(3, "adapted parameters"):
        feedback.assert_expected(maml_hidden, "inner/phi", parameters, "adapted parameter", start=_theta(maml_hidden),
                                 others={"inner/accuracies": accuracies})
    with parts.part(1, "support accuracies"):
        feedback.assert_expected(maml_hidden, "inner/accuracies", accuracies, f"the support accuracies ({steps} steps)",
                                 rtol=compare.ATOL_ACCURACY,
                                 hint=f"Expected {np.round(maml_hidden['inner/accuracies'], 4).tolist()}: one "
                                      f"before each step, one after the last.",
                                 others={"inner/phi": parameters})
    parts.finish()


@points(1)
def test_outer_loop_on_a_batch_of_new_tasks(student, maml_hidden):
    """outer_loop on 4 new tasks: loss, accuracies, first- and second-order meta-gradients"""
    first = _outer_loop(student, maml_hidden, first_order=True)
    results = feedback.outer_results(first)
    if not results:
        raise AssertionError(f"outer_loop should return (outer_loss, accuracies_support, accuracy_query), "
                             f"got {_kind(first['result'])}")
    evidence = {**results, "grad_fo": first["gradients"]}
    parts = Parts()
    with parts.part(1, "outer loss"):
        feedback.assert_expected(maml_hidden, "outer/loss", results["outer/loss"], "the outer loss", others=evidence,
                                 hint="It is the mean over tasks of the query loss after adaptation.")
    with parts.part(1, "accuracies"):
        feedback.assert_expected(maml_hidden, "outer/accuracies_support", results["outer/accuracies_support"],
                                 "accuracies_support (mean over tasks)", rtol=compare.ATOL_ACCURACY, others=evidence)
        feedback.assert_expected(maml_hidden, "outer/accuracy_query", results["outer/accuracy_query"],
                                 "accuracy_query (mean over tasks)", rtol=compare.ATOL_ACCURACY, others=evidence)
    with parts.part(1, "first-order meta-gradient"):
        _check_gradients(maml_hidden, "grad_fo", first["gradients"], "the first-order meta-gradient", others=results)
    with parts.part(1, "second-order meta-gradient"):
        second = _outer_loop(student, maml_hidden, first_order=False)
        _check_gradients(maml_hidden, "grad_so", second["gradients"], "the second-order meta-gradient",
                         others=feedback.outer_results(second))
    parts.finish()


@points(2)  # learned inner rates that never learn lose 1.5, as never second order does 1.75 (README, Grading)
def test_inner_learning_rates_and_evaluation(student, maml_hidden):
    """outer_loop: meta-gradients of the inner learning rates; evaluation (train=False) never second order"""
    parts = Parts()
    for weight, first_order, quantity, order in ((2, True, "grad_lr_fo", "first"), (1, False, "grad_lr_so", "second")):
        with parts.part(weight, f"{order}-order gradient of the inner learning rates"):
            out = _outer_loop(student, maml_hidden, first_order=first_order, of="inner_lrs")
            _check_gradients(maml_hidden, quantity, out["gradients"],
                             f"the {order}-order gradient of the inner learning rate", of="inner learning rates",
                             others=feedback.outer_results(out))
    with parts.part(1, "evaluation with first_order=False"):
        out = _outer_loop(student, maml_hidden, first_order=False, train=False)
        try:
            _check_gradients(maml_hidden, "grad_eval", out["gradients"], "the gradient of outer_loop(train=False)",
                             others={"outer/same_variables": out["same_variables"]})  # not its loss: train=False
        except AssertionError as error:
            raise AssertionError(f"{error} With train=False nobody differentiates through the inner loop: stop "
                                 f"the inner gradients whatever first_order says.") from None
    parts.finish()


@points(1)
def test_tasks_adapt_independently(student, maml_hidden):
    """outer_loop: every task adapts from the meta-parameters, which stay as they are"""
    out = student.call(probes_hidden.independence, {"inputs": compare.inputs(maml_hidden)})
    if out.get("result") is not None:
        raise AssertionError(f"outer_loop or inner_loop returned {_kind(out['result'])}, not the documented tuple")
    theta = _theta(maml_hidden)
    parts = Parts()
    with parts.part(1, "meta-parameters unchanged"):
        if not out["same_variables"]:
            raise AssertionError("self.meta_parameters no longer holds the tf.Variables the model was built with: "
                                 "did you write `parameters = self.meta_parameters` and then change "
                                 "parameters[name]? Start from dict(self.meta_parameters) and build new dicts.")
        for name, value in out["meta_parameters"].items():
            if not np.array_equal(compare.as_numpy(value, name), theta[name]):
                raise AssertionError(f"outer_loop changed self.meta_parameters[{name!r}]: only the outer step "
                                     f"(the scaffold's optimizer) may change them; no assign in the loops.")
    with parts.part(2, "tasks independent"):
        ab, a, b, ba = (float(compare.as_numpy(loss, "the outer loss")) for loss in out["losses"])
        if abs(ab - (a + b) / 2) > INDEPENDENCE_RTOL * abs(ab) or abs(ab - ba) > INDEPENDENCE_RTOL * abs(ab):
            raise AssertionError(
                f"the outer loss of tasks [A, B] is {ab:.6g}, of [B, A] {ba:.6g}, but A alone gives {a:.6g} and "
                f"B alone {b:.6g} (the loss of [A, B] must be their mean, {(a + b) / 2:.6g}): something of one "
                f"task's adaptation carries over to the next, or outer_loop does not average over the tasks. "
                f"Start every task's inner loop from self.meta_parameters, and keep no state between calls.")
    with parts.part(1, "inner_loop repeatable, the same with train=False"):
        for key, when in (("phi_again", "a second call"), ("phi_eval", "train=False")):
            if not isinstance(out[key], dict) or sorted(out[key]) != sorted(theta):
                raise AssertionError(f"inner_loop should return a dict with the keys of the meta-parameters, "
                                     f"got {_kind(out[key])}")
            for name in theta:
                mine = compare.as_numpy(out[key][name], name)
                expected = compare.as_numpy(out["phi_train"][name], name)
                if compare.relative_error(mine, expected, expected - theta[name]) > INDEPENDENCE_RTOL:
                    raise AssertionError(f"inner_loop on the same task gives other adapted parameters with {when} "
                                         f"({name!r} differs): the adapted values must depend only on the "
                                         f"meta-parameters and the support set.")
    parts.finish()
