"""Public tests of part 2: transfer_learn (maml_transfer.py).

The frozen feature extractor is a small conv-4 (16 filters) pre-trained on
Omniglot's training characters; the task is a real 5-way 5-shot Omniglot task
with three query sets of 50 drawings each (one with classes of unequal size),
on which the reference's head reaches well above chance, so a query accuracy
computed another way gives another number. Inputs are float32, as in training;
the reference numbers were computed in float64 on the same (float32) values,
hence the tolerance ``RTOL``.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader import compare, diagnoses_transfer, feedback, probes
from grader.plugin import Parts, points

PROBLEM = "Transfer learning implementation"  # the part of the assignment these points count for (README, Grading)

RTOL = 1e-4


def head_of(result, what: str = "transfer_learn") -> dict:
    """The head of a transfer_learn result, or an AssertionError saying what was returned instead."""
    if isinstance(result, str):  # the error the call raised, as the probe reported it
        raise AssertionError(f"{what} raised {result}")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(f"{what} should return (accuracy_query, head), got "
                             f"{getattr(result, 'type_name', type(result).__name__)}")
    head = result[1]
    if not isinstance(head, dict) or sorted(head) != ["b4", "w4"]:
        kind = sorted(head) if isinstance(head, dict) else getattr(head, "type_name", type(head).__name__)
        raise AssertionError(f"{what}: the head should be a dict with keys 'w4' and 'b4', got {kind}")
    return {name: compare.as_numpy(head[name], f"head[{name!r}]") for name in ("w4", "b4")}


def changed_frozen(after: dict, inputs: dict) -> list[str]:
    """Names of the frozen parameters (as the probe returned them after the call) that are not the inputs' any more."""
    return [name for name, value in after.items()
            if not np.array_equal(compare.as_numpy(value, name), inputs[f"frozen/{name}"].astype(np.float32))]


def check_head_and_accuracies(fixture: dict, runs: dict, parts: Parts, head_weight: float,
                              accuracy_weight: float) -> None:
    """The head of the call on query set 0, and the query accuracy on every query set, with diagnoses."""
    head = head_of(runs["results"][0])
    with parts.part(head_weight, "adapted head"):
        feedback.assert_expected(
            fixture, "head", head, "the adapted head", rtol=RTOL,
            hint=diagnoses_transfer.head_findings(fixture, runs) or
            f"The head starts at zero and takes num_steps={int(fixture['num_steps'])} gradient steps of size "
            f"learning_rate={float(fixture['learning_rate']):g} on the support loss.",
            others={"head_one_step": diagnoses_transfer.head(runs["one_step"])})
    with parts.part(accuracy_weight, f"query accuracy on each of the {len(runs['results'])} query sets"):
        accuracies = np.array([compare.as_numpy(head_result[0], f"the query accuracy on query set {j}")
                               for j, head_result in enumerate(runs["results"])])
        head_right = diagnoses_transfer.difference(head, feedback.expected_value(fixture, "head")) <= RTOL
        feedback.assert_expected(fixture, "accuracy_query", accuracies, "the query accuracy on each query set",
                                 rtol=RTOL,
                                 hint=diagnoses_transfer.accuracy_findings(fixture, accuracies) if head_right else "")


@pytest.fixture(scope="module")
def runs(student, transfer_fixture):
    """The student's transfer_learn on every query set, repeated, relabelled, 1 and 0 steps (``probes``)."""
    return student.call(probes.transfer_learn, {"inputs": compare.inputs(transfer_fixture)})


@points(3)
def test_transfer_learn_head_and_accuracy(runs, transfer_fixture):
    """transfer_learn: adapted head and query accuracy match the reference"""
    parts = Parts()
    check_head_and_accuracies(transfer_fixture, runs, parts, head_weight=1.5, accuracy_weight=1.5)
    parts.finish()


@points(2)
def test_transfer_learn_freezes_features_and_ignores_query_labels(runs, transfer_fixture):
    """transfer_learn: frozen layers unchanged; the head never sees query labels"""
    inputs = compare.inputs(transfer_fixture)
    parts = Parts()
    with parts.part(1, "frozen layers"):
        changed = changed_frozen(runs["frozen"], inputs)
        if changed:
            raise AssertionError(f"transfer_learn changed the frozen parameters {changed}: only the new head "
                                 f"may be trained.")
    with parts.part(1, "query set unused"):
        head_of(runs["results"][0])
        found = diagnoses_transfer.label_dependence(runs)  # beyond what two identical calls differ by
        if found and not diagnoses_transfer.repeatable(runs):
            found += " (It changes much more than between two calls with the same inputs.)"
        if found:
            raise AssertionError(found)
    if not diagnoses_transfer.repeatable(runs):  # the control: its own message, no blame on the query set
        parts.note(f"The query set's influence was measured against repeated calls: "
                   f"{diagnoses_transfer.NOT_REPEATABLE_CLAUSE}")
    parts.finish()
