"""Probes of the hidden tests: they run in the student's sandbox (copied there as ``grader/probes_hidden.py``).

Like ``grader/probes.py``: each receives inputs (numbers, arrays, settings;
never an expected result), calls the student's code and returns what it
computed. Only ``grader`` modules and the scaffold (``load_data``) may be
imported here: nothing of the instructor's reaches the sandbox.

Training probes keep their model between calls (``_RUNS``), so the grader can
train in chunks and judge the weights after each chunk in its own process.
"""

from __future__ import annotations

import functools
import warnings

from grader import compare
from grader.probes import student_module
from grader.worker import continues_random_state

_RUNS: dict[str, dict] = {}  # training runs in this process, by kind


def _tasks(inputs: dict, dtype: str = "float64") -> list[tuple]:
    import numpy as np
    import tensorflow as tf

    return [tuple(tf.constant(part) for part in task)
            for task in compare.tasks_from_fixture(inputs, dtype=np.dtype(dtype))]


def _maml(inputs: dict, first_order: bool, **options):
    return compare.maml_from_fixture(student_module("maml"), inputs, first_order=first_order, **options)


def _is_result(value, length: int) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == length


# ------------------------------------------------------------------ MAML on a fixture


def gradients(inputs: dict, first_order: bool, train: bool, of: str) -> dict:
    """outer_loop on all tasks, and the gradient of its loss w.r.t. ``of`` ("meta_parameters" or "inner_lrs").

    The gradient of the inner learning rates is taken as in training with
    learned rates (``learn_inner_lrs=True``).

    Returns:
        {"result": outer_loop's return value, "gradients": {name: gradient or None} (None if no result),
        "same_variables": ``compare.same_variables`` after the call}.
    """
    import tensorflow as tf

    model = _maml(inputs, first_order=first_order, **({"learn_inner_lrs": True} if of == "inner_lrs" else {}))
    variables, built = dict(getattr(model, of)), dict(model.meta_parameters)
    with tf.GradientTape() as tape:
        tape.watch(list(variables.values()))
        result = model.outer_loop(_tasks(inputs), train=train)
    same = compare.same_variables(model, built)
    if not _is_result(result, 3):
        return {"result": result, "gradients": None, "same_variables": same}
    return {"result": result, "gradients": dict(tape.gradient(result[0], variables)), "same_variables": same}


def independence(inputs: dict) -> dict:
    """What one model gives on task batches in several orders, and whether its meta-parameters survive.

    Returns:
        losses: outer loss of [t0, t1], [t0], [t1], [t1, t0] (computed in that order, same model);
        same_variables: whether self.meta_parameters still holds the tf.Variables it was built with;
        meta_parameters: their values afterwards;
        phi_train, phi_again, phi_eval: inner_loop on task 0 with train=True, again, and train=False.
    """
    model = _maml(inputs, first_order=True)
    built = dict(model.meta_parameters)
    tasks = _tasks(inputs)
    losses = []
    for batch in ([tasks[0], tasks[1]], [tasks[0]], [tasks[1]], [tasks[1], tasks[0]]):
        result = model.outer_loop(batch, train=True)
        if not _is_result(result, 3):
            return {"result": result}
        losses.append(result[0])
    images, labels = tasks[0][:2]
    phis = []
    for train in (True, True, False):
        result = model.inner_loop(images, labels, train=train)
        if not _is_result(result, 2):
            return {"result": result}
        phis.append(result[0])
    return {"result": None, "losses": losses, "same_variables": bool(compare.same_variables(model, built)),
            "meta_parameters": dict(model.meta_parameters),
            "phi_train": phis[0], "phi_again": phis[1], "phi_eval": phis[2]}


def training_steps(module, inputs: dict, batches: list[dict]) -> dict:
    """Compiled training steps (outer_loop under a tape, and its gradient), one on each of ``batches``.

    What the efficiency check times, from the grader's process: a clock in this
    process could be changed by the code it times. Every step gets tasks the
    code has not seen (``test_efficiency.timing_batches``), and the grader
    compares the sum of the steps' gradients with the reference's on the same
    tasks, so a step that skips its work, returns what it remembers, or does
    its work only on some of the steps, gives itself away. The same harness
    runs the reference in the grader's reference worker.

    The first call for a module builds the model from ``inputs``' parameters
    and traces the graph on its first batch; later calls reuse them (same
    shapes: no retracing). If the code cannot be traced it runs eagerly (as the
    scaffold's ``GraphOrEager`` would) and ``eager`` says so.

    Args:
        inputs: a maml fixture's parameters and settings.
        batches: the tasks of each step ({"images_support", "labels_support", "images_query", "labels_query"}).

    Returns:
        gradient: {name: float64 array or None}, the sum over the steps of the gradient of the
        meta-parameters; eager: whether the steps ran eagerly.
    """
    import numpy as np
    import tensorflow as tf

    key = f"timing:{module.__name__}"
    if key not in _RUNS:
        model = compare.maml_from_fixture(module, inputs, first_order=True)

        def step(batch):
            with tf.GradientTape() as tape:
                loss = model.outer_loop(batch, train=True)[0]
            return tape.gradient(loss, model.meta_parameters)

        compiled, eager = tf.function(step), False
        try:
            compiled(_tasks({**inputs, **batches[0]}))
        except Exception:  # noqa: BLE001 - cannot be traced: time it eagerly, as training would run it
            compiled, eager = step, True
        _RUNS[key] = {"step": compiled, "eager": eager}
    run = _RUNS[key]
    steps = [dict(run["step"](_tasks({**inputs, **batch}))) for batch in batches]
    return {"gradient": {name: None if any(step[name] is None for step in steps)
                         else sum(np.asarray(step[name], np.float64) for step in steps) for name in steps[0]},
            "eager": run["eager"]}


@continues_random_state
def time_outer_loop(inputs: dict, batches: list[dict]) -> dict:
    """``training_steps`` of the student's MAML."""
    return training_steps(student_module("maml"), inputs, batches)


# ------------------------------------------------------------------ transfer_learn on a fixture


def transfer_behaviour(inputs: dict) -> dict:
    """transfer_learn with the frozen layers as tf.Variables, with other query sets, with 0 steps, compiled.

    Returns:
        head: the head on the fixture's task (float32, frozen as tf.Variables);
        frozen_after: the frozen variables after that call;
        head_again: a second identical call;
        head_other_query: the same support set, other query images (flipped) and labels;
        head_zero_steps: num_steps=0;
        head_compiled: the call inside tf.function (or the error it raised, as text).
    """
    import numpy as np
    import tensorflow as tf

    module = student_module("maml_transfer")
    names = compare.parameter_names(inputs, "frozen/")
    num_way, steps, lr = int(inputs["num_way"]), int(inputs["num_steps"]), float(inputs["learning_rate"])
    task = list(_tasks(inputs, "float32")[0])

    def run(frozen, task, num_steps=steps):
        result = module.transfer_learn(frozen, task, num_way, num_steps=num_steps, learning_rate=lr)
        if not _is_result(result, 2):
            raise AssertionError(f"transfer_learn should return (accuracy_query, head), got {type(result).__name__}")
        return result[1]

    def constants():
        return {name: tf.constant(inputs[f"frozen/{name}"].astype(np.float32)) for name in names}

    frozen = {name: tf.Variable(inputs[f"frozen/{name}"].astype(np.float32)) for name in names}
    out = {"head": run(frozen, task), "frozen_after": dict(frozen), "head_again": run(constants(), task)}
    other = [task[0], task[1], tf.reverse(task[2], axis=[2]), (task[3] + 1) % num_way]
    out["head_other_query"] = run(constants(), other)
    try:  # only the zero-start part needs it
        out["head_zero_steps"] = run(constants(), task, num_steps=0)
    except Exception as error:  # noqa: BLE001 - reported by the test
        out["head_zero_steps"] = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:300]}"
    try:
        out["head_compiled"] = tf.function(lambda f, t: run(f, t))(constants(), task)
    except Exception as error:  # noqa: BLE001 - reported by the test
        out["head_compiled"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
    return out


# ------------------------------------------------------------------ training (assessment)


class _ScaledOnRead:
    """Omniglot's images stored as uint8 (25 MB, not 100 MB as float32), scaled to float32 as they are read.

    What ``load_data.TaskSampler`` reads of ``Omniglot.images`` (its length and indexed drawings) is
    exactly what the float32 array would give: the same ``astype(float32) / 255`` on fewer values.
    """

    def __init__(self, raw):
        self.raw = raw
        self.shape = raw.shape

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index):
        import numpy as np

        images = self.raw[index].astype(np.float32)
        images /= 255.0
        return images


@functools.cache
def _omniglot():
    """The data set, loaded once per process and kept as uint8: in a grading container of 768 MB, the 75 MB
    saved is what FO-MAML training needs to stay below the worker's limit."""
    import load_data

    raw = load_data.load_omniglot(progress=False, scaled=False)
    return load_data.Omniglot(_ScaledOnRead(raw.images), raw.names)


def _sampler(split: str, seed: int, num_way: int, num_support: int, num_query: int):
    import load_data

    return load_data.TaskSampler(_omniglot(), split, num_way, num_support,
                                 num_query, seed=seed)


@continues_random_state
def train(kind: str, settings: dict, iterations: int, validation: list | None = None) -> dict:
    """Trains the student's MAML (or MAMLPlusPlus) ``iterations`` more outer steps; returns its weights.

    The first call for a ``kind`` builds the model from ``settings`` (the
    assignment's hyper-parameters: num_way, num_support, num_query,
    num_inner_steps, inner_lr, learn_inner_lrs, outer_lr, first_order,
    meta_batch_size, seed, and for MAML++ ``mamlpp``: the keyword arguments
    of MAMLPlusPlus). Task i of the training stream is the same as in
    ``python maml.py`` (split "train", seed ``settings["seed"]``).

    ``validation``: the validation tasks, sent once (per task (images_support,
    labels_support, images_query, labels_query), sampled by the grader: this
    process holds the training split only, ``grader.plugin.training_split_only``);
    once the run has them, every call also returns the model's own mean
    validation query accuracy on them (``MAML.evaluate``), which tells the
    grader when to stop; the verdict is measured by the grader with the reference.

    Returns:
        iteration: outer steps taken so far; weights: ``model.weights()``;
        loss: the last outer loss; warnings: tf.function fallbacks seen;
        accuracy: the model's own validation accuracy (None before the run has its validation tasks).
    """
    run = _RUNS.get(kind)
    if run is None:
        module = student_module("maml")
        s = settings
        args = (s["num_way"], s["num_inner_steps"], s["inner_lr"], s["learn_inner_lrs"], s["outer_lr"],
                s["first_order"], s["seed"])
        model = module.MAMLPlusPlus(*args, **s["mamlpp"]) if s.get("mamlpp") else module.MAML(*args)
        sampler = _sampler("train", s["seed"], s["num_way"], s["num_support"], s["num_query"])
        run = _RUNS[kind] = {"model": model, "sampler": sampler, "iteration": 0, "settings": s}
    model, loss = run["model"], float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(iterations):
            batch = run["sampler"].batch(run["iteration"], run["settings"]["meta_batch_size"])
            loss = float(model.train_step(batch)[0])
            run["iteration"] += 1
            if loss != loss or abs(loss) == float("inf"):
                break
        accuracy = None
        if validation is not None:
            import load_data

            run["validation"] = [load_data.Task(*task) for task in validation]
        if "validation" in run and loss == loss and abs(loss) != float("inf"):
            accuracy = float(model.evaluate(run["validation"], chunk_size=1)[1].mean())
    return {"iteration": run["iteration"], "weights": model.weights(), "loss": loss, "accuracy": accuracy,
            "warnings": [str(w.message) for w in caught if "tf.function" in str(w.message)]}


def forget(kind: str) -> None:
    """Drops a finished training run (its model, optimiser and traced graphs), so the next run's memory
    does not come on top of it: a grading container may have little."""
    import gc

    _RUNS.pop(kind, None)
    gc.collect()


@continues_random_state
def transfer_heads(frozen: dict, tasks: list, num_way: int, num_steps: int, learning_rate: float) -> dict:
    """The student's transfer_learn on every task, with the grader's frozen features.

    Args:
        frozen: conv0..3, b0..3 as float32 arrays.
        tasks: per task (images_support, labels_support, images_query, labels_query), as ``load_data.Task``.

    Returns:
        {"heads": [head per task]}, each head as transfer_learn returned it.
    """
    import tensorflow as tf

    module = student_module("maml_transfer")
    constants = {name: tf.constant(value) for name, value in frozen.items()}

    def adapt(task):
        return module.transfer_learn(constants, task, num_way, num_steps=num_steps, learning_rate=learning_rate)[1]

    compiled = tf.function(adapt)
    heads = []
    for task in tasks:
        task = [tf.constant(part) for part in task]
        try:
            heads.append(compiled(task))
        except Exception:  # noqa: BLE001 - cannot be traced: run it eagerly from now on
            compiled = adapt
            heads.append(adapt(task))
    return {"heads": heads}
