"""What ``class MAML`` relies on and you do not write: the compiled outer step, evaluation, weight files.

Provided; you do not need to change anything here. ``maml.MAML`` derives from
``MetaLearner``, which turns your ``outer_loop`` into

* ``train_step``: one Adam step on the gradient of ``outer_loop(tasks, train=True)``,
  compiled with ``tf.function`` (``GraphOrEager`` falls back to eager execution,
  with one warning, if your code cannot be traced);
* ``evaluate``: per-task accuracies of ``outer_loop([task], train=False)``, one
  compiled loop over the tasks (``evaluate_in_chunks``, also used by ``maml_transfer.py``);
* ``save_weights`` / ``load_weights``: an ``.npz`` file, written atomically,
  checked name by name and shape by shape when read.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

import load_data


class GraphOrEager:
    """Calls ``fn`` as a ``tf.function``; if it cannot be traced, runs it eagerly.

    The fallback is decided on the first call only: if tracing or running the
    graph fails but the eager call succeeds, one warning explains why and every
    later call runs eagerly (slower, but it works). If the eager call fails too,
    its error is the real one and is raised as is.
    """

    def __init__(self, fn: Callable, what: str,
                 hint: str = "inside inner_loop/outer_loop"):
        self.fn = fn
        self.what = what
        self.hint = hint
        self.graph_fn = tf.function(fn)
        self.eager = False
        self.first_call_done = False

    def __call__(self, *args, **options):
        if self.eager:
            return self.fn(*args, **options)
        if self.first_call_done:
            return self.graph_fn(*args, **options)
        try:
            result = self.graph_fn(*args, **options)
        except Exception as graph_error:  # noqa: BLE001 - decided by the eager retry below
            result = self.fn(*args, **options)
            self.eager = True
            warnings.warn(
                f"{self.what} cannot run inside tf.function, so it runs eagerly (slower). "
                f"Graph error: {type(graph_error).__name__}: {str(graph_error).strip().splitlines()[0]}. "
                f"Typical causes: .numpy() or Python `if` on tensor values {self.hint}.",
                RuntimeWarning, stacklevel=2,
            )
        self.first_call_done = True
        return result


def as_tensors(task_batch: Sequence[load_data.Task]) -> list[tuple[tf.Tensor, ...]]:
    """Numpy tasks -> tuples of tensors, the input of the compiled training step."""
    return [tuple(tf.convert_to_tensor(part) for part in task) for task in task_batch]


EVAL_CHUNK_SIZE = 100  # tasks per compiled evaluation call: all 100 validation tasks at once


def map_over_tasks(one_task: Callable[[tuple[tf.Tensor, ...]], tuple[tf.Tensor, tf.Tensor]],
                   stacked: tuple[tf.Tensor, ...],
                   output_signature: tuple[tf.TensorSpec, tf.TensorSpec]) -> tuple[tf.Tensor, tf.Tensor]:
    """``one_task`` on every task of ``stacked``, as one loop (``tf.map_fn``).

    Traced for one task, not unrolled per task; inside ``tf.function`` two tasks
    run at a time (two cores busy); eagerly, a plain loop over the tasks. Every task runs
    the same ops as it would alone, so the results do not depend on the chunk.

    Args:
        one_task: one task (images_support, labels_support, images_query, labels_query)
            -> (support, query) accuracies of that task.
        stacked: the four parts of T tasks, each with a leading axis of T.
        output_signature: ``one_task``'s outputs, as ``tf.TensorSpec``.

    Returns:
        (support, query), with one row per task.
    """
    if tf.executing_eagerly():  # a plain loop: an error in the student's code is raised as it is, not
        # rewrapped by the autograph conversion tf.map_fn applies even eagerly (the eager fallback's point)
        rows = [one_task(tuple(part[i] for part in stacked)) for i in range(int(stacked[0].shape[0]))]
        return tuple(tf.stack([row[k] for row in rows]) for k in range(len(output_signature)))
    return tf.map_fn(lambda i: one_task(tuple(part[i] for part in stacked)), tf.range(tf.shape(stacked[0])[0]),
                     parallel_iterations=2, fn_output_signature=output_signature)


def evaluate_in_chunks(evaluate: Callable, tasks: Sequence[load_data.Task], chunk_size: int = EVAL_CHUNK_SIZE,
                       progress: bool = False, desc: str = "evaluate") -> tuple[np.ndarray, np.ndarray]:
    """Runs a compiled per-task evaluation over ``tasks``, ``chunk_size`` tasks per call.

    Each call gets the tasks stacked into four tensors (``map_over_tasks``). With
    more tasks than ``chunk_size`` the last chunk is padded with copies of its
    last task (and their results dropped), so every call has the same shape and
    the graph is traced once.

    Args:
        evaluate: the four stacked parts of up to ``chunk_size`` tasks -> (support, query)
            tensors with one row per task.
        tasks: the tasks, numpy.

    Returns:
        (support, query), numpy, one row per task of ``tasks``.
    """
    from tqdm import tqdm

    size = min(chunk_size, len(tasks))
    support, query = [], []
    for start in tqdm(range(0, len(tasks), size), desc=desc, leave=False, disable=not progress):
        chunk = list(tasks[start:start + size])
        real = len(chunk)
        chunk += chunk[-1:] * (size - real)
        s, q = evaluate(*(tf.constant(np.stack(part)) for part in zip(*chunk)))
        support.append(s.numpy()[:real])
        query.append(q.numpy()[:real])
    return np.concatenate(support), np.concatenate(query)


def mean_and_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its 95 % confidence interval (normal approximation)."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(len(values)))


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Writes ``arrays`` to an ``.npz`` file atomically."""
    with load_data.atomic_output(path) as tmp, open(tmp, "wb") as out:
        np.savez(out, **arrays)


class MetaLearner:
    """The provided half of a meta-learner: outer step, evaluation, weights and checkpoint state.

    A subclass defines ``meta_parameters``, ``inner_lrs``, ``optimizer``,
    ``num_way``, ``trainable_variables`` and ``outer_loop(task_batch, train)``.
    MAML++ changes the outer step through two hooks: ``step_options`` (Python
    values passed on to ``outer_loop``, one compiled graph per combination) and
    ``may_lack_gradient``.
    """

    # ------------------------------------------------------------- outer step

    @functools.cached_property
    def _train_step(self) -> GraphOrEager:
        return GraphOrEager(self._train_step_eager, "the training step (outer_loop with train=True)")

    @functools.cached_property
    def _evaluate(self) -> GraphOrEager:
        return GraphOrEager(self._evaluate_eager, "evaluation (outer_loop with train=False)")

    def step_options(self) -> dict:
        """Keyword arguments of ``outer_loop`` in the next training step (none for MAML)."""
        return {}

    def may_lack_gradient(self) -> list[tf.Variable]:
        """Trainable variables whose missing gradient means zero rather than a mistake (none for MAML)."""
        return []

    def _train_step_eager(self, task_batch, **options):
        with tf.GradientTape() as tape:
            outer_loss, accuracies_support, accuracy_query = self.outer_loop(task_batch, train=True, **options)
        variables = self.trainable_variables
        gradients = tape.gradient(outer_loss, variables)
        zero_if_missing = {v.ref() for v in self.may_lack_gradient()}
        gradients = [tf.zeros_like(v) if g is None and v.ref() in zero_if_missing else g
                     for v, g in zip(variables, gradients)]
        missing = [v.name for v, g in zip(variables, gradients) if g is None]
        if missing:
            raise ValueError(
                f"outer_loss does not depend on {missing}: the adapted parameters must be computed "
                f"from self.meta_parameters (and self.inner_lrs) with TensorFlow ops, without .numpy()."
            )
        self.optimizer.apply_gradients(zip(gradients, variables))
        return outer_loss, accuracies_support, accuracy_query

    def train_step(self, task_batch: Sequence[load_data.Task]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """One outer step: Adam on the gradient of ``outer_loop(task_batch, train=True)``.

        Returns ``outer_loop``'s three outputs (before the update).
        """
        return self._train_step(as_tensors(task_batch), **self.step_options())

    # ------------------------------------------------------------- evaluation

    def _evaluate_eager(self, *stacked):
        def one_task(task):
            _, accuracies_support, accuracy_query = self.outer_loop([task], train=False)
            return accuracies_support, accuracy_query

        return map_over_tasks(one_task, stacked, (tf.TensorSpec([self.num_inner_steps + 1], tf.float32),
                                                  tf.TensorSpec([], tf.float32)))

    def evaluate(self, tasks: Sequence[load_data.Task], chunk_size: int = EVAL_CHUNK_SIZE,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per-task accuracies after adaptation, without changing anything.

        Every task goes through ``outer_loop([task], train=False)`` on its own,
        inside one compiled loop per ``chunk_size`` tasks (``evaluate_in_chunks``).

        Returns:
            accuracies_support: (len(tasks), num_inner_steps + 1) float32.
            accuracies_query: (len(tasks),) float32.
        """
        return evaluate_in_chunks(self._evaluate, tasks, chunk_size, progress)

    # ---------------------------------------------------------------- weights

    def weight_variables(self) -> dict[str, tf.Variable]:
        """What a weights file holds: meta-parameters and "inner_lr/<name>" inner learning rates."""
        return {**self.meta_parameters, **{f"inner_lr/{name}": v for name, v in self.inner_lrs.items()}}

    def checkpoint_state(self) -> dict:
        """What a training checkpoint holds besides the iteration counter."""
        return {"meta_parameters": self.meta_parameters, "inner_lrs": self.inner_lrs, "optimizer": self.optimizer}

    def weights(self) -> dict[str, np.ndarray]:
        """``weight_variables`` as numpy arrays."""
        return {name: v.numpy() for name, v in self.weight_variables().items()}

    def save_weights(self, path: str | os.PathLike) -> None:
        """Writes ``weights()`` to an ``.npz`` file atomically."""
        save_arrays(path, self.weights())

    def load_weights(self, path: str | os.PathLike) -> None:
        """Loads an ``.npz`` written by ``save_weights``; checks every name and shape."""
        try:
            with np.load(path) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError) as error:
            raise ValueError(f"{path} is not a weights file written by save_weights ({error}).") from error
        expected = self.weights()
        missing = sorted(set(expected) - set(arrays))
        extra = sorted(set(arrays) - set(expected))
        wrong = {n: (arrays[n].shape, expected[n].shape) for n in expected
                 if n in arrays and arrays[n].shape != expected[n].shape}
        if missing or extra or wrong:
            raise ValueError(
                f"{path} does not fit this model (num_way={self.num_way}): "
                + "; ".join(part for part in (
                    f"missing {missing}" if missing else "",
                    f"unexpected {extra}" if extra else "",
                    ", ".join(f"{n} has shape {got}, expected {want}" for n, (got, want) in wrong.items()),
                ) if part)
            )
        for name, variable in self.weight_variables().items():
            variable.assign(arrays[name])
