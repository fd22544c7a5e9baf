"""Probes: the grader code that calls the student's functions, run in the sandbox (``grader/worker.py``).

Each probe receives a test's *inputs* (numbers and numpy arrays, never the
expected results), imports the student's module, calls it and returns what it
computed. The test compares that with the reference numbers in the grader's
own process (``grader.sandbox``). TensorFlow and the student's modules are
imported inside the functions, so the grader's process can import this module
without either.

Writing a probe for a new test (e.g. a hidden one): a module-level function
taking keyword arguments and returning plain values, numpy arrays or tensors
(dicts, lists and tuples of them); import the student's code with
``student_module``; leave every comparison to the test.
"""

from __future__ import annotations

import importlib
import sys
import traceback
import warnings
from pathlib import Path

from grader import compare
from grader.failures import StudentCodeError
from grader.files import ROOT


def student_module(name: str):
    """Imports the student's ``<name>.py``; StudentCodeError with the reason if it cannot."""
    path = ROOT / f"{name}.py"
    if not path.is_file():
        raise StudentCodeError(f"{path.name} is missing: it is not in the submission (or, running "
                               f"`python -m grader`, not in the handout folder); keep the file name as given.")
    try:
        module = importlib.import_module(name)
    except SyntaxError as error:
        where = Path(error.filename).name if error.filename else path.name
        raise StudentCodeError(f"could not import {path.name}: {type(error).__name__}: {error.msg} "
                               f"({where} line {error.lineno}: {(error.text or '').strip()!r})") from None
    except BaseException as error:  # noqa: BLE001 - any failure of student code becomes a message
        sys.modules.pop(name, None)
        last = traceback.extract_tb(error.__traceback__)[-1]
        raise StudentCodeError(f"could not import {path.name}: {type(error).__name__}: {error} "
                               f"({Path(last.filename).name} line {last.lineno})") from None
    if Path(module.__file__).resolve() != path.resolve():
        raise StudentCodeError(f"`import {name}` found {module.__file__}, not {path}: another {name} "
                               f"shadows yours (rename or remove it).")
    return module


def _tasks(inputs: dict, dtype="float64"):
    import numpy as np
    import tensorflow as tf

    return [tuple(tf.constant(part) for part in task)
            for task in compare.tasks_from_fixture(inputs, dtype=np.dtype(dtype))]


def _maml(inputs: dict, first_order: bool):
    return compare.maml_from_fixture(student_module("maml"), inputs, first_order=first_order)


def inner_loop(inputs: dict) -> dict:
    """MAML.inner_loop on task 0 (first order, train=True), and the meta-parameters afterwards."""
    model = _maml(inputs, first_order=True)
    images, labels = _tasks(inputs)[0][:2]
    result = model.inner_loop(images, labels, train=True)
    return {"result": result, "meta_parameters": dict(model.meta_parameters)}


def outer_loop(inputs: dict) -> dict:
    """MAML.outer_loop on all the fixture's tasks (first order, train=True), and the first-order gradient of
    its loss as more evidence for a diagnosis ("gradients" None where it cannot be taken: the loss, not its
    gradient, is what this check judges)."""
    return meta_gradient(inputs, first_order=True, required=False)


def meta_gradient(inputs: dict, first_order: bool, required: bool = True) -> dict:
    """outer_loop's result and d outer loss / d meta-parameters.

    Returns:
        {"result": outer_loop's return value, "gradients": {name: gradient, None where the loss does not
        depend on it}, or None when the result is not a tuple (or, not ``required``, the gradient failed),
        "same_variables": ``compare.same_variables`` after the call}.
    """
    import tensorflow as tf

    model = _maml(inputs, first_order=first_order)
    variables = dict(model.meta_parameters)  # the ones it was built with, even if outer_loop replaces them
    with tf.GradientTape() as tape:
        result = model.outer_loop(_tasks(inputs), train=True)
    same = compare.same_variables(model, variables)
    if not isinstance(result, (tuple, list)) or not result:
        return {"result": result, "gradients": None, "same_variables": same}
    try:
        gradients = dict(tape.gradient(result[0], variables))
    except Exception:  # noqa: BLE001 - reported by the checks that require the gradient
        if required:
            raise
        gradients = None
    return {"result": result, "gradients": gradients, "same_variables": same}


def train_step(inputs: dict) -> dict:
    """One MAML.train_step; the tf.function warnings it raised and the meta-parameters before and after."""
    model = _maml(inputs, first_order=True)
    before = {name: variable.numpy().copy() for name, variable in model.meta_parameters.items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.train_step(compare.tasks_from_fixture(inputs))
    return {"warnings": [str(w.message) for w in caught if "tf.function" in str(w.message)],
            "before": before, "after": dict(model.meta_parameters)}


def transfer_learn(inputs: dict) -> dict:
    """transfer_learn on the fixture's support set with each of its query sets (float32), and what else the
    checks and their diagnoses need.

    Returns (each call's result as transfer_learn returned it, an (accuracy_query, head) pair):
        results: one call per query set (task j of the fixture), frozen layers as tf.constant;
        again: the call on task 0 once more (repeatability);
        relabelled: task 0 with other query labels ((label + 1) mod N);
        one_step, zero_steps: task 0 with num_steps=1 and 0 (the first step, the start), or the error's text;
        frozen: frozen layers as tf.Variables after a call on task 0 with them.
    """
    import numpy as np
    import tensorflow as tf

    module = student_module("maml_transfer")
    names = compare.parameter_names(inputs, "frozen/")
    num_way, num_steps = int(inputs["num_way"]), int(inputs["num_steps"])
    tasks = [list(task) for task in _tasks(inputs, "float32")]

    def run(task, frozen=None, steps=num_steps):
        frozen = frozen or {name: tf.constant(inputs[f"frozen/{name}"].astype(np.float32)) for name in names}
        return module.transfer_learn(frozen, task, num_way, num_steps=steps,
                                     learning_rate=float(inputs["learning_rate"]))

    def diagnostic(**arguments):
        try:
            return run(tasks[0], **arguments)
        except Exception as error:  # noqa: BLE001 - evidence for a diagnosis only; the checks' calls raise
            return f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:300]}"

    out = {"results": [run(task) for task in tasks], "again": run(tasks[0])}
    out["relabelled"] = run(tasks[0][:3] + [(tasks[0][3] + 1) % num_way])
    out["one_step"], out["zero_steps"] = diagnostic(steps=1), diagnostic(steps=0)
    variables = {name: tf.Variable(inputs[f"frozen/{name}"].astype(np.float32)) for name in names}
    run(tasks[0], variables)
    out["frozen"] = dict(variables)
    return out
