"""Hidden tests of the extra credit, MAML++ (``maml.py``'s ``MAMLPlusPlus``), if attempted.

Each technique against the reference on the hidden tasks (float64, 5-way
1-shot, 4 tasks, 3 inner steps, 8 filters, every per-step variable at a
different random value): the schedules (MSL's importance vector, DA's switch,
CA's learning rate, LSLR's rates), the per-step batch norm, and adapt /
outer_loop with MSL, LSLR, BNRS and BNWB together, in both orders and in
evaluation. Then the same training check and submitted-weights check as
FO-MAML's (``test_training``), with ``python maml.py --mamlpp``'s settings.

A submission that leaves every MAML++ TODO as it was gets "not implemented
yet" (0 of the extra points); one that implements some methods gets partial
credit for those.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import settings
from grader import compare, container
from grader.plugin import Parts, points
from grader.sandbox import StudentFailure

from . import probes_hidden
from .conftest import FACTS, FIXTURES, student_work
from .test_training import SETTINGS, TARGET, judge_training, measured_weights, percent, run_hparams, train

PROBLEM = "Extra credit: MAML++"  # the part of the assignment these points count for (README, Grading)
RTOL = 1e-6  # float64 throughout, as the FO-MAML checks
# The smallest container in which the MAML++ training check can run: the reference's training (second-order
# machinery, multi-step loss, meta-batch 8) peaks at ~1080 MiB resident in the sandbox's worker
# (instructor/benchmark_grading.py), plus the grader's own process and the sandbox's reserve.
MAMLPP_CONTAINER_BYTES = 1300 * 2**20


def mamlpp_hparams() -> dict:
    """``python maml.py --mamlpp``'s hyper-parameters: the assignment's, every technique on."""
    return dict(FACTS["mamlpp"])


@pytest.fixture(scope="session")  # not module: the checks that use the reference run later, with other modules
def mamlpp_out(student):
    fixture = FIXTURES["mamlpp_hidden"]
    inputs = {**compare.inputs(fixture), **{k: v for k, v in fixture.items() if k.startswith("mamlpp/")}}
    out = student.call(probes_hidden.mamlpp, {"inputs": inputs})
    failures = [group["failure"] for group in out.values() if "failure" in group]
    if len(failures) == len(out) and all(f["status"] == "todo" for f in failures):
        raise StudentFailure("todo", failures[0]["message"])  # not attempted
    return out


def _group(out: dict, group: str) -> dict:
    if "failure" in out[group]:
        raise AssertionError(out[group]["failure"]["message"])
    return out[group]


def _check(results: dict, key: str, what: str, rtol: float = RTOL, hint: str = "") -> None:
    expected = FIXTURES["mamlpp_hidden"][key]
    if expected.dtype == bool:
        got = compare.assert_shape(results.get(key), expected.shape, what)
        if not np.array_equal(got.astype(bool), expected):
            raise AssertionError(f"{what} is {got.astype(bool).tolist()}, expected {expected.tolist()}. {hint}".strip())
        return
    compare.assert_close(results.get(key), expected, what, rtol=rtol, hint=hint)


def _check_prefix(results: dict, prefix: str, what: str, hint: str = "") -> None:
    for key in sorted(k for k in FIXTURES["mamlpp_hidden"] if k.startswith(prefix)):
        _check(results, key, f"{what} {key[len(prefix):]!r}", hint=hint)


@points(2)
def test_mamlpp_schedules(mamlpp_out):
    """MAML++: MSL importance vector, DA switch, CA learning rate, LSLR rates match the reference"""
    iterations = probes_hidden.SCHEDULE_ITERATIONS
    parts = Parts()
    with parts.part(2, "MSL importance vector"):
        results = _group(mamlpp_out, "schedules")
        for t in iterations:
            _check(results, f"importance/t{t}", f"importance_vector({t}) (msl_iterations=10)",
                   hint="Uniform at 0, annealed toward the last step, one-hot from msl_iterations on.")
    with parts.part(1, "DA second_order_at"):
        _check(_group(mamlpp_out, "schedules"), "second_order_at", f"second_order_at at iterations {list(iterations)} "
               f"(da_iterations=4)")
    with parts.part(1, "CA outer learning rate"):
        results = _group(mamlpp_out, "schedules")
        _check(results, "cosine_lr", f"the cosine learning rate at iterations {list(iterations)} (20 iterations)")
        _check(results, "constant_lr", "outer_learning_rate without cosine_outer_lr")
    with parts.part(1, "LSLR inner_lr"):
        _check(_group(mamlpp_out, "schedules"), "inner_lr", "inner_lr(name, step) for every parameter and step",
               hint='With per_step_inner_lrs it is inner_lrs["{name}_step{step}"].')
    parts.finish()


@points(1)
def test_mamlpp_batch_norm_step(mamlpp_out):
    """MAML++: per-step batch norm (BNRS, BNWB) in training and evaluation matches the reference"""
    parts = Parts()
    with parts.part(1, "training"):
        _check(_group(mamlpp_out, "batch_norm"), "bn/train", "batch_norm_step(x, layer=1, step=2, train=True)",
               hint="The batch's statistics, then gamma * x_hat + beta of (layer, step).")
    with parts.part(1, "evaluation"):
        _check(_group(mamlpp_out, "batch_norm"), "bn/eval", "batch_norm_step(x, layer=1, step=2, train=False)",
               hint="Evaluation normalises with the batch's statistics too.")
    with parts.part(1, "running statistics"):
        _check_prefix(_group(mamlpp_out, "batch_norm"), "bn/stats/",
                      "after a training and an evaluation call, the running statistic",
                      hint="Only the training call updates those of (layer, step): (1 - m) * running + m * batch "
                           "statistic.")
    parts.finish()


@points(2)
def test_mamlpp_adapt_and_outer_loop(mamlpp_out):
    """MAML++: adapt and outer_loop with MSL, LSLR, BNRS and BNWB match the reference (both orders, evaluation)"""
    parts = Parts()
    with parts.part(1, "adapt"):
        results = _group(mamlpp_out, "adapt")
        _check_prefix(results, "adapt/phi/", "the adapted parameter")
        _check(results, "adapt/accuracies", "adapt's support accuracies")
    with parts.part(1, "multi-step outer loss and accuracies"):
        results = _group(mamlpp_out, "outer")
        _check(results, "outer/loss", "the outer loss at iteration 3",
               hint="With MSL in training: the mean over tasks of sum_s v_s * (query loss after step s + 1).")
        _check(results, "outer/accuracies_support", "accuracies_support")
        _check(results, "outer/accuracy_query", "accuracy_query (after the last step)")
    with parts.part(1, "first-order meta-gradients"):
        _check_prefix(_group(mamlpp_out, "outer"), "grad_fo/", "the first-order gradient of")
    with parts.part(1, "second-order meta-gradients"):
        _check_prefix(_group(mamlpp_out, "outer"), "grad_so/", "the second-order gradient of")
    with parts.part(1, "evaluation"):
        results = _group(mamlpp_out, "outer")
        _check(results, "eval/loss", "the outer loss with train=False",
               hint="In evaluation: the query loss after the last step (no MSL).")
        _check(results, "eval/accuracy_query", "accuracy_query with train=False")
    parts.finish()


@student_work("mamlpp_training")
def _mamlpp_training(student) -> dict:
    memory = container.memory_limit_bytes()
    if memory is not None and memory < MAMLPP_CONTAINER_BYTES:
        raise AssertionError(
            f"not run: this grading container has {memory / 2**20:.0f} MB of memory, and training MAML++ with "
            f"`python maml.py --mamlpp`'s settings needs about {MAMLPP_CONTAINER_BYTES / 2**20:.0f} MB (measured "
            f"with the reference solution). This is the course's setting, not your code: tell the course staff "
            f"(README of the autograder: the container to choose).")
    hp = mamlpp_hparams()
    settings = {key: hp[key] for key in SETTINGS}
    settings["mamlpp"] = {**{key: hp[key] for key in (*FACTS["mamlpp_techniques"], *FACTS["mamlpp_settings"])},
                          "cosine_iterations": hp["num_iterations"]}
    return train(student, "mamlpp", hp, settings)


@points(2)
@pytest.mark.student_work("mamlpp_training")
def test_mamlpp_training_reaches_the_target(mamlpp_out, student_runs, reference_worker):
    """MAML++ trained by your code (python maml.py --mamlpp settings) reaches 80 % validation accuracy"""
    parts = Parts()
    with parts.part(1, "training"):
        judge_training(reference_worker, student_runs["mamlpp_training"].get(), mamlpp_hparams(), parts)
    parts.finish()


@points(1)
def test_mamlpp_submitted_weights(submission, reference_worker):
    """your submitted MAML++ weights (results/mamlpp) reach 80 % validation accuracy"""
    runs = sorted(p for p in (submission / "results" / "mamlpp").glob("*") if (p / "weights.npz").is_file())
    found = []
    for run in runs:
        try:
            stored = json.loads((run / "hparams.json").read_text(encoding="utf-8"))["hparams"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(stored, dict) and any(bool(stored.get(key)) for key in FACTS["mamlpp_techniques"]):
            found.append(run)
    if not found:
        raise AssertionError("the submission has no MAML++ run in results/mamlpp/ (a folder with weights.npz and "
                             "a hparams.json that switches MAML++ techniques on).")
    allowed = settings.allowed_ranges(settings.MAMLSettings, ("num_inner_steps", "inner_lr", "first_order",
                                                               *settings.MAMLPP_TECHNIQUES, *settings.MAMLPP_SETTINGS))
    allowed["num_inner_steps"] = (int, 1, allowed["num_inner_steps"][2])  # the multi-step loss needs an inner step
    best = None
    for run in found:
        hp = run_hparams(run, mamlpp_hparams(), allowed)
        mean, ci = measured_weights(reference_worker, hp, run / "weights.npz",
                                    f"results/mamlpp/{run.name}/weights.npz")
        if best is None or mean > best[1]:
            best = (run.name, mean, ci)
    message = (f"{percent(best[1])} ± {percent(best[2])} on the 100 validation tasks (run {best[0]}, the best of "
               f"{len(found)}; measured with the reference; target {percent(TARGET)})")
    if best[1] < TARGET:
        raise AssertionError(f"your MAML++ weights give {message}.")
    parts = Parts()
    parts.note(f"Your MAML++ weights give {message}.")
    parts.finish()
