"""Efficiency (reported): a training step with the student's outer_loop vs the reference's, same run.

Both are timed with the same harness (``probes_hidden.training_step_seconds``:
a compiled step of outer_loop under a tape and its gradient, on the hidden
fixture, trace excluded): the student's in the sandbox, the reference's in the
reference worker, best of ``ROUNDS * REPEATS`` each. They run one after the
other, not in alternating rounds, since only one TensorFlow process is alive
at a time (``conftest.py``); the grading container runs nothing else. The ratio is reported; beyond
``BOUND`` the check fails with advice. It is worth ``EFFICIENCY_POINTS`` (0: a
report that costs nothing; set it to make slow code cost points, and subtract
them from another check so the total stays the assignment's).

Measured on 2 cores: the catalogue's correct implementations take 0.95x to
1.6x the reference's time (the reference against itself 1.0x to 1.6x: the two
processes time with some noise), one with a tape and a forward pass per
parameter 2.2x (the graph optimiser merges the repeated forward passes, as it
does in training), one that cannot be compiled (``float(lr.numpy())``) 41x;
``BOUND`` = 4.
"""

from __future__ import annotations

import time

import pytest

from grader import budget, compare
from grader.plugin import Parts, points

from . import probes_hidden, reference
from .conftest import FIXTURES, student_work

PROBLEM = "FO-MAML implementation"  # the part of the assignment these points count for (README, Grading)
EFFICIENCY_POINTS = 0
BOUND = 4.0
ROUNDS, REPEATS = 3, 5


def verdict(ratio: float, eager: bool, student_seconds: float, reference_seconds: float) -> tuple[bool, str]:
    """(within the bound, the sentence for the student)."""
    text = (f"A training step with your outer_loop took {ratio:.2g}x the reference's time "
            f"({1000 * student_seconds:.3g} ms vs {1000 * reference_seconds:.3g} ms, best of {ROUNDS * REPEATS}, "
            f"{'eagerly: it could not run as a tf.function' if eager else 'compiled'}; bound {BOUND:g}x).")
    if ratio <= BOUND:
        return True, text
    return False, (text + " Look for work repeated in every step: a forward pass computed twice, a tape or "
                   "tape.gradient call per parameter, Python loops over examples, or .numpy() conversions.")


@student_work("timing")
def _timing(student) -> dict:
    inputs = compare.inputs(FIXTURES["maml_hidden"])
    seconds, eager = [], False
    allowance, started = budget.share("timing"), time.monotonic()
    for _ in range(ROUNDS):
        out = student.call(probes_hidden.time_outer_loop, {"inputs": inputs, "repeats": REPEATS},
                           timeout=max(allowance - (time.monotonic() - started), 1.0))
        seconds += [float(s) for s in out["seconds"]]
        eager = eager or bool(out["eager"])
    student.call(probes_hidden.forget, {"kind": "timing:maml"})
    return {"seconds": seconds, "eager": eager}


@points(EFFICIENCY_POINTS)
@pytest.mark.student_work("timing")
def test_outer_loop_efficiency(student_runs, reference_worker, maml_hidden):
    """efficiency: training step time with your outer_loop vs the reference (reported)"""
    mine = student_runs["timing"].get()
    inputs = compare.inputs(maml_hidden)
    theirs = []
    for _ in range(ROUNDS):
        theirs += reference_worker.call(reference.training_step_seconds, {"inputs": inputs, "repeats": REPEATS})["seconds"]
    ok, message = verdict(min(mine["seconds"]) / min(theirs), mine["eager"], min(mine["seconds"]), min(theirs))
    if not ok:
        raise AssertionError(message)
    parts = Parts()
    parts.note(message)
    parts.finish()
