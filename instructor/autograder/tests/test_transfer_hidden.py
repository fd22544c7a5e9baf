"""Hidden tests of part 2 (transfer_learn implementation): what the public tests do not cover.

A new task (6-way 4-shot, three query sets of 60 drawings, one with classes
of unequal size, a 12-filter network pre-trained on Omniglot's training
characters, 6 steps, learning rate 0.8), frozen layers passed as tf.Variables,
a query set whose images and labels both change, a zero start, repeatability
and a compiled call. Inputs are float32 as in training; the reference ran in
float64 on the same values, hence ``RTOL``.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader import compare, diagnoses_transfer, probes
from grader.plugin import Parts, points
from grader.tests.test_transfer import changed_frozen, check_head_and_accuracies

from . import probes_hidden

PROBLEM = "Transfer learning implementation"  # the part of the assignment these points count for (README, Grading)
RTOL = 1e-4
COMPILED_RTOL = 1e-5  # the same float32 computation as a graph: round-off only


def _kind(value) -> str:
    return getattr(value, "type_name", type(value).__name__)


def _head(value, what: str) -> dict:
    if isinstance(value, str):  # the error the call raised, as the probe reported it
        raise AssertionError(f"{what} raised {value}")
    if not isinstance(value, dict) or sorted(value) != ["b4", "w4"]:
        raise AssertionError(f"{what}: the head should be a dict with keys 'w4' and 'b4', got "
                             f"{sorted(value) if isinstance(value, dict) else _kind(value)}")
    return {name: compare.as_numpy(value[name], f"head[{name!r}]") for name in ("w4", "b4")}


@points(2)
def test_transfer_learn_on_a_new_task(student, transfer_hidden):
    """transfer_learn on a new task (6-way 4-shot, 6 steps, lr 0.8): adapted head and query accuracy on 3 query sets"""
    runs = student.call(probes.transfer_learn, {"inputs": compare.inputs(transfer_hidden)})
    parts = Parts()
    check_head_and_accuracies(transfer_hidden, runs, parts, head_weight=2, accuracy_weight=2)
    parts.finish()


NOT_REPEATABLE = diagnoses_transfer.NOT_REPEATABLE_CLAUSE


def _repeatable(out: dict, head: dict) -> bool:
    again = _head(out["head_again"], "a second call of transfer_learn")
    return all(compare.relative_error(again[name], head[name], head[name]) <= COMPILED_RTOL for name in head)


@pytest.fixture(scope="module")
def behaviour(student, transfer_hidden):
    """What the student's transfer_learn does in several situations (``probes_hidden.transfer_behaviour``)."""
    return student.call(probes_hidden.transfer_behaviour, {"inputs": compare.inputs(transfer_hidden)})


@points(2)
def test_transfer_learn_behaviour(behaviour, transfer_hidden):
    """transfer_learn: frozen layers untouched, head independent of the query set, zero start, repeatable"""
    inputs, out = compare.inputs(transfer_hidden), behaviour
    head = _head(out["head"], "transfer_learn")
    parts = Parts()
    with parts.part(1, "frozen layers"):
        changed = changed_frozen(out["frozen_after"], inputs)
        if changed:
            raise AssertionError(f"transfer_learn changed the frozen tf.Variables {changed}: only the new head "
                                 f"is trained (no assign, no optimizer on them).")
    repeatable = _repeatable(out, head)
    with parts.part(2, "the query set does not change the head"):
        other = _head(out["head_other_query"], "transfer_learn with another query set")
        if not repeatable:
            raise AssertionError("cannot be checked: the head differs even between two calls with the same inputs.")
        if any(not np.array_equal(head[name], other[name]) for name in head):
            raise AssertionError("the head changes when only the query images and labels change: adapt on the "
                                 "support set alone, and compute the support features in their own "
                                 "extract_features call (batch norm uses the statistics of the batch it gets).")
    with parts.part(0.5, "zero start"):
        zero = _head(out["head_zero_steps"], "transfer_learn with num_steps=0")
        if any(np.any(zero[name] != 0) for name in zero):
            raise AssertionError("with num_steps=0 the head is not all zeros: start w4 and b4 at zero.")
    with parts.part(0.5, "repeatable"):
        if not repeatable:
            raise AssertionError(NOT_REPEATABLE)
    parts.finish()


@points(1)
def test_transfer_learn_compiled(behaviour):
    """transfer_learn runs inside tf.function and gives the same head"""
    out = behaviour
    head = _head(out["head"], "transfer_learn")
    compiled = _head(out["head_compiled"], "transfer_learn inside tf.function")
    if not _repeatable(out, head):
        raise AssertionError(f"cannot be checked: {NOT_REPEATABLE}")
    for name in head:
        if compare.relative_error(compiled[name], head[name], head[name]) > COMPILED_RTOL:
            raise AssertionError(f"inside tf.function, transfer_learn gives another head[{name!r}]: a Python "
                                 f"value that is fixed when the graph is traced (e.g. from .numpy() or a Python "
                                 f"counter) cannot change between steps; use TensorFlow operations.")
