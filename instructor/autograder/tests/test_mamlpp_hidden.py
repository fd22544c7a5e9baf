"""Hidden tests of the extra credit, MAML++ (``maml.py``'s ``MAMLPlusPlus``), if attempted.

The public checks (``grader/tests/test_mamlpp.py``: schedules, per-step batch
norm, adapt and outer_loop) once more, as one check, on the hidden tasks and
settings (float64, 5-way 1-shot, 4 tasks, 3 inner steps, 8 filters,
msl_iterations 10, da_iterations 4, 20 cosine iterations, other random
per-step variables), so that code fitted to the public numbers fails it. Then
the same training check and submitted-weights check as FO-MAML's
(``test_training``), with ``python maml.py --mamlpp``'s settings.

A submission that leaves every MAML++ TODO as it was gets "not implemented
yet" (0 of the extra points); one that implements some methods gets partial
credit for those.
"""

from __future__ import annotations

import json

import pytest

import settings
from grader.plugin import Parts, points
from grader.tests import test_mamlpp as public

from .conftest import FACTS, FIXTURES, student_work
from .test_training import (SETTINGS, TARGET, judge_training, measured_weights, needs_container, percent,
                            run_hparams, train)

PROBLEM = "Extra credit: MAML++"  # the part of the assignment these points count for (README, Grading)
# The smallest container in which the MAML++ training check can run: the reference's training (second-order
# machinery, multi-step loss, meta-batch 8) peaks at ~1080 MiB resident in the sandbox's worker
# (instructor/benchmark_grading.py), plus the grader's own process and the sandbox's reserve.
MAMLPP_CONTAINER_BYTES = 1300 * 2**20


def mamlpp_hparams() -> dict:
    """``python maml.py --mamlpp``'s hyper-parameters: the assignment's, every technique on."""
    return dict(FACTS["mamlpp"])


@pytest.fixture(scope="session")  # not module: the checks that use the reference run later, with other modules
def mamlpp_out(student):
    return public.run(student, FIXTURES["mamlpp_hidden"])


@points(1)
def test_mamlpp_on_new_tasks(mamlpp_out):
    """MAML++ on new tasks and settings: schedules, per-step batch norm, adapt and outer_loop match the reference"""
    parts = Parts()
    public.check_schedules(parts, mamlpp_out, FIXTURES["mamlpp_hidden"])
    public.check_batch_norm(parts, mamlpp_out, FIXTURES["mamlpp_hidden"])
    public.check_adapt_and_outer_loop(parts, mamlpp_out, FIXTURES["mamlpp_hidden"])
    parts.finish()


@student_work("mamlpp_training")
def _mamlpp_training(student) -> dict:
    needs_container(MAMLPP_CONTAINER_BYTES, "training MAML++ with `python maml.py --mamlpp`'s settings")
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
