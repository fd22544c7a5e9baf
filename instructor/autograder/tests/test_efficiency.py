"""Efficiency (reported): a training step with the student's outer_loop vs the reference's, same run.

Both run in the same harness (``probes_hidden.training_steps``: compiled steps
of outer_loop under a tape and its gradient, trace excluded), the student's
in the sandbox, the reference's in the reference worker, one after the other
(only one TensorFlow process is alive at a time, ``conftest.py``; the grading
container runs nothing else). Both are timed by this process's clock around
each call: code in the sandbox could change its own clock. Every step gets
tasks of the fixture's shapes that neither has seen (``timing_batches``: random
images and label orders drawn from the grading seed), and the sum of the
student's steps' gradients in each call must be the reference's on the same
tasks: a step that skips its work, returns what it remembers, or does its work
only on the steps whose result it guesses is returned, is not timed against
the reference but reported as not computing the same thing. Best of
``ROUNDS`` calls of ``REPEATS`` steps each, per step. The ratio is reported; beyond ``BOUND`` the
check fails with advice. It is worth ``EFFICIENCY_POINTS`` (0: a report that
costs nothing; set it to make slow code cost points, and subtract them from
another check so the total stays the assignment's).

Measured on 2 cores with a clock inside each process (before these calls were
timed from outside): the catalogue's correct implementations took 0.95x to
1.6x the reference's time (the reference against itself 1.0x to 1.6x: the two
processes time with some noise), one with a tape and a forward pass per
parameter 2.2x (the graph optimiser merges the repeated forward passes, as it
does in training), one that cannot be compiled (``float(lr.numpy())``) 41x;
``BOUND`` = 4.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from grader import budget, compare
from grader.plugin import Parts, points

from . import probes_hidden, reference, seeds
from .conftest import FIXTURES, student_work

PROBLEM = "FO-MAML implementation"  # the part of the assignment these points count for (README, Grading)
EFFICIENCY_POINTS = 0
BOUND = 4.0
ROUNDS, REPEATS = 3, 5


def verdict(ratio: float, eager: bool, student_seconds: float, reference_seconds: float) -> tuple[bool, str]:
    """(within the bound, the sentence for the student)."""
    def number(value: float, digits: int) -> str:  # 1.6, 41, 56.6, 1234: never 1.2e+03
        return f"{value:.{digits}g}" if value < 10 ** (digits - 1) else f"{value:.0f}"

    text = (f"A training step with your outer_loop took {number(ratio, 2)}x the reference's time "
            f"({number(1000 * student_seconds, 3)} ms vs {number(1000 * reference_seconds, 3)} ms per step, "
            f"best of {ROUNDS} calls of {REPEATS} steps, "
            f"{'eagerly: it could not run as a tf.function' if eager else 'compiled'}; bound {BOUND:g}x).")
    if ratio <= BOUND:
        return True, text
    return False, (text + " Look for work repeated in every step: a forward pass computed twice, a tape or "
                   "tape.gradient call per parameter, Python loops over examples, or .numpy() conversions.")


def timing_batches(fixture: dict, seed: int) -> list[list[dict]]:
    """The tasks of every step ``timed`` takes: a first call of one step (built and traced, not timed), then
    ``ROUNDS`` calls of ``REPEATS`` steps, each step on new tasks of the fixture's shapes (random images and a
    random order of the labels in every task), drawn from ``seed``. Parameters and settings stay the fixture's."""
    rng = np.random.default_rng(seed)

    def batch() -> dict:
        images = {part: rng.integers(0, 256, np.shape(fixture[part]), dtype=np.uint8)
                  for part in ("images_support", "images_query")}
        labels = {part: rng.permuted(fixture[part], axis=-1) for part in ("labels_support", "labels_query")}
        return {**images, **labels}

    return [[batch() for _ in range(REPEATS if index else 1)] for index in range(ROUNDS + 1)]


def timed(worker, probe, inputs: dict, rounds: list[list[dict]], allowance: float | None = None) -> dict:
    """``probe`` called once per round of ``timing_batches``, in ``worker``: the first call builds and traces
    (not timed), each of the others takes a step on each of its round's tasks, timed here.

    Returns:
        seconds: per step, of each timed call; gradients: what each call returned (the sum of its steps'
        gradients); eager: any ran eagerly.
    """
    inputs = {name: value for name, value in inputs.items() if name not in compare.TASK_KEYS}  # each step has its own
    started = time.monotonic()
    seconds, gradients, eager = [], [], False
    for index, batches in enumerate(rounds):
        timeout = None if allowance is None else max(allowance - (time.monotonic() - started), 1.0)
        before = time.monotonic()
        out = worker.call(probe, {"inputs": inputs, "batches": batches}, timeout=timeout)
        if index:
            seconds.append((time.monotonic() - before) / len(batches))
        gradients.append(out["gradient"])
        eager = eager or bool(out["eager"])
    return {"seconds": seconds, "gradients": gradients, "eager": eager}


def differs(actual: list[dict], expected: list[dict]) -> str:
    """"" when the student's gradient of every round is the reference's (``compare.RTOL``), else what differs."""
    for mine, theirs in zip(actual, expected):
        for name, value in theirs.items():
            got = mine.get(name) if isinstance(mine, dict) else None
            if got is None or np.shape(got) != np.shape(value):
                return f"its gradient of '{name}' is {'missing' if got is None else f'of shape {np.shape(got)}'}"
            error = compare.relative_error(np.asarray(got, np.float64), value, value)
            if not error <= compare.RTOL:  # NaN too
                return f"its gradient of '{name}' differs from the reference's: relative error {error:.3g}"
    return ""


@student_work("timing")
def _timing(student) -> dict:
    inputs = compare.inputs(FIXTURES["maml_hidden"])
    rounds = timing_batches(inputs, seeds.seed("timing", student.code_digest))
    run = timed(student, probes_hidden.time_outer_loop, inputs, rounds, budget.share("timing"))
    student.call(probes_hidden.forget, {"kind": "timing:maml"})
    return {**run, "inputs": inputs, "rounds": rounds}


@points(EFFICIENCY_POINTS)
@pytest.mark.student_work("timing")
def test_outer_loop_efficiency(student_runs, reference_worker):
    """efficiency: training step time with your outer_loop vs the reference (reported)"""
    mine = student_runs["timing"].get()
    theirs = timed(reference_worker, reference.training_steps, mine["inputs"], mine["rounds"])
    difference = differs(mine["gradients"], theirs["gradients"])
    if difference:
        raise AssertionError(f"Not timed: on the tasks it was timed on, your training step does not compute what "
                             f"the reference's does ({difference}; tolerance {compare.RTOL:g}), and the time of "
                             f"another computation says nothing. The checks of outer_loop say what differs.")
    ok, message = verdict(min(mine["seconds"]) / min(theirs["seconds"]), mine["eager"], min(mine["seconds"]),
                          min(theirs["seconds"]))
    if not ok:
        raise AssertionError(message)
    parts = Parts()
    parts.note(message)
    parts.finish()
