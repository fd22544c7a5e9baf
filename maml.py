"""Model-agnostic meta-learning (MAML) for few-shot Omniglot, in TensorFlow 2.

Assignment 2, part 1. You complete two methods of ``class MAML``:

* ``MAML.inner_loop``: adapt the meta-parameters to one task's support set with
  a few steps of gradient descent;
* ``MAML.outer_loop``: the MAML objective on a batch of tasks, i.e. the query
  loss *after* adaptation, averaged over the tasks.

Everything else is provided: the model (``_forward``), the training step that
differentiates your ``outer_loop`` with respect to the meta-parameters, and a
training program that validates, plots, checkpoints and saves weights.

Background. MAML (Finn, Abbeel & Levine, ICML 2017) learns initial parameters
theta such that a few gradient steps on a new task's support set give parameters
phi that do well on that task's query set:

    phi_i     = theta - alpha * grad_theta L_support_i(theta)      (one inner step)
    objective = mean_i L_query_i(phi_i)                             (outer loss)
    theta    <- Adam step on grad_theta objective                   (outer step)

Full MAML differentiates through the inner steps (second-order terms).
First-order MAML (FO-MAML), this assignment's default, treats the inner
gradients as constants, so d phi_i / d theta = I and the meta-gradient is the
query-loss gradient at phi_i. It is cheaper and, on Omniglot, about as accurate.

Usage:
    python maml.py                      # train with the assignment's settings
    python maml.py --test --log-dir D   # accuracy on 600 test tasks, 95 % CI
    python maml.py --help
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

import load_data

NUM_CONV_LAYERS = 4
NUM_FILTERS = 64
KERNEL_SIZE = 3
BN_EPSILON = 1e-5
VAL_SEED = 1  # task streams: training uses --seed, validation and test fixed seeds
TEST_SEED = 2

Parameters = dict  # dict[str, tf.Tensor | tf.Variable], see init_parameters


# ------------------------------------------------------------------------ model


def init_parameters(num_way: int, num_filters: int = NUM_FILTERS, seed: int = 0,
                    dtype: tf.DType = tf.float32) -> dict[str, tf.Tensor]:
    """Initial parameters of the conv-4 network, reproducible from ``seed``.

    Conv kernels and the head use Glorot-uniform initialisation, biases are zero.

    Returns:
        dict of tensors of ``dtype``:
            "conv0": (3, 3, 1, F)   "b0": (F,)
            "conv1": (3, 3, F, F)   "b1": (F,)
            "conv2": (3, 3, F, F)   "b2": (F,)
            "conv3": (3, 3, F, F)   "b3": (F,)
            "w4":    (F, num_way)   "b4": (num_way,)
        with F = num_filters.
    """
    rng = np.random.default_rng(seed)

    def glorot(shape, fan_in, fan_out):
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return tf.constant(rng.uniform(-limit, limit, shape), dtype)

    parameters = {}
    in_channels = 1
    area = KERNEL_SIZE * KERNEL_SIZE
    for i in range(NUM_CONV_LAYERS):
        shape = (KERNEL_SIZE, KERNEL_SIZE, in_channels, num_filters)
        parameters[f"conv{i}"] = glorot(shape, area * in_channels, area * num_filters)
        parameters[f"b{i}"] = tf.zeros((num_filters,), dtype)
        in_channels = num_filters
    parameters[f"w{NUM_CONV_LAYERS}"] = glorot((num_filters, num_way), num_filters, num_way)
    parameters[f"b{NUM_CONV_LAYERS}"] = tf.zeros((num_way,), dtype)
    return parameters


def batch_norm(x: tf.Tensor) -> tf.Tensor:
    """Normalises each channel with the statistics of this batch (no running stats).

    The mean and variance are computed by hand rather than with ``tf.nn.moments``:
    that op stops the gradient through the mean inside its variance, which leaves
    first-order gradients right but makes second-order gradients wrong.

    Args:
        x: (batch, height, width, channels).

    Returns:
        Same shape and dtype, zero mean and unit variance per channel.
    """
    mean = tf.reduce_mean(x, axis=[0, 1, 2], keepdims=True)
    variance = tf.reduce_mean(tf.square(x - mean), axis=[0, 1, 2], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + BN_EPSILON)


def features(images: tf.Tensor, parameters: Parameters) -> tf.Tensor:
    """The convolutional part of the network: one feature vector per image.

    Four blocks of [3x3 conv, stride 2, SAME padding -> batch norm with batch
    statistics -> + b{i} -> ReLU], 28 -> 14 -> 7 -> 4 -> 2 pixels, then the mean
    over space. ``b{i}`` is added *after* normalisation (it is batch norm's
    shift): a bias before batch norm would be cancelled by the mean subtraction.

    Args:
        images: (batch, 28, 28, 1), same float dtype as the parameters.
        parameters: dict with at least ``conv0..conv3`` and ``b0..b3`` (see
            ``init_parameters``); tensors or variables. Other keys are ignored.

    Returns:
        (batch, F) features, F = 64 filters; non-negative (after a ReLU).
    """
    x = images
    for i in range(NUM_CONV_LAYERS):
        x = tf.nn.conv2d(x, parameters[f"conv{i}"], strides=2, padding="SAME")
        x = tf.nn.relu(batch_norm(x) + parameters[f"b{i}"])
    return tf.reduce_mean(x, axis=[1, 2])


def _forward(images: tf.Tensor, parameters: Parameters) -> tf.Tensor:
    """The conv-4 network of the MAML paper for Omniglot, as a pure function.

    ``features`` (four conv / batch-norm / ReLU blocks and the mean over space)
    followed by the linear head ``w4``, ``b4``. Nothing here keeps state, so the
    same function evaluates the meta-parameters and any adapted copy of them.

    Args:
        images: (batch, 28, 28, 1), same float dtype as the parameters.
        parameters: dict with the keys and shapes of ``init_parameters``;
            tensors or variables.

    Returns:
        logits: (batch, num_way), unnormalised class scores.
    """
    x = features(images, parameters)
    return tf.matmul(x, parameters[f"w{NUM_CONV_LAYERS}"]) + parameters[f"b{NUM_CONV_LAYERS}"]


def cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean softmax cross-entropy. logits (n, N) float, labels (n,) int32 -> scalar."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def accuracy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Fraction of correct predictions. logits (n, N), labels (n,) int32 -> float32 scalar."""
    predictions = tf.argmax(logits, axis=-1, output_type=labels.dtype)
    return tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32))


# ------------------------------------------------------------------------ MAML


class MAML:
    """MAML with the conv-4 network: meta-parameters, inner loop and outer loop.

    Attributes:
        meta_parameters: dict[str, tf.Variable], the initialisation theta that is
            meta-learned; keys and shapes as in ``init_parameters``.
        inner_lrs: dict[str, tf.Variable], one scalar inner learning rate per
            parameter, all ``inner_lr`` at the start; trainable (learned by the
            outer optimiser) only when ``learn_inner_lrs`` is True.
        num_inner_steps: int, gradient steps of the inner loop.
        first_order: bool, True for first-order MAML (the default).
        optimizer: Adam with learning rate ``outer_lr`` for the outer step.
    """

    def __init__(self, num_way: int, num_inner_steps: int = 5, inner_lr: float = 0.4,
                 learn_inner_lrs: bool = False, outer_lr: float = 1e-3,
                 first_order: bool = True, seed: int = 0, dtype: tf.DType = tf.float32):
        if num_inner_steps < 0:
            raise ValueError(f"num_inner_steps must be >= 0, got {num_inner_steps}")
        self.num_way = num_way
        self.num_inner_steps = num_inner_steps
        self.first_order = first_order
        self.learn_inner_lrs = learn_inner_lrs
        self.meta_parameters = {
            name: tf.Variable(value, name=name)
            for name, value in init_parameters(num_way, seed=seed, dtype=dtype).items()
        }
        self.inner_lrs = {
            name: tf.Variable(tf.constant(inner_lr, dtype), trainable=learn_inner_lrs, name=f"inner_lr_{name}")
            for name in self.meta_parameters
        }
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=outer_lr)
        # Create Adam's slots now: variables created inside the first tf.function call
        # would make it trace twice.
        self.optimizer.build(self.trainable_variables)
        self._train_step = GraphOrEager(self._train_step_eager, "the training step (outer_loop with train=True)")
        self._evaluate = GraphOrEager(self._evaluate_eager, "evaluation (outer_loop with train=False)")

    @property
    def trainable_variables(self) -> list[tf.Variable]:
        """What the outer step updates: the meta-parameters (and learned inner lrs)."""
        variables = list(self.meta_parameters.values())
        if self.learn_inner_lrs:
            variables += list(self.inner_lrs.values())
        return variables

    def inner_loop(self, images: tf.Tensor, labels: tf.Tensor, train: bool) -> tuple[Parameters, tf.Tensor]:
        """Adapts the meta-parameters to one task's support set.

        Take ``self.num_inner_steps`` steps of plain gradient descent on the
        support loss, starting from ``self.meta_parameters``:

            phi_0     = theta                          (the meta-parameters)
            phi_{s+1} = phi_s - lr[name] * grad L_support(phi_s)   for every name

        where ``L_support = cross_entropy(_forward(images, phi), labels)`` and
        ``lr[name]`` is ``self.inner_lrs[name]`` (use these variables, not a
        float, so that learned inner learning rates also work).

        Use a ``tf.GradientTape`` for each step: ``tape.watch`` the parameters
        of that step (after the first step they are plain tensors, which a tape
        does not watch by itself), compute the loss inside the tape, and get
        the gradient of every parameter with ``tape.gradient(loss, parameters)``
        (a dict in, a dict out).

        First order or second order: when ``self.first_order`` is True, or when
        ``train`` is False (nobody will differentiate through this call), wrap
        each inner gradient in ``tf.stop_gradient`` so the outer tape treats it
        as a constant. Otherwise keep it: the outer tape then differentiates
        through the inner updates (second-order MAML).

        Do NOT:
            * modify ``self.meta_parameters`` (no ``assign``): build a new dict
              of tensors for every step; the meta-parameters only change in the
              outer step, which the scaffold takes;
            * use a Keras optimiser or Keras layers: the update is plain
              arithmetic on tensors, so the outer tape can see through it;
            * touch the query set: this method never sees it.

        Args:
            images: support images, (N*K, 28, 28, 1), dtype of the parameters.
            labels: support labels, (N*K,), int32, values in [0, N).
            train: True when the caller differentiates through the result
                (the training step), False for evaluation.

        Returns:
            parameters: dict with the keys and shapes of ``self.meta_parameters``,
                the adapted parameters phi after the last step (tensors).
            accuracies: float32 tensor of shape (num_inner_steps + 1,): support
                accuracy before each step, then after the last step. Entry 0
                is the accuracy of the meta-parameters themselves.
        """
        # BEGIN SOLUTION
        parameters = dict(self.meta_parameters)
        accuracies = []
        for _ in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(parameters)
                logits = _forward(images, parameters)
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            gradients = tape.gradient(loss, parameters)
            if self.first_order or not train:
                gradients = {name: tf.stop_gradient(g) for name, g in gradients.items()}
            parameters = {
                name: value - self.inner_lrs[name] * gradients[name]
                for name, value in parameters.items()
            }
        accuracies.append(accuracy(_forward(images, parameters), labels))
        return parameters, tf.stack(accuracies)
        # END SOLUTION

    def outer_loop(self, task_batch: Sequence[load_data.Task], train: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The MAML objective on a batch of tasks, and metrics.

        For every task: adapt with ``self.inner_loop`` on its support set, then
        evaluate the *adapted* parameters on its query set:

            outer_loss = mean over tasks of cross_entropy(_forward(images_query, phi_i), labels_query)

        Use the mean over tasks, not the sum (the learning rate of the outer
        optimiser assumes a mean). Each task adapts from the meta-parameters
        afresh: nothing of one task's adaptation may carry over to the next.
        Do not compute gradients or apply updates here: the scaffold's training
        step wraps this call in a ``tf.GradientTape`` and takes the outer step.

        Args:
            task_batch: sequence of B tasks, each a tuple
                (images_support (N*K, 28, 28, 1) float,
                 labels_support (N*K,) int32,
                 images_query (N*Q, 28, 28, 1) float,
                 labels_query (N*Q,) int32).
            train: passed on to ``inner_loop``.

        Returns:
            outer_loss: scalar tensor, mean query loss after adaptation.
            accuracies_support: float32 tensor of shape (num_inner_steps + 1,),
                ``inner_loop``'s support accuracies averaged over tasks.
            accuracy_query: float32 scalar tensor, query accuracy after
                adaptation averaged over tasks.
        """
        # BEGIN SOLUTION
        outer_losses, accuracies_support, accuracies_query = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            parameters, accuracies = self.inner_loop(images_support, labels_support, train)
            logits = _forward(images_query, parameters)
            outer_losses.append(cross_entropy(logits, labels_query))
            accuracies_support.append(accuracies)
            accuracies_query.append(accuracy(logits, labels_query))
        return (
            tf.reduce_mean(tf.stack(outer_losses)),
            tf.reduce_mean(tf.stack(accuracies_support), axis=0),
            tf.reduce_mean(tf.stack(accuracies_query)),
        )
        # END SOLUTION

    # -------------------------------------------------- provided: outer step, evaluation

    def _train_step_eager(self, task_batch):
        with tf.GradientTape() as tape:
            outer_loss, accuracies_support, accuracy_query = self.outer_loop(task_batch, train=True)
        variables = self.trainable_variables
        gradients = tape.gradient(outer_loss, variables)
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
        return self._train_step(as_tensors(task_batch))

    def _evaluate_eager(self, task_batch):
        results = [self.outer_loop([task], train=False) for task in task_batch]
        return tf.stack([r[1] for r in results]), tf.stack([r[2] for r in results])

    def evaluate(self, tasks: Sequence[load_data.Task], chunk_size: int = 8,
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per-task accuracies after adaptation, without changing anything.

        Tasks go through ``outer_loop([task], train=False)`` one by one, in
        compiled chunks of ``chunk_size`` (the last one padded) so the graph is
        traced once.

        Returns:
            accuracies_support: (len(tasks), num_inner_steps + 1) float32.
            accuracies_query: (len(tasks),) float32.
        """
        from tqdm import tqdm

        support, query = [], []
        for start in tqdm(range(0, len(tasks), chunk_size), desc="evaluate", leave=False,
                          disable=not progress):
            chunk = list(tasks[start:start + chunk_size])
            real = len(chunk)
            chunk += chunk[-1:] * (chunk_size - real)
            s, q = self._evaluate(as_tensors(chunk))
            support.append(s.numpy()[:real])
            query.append(q.numpy()[:real])
        return np.concatenate(support), np.concatenate(query)

    # ---------------------------------------------------------------- weights

    def weights(self) -> dict[str, np.ndarray]:
        """Meta-parameters and inner learning rates as numpy arrays."""
        arrays = {name: v.numpy() for name, v in self.meta_parameters.items()}
        arrays.update({f"inner_lr/{name}": v.numpy() for name, v in self.inner_lrs.items()})
        return arrays

    def save_weights(self, path: str | os.PathLike) -> None:
        """Writes ``weights()`` to an ``.npz`` file atomically."""
        with load_data.atomic_output(path) as tmp, open(tmp, "wb") as out:
            np.savez(out, **self.weights())

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
        for name, variable in {**self.meta_parameters,
                               **{f"inner_lr/{n}": v for n, v in self.inner_lrs.items()}}.items():
            variable.assign(arrays[name])


# ==== Extra credit: MAML++ ===================================================
#
# Everything between this banner and "End of extra credit: MAML++" is the extra
# credit. The base assignment does not depend on it: `python maml.py` trains
# plain FO-MAML unless a MAML++ flag is given (`python maml.py --help`, group
# "extra credit"), and class MAML above is unchanged by it.
#
# You complete the methods of MAMLPlusPlus that hold a TODO. Variables,
# weights, checkpoints and the compiled training step are provided.

BN_MOMENTUM = 0.1  # per-step running statistics: r <- (1 - m) r + m * (batch statistic)
MSL_MIN_WEIGHT = 0.03  # MSL: non-final importances never drop below this / num_inner_steps

# hparams key -> the paper's name of the technique it switches on
MAMLPP_TECHNIQUES = {
    "multi_step_loss": "MSL",
    "per_step_inner_lrs": "LSLR",
    "per_step_bn_stats": "BNRS",
    "per_step_bn_weights": "BNWB",
    "derivative_annealing": "DA",
    "cosine_outer_lr": "CA",
}
MAMLPP_SETTINGS = ("msl_iterations", "da_iterations", "min_outer_lr")


class MAMLPlusPlus(MAML):
    """MAML++ (Antoniou, Edwards & Storkey, "How to train your MAML", ICLR 2019).

    Six changes to MAML that make its training stable, each switched on by its
    own argument. With all of them off, this class computes exactly what
    ``MAML`` computes.

    Notation: S = ``num_inner_steps``; phi_0 = theta (the meta-parameters) and
    phi_s = the parameters after s inner steps. *Step index* s (0..S) names
    the network evaluated with phi_s: the support forward pass of inner step s
    and the query forward pass after s steps both use the per-step batch-norm
    variables of index s. t = the outer iteration, ``optimizer.iterations``
    (an int64 variable, checkpointed with the optimiser): the number of outer
    steps taken so far.

    * MSL, ``multi_step_loss``: for iterations t < ``msl_iterations`` the outer
      loss of a task is sum_{s=1..S} v_{s-1}(t) * L_query(phi_s), where the
      importance vector v(t) starts uniform and is annealed toward the last
      step (``importance_vector``); after that, MAML's L_query(phi_S). Only in
      training; validation and test report the query loss and accuracy of phi_S.
    * LSLR, ``per_step_inner_lrs``: one learned inner learning rate per
      parameter tensor ("layer": conv{i}, b{i}, w4 and b4 each have their own)
      and per inner step, ``inner_lrs["{name}_step{s}"]``, meta-learned by Adam.
    * BNRS, ``per_step_bn_stats``: running mean and variance per conv layer and
      step index, updated from the batch statistics of every training forward
      pass, checkpointed and saved with the weights. As in the authors' code,
      normalisation itself always uses the batch's statistics (see
      ``batch_norm_step``).
    * BNWB, ``per_step_bn_weights``: a batch-norm scale gamma and shift beta per
      conv layer and step index, meta-learned (not adapted by the inner loop).
      The adapted bias b{i} is still added after them, so the inner loop adapts
      the same parameters as MAML's.
    * DA, ``derivative_annealing``: first-order meta-gradients for iterations
      0 .. ``da_iterations`` - 1, second-order after (requires
      ``first_order=False``).
    * CA, ``cosine_outer_lr``: Adam's learning rate follows a cosine from
      ``outer_lr`` at t = 0 to ``min_outer_lr`` at t = ``cosine_iterations``.

    Attributes (beyond MAML's):
        inner_lrs: dict[str, tf.Variable]. Without LSLR as in MAML (one scalar
            per parameter name). With LSLR one trainable scalar per parameter
            name and inner step, key "{name}_step{s}", s in 0..S-1.
        bn_weights: dict[str, tf.Variable], with BNWB "gamma{i}_step{s}"
            (ones) and "beta{i}_step{s}" (zeros), shape (F,), i in 0..3 (conv
            layer), s in 0..S (step index); trainable. Empty without BNWB.
        bn_stats: dict[str, tf.Variable], with BNRS "mean{i}_step{s}" (zeros)
            and "variance{i}_step{s}" (ones), shape (F,), not trainable (only
            ``batch_norm_step`` changes them). Empty without BNRS.
    """

    def __init__(self, num_way: int, num_inner_steps: int = 5, inner_lr: float = 0.4,
                 learn_inner_lrs: bool = False, outer_lr: float = 1e-3, first_order: bool = True,
                 seed: int = 0, dtype: tf.DType = tf.float32, *,
                 multi_step_loss: bool = False, msl_iterations: int = 100,
                 per_step_inner_lrs: bool = False, per_step_bn_stats: bool = False,
                 per_step_bn_weights: bool = False, derivative_annealing: bool = False,
                 da_iterations: int = 200, cosine_outer_lr: bool = False,
                 cosine_iterations: int = 1000, min_outer_lr: float = 1e-5):
        check_mamlpp_settings(dict(
            num_inner_steps=num_inner_steps, learn_inner_lrs=learn_inner_lrs, outer_lr=outer_lr,
            first_order=first_order, multi_step_loss=multi_step_loss, msl_iterations=msl_iterations,
            per_step_inner_lrs=per_step_inner_lrs, derivative_annealing=derivative_annealing,
            da_iterations=da_iterations, cosine_outer_lr=cosine_outer_lr,
            cosine_iterations=cosine_iterations, min_outer_lr=min_outer_lr))
        self.dtype = dtype
        self.multi_step_loss, self.msl_iterations = multi_step_loss, msl_iterations
        self.per_step_inner_lrs = per_step_inner_lrs
        self.per_step_bn_stats, self.per_step_bn_weights = per_step_bn_stats, per_step_bn_weights
        self.derivative_annealing, self.da_iterations = derivative_annealing, da_iterations
        self.cosine_outer_lr = cosine_outer_lr
        self.bn_weights: dict[str, tf.Variable] = {}  # before MAML.__init__, which reads trainable_variables
        self.bn_stats: dict[str, tf.Variable] = {}
        super().__init__(num_way, num_inner_steps, inner_lr, learn_inner_lrs, outer_lr, first_order, seed, dtype)

        channels = int(self.meta_parameters["b0"].shape[0])
        per_layer_and_step = [(i, s) for i in range(NUM_CONV_LAYERS) for s in range(num_inner_steps + 1)]
        if per_step_bn_weights:
            for i, s in per_layer_and_step:
                for kind, fill in (("gamma", tf.ones), ("beta", tf.zeros)):
                    name = f"{kind}{i}_step{s}"
                    self.bn_weights[name] = tf.Variable(fill((channels,), dtype), name=name)
        if per_step_bn_stats:
            for i, s in per_layer_and_step:
                for kind, fill in (("mean", tf.zeros), ("variance", tf.ones)):
                    name = f"{kind}{i}_step{s}"
                    self.bn_stats[name] = tf.Variable(fill((channels,), dtype), trainable=False, name=name)
        if per_step_inner_lrs:
            self.learn_inner_lrs = True  # MAML.trainable_variables then includes them
            self.inner_lrs = {
                f"{name}_step{s}": tf.Variable(tf.constant(inner_lr, dtype), name=f"inner_lr_{name}_step{s}")
                for name in self.meta_parameters for s in range(num_inner_steps)
            }
        # A fresh optimiser over the final variables (MAML.__init__ built one over its own).
        self.optimizer = tf.keras.optimizers.Adam(
            learning_rate=self.outer_learning_rate(outer_lr, cosine_iterations, min_outer_lr))
        self.optimizer.build(self.trainable_variables)

    @property
    def trainable_variables(self) -> list[tf.Variable]:
        """Meta-parameters, learned inner lrs (LSLR or learn_inner_lrs), per-step BN weights."""
        return super().trainable_variables + list(self.bn_weights.values())

    # ------------------------------------------------------------- techniques

    def importance_vector(self, iteration: int | tf.Tensor | None = None) -> tf.Tensor:
        """MSL: the weight of the query loss after each inner step, at an iteration.

        With S = ``num_inner_steps``, T = ``msl_iterations``, t = ``iteration``
        and the floor f = MSL_MIN_WEIGHT / S (Antoniou et al.'s schedule, with
        iterations in place of epochs):

            t < T:   v_s     = max(1/S - t / (S T), f)                 for s = 0 .. S-2
                     v_{S-1} = min(1/S + (S-1) t / (S T), 1 - (S-1) f)
            t >= T:  v = (0, ..., 0, 1)   (only the final loss: MAML's objective)

        So v is uniform at t = 0, moves weight linearly from the earlier steps
        to the last one, and sums to 1 at every t. Entry s weights the query
        loss of phi_{s+1}.

        Compute it with TensorFlow ops from ``iteration`` (no Python ``if`` on
        its value, no ``.numpy()``): the compiled training step calls this with
        the default, the live ``optimizer.iterations`` variable, and must not
        be retraced when it changes. ``tf.where`` picks between the two cases.

        Args:
            iteration: the outer iteration t, a Python int or an integer scalar
                tensor; None (the default) reads ``self.optimizer.iterations``.

        Returns:
            (S,) tensor of ``self.dtype``, non-negative, summing to 1.
        """
        # BEGIN SOLUTION
        steps = self.num_inner_steps
        t = tf.cast(self.optimizer.iterations if iteration is None else iteration, self.dtype)
        total = float(self.msl_iterations)
        floor = MSL_MIN_WEIGHT / steps
        earlier = tf.fill([steps - 1], tf.maximum(1.0 / steps - t / (steps * total), floor))
        last = tf.minimum(1.0 / steps + (steps - 1) * t / (steps * total), 1.0 - (steps - 1) * floor)
        annealed = tf.concat([earlier, tf.reshape(last, [1])], axis=0)
        return tf.where(t < total, annealed, tf.one_hot(steps - 1, steps, dtype=self.dtype))
        # END SOLUTION

    def inner_lr(self, name: str, step: int) -> tf.Variable:
        """LSLR: the learning rate of parameter ``name`` at inner step ``step``.

        Args:
            name: a key of ``self.meta_parameters``, e.g. "conv2".
            step: the inner step, a Python int in 0..S-1 (the update
                phi_{step+1} = phi_step - lr * gradient).

        Returns:
            the scalar variable: ``inner_lrs["{name}_step{step}"]`` with
            ``per_step_inner_lrs``, otherwise MAML's ``inner_lrs[name]``.
        """
        # BEGIN SOLUTION
        return self.inner_lrs[f"{name}_step{step}" if self.per_step_inner_lrs else name]
        # END SOLUTION

    def batch_norm_step(self, x: tf.Tensor, layer: int, step: int, train: bool) -> tf.Tensor:
        """BNRS and BNWB: batch norm of conv layer ``layer`` in the network of step index ``step``.

        Normalise with the statistics of this batch, per channel over batch,
        height and width, computed by hand as in ``batch_norm`` (so second
        derivatives stay exact):

            x_hat = (x - mean) / sqrt(variance + BN_EPSILON)

        With ``per_step_bn_weights`` return gamma * x_hat + beta, with
        gamma = ``bn_weights["gamma{layer}_step{step}"]`` and beta =
        ``bn_weights["beta{layer}_step{step}"]``; without it, x_hat.

        With ``per_step_bn_stats`` and ``train``, also update the running
        statistics of (layer, step), with m = BN_MOMENTUM:

            bn_stats["mean{layer}_step{step}"]     <- (1 - m) * itself + m * mean
            bn_stats["variance{layer}_step{step}"] <- (1 - m) * itself + m * variance

        using ``Variable.assign`` on ``tf.stop_gradient`` of the batch
        statistics (inside the compiled training step TensorFlow runs the
        assignments in program order). Evaluation (``train`` False) updates
        nothing. The running statistics are kept, checkpointed and saved with
        the weights, but not used to normalise, as in the authors' code (its
        batch norm always normalises with the batch): the inner loop must see
        the same normalisation at evaluation as in meta-training. (Normalising
        evaluation with them instead, the inner loop no longer adapts and
        validation accuracy falls to chance; try it.)

        Args:
            x: (batch, height, width, F) conv output, dtype ``self.dtype``.
            layer: conv layer, Python int in 0..3.
            step: step index, Python int in 0..S (Python ints pick variables
                while tracing; they never change within one graph).
            train: True in the training step, False in evaluation.

        Returns:
            Same shape and dtype as ``x``.
        """
        # BEGIN SOLUTION
        key = f"{layer}_step{step}"
        mean = tf.reduce_mean(x, axis=[0, 1, 2])
        variance = tf.reduce_mean(tf.square(x - mean), axis=[0, 1, 2])
        if self.per_step_bn_stats and train:
            for name, batch_value in ((f"mean{key}", mean), (f"variance{key}", variance)):
                running = self.bn_stats[name]
                running.assign((1.0 - BN_MOMENTUM) * running + BN_MOMENTUM * tf.stop_gradient(batch_value))
        x_hat = (x - mean) * tf.math.rsqrt(variance + BN_EPSILON)
        if self.per_step_bn_weights:
            x_hat = self.bn_weights[f"gamma{key}"] * x_hat + self.bn_weights[f"beta{key}"]
        return x_hat
        # END SOLUTION

    def forward(self, images: tf.Tensor, parameters: Parameters, step: int, train: bool) -> tf.Tensor:
        """``_forward`` with ``batch_norm_step`` in place of ``batch_norm``.

        Args:
            images: (batch, 28, 28, 1), dtype ``self.dtype``.
            parameters: phi_step, a dict like ``self.meta_parameters``.
            step: step index of ``parameters``, Python int in 0..S.
            train: passed on to ``batch_norm_step``.

        Returns:
            logits: (batch, num_way).
        """
        x = images
        for i in range(NUM_CONV_LAYERS):
            x = tf.nn.conv2d(x, parameters[f"conv{i}"], strides=2, padding="SAME")
            x = tf.nn.relu(self.batch_norm_step(x, i, step, train) + parameters[f"b{i}"])
        x = tf.reduce_mean(x, axis=[1, 2])
        return tf.matmul(x, parameters[f"w{NUM_CONV_LAYERS}"]) + parameters[f"b{NUM_CONV_LAYERS}"]

    def second_order_at(self, iteration: int) -> bool:
        """DA: whether outer iteration ``iteration`` uses second-order meta-gradients.

        With ``derivative_annealing``: False for iterations 0 .. da_iterations - 1,
        True from ``da_iterations`` on. Without it: ``not self.first_order`` at
        every iteration.

        Args:
            iteration: the outer iteration, a Python int.

        Returns:
            a Python bool (``train_step`` passes it to the compiled step, which
            keeps one graph per value).
        """
        # BEGIN SOLUTION
        if self.derivative_annealing:
            return iteration >= self.da_iterations
        return not self.first_order
        # END SOLUTION

    def outer_learning_rate(self, outer_lr: float, num_iterations: int,
                            min_outer_lr: float) -> float | tf.keras.optimizers.schedules.LearningRateSchedule:
        """CA: Adam's learning rate: ``outer_lr``, or a cosine schedule of the iteration.

        With ``cosine_outer_lr``, at outer iteration t with T = ``num_iterations``:

            lr(t) = min_outer_lr + (outer_lr - min_outer_lr) * (1 + cos(pi * min(t, T) / T)) / 2

        Return it as a ``tf.keras.optimizers.schedules.LearningRateSchedule``
        (``CosineDecay`` computes exactly this; read its ``alpha``): Adam
        evaluates a schedule at its own ``iterations`` in every step, inside
        the compiled graph.

        Returns:
            ``outer_lr`` (a float) without ``cosine_outer_lr``, else the schedule.
        """
        if not self.cosine_outer_lr:
            return outer_lr
        # BEGIN SOLUTION
        return tf.keras.optimizers.schedules.CosineDecay(
            outer_lr, decay_steps=num_iterations, alpha=min_outer_lr / outer_lr)
        # END SOLUTION

    # ------------------------------------------------------ inner and outer loop

    def adapt(self, images: tf.Tensor, labels: tf.Tensor, train: bool,
              second_order: bool = False) -> tuple[list[Parameters], tf.Tensor]:
        """The inner loop of MAML++, keeping every intermediate parameter set.

        Like ``MAML.inner_loop``, with the per-step forward pass and learning
        rates, for s = 0 .. S-1:

            L_s       = cross_entropy(self.forward(images, phi_s, s, train), labels)
            phi_{s+1} = phi_s - self.inner_lr(name, s) * dL_s/dphi_s[name]   for every name

        Wrap the inner gradients in ``tf.stop_gradient`` unless ``train`` and
        ``second_order`` are both True. The accuracy of phi_S is measured with
        ``self.forward(images, phi_S, S, train)``.

        Args:
            images: support images, (N*K, 28, 28, 1), dtype ``self.dtype``.
            labels: support labels, (N*K,), int32.
            train: True in the training step (batch-norm statistics of the
                batch, running statistics updated), False in evaluation.
            second_order: differentiate through the inner updates (only used
                when ``train`` is True).

        Returns:
            trajectory: list of S+1 dicts, phi_0 (``dict(self.meta_parameters)``)
                to phi_S, each with the keys and shapes of the meta-parameters.
            accuracies: float32 tensor (S+1,), support accuracy of phi_0 .. phi_S.
        """
        # BEGIN SOLUTION
        parameters = dict(self.meta_parameters)
        trajectory, accuracies = [parameters], []
        for step in range(self.num_inner_steps):
            with tf.GradientTape() as tape:
                tape.watch(parameters)
                logits = self.forward(images, parameters, step, train)
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            gradients = tape.gradient(loss, parameters)
            if not (train and second_order):
                gradients = {name: tf.stop_gradient(g) for name, g in gradients.items()}
            parameters = {name: value - self.inner_lr(name, step) * gradients[name]
                          for name, value in parameters.items()}
            trajectory.append(parameters)
        accuracies.append(accuracy(self.forward(images, parameters, self.num_inner_steps, train), labels))
        return trajectory, tf.stack(accuracies)
        # END SOLUTION

    def inner_loop(self, images: tf.Tensor, labels: tf.Tensor, train: bool,
                   second_order: bool = False) -> tuple[Parameters, tf.Tensor]:
        """``MAML.inner_loop``'s contract: phi_S and the support accuracies (see ``adapt``)."""
        trajectory, accuracies = self.adapt(images, labels, train, second_order)
        return trajectory[-1], accuracies

    def outer_loop(self, task_batch: Sequence[load_data.Task], train: bool,
                   second_order: bool = False, multi_step: bool = False) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The MAML++ objective on a batch of tasks, and metrics.

        For every task, ``adapt`` on its support set, then evaluate on its query
        set (Q_s = cross_entropy(self.forward(images_query, phi_s, s, train),
        labels_query)):

            multi_step and train:  task loss = sum_{s=1..S} v_{s-1} * Q_s,
                                   v = self.importance_vector() (read once per call)
            otherwise:             task loss = Q_S (compute only this query pass)

        outer_loss = mean of the task losses. The reported query accuracy is
        that of phi_S in both cases.

        Args:
            task_batch: sequence of B tasks (images_support, labels_support,
                images_query, labels_query), as in ``MAML.outer_loop``.
            train: passed on to ``adapt`` and ``forward``.
            second_order: passed on to ``adapt``.
            multi_step: use the multi-step loss (a Python bool; ``train_step``
                passes ``multi_step_at(t)``).

        Returns:
            outer_loss: scalar tensor of ``self.dtype``.
            accuracies_support: float32 (S+1,), ``adapt``'s accuracies averaged over tasks.
            accuracy_query: float32 scalar, query accuracy of phi_S averaged over tasks.
        """
        # BEGIN SOLUTION
        steps = self.num_inner_steps
        multi_step = train and multi_step
        importance = self.importance_vector() if multi_step else None
        outer_losses, accuracies_support, accuracies_query = [], [], []
        for images_support, labels_support, images_query, labels_query in task_batch:
            trajectory, accuracies = self.adapt(images_support, labels_support, train, second_order)
            query_losses = []
            for step in (range(1, steps + 1) if multi_step else [steps]):
                logits = self.forward(images_query, trajectory[step], step, train)
                query_losses.append(cross_entropy(logits, labels_query))
            if multi_step:
                outer_losses.append(tf.tensordot(importance, tf.stack(query_losses), axes=1))
            else:
                outer_losses.append(query_losses[0])
            accuracies_support.append(accuracies)
            accuracies_query.append(accuracy(logits, labels_query))  # logits of phi_S
        return (
            tf.reduce_mean(tf.stack(outer_losses)),
            tf.reduce_mean(tf.stack(accuracies_support), axis=0),
            tf.reduce_mean(tf.stack(accuracies_query)),
        )
        # END SOLUTION

    # ----------------------------------------- provided: training step, weights

    def multi_step_at(self, iteration: int) -> bool:
        """Whether outer iteration ``iteration`` trains on the multi-step loss (MSL)."""
        return self.multi_step_loss and iteration < self.msl_iterations

    def _train_step_eager(self, task_batch, second_order, multi_step):
        with tf.GradientTape() as tape:
            outer_loss, accuracies_support, accuracy_query = self.outer_loop(
                task_batch, train=True, second_order=second_order, multi_step=multi_step)
        variables = self.trainable_variables
        gradients = tape.gradient(outer_loss, variables)
        # Under first order, the BN weights of a step index that only shapes a stopped
        # inner gradient (index 0 always, 1..S-1 without MSL) do not reach the loss.
        bn_weights = {v.ref() for v in self.bn_weights.values()}
        gradients = [tf.zeros_like(v) if g is None and v.ref() in bn_weights else g
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
        """One outer step at iteration t: ``second_order_at(t)``, ``multi_step_at(t)``.

        What changes every iteration is read inside the compiled step from
        ``optimizer.iterations`` (the MSL importance vector, the CA learning
        rate), so it never retraces for it. The derivative order and whether
        the multi-step loss is on are Python bool arguments: tf.function keeps
        one graph per pair of values, so the step is traced once more, exactly
        once, at the DA switch (``da_iterations``) and once when MSL ends
        (``msl_iterations``; after it the graph computes only the final query
        pass, which costs as much as MAML's).

        Returns ``outer_loop``'s three outputs (before the update).
        """
        t = int(self.optimizer.iterations.numpy())
        return self._train_step(as_tensors(task_batch), self.second_order_at(t), self.multi_step_at(t))

    def checkpoint_state(self) -> dict[str, dict[str, tf.Variable]]:
        """Variables beyond MAML's that a training checkpoint holds."""
        return {"bn_weights": self.bn_weights, "bn_stats": self.bn_stats}

    def weights(self) -> dict[str, np.ndarray]:
        """MAML's arrays plus "bn/<name>" for every per-step BN weight and statistic."""
        arrays = super().weights()
        arrays.update({f"bn/{name}": v.numpy() for name, v in {**self.bn_weights, **self.bn_stats}.items()})
        return arrays

    def load_weights(self, path: str | os.PathLike) -> None:
        """Loads an ``.npz`` written by ``save_weights``; checks every name and shape."""
        super().load_weights(path)  # checks all of weights(), assigns MAML's part
        with np.load(path) as stored:
            for name, variable in {**self.bn_weights, **self.bn_stats}.items():
                variable.assign(stored[f"bn/{name}"])


def check_mamlpp_settings(hp: dict) -> None:
    """Raises ValueError, saying what to change, for settings MAML++ cannot run with.

    Args:
        hp: MAMLPlusPlus's arguments by name (the hparams keys), with
            ``cosine_iterations`` for the length of the cosine schedule.
    """
    problems = []
    if hp["multi_step_loss"] and hp["num_inner_steps"] < 1:
        problems.append("the multi-step loss needs num_inner_steps >= 1")
    if hp["multi_step_loss"] and hp["msl_iterations"] < 1:
        problems.append(f"msl_iterations must be >= 1, got {hp['msl_iterations']}")
    if hp["per_step_inner_lrs"] and hp["learn_inner_lrs"]:
        problems.append("per_step_inner_lrs already learns the inner learning rates "
                        "(one per parameter and step): drop learn_inner_lrs")
    if hp["derivative_annealing"] and hp["first_order"]:
        problems.append("derivative annealing ends in second order: set first_order=False (--second-order)")
    if hp["derivative_annealing"] and hp["da_iterations"] < 0:
        problems.append(f"da_iterations must be >= 0, got {hp['da_iterations']}")
    if hp["cosine_outer_lr"] and hp["cosine_iterations"] < 1:
        problems.append(f"the cosine schedule needs >= 1 iteration, got {hp['cosine_iterations']}")
    if hp["cosine_outer_lr"] and not 0 <= hp["min_outer_lr"] <= hp["outer_lr"]:
        problems.append(f"min_outer_lr must be in [0, outer_lr={hp['outer_lr']}], got {hp['min_outer_lr']}")
    if problems:
        raise ValueError("MAML++ settings: " + "; ".join(problems) + ".")


def mamlpp_techniques(hp: dict) -> list[str]:
    """Names (MSL, LSLR, ...) of the MAML++ techniques that ``hp`` switches on."""
    return [short for key, short in MAMLPP_TECHNIQUES.items() if hp.get(key)]


def build_mamlpp(hp: dict) -> MAMLPlusPlus:
    """MAMLPlusPlus from a hyper-parameter record (``_hparams``)."""
    settings = {key: hp[key] for key in (*MAMLPP_TECHNIQUES, *MAMLPP_SETTINGS)}
    return MAMLPlusPlus(hp["num_way"], hp["num_inner_steps"], hp["inner_lr"], hp["learn_inner_lrs"],
                        hp["outer_lr"], hp["first_order"], hp["seed"],
                        cosine_iterations=hp["num_iterations"], **settings)


def add_mamlpp_arguments(p: argparse.ArgumentParser) -> None:
    """The command-line flags of the extra credit; all off trains plain (FO-)MAML."""
    g = p.add_argument_group("extra credit: MAML++ (Antoniou et al., ICLR 2019); all off = plain MAML")
    g.add_argument("--mamlpp", action="store_true", help="switch on all six techniques below")
    g.add_argument("--multi-step-loss", action="store_true",
                   help="MSL: query loss after every inner step, importance annealed to the last step")
    g.add_argument("--msl-iterations", type=int, default=100,
                   help="MSL: iterations of annealing; after them only the last step's loss")
    g.add_argument("--per-step-inner-lrs", action="store_true",
                   help="LSLR: learn one inner lr per parameter tensor and inner step")
    g.add_argument("--per-step-bn-stats", action="store_true",
                   help="BNRS: track running BN statistics per inner step (saved; not used to normalise)")
    g.add_argument("--per-step-bn-weights", action="store_true",
                   help="BNWB: meta-learned BN scale and shift per inner step")
    g.add_argument("--derivative-annealing", action="store_true",
                   help="DA: first order before --da-iterations, second order after (implies --second-order)")
    g.add_argument("--da-iterations", type=int, default=200, help="DA: first-order iterations")
    g.add_argument("--cosine-outer-lr", action="store_true",
                   help="CA: outer lr from --outer-lr down to --min-outer-lr over --num-iterations (cosine)")
    g.add_argument("--min-outer-lr", type=float, default=1e-5, help="CA: final outer lr")


def finish_mamlpp_args(args: argparse.Namespace) -> argparse.Namespace:
    """Expands --mamlpp, makes DA imply second order, and checks the combination."""
    if args.mamlpp:
        for key in MAMLPP_TECHNIQUES:
            setattr(args, key, True)
    if args.derivative_annealing:
        args.first_order = False
    if mamlpp_techniques(vars(args)):
        try:
            check_mamlpp_settings({**vars(args), "cosine_iterations": args.num_iterations})
        except ValueError as error:
            raise SystemExit(str(error)) from None
    return args


def mamlpp_hparams(args: argparse.Namespace) -> dict:
    """The MAML++ part of the hyper-parameter record (--mamlpp expanded)."""
    return {key: getattr(args, key) for key in (*MAMLPP_TECHNIQUES, *MAMLPP_SETTINGS)}


def extra_checkpoint_state(model: MAML) -> dict:
    """What a training checkpoint holds beyond MAML's variables (nothing for plain MAML)."""
    return model.checkpoint_state() if isinstance(model, MAMLPlusPlus) else {}

# ==== End of extra credit: MAML++ ============================================


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

    def __call__(self, *args):
        if self.eager:
            return self.fn(*args)
        if self.first_call_done:
            return self.graph_fn(*args)
        try:
            result = self.graph_fn(*args)
        except Exception as graph_error:  # noqa: BLE001 - decided by the eager retry below
            result = self.fn(*args)
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
    """Numpy tasks -> tuples of tensors, the input of the compiled functions."""
    return [tuple(tf.convert_to_tensor(part) for part in task) for task in task_batch]


# ------------------------------------------------------------ training program


def mean_and_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and half-width of its 95 % confidence interval (normal approximation)."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    return float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(len(values)))


HISTORY_FIELDS = ["iteration", "seconds", "train_loss", "train_accuracy_query",
                  "val_accuracy_query", "val_accuracy_query_ci95",
                  "val_accuracy_support_pre", "val_accuracy_support_post"]


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of a ``history.csv`` as dicts of floats (iteration as int)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "iteration" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]


def write_history(path: Path, rows: list[dict[str, float]], fields: Sequence[str] = HISTORY_FIELDS) -> None:
    """Writes ``history.csv`` atomically (read it back with ``read_history``)."""
    with load_data.atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def new_figure():
    """A matplotlib figure and axes for a plot file (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.2))


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    """Writes ``fig`` as a PNG atomically and closes it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with load_data.atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)


def plot_validation(history: list[dict[str, float]], path: Path, title: str,
                    target: float | None = 0.8, *, xlabel: str = "meta-training iteration",
                    train_key: str = "train_accuracy_query", train_label: str = "train query (meta-batch)",
                    color: str = "C0") -> None:
    """The assignment's plot: post-adaptation validation query accuracy over training.

    ``history`` rows as in ``history.csv``: "iteration", "val_accuracy_query",
    "val_accuracy_query_ci95" and ``train_key`` (the thin grey training curve).
    """
    it = np.array([r["iteration"] for r in history])
    val = np.array([r["val_accuracy_query"] for r in history])
    ci = np.array([r["val_accuracy_query_ci95"] for r in history])
    fig, ax = new_figure()
    ax.plot(it, [r[train_key] for r in history], color="0.6", lw=1, label=train_label)
    ax.plot(it, val, color=color, lw=2, marker="o", ms=3, label="validation query, after adaptation")
    ax.fill_between(it, val - ci, val + ci, color=color, alpha=0.2, label="95 % CI")
    if target is not None:
        ax.axhline(target, color="C3", ls="--", lw=1, label=f"target {target:.0%}")
    ax.set(xlabel=xlabel, ylabel="accuracy", ylim=(0, 1.01), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save_figure(fig, path)


def _hparams(args: argparse.Namespace) -> dict:
    keys = ["num_way", "num_support", "num_query", "num_inner_steps", "inner_lr",
            "learn_inner_lrs", "outer_lr", "first_order", "meta_batch_size", "num_iterations",
            "val_interval", "num_val_tasks", "seed", "augment_rotations"]
    return {key: getattr(args, key) for key in keys} | mamlpp_hparams(args)  # | extra credit


def environment() -> dict:
    """Software and machine facts recorded beside the hyper-parameters."""
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "numpy": np.__version__, "machine": platform.machine(), "cpus": os.cpu_count()}


def build_maml(hp: dict) -> MAML:
    if mamlpp_techniques(hp):  # extra credit
        return build_mamlpp(hp)
    return MAML(hp["num_way"], hp["num_inner_steps"], hp["inner_lr"], hp["learn_inner_lrs"],
                hp["outer_lr"], hp["first_order"], hp["seed"])


def train(args: argparse.Namespace) -> dict:
    """Meta-trains, validating, checkpointing and plotting as it goes.

    Returns the last history row.
    """
    from tqdm import tqdm

    log_dir = Path(args.log_dir)
    hp = _hparams(args)
    hparams_path = log_dir / "hparams.json"
    checkpoint_dir = log_dir / "checkpoints"
    if hparams_path.is_file() and not args.resume:
        raise SystemExit(
            f"{log_dir} already holds a training run. Pass --resume to continue it, "
            f"or choose a new --log-dir."
        )
    if args.resume and hparams_path.is_file():
        stored = json.loads(hparams_path.read_text())["hparams"]
        changed = {k: (stored.get(k), v) for k, v in hp.items()
                   if k != "num_iterations" and stored.get(k) != v}
        if changed:
            raise SystemExit(
                f"--resume with other settings than the run in {log_dir}: "
                + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items())
            )
    log_dir.mkdir(parents=True, exist_ok=True)

    data = load_data.load_omniglot()
    train_tasks = load_data.TaskSampler(data, "train", args.num_way, args.num_support,
                                        args.num_query, seed=args.seed,
                                        augment_rotations=args.augment_rotations)
    val_sampler = load_data.TaskSampler(data, "val", args.num_way, args.num_support,
                                        args.num_query, seed=VAL_SEED)
    val_tasks = [val_sampler.task(i) for i in range(args.num_val_tasks)]

    maml = build_maml(hp)
    iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
    checkpoint = tf.train.Checkpoint(meta_parameters=maml.meta_parameters, inner_lrs=maml.inner_lrs,
                                     optimizer=maml.optimizer, iteration=iteration,
                                     **extra_checkpoint_state(maml))
    manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
    history_path = log_dir / "history.csv"
    history: list[dict[str, float]] = []
    elapsed = 0.0
    if args.resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        history = [r for r in read_history(history_path) if r["iteration"] <= int(iteration.numpy())]
        elapsed = history[-1]["seconds"] if history else 0.0
        print(f"Resuming {log_dir} from iteration {int(iteration.numpy())}.")
    with load_data.atomic_output(hparams_path) as tmp:
        tmp.write_text(json.dumps({"hparams": hp, "environment": environment()}, indent=2))

    writer = tf.summary.create_file_writer(str(log_dir / "tensorboard"))
    title = (f"{'FO-' if args.first_order else ''}MAML, {args.num_way}-way {args.num_support}-shot, "
             f"{args.num_inner_steps} inner steps")
    if mamlpp_techniques(hp):  # extra credit
        title = (f"MAML++ ({'+'.join(mamlpp_techniques(hp))}), {args.num_way}-way "
                 f"{args.num_support}-shot, {args.num_inner_steps} inner steps")

    def validate(step: int, train_loss: float, train_acc: float, seconds: float) -> dict:
        support, query = maml.evaluate(val_tasks, chunk_size=args.meta_batch_size)
        mean, ci = mean_and_ci95(query)
        row = {"iteration": step, "seconds": round(seconds, 3), "train_loss": train_loss,
               "train_accuracy_query": train_acc, "val_accuracy_query": mean,
               "val_accuracy_query_ci95": ci,
               "val_accuracy_support_pre": float(support[:, 0].mean()),
               "val_accuracy_support_post": float(support[:, -1].mean())}
        history.append(row)
        write_history(history_path, history)
        with writer.as_default(step=step):
            for key in ("val_accuracy_query", "val_accuracy_support_pre", "val_accuracy_support_post"):
                tf.summary.scalar(key, row[key])
        plot_validation(history, log_dir / "val_accuracy.png", title)
        manager.save(checkpoint_number=step)
        return row

    start_iteration = int(iteration.numpy())
    if not history:  # the starting point of the curve: meta-parameters at initialisation
        validate(0, float("nan"), float("nan"), 0.0)
    row = history[-1]
    reached = False
    bar = tqdm(range(start_iteration, args.num_iterations), initial=start_iteration,
               total=args.num_iterations, desc="meta-train", unit="it", dynamic_ncols=True)
    t0 = time.perf_counter() - elapsed
    interrupt = _DeferredInterrupt(bar.write)
    try:
        for step in bar:
            if interrupt.requested:
                break
            loss, _, acc_query = maml.train_step(train_tasks.batch(step, args.meta_batch_size))
            iteration.assign(step + 1)
            loss, acc_query = float(loss), float(acc_query)
            if not math.isfinite(loss):
                raise FloatingPointError(f"the outer loss became {loss} at iteration {step + 1}")
            with writer.as_default(step=step + 1):
                tf.summary.scalar("train_loss", loss)
                tf.summary.scalar("train_accuracy_query", acc_query)
            postfix = {"loss": f"{loss:.3f}", "acc": f"{acc_query:.3f}"}
            if (step + 1) % args.val_interval == 0 or step + 1 == args.num_iterations:
                row = validate(step + 1, loss, acc_query, time.perf_counter() - t0)
                reached = args.stop_at_accuracy is not None and row["val_accuracy_query"] >= args.stop_at_accuracy
            postfix["val"] = f"{row['val_accuracy_query']:.3f}"
            bar.set_postfix(postfix)
            if reached:
                bar.write(f"Validation accuracy {row['val_accuracy_query']:.3f} >= "
                          f"{args.stop_at_accuracy} at iteration {step + 1}: stopping early.")
                break
    finally:
        interrupt.restore()
        bar.close()
        writer.flush()
    if interrupt.requested:
        manager.save(checkpoint_number=int(iteration.numpy()))
        raise SystemExit(
            f"Interrupted at iteration {int(iteration.numpy())}; checkpoint saved. Continue with:\n"
            f"  python maml.py --log-dir {log_dir} --resume " + " ".join(_cli_flags(hp))
        )
    maml.save_weights(log_dir / "weights.npz")
    print(f"Final validation query accuracy {row['val_accuracy_query']:.3f} "
          f"± {row['val_accuracy_query_ci95']:.3f} at iteration {row['iteration']}. "
          f"Wrote {log_dir / 'weights.npz'}, {log_dir / 'val_accuracy.png'}, {history_path}.")
    return row


class _DeferredInterrupt:
    """Turns the first Ctrl-C into a request to stop after the current iteration.

    Stopping between iterations never leaves a half-written file or a checkpoint
    of a half-applied step; a second Ctrl-C interrupts at once.
    """

    def __init__(self, say: Callable[[str], None]):
        self.requested = False
        self.say = say
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.say("Ctrl-C: stopping after this iteration and saving a checkpoint (Ctrl-C again to quit now).")

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _cli_flags(hp: dict) -> list[str]:
    """Command-line flags that reproduce ``hp``."""
    flags = []
    for key, value in hp.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if key == "first_order":
                flags.append("--first-order" if value else "--second-order")
            elif value:
                flags.append(flag)
        else:
            flags.append(f"{flag} {value}")
    return flags


def test(args: argparse.Namespace) -> dict:
    """Mean query accuracy with a 95 % CI over ``num_test_tasks`` test tasks."""
    log_dir = Path(args.log_dir)
    weights = Path(args.weights) if args.weights else log_dir / "weights.npz"
    hparams_path = log_dir / "hparams.json"
    hp = json.loads(hparams_path.read_text())["hparams"] if hparams_path.is_file() else _hparams(args)
    if not weights.is_file():
        raise SystemExit(f"No weights at {weights}: train first (python maml.py --log-dir {log_dir}).")
    maml = build_maml(hp)
    maml.load_weights(weights)
    data = load_data.load_omniglot()
    sampler = load_data.TaskSampler(data, "test", hp["num_way"], args.num_support,
                                    hp["num_query"], seed=TEST_SEED)
    tasks = [sampler.task(i) for i in range(args.num_test_tasks)]
    start = time.perf_counter()
    support, query = maml.evaluate(tasks, chunk_size=hp["meta_batch_size"], progress=True)
    mean, ci = mean_and_ci95(query)
    result = {"num_tasks": len(tasks), "num_way": hp["num_way"], "num_support": args.num_support,
              "num_query": hp["num_query"], "accuracy_query": mean, "accuracy_query_ci95": ci,
              "accuracy_support_pre": float(support[:, 0].mean()),
              "accuracy_support_post": float(support[:, -1].mean()),
              "weights": str(weights), "seconds": round(time.perf_counter() - start, 2)}
    name = f"test_results_{hp['num_way']}way_{args.num_support}shot.json"
    with load_data.atomic_output(log_dir / name) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(f"Test accuracy over {len(tasks)} tasks ({hp['num_way']}-way {args.num_support}-shot): "
          f"{mean:.4f} ± {ci:.4f} (95 % CI). Wrote {log_dir / name}.")
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train or test (FO-)MAML on Omniglot. Defaults are the assignment's settings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--log-dir", default=None,
                   help="where checkpoints, history, plots and weights go (default: runs/<setting>)")
    p.add_argument("--num-way", type=int, default=5, help="N, classes per task")
    p.add_argument("--num-support", type=int, default=5, help="K, support examples per class")
    p.add_argument("--num-query", type=int, default=15, help="Q, query examples per class")
    p.add_argument("--num-inner-steps", type=int, default=5, help="inner-loop gradient steps")
    p.add_argument("--inner-lr", type=float, default=0.4, help="inner-loop learning rate")
    p.add_argument("--learn-inner-lrs", action="store_true", help="meta-learn per-parameter inner lrs")
    p.add_argument("--outer-lr", type=float, default=1e-3, help="Adam learning rate of the outer step")
    order = p.add_mutually_exclusive_group()
    order.add_argument("--first-order", dest="first_order", action="store_true", default=True,
                       help="first-order MAML")
    order.add_argument("--second-order", dest="first_order", action="store_false",
                       help="full MAML, differentiating through the inner loop")
    p.add_argument("--meta-batch-size", type=int, default=8, help="tasks per outer step")
    p.add_argument("--num-iterations", type=int, default=1000, help="outer steps")
    p.add_argument("--val-interval", type=int, default=20, help="validate every this many steps")
    p.add_argument("--num-val-tasks", type=int, default=100, help="fixed validation tasks")
    p.add_argument("--stop-at-accuracy", type=float, default=None,
                   help="stop once validation query accuracy reaches this (e.g. 0.8)")
    p.add_argument("--augment-rotations", action="store_true",
                   help="add 90/180/270-degree rotations of train characters as new classes")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and training tasks")
    p.add_argument("--resume", action="store_true", help="continue the run in --log-dir")
    p.add_argument("--test", action="store_true", help="evaluate saved weights on test tasks")
    p.add_argument("--weights", default=None, help="weights for --test (default: LOG_DIR/weights.npz)")
    p.add_argument("--num-test-tasks", type=int, default=600, help="test tasks for --test")
    p.add_argument("--intra-op-threads", type=int, default=1,
                   help="threads inside one op; 1 is fastest for these small ops on few cores")
    p.add_argument("--inter-op-threads", type=int, default=0,
                   help="ops run in parallel (tasks of a batch); 0 = one per CPU core")
    add_mamlpp_arguments(p)  # extra credit
    return p


def default_log_dir(args: argparse.Namespace) -> str:
    order = "fomaml" if args.first_order else "maml"
    if mamlpp_techniques(vars(args)):  # extra credit
        order = "mamlpp"
    return (f"runs/{order}_{args.num_way}way_{args.num_support}shot_{args.num_inner_steps}steps"
            f"_lr{args.inner_lr:g}{'_learnlr' if args.learn_inner_lrs else ''}_seed{args.seed}")


def configure_threads(intra: int, inter: int) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter or os.cpu_count() or 1)


def main(argv: Sequence[str] | None = None) -> None:
    args = finish_mamlpp_args(parser().parse_args(argv))  # extra credit: expands --mamlpp
    configure_threads(args.intra_op_threads, args.inter_op_threads)
    args.log_dir = args.log_dir or default_log_dir(args)
    if args.test:
        test(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
