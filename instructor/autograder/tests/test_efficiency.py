"""Efficiency (reported): a training step with the student's outer_loop vs the reference's, same run.

Both are timed with the same harness (``probes_hidden.training_step_seconds``:
a compiled step of outer_loop under a tape and its gradient, on the hidden
fixture, trace excluded): the student's in the sandbox, the reference's in the
grader's process, in alternating rounds, best of ``ROUNDS * REPEATS`` each, so
both see the same machine at the same time. The ratio is reported; beyond
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

from grader import checks
from grader.plugin import Parts, points

from . import probes_hidden, reference

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


@points(EFFICIENCY_POINTS)
def test_outer_loop_efficiency(student, maml_hidden):
    """efficiency: training step time with your outer_loop vs the reference (reported)"""
    maml, _ = reference.modules()
    inputs = checks.inputs(maml_hidden)
    mine, theirs, eager = [], [], False
    for _ in range(ROUNDS):
        out = student.call(probes_hidden.time_outer_loop, {"inputs": inputs, "repeats": REPEATS})
        mine += [float(s) for s in out["seconds"]]
        eager = eager or bool(out["eager"])
        theirs += probes_hidden.training_step_seconds(maml, inputs, REPEATS)["seconds"]
    ok, message = verdict(min(mine) / min(theirs), eager, min(mine), min(theirs))
    if not ok:
        raise AssertionError(message)
    parts = Parts()
    parts.note(message)
    parts.finish()
