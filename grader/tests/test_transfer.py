"""Public tests of part 2: transfer_learn (maml_transfer.py).

The frozen feature extractor is a small conv-4 (4 filters); the task is a real
3-way 2-shot Omniglot task. Inputs are float32, as in training; the reference
numbers were computed in float64 (measured gap: ~7e-6 relative), hence the
tolerance ``RTOL``.
"""

from __future__ import annotations

import numpy as np

from grader import compare, feedback, probes
from grader.plugin import points

PROBLEM = "Transfer learning implementation"  # the part of the assignment these points count for (README, Grading)

RTOL = 1e-4


def _transfer_learn(student, inputs, as_variables: bool = False):
    out = student.call(probes.transfer_learn, {"inputs": inputs, "as_variables": as_variables})
    result = out["result"]
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(f"transfer_learn should return (accuracy_query, head), got "
                             f"{getattr(result, 'type_name', type(result).__name__)}")
    return out["frozen"], result


@points(3)
def test_transfer_learn_head_and_accuracy(student, transfer_fixture):
    """transfer_learn: adapted head and query accuracy match the reference"""
    fixture = transfer_fixture
    _, (accuracy_query, head) = _transfer_learn(student, compare.inputs(fixture))
    if not isinstance(head, dict) or sorted(head) != ["b4", "w4"]:
        raise AssertionError(f"the head should be a dict with keys 'w4' and 'b4', got "
                             f"{sorted(head) if isinstance(head, dict) else type(head).__name__}")
    feedback.assert_expected(fixture, "head", head, "the adapted head", rtol=RTOL,
                             hint=f"The head starts at zero and takes num_steps={int(fixture['num_steps'])} "
                                  f"gradient steps of size learning_rate={float(fixture['learning_rate']):g} "
                                  f"on the support loss.")
    feedback.assert_expected(fixture, "accuracy_query", accuracy_query, "the query accuracy", rtol=RTOL)


@points(2)
def test_transfer_learn_freezes_features_and_ignores_query_labels(student, transfer_fixture):
    """transfer_learn: frozen layers unchanged; the head never sees query labels"""
    fixture = transfer_fixture
    inputs = compare.inputs(fixture)
    frozen, (_, head) = _transfer_learn(student, inputs, as_variables=True)
    changed = [name for name, value in frozen.items()
               if not np.array_equal(compare.as_numpy(value, name), inputs[f"frozen/{name}"].astype(np.float32))]
    if changed:
        raise AssertionError(f"transfer_learn changed the frozen parameters {changed}: only the new head "
                             f"may be trained.")
    shuffled = {**inputs, "labels_query": (inputs["labels_query"] + 1) % int(fixture["num_way"])}
    _, (_, head_shuffled) = _transfer_learn(student, shuffled)
    for name in ("w4", "b4"):
        if not np.array_equal(compare.as_numpy(head[name], name), compare.as_numpy(head_shuffled[name], name)):
            raise AssertionError("the adapted head changes when the query labels change: adapt on the "
                                 "support set only (query labels are for measuring accuracy).")
