"""Hidden tests of the assessments (problems 2 and 4): real training, and the weights the student handed in.

FO-MAML: the student's code trains 5-way 5-shot Omniglot with the assignment's
hyper-parameters (``maml.py``'s defaults) in the sandbox, in chunks of
``val_interval`` iterations; after each chunk the grader measures the trained
meta-parameters itself, with the reference's inner loop, on the assignment's
100 fixed validation tasks, and stops as soon as they reach ``TARGET``
(the reference needs about 20 iterations) or after ``num_iterations`` (1000).

Transfer: the grader pre-trains the conv-4 for ``PRETRAIN_STEPS`` minibatches
(the reference's pre-training, 15 s), the student's ``transfer_learn`` adapts a
head to each validation task in the sandbox, and the grader measures the heads'
query accuracy. Measured on the 100 tasks: random features give 55.5 %, the
reference 81.4 % +- 1.5 after 200 steps; ``TRANSFER_TARGET`` 70 % sits between.

Submitted weights (``results/fomaml/weights.npz``, ``results/transfer/weights.npz``
of the submission) are measured the same way, with the reference, never the
student's code: the reference's FO-MAML reaches 97.4 % after 1000 iterations
(85 % after 40), its transfer 98.4 % after the assignment's 10 epochs of
pre-training (81 % after 1.2 epochs, 88 % after 1.75, 94 % after 3), hence the
targets 80 % and 85 %.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from grader.plugin import Parts, points

from . import probes_hidden, reference

TARGET = 0.80
PRETRAIN_STEPS = 200
TRANSFER_TARGET = 0.70
TRANSFER_WEIGHTS_TARGET = 0.85
TRAINING_TIMEOUT = 3000  # seconds for one training check; the reference needs ~1 minute
SETTINGS = ("num_way", "num_support", "num_query", "num_inner_steps", "inner_lr", "learn_inner_lrs", "outer_lr",
            "first_order", "meta_batch_size", "seed")


def assignment() -> dict:
    """The assignment's hyper-parameters: ``maml.py``'s defaults, as its hparams.json records them."""
    maml, _ = reference.modules()
    return maml._hparams(maml.parser().parse_args([]))


def iteration_budget(hp: dict) -> int:
    """``num_iterations``, or fewer when GRADER_TRAINING_ITERATIONS says so (to test the grader quickly)."""
    lower = int(os.environ.get("GRADER_TRAINING_ITERATIONS", "0") or 0)
    return min(hp["num_iterations"], lower) if lower > 0 else hp["num_iterations"]


def validation_tasks(hp: dict) -> list:
    maml, _ = reference.modules()
    return reference.tasks("val", maml.VAL_SEED, hp["num_way"], hp["num_support"], hp["num_query"],
                           hp["num_val_tasks"])


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def train_to_target(student, kind: str, hp: dict, settings: dict, parts: Parts) -> None:
    """Trains the student's model in the sandbox until the grader measures ``TARGET``; AssertionError if never.

    Args:
        kind: the run's name in the sandbox ("fomaml", "mamlpp").
        hp: a full hparams record (the grader's evaluation model is built from it).
        settings: what ``probes_hidden.train`` builds the student's model from.
    """
    evaluate = reference.WeightsEvaluator(hp)
    tasks = validation_tasks(hp)
    budget, interval = iteration_budget(hp), hp["val_interval"]
    history, iteration, fallback = [], 0, []
    while iteration < budget:
        out = student.call(probes_hidden.train, {"kind": kind, "settings": settings,
                                                 "iterations": min(interval, budget - iteration)})
        fallback = fallback or out["warnings"]
        if out["iteration"] <= iteration:  # the process running the code ended and a new one started over
            raise AssertionError(f"training started over at iteration {out['iteration']}: the process running your "
                                 f"code ended during training (see the other checks' messages).")
        if not isinstance(out["loss"], float) or not math.isfinite(out["loss"]):
            raise AssertionError(f"the outer loss became {out['loss']} by iteration {out['iteration']}: look at "
                                 f"the checks of outer_loop and inner_loop.")
        iteration = out["iteration"]
        try:
            mean, ci = evaluate(out["weights"], tasks)
        except ValueError as error:
            raise AssertionError(f"the model's weights after training do not fit the model: {error}") from None
        history.append((iteration, mean, ci))
        if mean >= TARGET:
            break
    where = (f"measured by the grader on your trained meta-parameters with the reference's inner loop, "
             f"{len(tasks)} fixed validation tasks")
    if fallback:
        parts.note(f"Your training step ran eagerly (slower): {fallback[0]}")
    best = max(history, key=lambda row: row[1]) if history else (0, float("nan"), float("nan"))
    if not history or history[-1][1] < TARGET:
        raise AssertionError(
            f"after {iteration} iterations the validation accuracy is {percent(history[-1][1]) if history else '?'} "
            f"(best {percent(best[1])} at iteration {best[0]}), below the target {percent(TARGET)} ({where}). The "
            f"reference reaches it within about 20 iterations: fix the failed checks of inner_loop and "
            f"outer_loop first.")
    parts.note(f"Validation accuracy {percent(history[-1][1])} ± {percent(history[-1][2])} after {iteration} "
               f"iterations (target {percent(TARGET)}; {where}).")


def _sane(value, kind, low, high):
    if kind is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        return None
    return kind(value)


def run_hparams(run: Path, base: dict, allowed: dict) -> dict:
    """``base`` with the allowed entries of the run's hparams.json that are of the right type and range."""
    hp = dict(base)
    try:
        stored = json.loads((run / "hparams.json").read_text(encoding="utf-8"))["hparams"]
    except (OSError, ValueError, KeyError, TypeError):
        return hp
    for key, (kind, low, high) in allowed.items():
        value = _sane(stored.get(key), kind, low, high) if isinstance(stored, dict) else None
        if value is not None:
            hp[key] = value
    return hp


def weights_file(run: Path, what: str) -> Path:
    path = run / "weights.npz"
    if not path.is_file():
        raise AssertionError(f"the submission has no {path.relative_to(run.parent.parent).as_posix()}: hand in "
                             f"the weights.npz of your final {what} run (`python -m grader submit` puts it there).")
    return path


@points(3)
@pytest.mark.problem("FO-MAML assessment")
@pytest.mark.timeout(TRAINING_TIMEOUT)
def test_fomaml_training_reaches_the_target(student):
    """FO-MAML trained by your code (assignment settings) reaches 80 % validation accuracy"""
    hp = assignment()
    parts = Parts()
    with parts.part(1, "training"):
        train_to_target(student, "fomaml", hp, {key: hp[key] for key in SETTINGS}, parts)
    parts.finish()


@points(2)
@pytest.mark.problem("FO-MAML assessment")
@pytest.mark.timeout(TRAINING_TIMEOUT)
def test_fomaml_submitted_weights(submission):
    """your submitted FO-MAML weights (results/fomaml) reach 80 % validation accuracy"""
    run = submission / "results" / "fomaml"
    path = weights_file(run, "FO-MAML")
    hp = run_hparams(run, assignment(), {"num_inner_steps": (int, 0, 20), "inner_lr": (float, 1e-6, 10.0),
                                         "learn_inner_lrs": (bool, 0, 1)})
    tasks = validation_tasks(hp)
    try:
        mean, ci = reference.WeightsEvaluator(hp)(path, tasks)
    except ValueError as error:
        raise AssertionError(f"results/fomaml/weights.npz cannot be loaded: {error}") from None
    message = (f"{percent(mean)} ± {percent(ci)} on the {len(tasks)} validation tasks after "
               f"{hp['num_inner_steps']} inner steps (target {percent(TARGET)}; measured with the reference)")
    if mean < TARGET:
        raise AssertionError(f"your weights give {message}: hand in the weights of a complete run with the "
                             f"assignment's settings.")
    parts = Parts()
    parts.note(f"Your weights give {message}.")
    parts.finish()


@points(3)
@pytest.mark.problem("Transfer learning assessment")
@pytest.mark.timeout(TRAINING_TIMEOUT)
def test_transfer_training_reaches_the_target(student):
    """transfer with your transfer_learn on a pre-trained network reaches 70 % validation accuracy"""
    maml, transfer = reference.modules()
    hp = assignment()
    spec = {"split": "val", "seed": maml.VAL_SEED, "num_way": hp["num_way"], "num_support": hp["num_support"],
            "num_query": hp["num_query"], "count": hp["num_val_tasks"]}
    settings = {"tasks": spec, "num_steps": transfer.TRANSFER_STEPS, "learning_rate": transfer.TRANSFER_LR}
    # one task on untrained features first: code that cannot run fails before the grader pre-trains
    student.call(probes_hidden.transfer_heads, {**settings, "frozen": reference.pretrained_features(0),
                                                "tasks": {**spec, "count": 1}})
    frozen = reference.pretrained_features(PRETRAIN_STEPS)
    out = student.call(probes_hidden.transfer_heads, {**settings, "frozen": frozen})
    heads = out["heads"]
    tasks = validation_tasks(hp)
    if not isinstance(heads, list) or len(heads) != len(tasks):
        raise AssertionError(f"expected one head per task ({len(tasks)}), got {type(heads).__name__}")
    mean, ci = maml.mean_and_ci95(reference.head_accuracies(frozen, tasks, heads))
    message = (f"{percent(mean)} ± {percent(ci)} on {len(tasks)} validation tasks with a conv-4 pre-trained for "
               f"{PRETRAIN_STEPS} minibatches by the grader ({transfer.TRANSFER_STEPS} steps, lr "
               f"{transfer.TRANSFER_LR:g}; random features give about 55 %, the reference 81 %; target "
               f"{percent(TRANSFER_TARGET)})")
    if mean < TRANSFER_TARGET:
        raise AssertionError(f"the heads your transfer_learn adapted give {message}: look at the checks of "
                             f"transfer_learn.")
    parts = Parts()
    parts.note(f"Your heads give {message}.")
    parts.finish()


@points(2)
@pytest.mark.problem("Transfer learning assessment")
@pytest.mark.timeout(TRAINING_TIMEOUT)
def test_transfer_submitted_weights(submission):
    """your submitted pre-trained weights (results/transfer) reach 85 % validation accuracy with transfer"""
    maml, transfer = reference.modules()
    run = submission / "results" / "transfer"
    path = weights_file(run, "pre-training")
    hp = run_hparams(run, {"transfer_steps": transfer.TRANSFER_STEPS, "transfer_lr": transfer.TRANSFER_LR},
                     {"transfer_steps": (int, 1, 1000), "transfer_lr": (float, 1e-6, 10.0)})
    try:
        with np.load(path) as stored:
            frozen = {name: np.asarray(stored[name], np.float32) for name in transfer.FEATURE_KEYS}
    except (OSError, ValueError, KeyError) as error:
        raise AssertionError(f"results/transfer/weights.npz is not a pre-trained conv-4 ({error}).") from None
    expected = maml.init_parameters(1)
    wrong = [f"{name} {frozen[name].shape}" for name in transfer.FEATURE_KEYS
             if frozen[name].shape != tuple(expected[name].shape)]
    if wrong:
        raise AssertionError(f"results/transfer/weights.npz has layers of other shapes than the conv-4: {wrong}")
    tasks = validation_tasks(assignment())
    mean, ci = reference.transfer_accuracy(frozen, tasks, assignment()["num_way"], hp["transfer_steps"],
                                           hp["transfer_lr"])
    message = (f"{percent(mean)} ± {percent(ci)} on {len(tasks)} validation tasks ({hp['transfer_steps']} head "
               f"steps, lr {hp['transfer_lr']:g}; measured with the reference; target "
               f"{percent(TRANSFER_WEIGHTS_TARGET)})")
    if mean < TRANSFER_WEIGHTS_TARGET:
        raise AssertionError(f"your pre-trained weights give {message}: hand in the weights of a complete "
                             f"pre-training with the assignment's settings.")
    parts = Parts()
    parts.note(f"Your weights give {message}.")
    parts.finish()
