"""Model-agnostic meta-learning (MAML) for few-shot Omniglot, in TensorFlow 2.

Assignment 2, part 1. You complete two methods of ``class MAML``:

* ``MAML.inner_loop``: adapt the meta-parameters to one task's support set with
  a few steps of gradient descent;
* ``MAML.outer_loop``: the MAML objective on a batch of tasks, i.e. the query
  loss *after* adaptation, averaged over the tasks.

Everything else is provided: the model (``forward``, below), the training step
that differentiates your ``outer_loop`` with respect to the meta-parameters
(``scaffold.py``), the settings (``settings.py``) and the training program that
validates, plots, checkpoints and saves weights (``training.py``).

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

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

import load_data
import settings
import training
from scaffold import MetaLearner
from settings import ASSIGNMENT  # the assignment's settings: the defaults below

NUM_CONV_LAYERS = 4
NUM_FILTERS = 64
KERNEL_SIZE = 3
BN_EPSILON = 1e-5

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


def forward(images: tf.Tensor, parameters: Parameters) -> tf.Tensor:
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


class MAML(MetaLearner):
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

    Provided by ``scaffold.MetaLearner``: ``train_step`` (one Adam step on the
    gradient of your ``outer_loop``), ``evaluate``, ``save_weights`` and
    ``load_weights``.
    """

    def __init__(self, num_way: int, num_inner_steps: int = ASSIGNMENT.num_inner_steps,
                 inner_lr: float = ASSIGNMENT.inner_lr, learn_inner_lrs: bool = ASSIGNMENT.learn_inner_lrs,
                 outer_lr: float = ASSIGNMENT.outer_lr, first_order: bool = ASSIGNMENT.first_order,
                 seed: int = ASSIGNMENT.seed, dtype: tf.DType = tf.float32):
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

        where ``L_support = cross_entropy(forward(images, phi), labels)`` and
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
                logits = forward(images, parameters)
                loss = cross_entropy(logits, labels)
            accuracies.append(accuracy(logits, labels))
            gradients = tape.gradient(loss, parameters)
            if self.first_order or not train:
                gradients = {name: tf.stop_gradient(g) for name, g in gradients.items()}
            parameters = {
                name: value - self.inner_lrs[name] * gradients[name]
                for name, value in parameters.items()
            }
        accuracies.append(accuracy(forward(images, parameters), labels))
        return parameters, tf.stack(accuracies)
        # END SOLUTION

    def outer_loop(self, task_batch: Sequence[load_data.Task], train: bool) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The MAML objective on a batch of tasks, and metrics.

        For every task: adapt with ``self.inner_loop`` on its support set, then
        evaluate the *adapted* parameters on its query set:

            outer_loss = mean over tasks of cross_entropy(forward(images_query, phi_i), labels_query)

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
            logits = forward(images_query, parameters)
            outer_losses.append(cross_entropy(logits, labels_query))
            accuracies_support.append(accuracies)
            accuracies_query.append(accuracy(logits, labels_query))
        return (
            tf.reduce_mean(tf.stack(outer_losses)),
            tf.reduce_mean(tf.stack(accuracies_support), axis=0),
            tf.reduce_mean(tf.stack(accuracies_query)),
        )
        # END SOLUTION

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

    def __init__(self, num_way: int, num_inner_steps: int = ASSIGNMENT.num_inner_steps,
                 inner_lr: float = ASSIGNMENT.inner_lr, learn_inner_lrs: bool = ASSIGNMENT.learn_inner_lrs,
                 outer_lr: float = ASSIGNMENT.outer_lr, first_order: bool = ASSIGNMENT.first_order,
                 seed: int = ASSIGNMENT.seed, dtype: tf.DType = tf.float32, *,
                 multi_step_loss: bool = False, msl_iterations: int = ASSIGNMENT.msl_iterations,
                 per_step_inner_lrs: bool = False, per_step_bn_stats: bool = False,
                 per_step_bn_weights: bool = False, derivative_annealing: bool = False,
                 da_iterations: int = ASSIGNMENT.da_iterations, cosine_outer_lr: bool = False,
                 cosine_iterations: int = ASSIGNMENT.num_iterations, min_outer_lr: float = ASSIGNMENT.min_outer_lr):
        settings.check_mamlpp(dict(
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
        """``forward`` with ``batch_norm_step`` in place of ``batch_norm``.

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

    def step_options(self) -> dict:
        """The next outer step's ``second_order_at(t)`` and ``multi_step_at(t)``, t = ``optimizer.iterations``.

        What changes every iteration is read inside the compiled step from
        ``optimizer.iterations`` (the MSL importance vector, the CA learning
        rate), so it never retraces for it. The derivative order and whether
        the multi-step loss is on are Python bools: tf.function keeps one graph
        per pair of values, so the step is traced once more, exactly once, at
        the DA switch (``da_iterations``) and once when MSL ends
        (``msl_iterations``; after it the graph computes only the final query
        pass, which costs as much as MAML's).
        """
        t = int(self.optimizer.iterations.numpy())
        return {"second_order": self.second_order_at(t), "multi_step": self.multi_step_at(t)}

    def may_lack_gradient(self) -> list[tf.Variable]:
        """Under first order, the BN weights of a step index that only shapes a stopped inner
        gradient (index 0 always, 1..S-1 without MSL) do not reach the loss: their gradient is zero."""
        return list(self.bn_weights.values())

    def checkpoint_state(self) -> dict:
        """MAML's checkpoint plus the per-step BN weights and statistics."""
        return {**super().checkpoint_state(), "bn_weights": self.bn_weights, "bn_stats": self.bn_stats}

    def weight_variables(self) -> dict[str, tf.Variable]:
        """MAML's plus "bn/<name>" for every per-step BN weight and statistic."""
        return {**super().weight_variables(),
                **{f"bn/{name}": v for name, v in {**self.bn_weights, **self.bn_stats}.items()}}


# ==== End of extra credit: MAML++ ============================================


def build_maml(hp: dict) -> MAML:
    """The model of a hyper-parameter record (``hparams.json``): MAML, or MAMLPlusPlus if it uses MAML++."""
    if settings.mamlpp_techniques(hp):  # extra credit
        return MAMLPlusPlus(**settings.model_arguments(hp), **settings.mamlpp_arguments(hp))
    return MAML(**settings.model_arguments(hp))


def main(argv: Sequence[str] | None = None) -> None:
    """``python maml.py --help``: the training program (``training.py``) with this file's model."""
    training.main(argv, build_maml)


if __name__ == "__main__":
    main()
