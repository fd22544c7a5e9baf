"""Public tests of part 2: transfer_learn (maml_transfer.py).

The frozen feature extractor is a small conv-4 (4 filters); the task is a real
3-way 2-shot Omniglot task. Inputs are float32, as in training; the reference
numbers were computed in float64 (measured gap: ~7e-6 relative), hence the
tolerance ``RTOL``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from grader import checks
from grader.plugin import points

RTOL = 1e-4


def _inputs(fixture, as_variables: bool = False):
    names = checks.parameter_names(fixture, "frozen/")
    make = tf.Variable if as_variables else tf.constant
    frozen = {name: make(fixture[f"frozen/{name}"].astype(np.float32)) for name in names}
    task = [tf.constant(part) for part in checks.tasks_from_fixture(fixture, dtype=np.float32)[0]]
    return frozen, task


def _transfer_learn(transfer_module, fixture, frozen, task):
    result = transfer_module.transfer_learn(frozen, task, int(fixture["num_way"]),
                                            num_steps=int(fixture["num_steps"]),
                                            learning_rate=float(fixture["learning_rate"]))
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise AssertionError(f"transfer_learn should return (accuracy_query, head), got {type(result).__name__}")
    return result


@points(3)
def test_transfer_learn_head_and_accuracy(transfer_module, transfer_fixture):
    """transfer_learn: adapted head and query accuracy match the reference"""
    fixture = transfer_fixture
    accuracy_query, head = _transfer_learn(transfer_module, fixture, *_inputs(fixture))
    if not isinstance(head, dict) or sorted(head) != ["b4", "w4"]:
        raise AssertionError(f"the head should be a dict with keys 'w4' and 'b4', got "
                             f"{sorted(head) if isinstance(head, dict) else type(head).__name__}")
    for name in ("w4", "b4"):
        checks.check_close(head[name], fixture[f"head/{name}"], f"the adapted head[{name!r}]", rtol=RTOL,
                           hint=f"The head starts at zero and takes num_steps={int(fixture['num_steps'])} "
                                f"gradient steps of size learning_rate={float(fixture['learning_rate']):g} "
                                f"on the support loss.")
    checks.check_close(accuracy_query, fixture["accuracy_query"], "the query accuracy", rtol=RTOL)


@points(2)
def test_transfer_learn_freezes_features_and_ignores_query_labels(transfer_module, transfer_fixture):
    """transfer_learn: frozen layers unchanged; the head never sees query labels"""
    fixture = transfer_fixture
    frozen, task = _inputs(fixture, as_variables=True)
    before = {name: v.numpy().copy() for name, v in frozen.items()}
    _, head = _transfer_learn(transfer_module, fixture, frozen, task)
    changed = [name for name, v in frozen.items() if not np.array_equal(v.numpy(), before[name])]
    if changed:
        raise AssertionError(f"transfer_learn changed the frozen parameters {changed}: only the new head "
                             f"may be trained.")
    shuffled = list(task)
    shuffled[3] = tf.constant((task[3].numpy() + 1) % int(fixture["num_way"]))
    _, head_shuffled = _transfer_learn(transfer_module, fixture, _inputs(fixture)[0], shuffled)
    for name in ("w4", "b4"):
        if not np.array_equal(checks.as_numpy(head[name], name), checks.as_numpy(head_shuffled[name], name)):
            raise AssertionError("the adapted head changes when the query labels change: adapt on the "
                                 "support set only (query labels are for measuring accuracy).")
