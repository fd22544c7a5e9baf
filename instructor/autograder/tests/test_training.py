"""Hidden tests of the assessments (problems 2 and 4): real training, and the weights the student handed in.

FO-MAML: the student's code trains 5-way 5-shot Omniglot with the assignment's
hyper-parameters (``maml.py``'s defaults) in the sandbox, in chunks of
``val_interval`` iterations. After each chunk the student's own evaluation
(``MAML.evaluate``) on the assignment's 100 fixed validation tasks says
whether to go on: training stops once it reports ``TARGET`` (the reference
needs about 20 iterations), after ``num_iterations`` (1000), or when the
check's share of the time budget is spent. That number only decides when to
stop: the verdict is the grader's own measurement of the last trained
meta-parameters, with the reference's inner loop, in the reference worker
(so a student's evaluation that claims too much only stops its own training
early). Training starts from an initialisation the grader draws for this
grading (``seeds``: keyed on the course's secret and the student's code, so no
file the student's code reads holds it and the same code gets the same one at
every grading; passed as ``python maml.py --seed`` passes its own), and before
measuring anything the grader checks that the returned weights can be reached
from it by the Adam steps it asked for (``adam_reach``): weights made before
the grading, e.g. embedded in maml.py, score 0. A run that reaches the target
must also have trained for real, in every chunk: the reference takes each chunk's
steps again from the weights the run had when the chunk began, on the same tasks
(``reference.replay_chunk``), and the two changes of the weights must point the
same way (``STEPS_AGREEMENT``). Steps that are not the meta-gradient of an
``outer_loop``, such as a walk toward weights made at home within Adam's reach,
fail it, in the first chunk or in any later one. Training and judging are separate phases because only one
TensorFlow process is alive at a time (``conftest.py``).

Transfer: the student's ``transfer_learn`` adapts a head to each of 100
validation tasks in the sandbox, on a conv-4 pre-trained for ``reference.PRETRAIN_STEPS``
minibatches by the reference (stored by ``make_fixtures``), and the grader
measures the heads' query accuracy in the reference worker. The tasks are
drawn from a seed the grader draws at grading time (``seeds``), and the student's process
gets their support sets only (``without_queries``): it cannot train on the
query labels. Measured on the assignment's 100 fixed validation tasks (seed 1): random features
give 55.5 %, the reference 81.4 % +- 1.5 after 200 steps; ``TRANSFER_TARGET`` 70 % sits between.

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
import time
from pathlib import Path

import numpy as np
import pytest

import load_data
import settings
from grader import budget, container
from grader.failures import SandboxError
from grader.plugin import Parts, has_training_data, points
from grader.sandbox import StudentTimeout

from . import probes_hidden, reference, seeds
from .conftest import FACTS, pretrained, student_work

TARGET = 0.80
TRANSFER_TARGET = 0.70
TRANSFER_WEIGHTS_TARGET = 0.85
# The least cosine between the changes a chunk of the student's training and the reference's replay of it made to
# the weights (``steps_agreement``), between the two groups measured on chunks of 20 steps of the assignment's
# FO-MAML (``python -m instructor.experiments.steps_agreement``, README "What student code gets"): steps without a
# meta-gradient (a walk toward other weights, Adam on the query loss without adaptation) 0.00-0.09; meta-gradients
# of an inner loop, right or wrong, from adapting the head only (0.22-0.24, and it still reaches the target) to the
# catalogue's correct variants (0.93-1.00) and the reference again (1.00).
STEPS_AGREEMENT = 0.15
# The smallest container in which the FO-MAML training check runs (python -m instructor.benchmark_grading, README
# "Grading inside Gradescope's limits"): the reference passes it in 900 MB (0.5 vCPU, peak 850 MiB, 2026-11-28); in
# Gradescope's default 768 MB the kernel stopped the student's worker (~605 MiB anonymous: TensorFlow ~210, the
# traced training step ~280, the data and validation tasks) beside the grader's own process (~130-225 MiB).
FOMAML_CONTAINER_BYTES = 900 * 2**20
SETTINGS = ("num_way", "num_support", "num_query", "num_inner_steps", "inner_lr", "learn_inner_lrs", "outer_lr",
            "first_order", "meta_batch_size", "seed")


def assignment() -> dict:
    """The assignment's hyper-parameters: ``maml.py``'s defaults, as its hparams.json records them."""
    return dict(FACTS["assignment"])


def iteration_budget(hp: dict) -> int:
    """``num_iterations``, or fewer when GRADER_TRAINING_ITERATIONS says so (to test the grader quickly)."""
    lower = int(os.environ.get("GRADER_TRAINING_ITERATIONS", "0") or 0)
    return min(hp["num_iterations"], lower) if lower > 0 else hp["num_iterations"]


def validation_spec(hp: dict) -> dict:
    """The assignment's fixed validation tasks, as probes and the reference worker sample them."""
    return {"split": "val", "seed": FACTS["val_seed"], "num_way": hp["num_way"], "num_support": hp["num_support"],
            "num_query": hp["num_query"], "count": hp["num_val_tasks"]}


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def train(student, kind: str, hp: dict, settings: dict) -> dict:
    """Trains the student's model in the sandbox until its own evaluation reports ``TARGET`` (see above).

    Args:
        kind: the run's name in the sandbox ("fomaml", "mamlpp").
        hp: a full hparams record.
        settings: what ``probes_hidden.train`` builds the student's model from.

    Returns:
        {"iteration", "weights", "history": [(iteration, the student's own validation accuracy)], "warnings",
        "stopped": why training stopped, "seed": the initialisation's seed, drawn here, "chunks": per chunk
        answered {"start": its first iteration, "steps", "weights" after it, "seconds" the call took}};
        ``iteration`` counts the steps the grader asked for and got an answer to (its own count, not the sandbox's).
    """
    if not has_training_data(student):
        raise SandboxError(f"the grader has no Omniglot data to train with: load_data.load_omniglot() failed in "
                           f"{load_data.data_dir()} (setup.sh prepares it; set OMNIGLOT_DATA_DIR to a folder "
                           f"holding {load_data.CACHE_NAME}, or OMNIGLOT_MIRROR where the grader is offline)")
    validation = sampled(validation_spec(hp))  # sent once: the student's process has no validation data
    seed = seeds.seed(f"{kind}_training", student.code_digest)  # kept in this process: no file the code reads has it
    settings = {**settings, "seed": seed}  # initialisation and task stream, as `python maml.py --seed` sets them
    allowance = budget.share(f"{kind}_training")
    started = time.monotonic()
    limit, interval = iteration_budget(hp), hp["val_interval"]
    history, iteration, warnings, out, stopped = [], 0, [], None, f"the iteration budget ({limit}) was reached"
    chunks = []
    while iteration < limit:
        left = allowance - (time.monotonic() - started)
        if left <= 0:
            stopped = f"this check's share of the time budget ({allowance:.0f} s) was spent"
            break
        chunk = min(interval, limit - iteration)
        called = time.monotonic()
        try:
            out = student.call(probes_hidden.train, {"kind": kind, "settings": settings, "iterations": chunk,
                                                     "validation": validation}, timeout=left)
            validation = None  # the worker keeps the tasks
        except StudentTimeout:  # `out` is still the last chunk's
            if out is None:  # not even one chunk: nothing to judge
                raise
            stopped = (f"this check's share of the time budget ({allowance:.0f} s) was spent during iterations "
                       f"{iteration + 1}-{iteration + interval}")
            return {"iteration": iteration, "weights": out["weights"], "history": history, "warnings": warnings,
                    "stopped": stopped, "seed": seed, "chunks": chunks}  # the worker was stopped: nothing to forget
        warnings = warnings or out["warnings"]
        if out["iteration"] <= iteration:  # the process running the code ended and a new one started over
            raise AssertionError(f"training started over at iteration {out['iteration']}: the process running your "
                                 f"code ended during training (see the other checks' messages).")
        if not isinstance(out["loss"], float) or not math.isfinite(out["loss"]):
            raise AssertionError(f"the outer loss became {out['loss']} by iteration {out['iteration']}: look at "
                                 f"the checks of outer_loop and inner_loop.")
        chunks.append({"start": iteration, "steps": chunk, "weights": out["weights"],
                       "seconds": time.monotonic() - called})
        iteration += chunk
        history.append((iteration, out["accuracy"]))
        if isinstance(out["accuracy"], float) and out["accuracy"] >= TARGET:
            stopped = f"your evaluation reported {percent(out['accuracy'])}"
            break
    student.call(probes_hidden.forget, {"kind": kind})
    if out is None:
        raise AssertionError(f"not run: {stopped}.")
    return {"iteration": iteration, "weights": out["weights"], "history": history, "warnings": warnings,
            "stopped": stopped, "seed": seed, "chunks": chunks}


def adam_reach(steps: int, learning_rate: float, beta_1: float, beta_2: float) -> float:
    """The farthest ``steps`` Adam steps (Keras' update, fresh slots) can move one parameter, whatever the gradients.

    Step t moves a parameter by ``a_t * m_t / (sqrt(v_t) + eps)`` with
    ``a_t = lr * sqrt(1 - b2^t) / (1 - b1^t)``, ``m_t = (1 - b1) sum_i b1^(t-i) g_i``
    and ``v_t = (1 - b2) sum_i b2^(t-i) g_i^2``. Cauchy-Schwarz on ``m_t``
    (``b1^(t-i) = (b1 / sqrt(b2))^(t-i) * sqrt(b2)^(t-i)``) gives
    ``|m_t| <= (1 - b1) / sqrt(1 - b2) * sqrt(sum_{k<t} (b1^2 / b2)^k) * sqrt(v_t)``,
    so step t moves at most ``a_t`` times that factor: exactly ``lr`` at t = 1,
    at most 7.3 ``lr`` later (b1 0.9, b2 0.999). A learning-rate schedule that
    never exceeds ``learning_rate`` (MAML++'s cosine annealing) stays within it.
    """
    ratio, geometric, total = beta_1 ** 2 / beta_2, 0.0, 0.0
    for t in range(1, steps + 1):
        geometric = geometric * ratio + 1.0
        total += (math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * (1 - beta_1) / math.sqrt(1 - beta_2)
                  * math.sqrt(geometric))
    return learning_rate * total


def unreachable(weights: dict, start: dict, steps: int, learning_rate: float) -> str | None:
    """Why ``weights`` cannot come from ``start`` by ``steps`` Adam steps, or None if they can.

    Args:
        weights: what training returned (name -> array); names or shapes that do not fit are left to the
            reference's loading, which reports them.
        start: ``reference.initial_weights``: the weights at the start and what moves each of them.
    """
    reach = adam_reach(steps, learning_rate, start["beta_1"], start["beta_2"])
    for name, initial in start["weights"].items():
        moved_by = start["moved_by"][name]
        value = weights.get(name) if isinstance(weights, dict) else None
        if moved_by == "statistics" or not isinstance(value, np.ndarray) or value.shape != initial.shape:
            continue  # running batch-norm statistics follow the data, not the optimiser
        limit = reach if moved_by == "optimiser" else 0.0
        # float32: each of the `steps` updates rounds the parameter by at most half a unit in the last place
        tolerance = limit * (1 + 1e-4) + steps * 2.0 ** -24 * (np.abs(initial) + limit)
        moved = np.abs(value.astype(np.float64) - initial)
        if not np.all(moved <= tolerance):  # NaN fails too
            return (f"{name} moved by up to {np.nanmax(moved) if np.any(moved == moved) else float('nan'):.4g} "
                    f"from its initialisation, and {steps} Adam steps of learning rate {learning_rate:g} move a "
                    f"parameter by at most {limit:.4g}" + ("" if moved_by == "optimiser" else
                                                           " (it is not trained)"))
    return None


def steps_agreement(after: dict, replayed: dict, before: dict) -> float:
    """Cosine between the changes two runs made to the trained weights from the same weights (NaN if either made
    none, or the student's weights do not fit the model).

    Args:
        after: the student's weights after a chunk of steps (``train``'s ``chunks[k]["weights"]``).
        replayed: the reference's weights after the same steps from the same weights (``reference.replay_chunk``).
        before: the weights both started from ("weights") and what moves each of them ("moved_by"), as
            ``reference.initial_weights`` gives them.
    """
    names = [name for name, moved_by in before["moved_by"].items() if moved_by == "optimiser"]

    def change(weights: dict) -> np.ndarray:
        return np.concatenate([(np.asarray(weights[name], np.float64) - np.asarray(before["weights"][name], np.float64))
                               .ravel() for name in names])

    try:
        mine, reference_change = change(after), change(replayed)
    except (KeyError, ValueError, TypeError):
        return float("nan")
    with np.errstate(all="ignore"):
        return float(mine @ reference_change / (np.linalg.norm(mine) * np.linalg.norm(reference_change)))


def disagreeing_chunk(reference_worker, run: dict, hp: dict, start: dict) -> dict | None:
    """The first chunk of ``run`` whose steps did not move the weights as the reference's replay of it does
    (``STEPS_AGREEMENT``); None if every chunk agrees. Each chunk replayed gets its cosine as "agreement".
    The replay stops at the first chunk that disagrees. ``start``: ``reference.initial_weights``.

    Raises:
        AssertionError: a chunk's replay did not finish in its time (the time budget, not the student's code), or
            the weights of a chunk do not fit the model.
    """
    chunks = run["chunks"]
    before = [None] + [chunk["weights"] for chunk in chunks[:-1]]
    # The replay in a fresh reference worker, and the next check in another: a traced training step holds ~280 MB,
    # and a small grading container has room for one beside TensorFlow (README: "Grading inside Gradescope's limits")
    reference_worker.recycle()
    try:
        for chunk, weights in zip(chunks, before):
            try:  # the reference's steps take about as long as correct code's (tracing included): 4x that, and a minute
                replayed = reference_worker.call(
                    reference.replay_chunk, {"hparams": hp, "start": chunk["start"], "steps": chunk["steps"],
                                             "weights": weights}, timeout=60 + 4 * chunk["seconds"])
            except StudentTimeout:
                raise AssertionError(
                    f"your training reached the target, but the grader could not take its steps "
                    f"{chunk['start'] + 1}-{chunk['start'] + chunk['steps']} again with the reference in the time "
                    f"left, so they are not verified. The time budget ran short: fix the slow checks first; the "
                    f"platform's timeout is set by the course staff.") from None
            if "error" in replayed:
                raise AssertionError(f"the model's weights during training do not fit the model: {replayed['error']}")
            chunk["agreement"] = steps_agreement(chunk["weights"], replayed["weights"],
                                                 {**start, "weights": weights or start["weights"]})
            if not chunk["agreement"] >= STEPS_AGREEMENT:  # NaN fails too
                return chunk
    finally:
        reference_worker.recycle()
    return None


def judge_training(reference_worker, run: dict, hp: dict, parts: Parts) -> None:
    """The grader's verdict on a ``train`` run: its last weights, reachable from the grader's initialisation
    (``unreachable``), measured with the reference; AssertionError if not reachable or low. A run that reaches
    the target must also have taken real training steps: every chunk must move the weights the way the
    reference's steps do from the same weights on the same tasks (``disagreeing_chunk``)."""
    spec = validation_spec(hp)
    hp = {**hp, "seed": run["seed"]}
    start = reference_worker.call(reference.initial_weights, {"hparams": hp})
    why = unreachable(run["weights"], start, run["iteration"], hp["outer_lr"])
    if why:
        raise AssertionError(f"the weights training returned cannot come from the initialisation the grader chose "
                             f"(seed {run['seed']}) by the {run['iteration']} training steps it asked for: {why}. "
                             f"Train the model MAML builds; weights made elsewhere are not accepted.")
    measured = reference_worker.call(reference.weights_accuracy, {"hparams": hp, "weights": run["weights"],
                                                                  "tasks": spec})
    if "error" in measured:
        raise AssertionError(f"the model's weights after training do not fit the model: {measured['error']}")
    where = (f"measured by the grader on your trained meta-parameters with the reference's inner loop, "
             f"{spec['count']} fixed validation tasks")
    if run["warnings"]:
        parts.note(f"Your training step ran eagerly (slower): {run['warnings'][0]}")
    iteration, mean, ci = run["iteration"], measured["mean"], measured["ci"]
    if mean < TARGET:
        own = run["history"][-1][1] if run["history"] else float("nan")
        disagree = (f" Your own evaluation said {percent(own)}: look at outer_loop with train=False."
                    if isinstance(own, float) and own >= TARGET else "")
        raise AssertionError(
            f"after {iteration} iterations the validation accuracy is {percent(mean)} ({where}; training stopped: "
            f"{run['stopped']}), below the target {percent(TARGET)}.{disagree} The reference reaches it within about "
            f"20 iterations: fix the failed checks of inner_loop and outer_loop first.")
    chunk = disagreeing_chunk(reference_worker, run, hp, start)
    if chunk is not None:
        steps = f"steps {chunk['start'] + 1}-{chunk['start'] + chunk['steps']}"
        raise AssertionError(
            f"your training reached {percent(mean)}, but its {steps} did not move the weights the way the "
            f"assignment's training does: from the same weights, on the same tasks, they changed the weights in "
            f"another direction than the reference's {steps} (cosine {chunk['agreement']:.2f} between the two "
            f"changes; at least {STEPS_AGREEMENT:g} is accepted). Each step must be Adam on the gradient of your "
            f"outer_loop (the provided train_step), and outer_loop must compute the assignment's objective: see the "
            f"checks of inner_loop and outer_loop.")
    agreements = [chunk["agreement"] for chunk in run["chunks"]]
    parts.note(f"Validation accuracy {percent(mean)} ± {percent(ci)} after {iteration} iterations (target "
               f"{percent(TARGET)}; {where}); every chunk of your steps moved the weights as the reference's steps "
               f"do from the same weights on the same tasks (cosine {min(agreements):.2f}"
               + (f"-{max(agreements):.2f} over {len(agreements)} chunks)." if len(agreements) > 1 else ")."))


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


def measured_weights(reference_worker, hp: dict, path: Path, name: str) -> tuple[float, float]:
    """(mean, CI) of a submitted weights file, measured with the reference; AssertionError if it does not load."""
    measured = reference_worker.call(reference.weights_accuracy, {"hparams": hp, "weights": str(path),
                                                                  "tasks": validation_spec(hp)})
    if "error" in measured:
        raise AssertionError(f"{name} cannot be loaded: {measured['error']}")
    return measured["mean"], measured["ci"]


def needs_container(memory_bytes: int, what: str) -> None:
    """AssertionError ("not run: ...") if the grading container has less memory than ``memory_bytes``, the least
    in which the check ``what`` runs with the reference solution: there, the student's code would be stopped for
    the container's size, and the message would blame the code. The same for every submission, on any host."""
    memory = container.memory_limit_bytes()
    if memory is not None and memory < memory_bytes:
        raise AssertionError(
            f"not run: this grading container has {memory / 2**20:.0f} MB of memory, and {what} needs about "
            f"{memory_bytes / 2**20:.0f} MB (measured with the reference solution). This is the course's setting, "
            f"not your code: tell the course staff (README of the autograder: the container to choose).")


@student_work("fomaml_training")
def _fomaml_training(student) -> dict:
    needs_container(FOMAML_CONTAINER_BYTES, "training FO-MAML with the assignment's settings")
    hp = assignment()
    return train(student, "fomaml", hp, {key: hp[key] for key in SETTINGS})


@points(3)
@pytest.mark.problem("FO-MAML assessment")
@pytest.mark.student_work("fomaml_training")
def test_fomaml_training_reaches_the_target(student_runs, reference_worker):
    """FO-MAML trained by your code (assignment settings) reaches 80 % validation accuracy"""
    parts = Parts()
    with parts.part(1, "training"):
        judge_training(reference_worker, student_runs["fomaml_training"].get(), assignment(), parts)
    parts.finish()


@points(2)
@pytest.mark.problem("FO-MAML assessment")
def test_fomaml_submitted_weights(submission, reference_worker):
    """your submitted FO-MAML weights (results/fomaml) reach 80 % validation accuracy"""
    run = submission / "results" / "fomaml"
    path = weights_file(run, "FO-MAML")
    hp = run_hparams(run, assignment(), settings.allowed_ranges(
        settings.MAMLSettings, ("num_inner_steps", "inner_lr", "learn_inner_lrs")))
    mean, ci = measured_weights(reference_worker, hp, path, "results/fomaml/weights.npz")
    message = (f"{percent(mean)} ± {percent(ci)} on the {hp['num_val_tasks']} validation tasks after "
               f"{hp['num_inner_steps']} inner steps (target {percent(TARGET)}; measured with the reference)")
    if mean < TARGET:
        raise AssertionError(f"your weights give {message}: hand in the weights of a complete run with the "
                             f"assignment's settings.")
    parts = Parts()
    parts.note(f"Your weights give {message}.")
    parts.finish()


def transfer_settings(student) -> dict:
    """The transfer check's validation tasks (their seed: ``seeds``) and transfer_learn's arguments."""
    seed = seeds.seed("transfer_heads", student.code_digest)
    return {"tasks": {**validation_spec(assignment()), "seed": seed}, "num_steps": FACTS["transfer_steps"],
            "learning_rate": FACTS["transfer_lr"]}


def sampled(spec: dict) -> list[tuple]:
    """The tasks of ``spec``, sampled here from the whole data set (the student's process has the training
    split only): per task (images_support, labels_support, images_query, labels_query)."""
    sampler = probes_hidden._sampler(spec["split"], spec["seed"], spec["num_way"], spec["num_support"],
                                     spec["num_query"])
    tasks = [tuple(sampler.task(i)) for i in range(spec["count"])]
    probes_hidden._omniglot.cache_clear()  # this process keeps no data set: the student's worker needs the memory
    return tasks


def without_queries(spec: dict) -> list[tuple]:
    """The tasks of ``spec`` as the student's transfer_learn gets them: each query set is the support set again
    (cycled to the query set's size), so the real query images and labels never reach the student's process;
    the head does not depend on them, and the reference worker measures it on them."""
    tasks = []
    for images_support, labels_support, images_query, _ in sampled(spec):
        again = np.arange(len(images_query)) % len(labels_support)
        tasks.append((images_support, labels_support, images_support[again], labels_support[again]))
    return tasks


@student_work("transfer_heads")
def _transfer_heads(student) -> dict:
    settings = transfer_settings(student)
    arguments = {"num_way": settings["tasks"]["num_way"], "num_steps": settings["num_steps"],
                 "learning_rate": settings["learning_rate"]}
    tasks = without_queries(settings["tasks"])
    # one task on untrained features first: code that cannot run fails before the real run
    student.call(probes_hidden.transfer_heads, {**arguments, "frozen": pretrained(0), "tasks": tasks[:1]})
    return student.call(probes_hidden.transfer_heads, {**arguments, "frozen": pretrained(reference.PRETRAIN_STEPS),
                                                       "tasks": tasks}, timeout=budget.share("transfer_heads"))


@points(3)
@pytest.mark.problem("Transfer learning assessment")
@pytest.mark.student_work("transfer_heads")
def test_transfer_training_reaches_the_target(student, student_runs, reference_worker):
    """transfer with your transfer_learn on a pre-trained network reaches 70 % validation accuracy"""
    settings = transfer_settings(student)
    heads = student_runs["transfer_heads"].get()["heads"]
    count = settings["tasks"]["count"]
    if not isinstance(heads, list) or len(heads) != count:
        raise AssertionError(f"expected one head per task ({count}), got {type(heads).__name__}")
    frozen = pretrained(reference.PRETRAIN_STEPS)
    measured = reference_worker.call(reference.head_accuracies, {"frozen": frozen, "tasks": settings["tasks"],
                                                                 "heads": heads})
    if "error" in measured:
        raise AssertionError(measured["error"])
    accuracies = np.asarray(measured["accuracies"])
    mean = float(accuracies.mean())
    ci = float(1.96 * accuracies.std(ddof=1) / math.sqrt(len(accuracies))) if len(accuracies) > 1 else float("nan")
    message = (f"{percent(mean)} ± {percent(ci)} on {count} validation tasks with a conv-4 pre-trained for "
               f"{reference.PRETRAIN_STEPS} minibatches by the grader ({settings['num_steps']} steps, lr "
               f"{settings['learning_rate']:g}; random features give about 55 %, the reference 81 %; target "
               f"{percent(TRANSFER_TARGET)})")
    if mean < TRANSFER_TARGET:
        raise AssertionError(f"the heads your transfer_learn adapted give {message}: look at the checks of "
                             f"transfer_learn.")
    parts = Parts()
    parts.note(f"Your heads give {message}.")
    parts.finish()


@points(2)
@pytest.mark.problem("Transfer learning assessment")
def test_transfer_submitted_weights(submission, reference_worker):
    """your submitted pre-trained weights (results/transfer) reach 85 % validation accuracy with transfer"""
    run = submission / "results" / "transfer"
    path = weights_file(run, "pre-training")
    hp = run_hparams(run, {"transfer_steps": FACTS["transfer_steps"], "transfer_lr": FACTS["transfer_lr"]},
                     settings.allowed_ranges(settings.PretrainSettings, ("transfer_steps", "transfer_lr")))
    try:
        with np.load(path) as stored:
            frozen = {name: np.asarray(stored[name], np.float32) for name in FACTS["feature_keys"]}
    except (OSError, ValueError, KeyError) as error:
        raise AssertionError(f"results/transfer/weights.npz is not a pre-trained conv-4 ({error}).") from None
    wrong = [f"{name} {frozen[name].shape}" for name in FACTS["feature_keys"]
             if list(frozen[name].shape) != FACTS["feature_shapes"][name]]
    if wrong:
        raise AssertionError(f"results/transfer/weights.npz has layers of other shapes than the conv-4: {wrong}")
    spec = validation_spec(assignment())
    measured = reference_worker.call(reference.transfer_accuracy, {
        "frozen": frozen, "tasks": spec, "num_steps": hp["transfer_steps"], "learning_rate": hp["transfer_lr"]})
    mean, ci = measured["mean"], measured["ci"]
    message = (f"{percent(mean)} ± {percent(ci)} on {spec['count']} validation tasks ({hp['transfer_steps']} head "
               f"steps, lr {hp['transfer_lr']:g}; measured with the reference; target "
               f"{percent(TRANSFER_WEIGHTS_TARGET)})")
    if mean < TRANSFER_WEIGHTS_TARGET:
        raise AssertionError(f"your pre-trained weights give {message}: hand in the weights of a complete "
                             f"pre-training with the assignment's settings.")
    parts = Parts()
    parts.note(f"Your weights give {message}.")
    parts.finish()
