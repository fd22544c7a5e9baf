"""The reference solution, in the reference worker only: trusted measurements for the hidden tests.

Verdicts on training never rest on numbers the student's process computed:
the student's code trains (in the sandbox) and hands back weights, which must
be reachable from the reference's initialisation (``initial_weights``); the
accuracy those weights reach after adaptation is measured with the
reference's inner loop (``MAML.evaluate``) or head (``transfer_learn``). The
same goes for submitted weight files, and the efficiency check times the
reference's ``outer_loop`` with the same harness as the student's.

These functions run in the *reference worker* (``grader.sandbox.Sandbox.reference()``,
the ``reference`` fixture of the hidden tests' conftest), a process of the
grader's that never runs student code, and that takes turns with the
student's worker so that only one TensorFlow process is alive at a time
(a grading container may have room for one only). Like probes they take and
return plain values and numpy arrays. The grader's test process itself never
imports TensorFlow: what the tests need of the reference before any student
code runs (the assignment's settings, the pre-trained features of the
transfer check) is stored in ``fixtures/reference_hidden.npz`` by
``python -m instructor.make_fixtures``.

Where the reference comes from: in the autograder bundle, ``hidden/reference/``
(the solved ``maml.py`` and ``maml_transfer.py``, written by the release); in
the instructor's repository, the repository's own files. They are imported
under other names (``reference_maml``, ...), so nothing here can be mistaken
for the student's modules.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from grader.files import ROOT  # the handout folder (the bundle's source/)
from grader.worker import continues_random_state

BUNDLED = Path(__file__).resolve().parent.parent / "reference"
PRETRAIN_STEPS = 200  # minibatches of the reference's pre-training behind the transfer training check


def _load(name: str, path: Path, maml_module=None):
    """Imports ``path`` as module ``name``; with ``maml_module``, its ``import maml`` gets that module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    saved = sys.modules.get("maml")
    if maml_module is not None:
        sys.modules["maml"] = maml_module
    try:
        spec.loader.exec_module(module)
    finally:
        if maml_module is not None:
            if saved is None:
                sys.modules.pop("maml", None)
            else:
                sys.modules["maml"] = saved
    return module


@functools.cache
def modules():
    """(maml, maml_transfer) of the reference solution.

    In the reference worker, TensorFlow's threads are those of every worker (``grader.sandbox``'s
    environment: the same as the student's, so timings compare).
    """
    folder = BUNDLED if (BUNDLED / "maml.py").is_file() else ROOT
    maml = _load("reference_maml", folder / "maml.py")
    transfer = _load("reference_maml_transfer", folder / "maml_transfer.py", maml_module=maml)
    return maml, transfer


def _omniglot():
    """The data set as the probes hold it (``probes_hidden._omniglot``): uint8, scaled to float32 as it is read,
    the same numbers in 75 MB less, which the reference worker needs in a 768 MB container."""
    from instructor.autograder.tests import probes_hidden

    return probes_hidden._omniglot()


def tasks(split: str, seed: int, num_way: int, num_support: int, num_query: int, count: int) -> list:
    """Tasks 0..count-1 of a task stream (the same the student's process samples from these settings)."""
    import load_data

    sampler = load_data.TaskSampler(_omniglot(), split, num_way, num_support, num_query, seed=seed)
    return [sampler.task(i) for i in range(count)]


def _tasks(spec: dict) -> list:
    return tasks(spec["split"], spec["seed"], spec["num_way"], spec["num_support"], spec["num_query"], spec["count"])


@functools.cache
def _evaluator(hparams_json: str):
    """One reference model per setting: its compiled evaluation is traced once and reused for every set of weights."""
    maml, _ = modules()
    return maml.build_maml(json.loads(hparams_json))


def weights_accuracy(hparams: dict, weights: dict | str, tasks: dict) -> dict:
    """Query accuracy after adaptation of MAML (or MAML++) weights, measured with the reference.

    It evaluates one task per graph call: tracing a chunk of 8 tasks takes 13-18 s, one task 2 s,
    and 100 tasks then take 8 s either way (measured on 2 cores).

    Args:
        hparams: a ``hparams.json`` record of ``maml.py`` (``build_maml``'s argument).
        weights: arrays by name (as ``MAML.weights()`` gives them), or the path of a weights.npz.
        tasks: {"split", "seed", "num_way", "num_support", "num_query", "count"}.

    Returns:
        {"mean", "ci"} (95 % CI half-width), or {"error": why the weights do not fit the model}.
    """
    maml, _ = modules()
    model = _evaluator(json.dumps(hparams, sort_keys=True))
    try:
        if isinstance(weights, dict):
            _load_arrays(model, weights)
        else:
            model.load_weights(Path(weights))
    except (ValueError, KeyError, OSError) as error:
        return {"error": str(error)}
    _, query = model.evaluate(_tasks(tasks), chunk_size=1)
    from scaffold import mean_and_ci95

    mean, ci = mean_and_ci95(query)
    return {"mean": mean, "ci": ci}


def initial_weights(hparams: dict) -> dict:
    """What training with these settings starts from: the reference's fresh model (its ``seed`` draws the
    initialisation, as in the student's ``MAML``) and what moves each of its weights.

    Returns:
        weights: ``MAML.weights()`` before any step;
        moved_by: name -> "optimiser" (a trainable variable), "statistics" (a running batch-norm statistic)
            or "nothing";
        beta_1, beta_2: the outer optimiser's (Adam's) decay rates.
    """
    maml, _ = modules()
    model = maml.build_maml(hparams)
    trainable = {variable.ref() for variable in model.trainable_variables}
    moved_by = {name: "optimiser" if variable.ref() in trainable else
                "statistics" if name.startswith("bn/") else "nothing"
                for name, variable in model.weight_variables().items()}
    return {"weights": model.weights(), "moved_by": moved_by, "beta_1": float(model.optimizer.beta_1),
            "beta_2": float(model.optimizer.beta_2)}


def _load_arrays(model, weights: dict) -> None:
    """Loads arrays by name into ``model`` through ``load_weights``, which checks every name and shape.

    Raises:
        ValueError, KeyError, OSError: the arrays do not fit the model (the message says how).
    """
    with tempfile.TemporaryDirectory(prefix="grader-weights-") as folder:
        np.savez(Path(folder) / "weights.npz", **{name: np.asarray(value) for name, value in weights.items()})
        model.load_weights(Path(folder) / "weights.npz")


_REPLAY: dict = {}  # the replay in progress in this worker: "key" (its settings), "model", "sampler", "next" iteration


def replay_chunk(hparams: dict, start: int, steps: int, weights: dict | None) -> dict:
    """The reference's own steps over one chunk of a training run, from the weights the run had when it began.

    A replay trains as the run did (a fresh model, split "train", seed ``hparams["seed"]``, task batch i at step
    i, as ``probes_hidden.train``), one chunk per call in order, except that every chunk starts from the run's own
    weights at its first iteration: Adam's moments and step count are the replay's own, built from the
    reference's gradients along the way (nothing of the student's process but its weights is used). For a
    correct implementation each chunk of the replay moves the weights the way the run did (the reference's own
    run: exactly). The model stays in this worker between calls; a call with ``start`` 0 begins a new replay.

    Args:
        hparams: a ``hparams.json`` record (``build_maml``'s argument) with the run's seed.
        start: the chunk's first iteration: 0, or where the previous call's chunk ended.
        steps: how many steps the chunk has.
        weights: the run's weights (name -> array) at ``start``, or None for the initialisation.

    Returns:
        {"weights": ``MAML.weights()`` after the chunk's steps}, or {"error": why ``weights`` do not fit the model}.

    Raises:
        ValueError: the chunk does not follow the previous one of the same replay.
    """
    import load_data

    key = json.dumps(hparams, sort_keys=True)
    if start == 0:
        _REPLAY.clear()
        gc.collect()
        maml, _ = modules()
        _REPLAY.update(key=key, model=maml.build_maml(hparams), next=0, sampler=load_data.TaskSampler(
            _omniglot(), "train", hparams["num_way"], hparams["num_support"], hparams["num_query"],
            seed=hparams["seed"]))
    elif _REPLAY.get("key") != key or _REPLAY["next"] != start:
        raise ValueError(f"chunks must follow each other: a chunk at iteration {start}, after "
                         + (f"one that ended at {_REPLAY['next']}" if _REPLAY.get("key") == key else "none"))
    model = _REPLAY["model"]
    if weights is not None:
        try:
            _load_arrays(model, weights)
        except (ValueError, KeyError, OSError) as error:
            return {"error": f"the weights after iteration {start}: {error}"}
    for iteration in range(start, start + steps):
        model.train_step(_REPLAY["sampler"].batch(iteration, hparams["meta_batch_size"]))
    _REPLAY["next"] = start + steps
    return {"weights": model.weights()}


def transfer_accuracy(frozen: dict, tasks: dict, num_steps: int, learning_rate: float) -> dict:
    """Query accuracy {"mean", "ci"} of the reference's transfer_learn with these frozen features."""
    maml, transfer = modules()
    frozen = {name: np.asarray(value, np.float32) for name, value in frozen.items()}
    _, query = transfer.TransferEvaluator(tasks["num_way"], num_steps, learning_rate)(frozen, _tasks(tasks))
    from scaffold import mean_and_ci95

    mean, ci = mean_and_ci95(query)
    return {"mean": mean, "ci": ci}


def head_accuracies(frozen: dict, tasks: dict, heads: list) -> dict:
    """Query accuracy of each task's head (as the student's code returned it) on the frozen features.

    Returns:
        {"accuracies": (count,) array}, or {"error": what is wrong with a head}.
    """
    import tensorflow as tf

    from grader import compare

    maml, transfer = modules()
    constants = {name: tf.constant(np.asarray(value, np.float32)) for name, value in frozen.items()}
    accuracies = []
    for i, (task, head) in enumerate(zip(_tasks(tasks), heads)):
        if not isinstance(head, dict) or sorted(head) != ["b4", "w4"]:
            return {"error": f"the head of task {i} should be a dict with keys 'b4' and 'w4'"}
        num_way = int(task.labels_support.max()) + 1
        try:
            arrays = {"w4": compare.assert_shape(head["w4"], (constants["b3"].shape[0], num_way), f"task {i}'s w4"),
                      "b4": compare.assert_shape(head["b4"], (num_way,), f"task {i}'s b4")}
        except AssertionError as error:
            return {"error": str(error)}
        features = transfer.extract_features(tf.constant(task.images_query), constants)
        logits = transfer.head_logits(features, {k: tf.constant(v, tf.float32) for k, v in arrays.items()})
        accuracies.append(float(maml.accuracy(logits, tf.constant(task.labels_query))))
    return {"accuracies": np.array(accuracies)}


@continues_random_state
def training_steps(inputs: dict, batches: list[dict]) -> dict:
    """The reference's ``outer_loop`` in the harness the student's is timed with (``probes_hidden``)."""
    from instructor.autograder.tests import probes_hidden

    maml, _ = modules()
    return probes_hidden.training_steps(maml, inputs, batches)


def facts() -> dict:
    """What the hidden tests need of the reference before any student code runs (stored by make_fixtures).

    Returns:
        assignment: ``python maml.py``'s hyper-parameters (hparams.json record);
        mamlpp: ``python maml.py --mamlpp``'s;
        val_seed, transfer_steps, transfer_lr, feature_keys, mamlpp_techniques (keys), mamlpp_settings;
        feature_shapes: name -> shape of each conv-4 feature layer.
    """
    import settings
    import training

    maml, transfer = modules()
    initial = maml.init_parameters(1)
    return {
        "assignment": settings.record(settings.ASSIGNMENT),
        "mamlpp": settings.record(training.parse(["--mamlpp"])[1]),
        "val_seed": training.VAL_SEED, "transfer_steps": transfer.TRANSFER_STEPS, "transfer_lr": transfer.TRANSFER_LR,
        "feature_keys": list(transfer.FEATURE_KEYS), "mamlpp_techniques": list(settings.MAMLPP_TECHNIQUES),
        "mamlpp_settings": list(settings.MAMLPP_SETTINGS),
        "feature_shapes": {name: list(initial[name].shape) for name in transfer.FEATURE_KEYS},
    }


def pretrained_features(num_steps: int, seed: int = 0, batch_size: int = 128, learning_rate: float = 1e-3,
                        num_filters: int | None = None) -> dict[str, np.ndarray]:
    """conv0..3 and b0..3 after ``num_steps`` minibatches of the reference's pre-training (as ``pretrain``),
    float32; ``num_filters`` (default: the assignment's) makes a smaller network, as the transfer fixtures'."""
    import tensorflow as tf

    maml, transfer = modules()
    stream = transfer.MinibatchStream(*transfer.pretraining_data(_omniglot()), batch_size, seed)
    num_filters = maml.NUM_FILTERS if num_filters is None else num_filters
    parameters = {name: tf.Variable(value) for name, value in
                  maml.init_parameters(transfer.NUM_TRAIN_CLASSES, num_filters, seed=seed).items()}
    optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate)
    optimizer.build(list(parameters.values()))

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = maml.cross_entropy(maml.forward(images, parameters), labels)
        variables = list(parameters.values())
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for i in range(num_steps):
        step(*stream.batch(i))
    return {name: parameters[name].numpy() for name in transfer.FEATURE_KEYS}
