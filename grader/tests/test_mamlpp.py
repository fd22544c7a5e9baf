"""Public tests of the extra credit, MAML++ (``maml.py``'s ``MAMLPlusPlus``), if you attempt it.

Your MAMLPlusPlus is built in float64 on the fixture ``grader/fixtures/mamlpp.npz``
(the two 3-way 2-shot Omniglot tasks and the parameters of ``maml.npz``, 2
inner steps, every technique that changes ``outer_loop`` on, and every
per-step variable at a different random value, so that one used in the wrong
place shows), in a separate process (``grader/probes_mamlpp.py``), and what it
computes is compared with what the reference solution computed:

* the schedules: MSL's importance vector, DA's switch to second order, CA's
  cosine learning rate at iterations around each switch (msl_iterations 6,
  da_iterations 3, 12 cosine iterations), LSLR's rate of every parameter and step;
* ``batch_norm_step`` in training and evaluation, and the running statistics after both;
* ``adapt``, and ``outer_loop`` with the multi-step loss (at iteration 2), its
  first- and second-order gradients w.r.t. every trainable variable, and in evaluation.

A MAMLPlusPlus left as handed out gets "not implemented yet" on these checks
(0 of the extra points); a method that raises or is left as a TODO costs only
the checks that use it. The autograder runs the same checks on other tasks and
settings, and trains your MAML++.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader import compare, probes_mamlpp
from grader.failures import StudentFailure
from grader.plugin import Parts, points

PROBLEM = "Extra credit: MAML++"  # the part of the assignment these points count for (README, Grading)
RTOL = 1e-6  # float64 throughout, as the FO-MAML checks


def run(student, fixture: dict) -> dict:
    """What the student's MAMLPlusPlus computes on ``fixture``, by group (``probes_mamlpp.mamlpp_results``).

    Raises:
        StudentFailure: status "todo" when every group is still a TODO (MAML++ not attempted).
    """
    inputs = {**compare.inputs(fixture), **{k: v for k, v in fixture.items() if k.startswith("mamlpp/")}}
    out = student.call(probes_mamlpp.mamlpp, {"inputs": inputs})
    failures = [group["failure"] for group in out.values() if "failure" in group]
    if len(failures) == len(out) and all(f["status"] == "todo" for f in failures):
        raise StudentFailure("todo", failures[0]["message"])
    return out


def _group(out: dict, group: str) -> dict:
    if "failure" in out[group]:
        raise AssertionError(out[group]["failure"]["message"])
    return out[group]


def _check(fixture: dict, results: dict, key: str, what: str, hint: str = "") -> None:
    expected = fixture[key]
    if expected.dtype == bool:
        got = compare.assert_shape(results.get(key), expected.shape, what)
        if not np.array_equal(got.astype(bool), expected):
            raise AssertionError(f"{what} is {got.astype(bool).tolist()}, expected {expected.tolist()}. {hint}".strip())
        return
    compare.assert_close(results.get(key), expected, what, rtol=RTOL, hint=hint)


def _check_prefix(fixture: dict, results: dict, prefix: str, what: str, hint: str = "") -> None:
    for key in sorted(k for k in fixture if k.startswith(prefix)):
        _check(fixture, results, key, f"{what} {key[len(prefix):]!r}", hint=hint)


def check_schedules(parts: Parts, out: dict, fixture: dict) -> None:
    """MSL importance vector (2), DA switch (1), CA learning rate (1), LSLR rates (1), as parts."""
    iterations = [int(t) for t in fixture["mamlpp/schedule_iterations"]]
    msl, da = int(fixture["mamlpp/msl_iterations"]), int(fixture["mamlpp/da_iterations"])
    cosine = int(fixture["mamlpp/cosine_iterations"])
    with parts.part(2, "MSL importance vector"):
        results = _group(out, "schedules")
        for t in iterations:
            _check(fixture, results, f"importance/t{t}", f"importance_vector({t}) (msl_iterations={msl})",
                   hint="Uniform at 0, annealed toward the last step, one-hot from msl_iterations on.")
    with parts.part(1, "DA second_order_at"):
        _check(fixture, _group(out, "schedules"), "second_order_at",
               f"second_order_at at iterations {iterations} (da_iterations={da})")
    with parts.part(1, "CA outer learning rate"):
        results = _group(out, "schedules")
        _check(fixture, results, "cosine_lr", f"the cosine learning rate at iterations {iterations} ({cosine} "
                                              f"iterations)")
        _check(fixture, results, "constant_lr", "outer_learning_rate without cosine_outer_lr")
    with parts.part(1, "LSLR inner_lr"):
        _check(fixture, _group(out, "schedules"), "inner_lr", "inner_lr(name, step) for every parameter and step",
               hint='With per_step_inner_lrs it is inner_lrs["{name}_step{step}"].')


def check_batch_norm(parts: Parts, out: dict, fixture: dict) -> None:
    """batch_norm_step in training (1) and evaluation (1), the running statistics (1), as parts."""
    with parts.part(1, "batch norm in training"):
        _check(fixture, _group(out, "batch_norm"), "bn/train", "batch_norm_step(x, layer=1, step=2, train=True)",
               hint="The batch's statistics, then gamma * x_hat + beta of (layer, step).")
    with parts.part(1, "batch norm in evaluation"):
        _check(fixture, _group(out, "batch_norm"), "bn/eval", "batch_norm_step(x, layer=1, step=2, train=False)",
               hint="Evaluation normalises with the batch's statistics too.")
    with parts.part(1, "running statistics"):
        _check_prefix(fixture, _group(out, "batch_norm"), "bn/stats/",
                      "after a training and an evaluation call, the running statistic",
                      hint="Only the training call updates those of (layer, step): (1 - m) * running + m * batch "
                           "statistic.")


def check_adapt_and_outer_loop(parts: Parts, out: dict, fixture: dict) -> None:
    """adapt (1), outer loss and accuracies (1), first- (1) and second-order (1) gradients, evaluation (1)."""
    iteration = int(fixture["mamlpp/iteration"])
    with parts.part(1, "adapt"):
        results = _group(out, "adapt")
        _check_prefix(fixture, results, "adapt/phi/", "the adapted parameter")
        _check(fixture, results, "adapt/accuracies", "adapt's support accuracies")
    with parts.part(1, "multi-step outer loss and accuracies"):
        results = _group(out, "outer")
        _check(fixture, results, "outer/loss", f"the outer loss at iteration {iteration} (multi_step=True)",
               hint="With MSL in training: the mean over tasks of sum_s v_s * (query loss after step s + 1).")
        _check(fixture, results, "outer/accuracies_support", "accuracies_support")
        _check(fixture, results, "outer/accuracy_query", "accuracy_query (after the last step)")
    with parts.part(1, "first-order meta-gradients"):
        _check_prefix(fixture, _group(out, "outer"), "grad_fo/", "the first-order gradient of")
    with parts.part(1, "second-order meta-gradients"):
        _check_prefix(fixture, _group(out, "outer"), "grad_so/", "the second-order gradient of")
    with parts.part(1, "outer_loop in evaluation"):
        results = _group(out, "outer")
        _check(fixture, results, "eval/loss", "the outer loss with train=False",
               hint="In evaluation: the query loss after the last step (no MSL).")
        _check(fixture, results, "eval/accuracy_query", "accuracy_query with train=False")


@pytest.fixture(scope="module")
def mamlpp_out(student, mamlpp_fixture):
    return run(student, mamlpp_fixture)


@points(1)
def test_mamlpp_schedules(mamlpp_out, mamlpp_fixture):
    """MAML++: MSL importance vector, DA switch, CA learning rate, LSLR rates match the reference"""
    parts = Parts()
    check_schedules(parts, mamlpp_out, mamlpp_fixture)
    parts.finish()


@points(1)
def test_mamlpp_batch_norm_step(mamlpp_out, mamlpp_fixture):
    """MAML++: per-step batch norm (BNRS, BNWB) in training and evaluation matches the reference"""
    parts = Parts()
    check_batch_norm(parts, mamlpp_out, mamlpp_fixture)
    parts.finish()


@points(2)
def test_mamlpp_adapt_and_outer_loop(mamlpp_out, mamlpp_fixture):
    """MAML++: adapt and outer_loop with MSL, LSLR, BNRS and BNWB match the reference (both orders, evaluation)"""
    parts = Parts()
    check_adapt_and_outer_loop(parts, mamlpp_out, mamlpp_fixture)
    parts.finish()
