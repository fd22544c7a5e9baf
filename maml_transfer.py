"""Transfer learning vs meta-learning for few-shot Omniglot, in TensorFlow 2.

Assignment 2, part 2. You complete one function, ``transfer_learn``.

Transfer learning is the usual alternative to meta-learning. Instead of
learning an initialisation that adapts well (MAML, part 1), we

1. *pre-train* the conv-4 network of ``maml.py`` as an ordinary classifier of
   all 1100 train characters (every one of their 20 drawings), with minibatches
   and Adam (provided: ``python maml_transfer.py pretrain``);
2. for each few-shot task, *freeze* the four convolutional blocks, throw the
   1100-way classification layer away, put a new N-way linear layer (the
   *head*) on top, and train only the head with a few gradient steps on the
   task's support set (your ``transfer_learn``);
3. measure accuracy on the task's query set, on the same validation and test
   tasks as MAML (provided: ``pretrain`` plots validation accuracy as it
   trains, ``compare`` makes the test table and the joint plot).

Batch norm. ``maml.batch_norm`` keeps no running statistics: every forward
pass normalises with the statistics of the batch it is given. So pre-training
normalises each minibatch with its own statistics, adaptation computes the
support features with the support set's statistics, and the query features
use the query set's statistics: exactly what FO-MAML's ``forward`` does in
part 1, so both methods are evaluated in the same way.

Usage:
    python maml_transfer.py pretrain                      # pre-train, writes runs/transfer_.../
    python maml_transfer.py test --log-dir D              # transfer accuracy on 600 test tasks
    python maml_transfer.py sweep --log-dir D             # adaptation steps x learning rates on val tasks
    python maml_transfer.py compare --maml-dir M --transfer-dir D   # test table + joint plot
    python maml_transfer.py --help
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

import load_data
import maml
import settings
import training
from maml import Parameters, accuracy, cross_entropy
from runs import read_history
from scaffold import EVAL_CHUNK_SIZE, GraphOrEager, evaluate_in_chunks, map_over_tasks, mean_and_ci95, save_arrays
from training import TEST_SEED, VAL_SEED

NUM_TRAIN_CLASSES = load_data.SPLIT_SIZES["train"]  # 1100 characters, the pre-training classes
HEAD_WEIGHT = f"w{maml.NUM_CONV_LAYERS}"  # "w4", the linear head's names in maml.init_parameters
HEAD_BIAS = f"b{maml.NUM_CONV_LAYERS}"  # "b4"
FEATURE_KEYS = tuple(f"{kind}{i}" for i in range(maml.NUM_CONV_LAYERS) for kind in ("conv", "b"))

# Adaptation of the new head, chosen on validation tasks with `sweep` (see README, part 2).
TRANSFER_STEPS = settings.PretrainSettings.transfer_steps
TRANSFER_LR = settings.PretrainSettings.transfer_lr


# ------------------------------------------------------------------ model parts


def feature_parameters(parameters: Parameters) -> Parameters:
    """The frozen part of a conv-4 parameter dict: ``conv0..conv3`` and ``b0..b3``.

    Drops the classification head (``w4``, ``b4``), e.g. the 1100-way head of
    pre-training. Raises ValueError, naming them, if feature parameters are missing.
    """
    missing = [name for name in FEATURE_KEYS if name not in parameters]
    if missing:
        raise ValueError(f"the parameters lack {missing}; expected {list(FEATURE_KEYS)} (see maml.init_parameters)")
    return {name: parameters[name] for name in FEATURE_KEYS}


def extract_features(images: tf.Tensor, frozen: Parameters) -> tf.Tensor:
    """The conv-4 network without its head: one feature vector per image.

    This is ``maml.features``, the network of part 1 without its head: four
    blocks of conv -> batch norm with *this batch's* statistics -> + b{i} ->
    ReLU, then the mean over space.

    Args:
        images: (batch, 28, 28, 1), dtype of the parameters.
        frozen: dict with ``FEATURE_KEYS`` (``conv0..3`` (3, 3, c_in, F), ``b0..3`` (F,));
            tensors or variables. Any head in it is ignored.

    Returns:
        (batch, F) tensor, F = 64 by default; non-negative (after a ReLU).
    """
    return maml.features(images, frozen)


def head_logits(features: tf.Tensor, head: Parameters) -> tf.Tensor:
    """The linear head. features (n, F), head {"w4": (F, N), "b4": (N,)} -> logits (n, N)."""
    return tf.matmul(features, head[HEAD_WEIGHT]) + head[HEAD_BIAS]


# ---------------------------------------------------------------- student part


def transfer_learn(frozen: Parameters, task: Sequence[tf.Tensor], num_way: int,
                   num_steps: int = TRANSFER_STEPS,
                   learning_rate: float = TRANSFER_LR) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Adapts a new linear head on the frozen features to one task; returns its query accuracy.

    The model for the task is ``extract_features`` (the pre-trained convolutional
    blocks, *frozen*) followed by a new N-way linear head ``{"w4", "b4"}``:

        logits = head_logits(extract_features(images, frozen), head)

    which is the same function as ``maml.forward(images, {**frozen, **head})``.

    1. Support features: ``extract_features(images_support, frozen)``, shape
       (N*K, F). The convolutional parameters are frozen, so these features
       do not change during adaptation: compute them ONCE, before the loop, and
       train the head on them (a logistic regression on F = 64 numbers per
       image). Recomputing them in every step gives the same numbers at about
       100 times the cost.
    2. Initial head: zeros, ``w4`` (F, N) and ``b4`` (N,), dtype of the
       features. Deterministic (no seed); every class starts alike, so the
       result does not depend on which character got which label. The loss is
       convex in the head, so the zero start costs nothing.
    3. ``num_steps`` steps of full-batch gradient descent on the support loss:

           head_{s+1} = head_s - learning_rate * grad_head L_support(head_s)
           L_support  = cross_entropy(head_logits(features_support, head_s), labels_support)

       Use a ``tf.GradientTape`` that watches the head (a dict: ``tape.watch``
       and ``tape.gradient`` take dicts) and build a new dict each step. Write
       the loop as ``for _ in tf.range(num_steps):`` so that under
       ``tf.function`` it becomes one graph loop instead of ``num_steps`` copies.
    4. Query accuracy: compute ``extract_features(images_query, frozen)``
       (batch norm then uses the query set's statistics, as FO-MAML's
       ``forward`` does) and return
       ``accuracy(head_logits(features_query, head), labels_query)``.

    Do NOT:
        * change ``frozen`` (no ``assign``, no gradient step on them): every
          entry must be bit-identical after the call; only the head is trained;
        * use the query set during adaptation: the head is a function of the
          support set only (the tests change the query labels and images and
          check that the head stays the same);
        * use a Keras optimiser or layers: plain tensor arithmetic, as in part 1.

    Args:
        frozen: the frozen feature extractor, a dict with ``FEATURE_KEYS``:
            ``conv0`` (3, 3, 1, F), ``conv1..3`` (3, 3, F, F), ``b0..3`` (F,);
            float32 tensors or variables.
        task: a tuple (or ``load_data.Task``) of tensors
            (images_support (N*K, 28, 28, 1) float32,
             labels_support (N*K,) int32, values in [0, N),
             images_query (N*Q, 28, 28, 1) float32,
             labels_query (N*Q,) int32).
        num_way: N, the number of classes of the task (columns of the head).
        num_steps: gradient steps on the head (default ``TRANSFER_STEPS``).
        learning_rate: step size of gradient descent (default ``TRANSFER_LR``).

    Returns:
        accuracy_query: float32 scalar tensor, accuracy of the adapted model
            on the query set.
        head: dict of tensors, the adapted head: ``"w4"`` (F, N) and ``"b4"``
            (N,), dtype of the features.
    """
    # BEGIN SOLUTION
    images_support, labels_support, images_query, labels_query = task
    features_support = extract_features(images_support, frozen)
    num_features, dtype = features_support.shape[-1], features_support.dtype
    head = {HEAD_WEIGHT: tf.zeros((num_features, num_way), dtype), HEAD_BIAS: tf.zeros((num_way,), dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(head)
            loss = cross_entropy(head_logits(features_support, head), labels_support)
        gradients = tape.gradient(loss, head)
        head = {name: value - learning_rate * gradients[name] for name, value in head.items()}
    features_query = extract_features(images_query, frozen)
    return accuracy(head_logits(features_query, head), labels_query), head
    # END SOLUTION


# ------------------------------------------------------------ provided: evaluation


class TransferEvaluator:
    """Per-task accuracies of ``transfer_learn``, compiled.

    Like ``maml.MAML.evaluate``: every task goes through ``transfer_learn`` on its
    own, inside one compiled loop per ``chunk_size`` tasks (``scaffold.evaluate_in_chunks``),
    one ``tf.function`` graph per task shape, so evaluation traces once per K and then only runs.
    """

    def __init__(self, num_way: int, num_steps: int = TRANSFER_STEPS,
                 learning_rate: float = TRANSFER_LR, chunk_size: int = EVAL_CHUNK_SIZE):
        if num_steps < 0 or not learning_rate > 0:
            raise ValueError(f"need num_steps >= 0 and learning_rate > 0, got {num_steps} and {learning_rate}")
        self.num_way, self.num_steps, self.learning_rate = num_way, num_steps, learning_rate
        self.chunk_size = chunk_size
        self._evaluate = GraphOrEager(self._evaluate_eager, "evaluation (transfer_learn)",
                                      hint="inside transfer_learn")

    def _evaluate_eager(self, frozen, *stacked):
        def one_task(task):
            accuracy_query, head = transfer_learn(frozen, task, self.num_way, self.num_steps, self.learning_rate)
            return accuracy(head_logits(extract_features(task[0], frozen), head), task[1]), accuracy_query

        return map_over_tasks(one_task, stacked, (tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.float32)))

    def __call__(self, frozen: Parameters, tasks: Sequence[load_data.Task],
                 progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Adapts a head to every task, changing nothing.

        Args:
            frozen: dict with ``FEATURE_KEYS`` (extra keys are ignored).
            tasks: N-way tasks of one shape.

        Returns:
            accuracies_support: (len(tasks),) float32, support accuracy after adaptation.
            accuracies_query: (len(tasks),) float32, query accuracy after adaptation.
        """
        frozen = feature_parameters(frozen)
        return evaluate_in_chunks(lambda *stacked: self._evaluate(frozen, *stacked), tasks, self.chunk_size,
                                  progress, desc="transfer")


def load_features(path: str | os.PathLike) -> dict[str, tf.Tensor]:
    """The feature extractor from a pre-trained ``weights.npz``, as constant tensors.

    Raises:
        SystemExit: the file is missing or is not a conv-4 weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"No weights at {path}: pre-train first (python maml_transfer.py pretrain).")
    try:
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError) as error:
        raise SystemExit(f"{path} is not a weights file written by `pretrain` ({error}).") from error
    expected = maml.init_parameters(1)
    wrong = [f"{n} {arrays[n].shape} (expected {tuple(expected[n].shape)})" for n in FEATURE_KEYS
             if n in arrays and arrays[n].shape != tuple(expected[n].shape)]
    missing = [n for n in FEATURE_KEYS if n not in arrays]
    if missing or wrong:
        raise SystemExit(f"{path} does not hold conv-4 features: "
                         + "; ".join(filter(None, [f"missing {missing}" if missing else "", ", ".join(wrong)])))
    return {name: tf.constant(arrays[name], tf.float32) for name in FEATURE_KEYS}


# -------------------------------------------------------- provided: pre-training


HISTORY_FIELDS = ["iteration", "epoch", "seconds", "train_loss", "train_accuracy",
                  "val_accuracy_query", "val_accuracy_query_ci95", "val_accuracy_support_post"]


def pretraining_data(data: load_data.Omniglot) -> tuple[np.ndarray, np.ndarray]:
    """Every drawing of every train character as one classification data set.

    Returns:
        images: float32 (1100 * 20, 28, 28, 1).
        labels: int32 (1100 * 20,), the character's position in the train split, in [0, 1100).
    """
    characters = load_data.split_characters(len(data.images))["train"]
    images = data.images[characters]  # (1100, 20, 28, 28)
    labels = np.repeat(np.arange(len(characters), dtype=np.int32), images.shape[1])
    return images.reshape(-1, load_data.IMAGE_SIZE, load_data.IMAGE_SIZE, 1), labels


class MinibatchStream:
    """Reproducible minibatches: epoch e visits the data in permutation (seed, e).

    Step s is batch ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch``, a
    pure function of (seed, s), so a resumed run sees exactly the batches an
    uninterrupted one would. Every batch has ``batch_size`` examples (the
    remainder of an epoch is dropped; the next epoch's shuffle uses it), which
    keeps the compiled training step's input shape fixed.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int):
        if not 0 < batch_size <= len(images):
            raise ValueError(f"batch_size must be in [1, {len(images)}], got {batch_size}")
        self.images, self.labels, self.batch_size, self.seed = images, labels, batch_size, seed
        self.steps_per_epoch = len(images) // batch_size
        self._epoch, self._order = None, None

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.images))
        index = self._order[position * self.batch_size:(position + 1) * self.batch_size]
        return self.images[index], self.labels[index]


def plot_pretraining(history: list[dict[str, float]], path: Path, title: str) -> None:
    """The assignment's plot for part 2: validation transfer accuracy over pre-training."""
    training.plot_validation(history, path, title, target=None, xlabel="pre-training step (minibatch)",
                             train_key="train_accuracy", color="C1",
                             train_label=f"train minibatches ({NUM_TRAIN_CLASSES}-way)")


def pretrain(args: argparse.Namespace, values: settings.PretrainSettings) -> dict:
    """Pre-trains the conv-4 network on all train characters, validating transfer as it goes.

    Returns the last history row.
    """
    log_dir = Path(args.log_dir)
    hp = {"num_classes": NUM_TRAIN_CLASSES, **settings.record(values)}
    training.open_run(log_dir, values, hp, args.resume, "pre-training run")
    data = load_data.load_omniglot()
    stream = MinibatchStream(*pretraining_data(data), values.batch_size, values.seed)
    num_steps = max(1, round(values.num_epochs * stream.steps_per_epoch))
    val_sampler = load_data.TaskSampler(data, "val", values.num_way, values.num_support, values.num_query,
                                        seed=VAL_SEED)
    val_tasks = [val_sampler.task(i) for i in range(values.num_val_tasks)]
    evaluate = TransferEvaluator(values.num_way, values.transfer_steps, values.transfer_lr)

    parameters = {name: tf.Variable(value, name=name)
                  for name, value in maml.init_parameters(NUM_TRAIN_CLASSES, seed=values.seed).items()}
    optimizer = tf.keras.optimizers.Adam(learning_rate=values.learning_rate)
    optimizer.build(list(parameters.values()))
    batch_spec = (tf.TensorSpec((values.batch_size, load_data.IMAGE_SIZE, load_data.IMAGE_SIZE, 1), tf.float32),
                  tf.TensorSpec((values.batch_size,), tf.int32))

    @tf.function(input_signature=batch_spec)
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            logits = maml.forward(images, parameters)
            loss = cross_entropy(logits, labels)
        variables = list(parameters.values())
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, accuracy(logits, labels)

    def step(at: int) -> tuple[float, float]:
        loss, acc = train_step(*stream.batch(at))
        return float(loss), float(acc)

    def validate(at: int, window: list[tuple[float, float]]) -> dict:
        support, query = evaluate(parameters, val_tasks)
        mean, ci = mean_and_ci95(query)
        losses, accuracies = zip(*window) if window else ((float("nan"),), (float("nan"),))
        return {"epoch": round(at / stream.steps_per_epoch, 4), "train_loss": float(np.mean(losses)),
                "train_accuracy": float(np.mean(accuracies)), "val_accuracy_query": mean, "val_accuracy_query_ci95": ci,
                "val_accuracy_support_post": float(support.mean())}

    title = (f"Transfer: {NUM_TRAIN_CLASSES}-way pre-training, {values.num_way}-way {values.num_support}-shot "
             f"head ({values.transfer_steps} steps)")
    row = training.run_training(
        log_dir, values, hp, resume=args.resume, state={"parameters": parameters, "optimizer": optimizer},
        counter="step", num_steps=num_steps, step=step, validate=validate, fields=HISTORY_FIELDS,
        plot=lambda history: plot_pretraining(history, log_dir / "val_accuracy.png", title),
        save_weights=lambda path: save_arrays(path, {name: v.numpy() for name, v in parameters.items()}),
        resume_command="python maml_transfer.py pretrain", desc="pre-train", loss_name="pre-training loss",
        record={"steps_per_epoch": stream.steps_per_epoch},
        summaries=("val_accuracy_query", "val_accuracy_support_post", "train_loss", "train_accuracy"),
        final_words=lambda row: (
            f"Final validation transfer accuracy {row['val_accuracy_query']:.3f} "
            f"± {row['val_accuracy_query_ci95']:.3f} at step {row['iteration']} (epoch {row['epoch']:g}). "
            f"Wrote {log_dir / 'weights.npz'}, {log_dir / 'val_accuracy.png'}, {log_dir / 'history.csv'}."))
    return row


# ------------------------------------------------ provided: test, sweep, compare


def _transfer_hparams(log_dir: Path) -> dict:
    path = log_dir / "hparams.json"
    if not path.is_file():
        raise SystemExit(f"No pre-training run in {log_dir} (no hparams.json): "
                         f"run `python maml_transfer.py pretrain --log-dir {log_dir}` first.")
    return json.loads(path.read_text())["hparams"]


def test(args: argparse.Namespace) -> dict:
    """Transfer accuracy with a 95 % CI on the fixed test tasks; writes a JSON next to the weights."""
    log_dir = Path(args.log_dir)
    hp = _transfer_hparams(log_dir)
    frozen = load_features(log_dir / "weights.npz")
    steps = hp["transfer_steps"] if args.transfer_steps is None else args.transfer_steps
    lr = hp["transfer_lr"] if args.transfer_lr is None else args.transfer_lr
    tasks = training.fixed_test_tasks(hp["num_way"], args.num_support, hp["num_query"], args.num_test_tasks)
    start = time.perf_counter()
    support, query = TransferEvaluator(hp["num_way"], steps, lr)(frozen, tasks, progress=True)
    mean, ci = mean_and_ci95(query)
    result = {"num_tasks": len(tasks), "num_way": hp["num_way"], "num_support": args.num_support,
              "num_query": hp["num_query"], "transfer_steps": steps, "transfer_lr": lr,
              "accuracy_query": mean, "accuracy_query_ci95": ci, "accuracy_support_post": float(support.mean()),
              "seconds": round(time.perf_counter() - start, 2)}
    path = training.write_test_results(log_dir, result)
    print(f"Transfer test accuracy over {len(tasks)} tasks ({hp['num_way']}-way {args.num_support}-shot, "
          f"{steps} steps, lr {lr:g}): {mean:.4f} ± {ci:.4f} (95 % CI). Wrote {path}.")
    return result


def sweep(args: argparse.Namespace) -> list[dict]:
    """Validation transfer accuracy for every (steps, learning rate): how TRANSFER_STEPS/LR were chosen.

    Uses the validation tasks of ``pretrain`` (seed ``training.VAL_SEED``), never test tasks.
    """
    log_dir = Path(args.log_dir)
    hp = _transfer_hparams(log_dir)
    frozen = load_features(log_dir / "weights.npz")
    sampler = load_data.TaskSampler(load_data.load_omniglot(), "val", hp["num_way"], args.num_support,
                                    hp["num_query"], seed=VAL_SEED)
    tasks = [sampler.task(i) for i in range(args.num_val_tasks)]
    rows = []
    for steps in args.steps:
        for lr in args.lrs:
            support, query = TransferEvaluator(hp["num_way"], steps, lr)(frozen, tasks)
            mean, ci = mean_and_ci95(query)
            rows.append({"transfer_steps": steps, "transfer_lr": lr, "val_accuracy_query": mean,
                         "val_accuracy_query_ci95": ci, "val_accuracy_support_post": float(support.mean())})
            print(f"steps {steps:4d}  lr {lr:<6g}  val query {mean:.4f} ± {ci:.4f}  "
                  f"support after {rows[-1]['val_accuracy_support_post']:.4f}", flush=True)
    header = "| steps \\ lr | " + " | ".join(f"{lr:g}" for lr in args.lrs) + " |"
    lines = [f"Validation query accuracy, {hp['num_way']}-way {args.num_support}-shot, "
             f"{len(tasks)} tasks, weights {log_dir / 'weights.npz'}", "", header,
             "|---" * (len(args.lrs) + 1) + "|"]
    for steps in args.steps:
        cells = [f"{r['val_accuracy_query']:.3f}" for r in rows if r["transfer_steps"] == steps]
        lines.append(f"| {steps} | " + " | ".join(cells) + " |")
    best = max(rows, key=lambda r: r["val_accuracy_query"])
    lines += ["", f"Best: {best['transfer_steps']} steps, lr {best['transfer_lr']:g}: "
              f"{best['val_accuracy_query']:.4f} ± {best['val_accuracy_query_ci95']:.4f}."]
    stem = log_dir / f"sweep_{hp['num_way']}way_{args.num_support}shot"
    with load_data.atomic_output(stem.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    with load_data.atomic_output(stem.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines) + f"\nWrote {stem}.json and .md.")
    return rows


def plot_comparison(curves: dict[str, list[dict[str, float]]], path: Path, title: str) -> None:
    """Validation query accuracy after adaptation over training time, one line per method."""
    fig, ax = training.new_figure()
    lowest = 1.0
    for color, (label, history) in zip(("C0", "C1", "C2", "C3"), curves.items()):
        seconds = np.array([r["seconds"] for r in history])
        val = np.array([r["val_accuracy_query"] for r in history])
        ci = np.array([r["val_accuracy_query_ci95"] for r in history])
        ax.plot(seconds, val, color=color, lw=2, marker="o", ms=3, label=label)
        ax.fill_between(seconds, val - ci, val + ci, color=color, alpha=0.2)
        lowest = min(lowest, float(np.nanmin(val - ci)))
    ax.set(xlabel="training time (s, validation included)", ylabel="validation query accuracy",
           ylim=(max(0.0, math.floor(lowest * 10) / 10), 1.005), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    training.save_figure(fig, path)


def compare(args: argparse.Namespace) -> list[dict]:
    """FO-MAML vs transfer on the same test tasks: table with 95 % CIs (JSON, markdown) and joint plot."""
    maml_dir, transfer_dir = Path(args.maml_dir), Path(args.transfer_dir)
    out_dir = Path(args.out_dir) if args.out_dir else transfer_dir
    maml_hparams_path = maml_dir / "hparams.json"
    if not maml_hparams_path.is_file():
        raise SystemExit(f"No maml.py run in {maml_dir} (no hparams.json): train one with "
                         f"`python maml.py --log-dir {maml_dir}` or pass its folder with --maml-dir.")
    maml_hp = json.loads(maml_hparams_path.read_text())["hparams"]
    meta = maml.build_maml(maml_hp)
    try:
        meta.load_weights(maml_dir / "weights.npz")
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"Cannot load the FO-MAML weights of {maml_dir}: {error}") from error
    hp = _transfer_hparams(transfer_dir)
    frozen = load_features(transfer_dir / "weights.npz")
    num_way, num_query = maml_hp["num_way"], maml_hp["num_query"]
    evaluate_transfer = TransferEvaluator(num_way, hp["transfer_steps"], hp["transfer_lr"])
    names = {"maml": f"{'FO-' if maml_hp['first_order'] else ''}MAML ({maml_hp['num_inner_steps']} inner steps, "
                     f"lr {maml_hp['inner_lr']:g})",
             "transfer": f"transfer ({hp['transfer_steps']} head steps, lr {hp['transfer_lr']:g})"}
    results = []
    for shots in args.shots:
        tasks = training.fixed_test_tasks(num_way, shots, num_query, args.num_test_tasks)
        _, maml_query = meta.evaluate(tasks, progress=True)
        _, transfer_query = evaluate_transfer(frozen, tasks, progress=True)
        row = {"num_way": num_way, "num_support": shots, "num_query": num_query, "num_tasks": len(tasks)}
        for key, values in (("maml", maml_query), ("transfer", transfer_query),
                            ("difference", maml_query - transfer_query)):
            row[f"{key}_accuracy"], row[f"{key}_ci95"] = mean_and_ci95(values)
        results.append(row)

    header = "| method | " + " | ".join(f"{num_way}-way {r['num_support']}-shot" for r in results) + " |"
    lines = [f"Test query accuracy, mean ± 95 % CI over the same {args.num_test_tasks} test tasks "
             f"(seed {TEST_SEED}, {num_query} queries per class)", "", header,
             "|---" * (len(results) + 1) + "|"]
    short = "FO-MAML" if maml_hp["first_order"] else "MAML"
    for key, label in ((*names.items(),) + (("difference", f"{short} − transfer (paired)"),)):
        sign = "+" if key == "difference" else ""
        lines.append(f"| {label} | " + " | ".join(
            f"{r[f'{key}_accuracy']:{sign}.4f} ± {r[f'{key}_ci95']:.4f}" for r in results) + " |")
    lines += ["", f"FO-MAML: {maml_dir / 'weights.npz'}; transfer: {transfer_dir / 'weights.npz'}."]
    out_dir.mkdir(parents=True, exist_ok=True)
    with load_data.atomic_output(out_dir / "comparison.json") as tmp:
        tmp.write_text(json.dumps({"methods": names, "maml_dir": str(maml_dir),
                                   "transfer_dir": str(transfer_dir), "results": results}, indent=2))
    with load_data.atomic_output(out_dir / "comparison.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    curves = {names["maml"]: read_history(maml_dir / "history.csv"),
              names["transfer"]: read_history(transfer_dir / "history.csv")}
    plot_path = Path(args.plot) if args.plot else out_dir / "comparison_val_accuracy.png"
    if all(curves.values()):
        plot_comparison(curves, plot_path, f"Validation, {num_way}-way {maml_hp['num_support']}-shot "
                                           f"({maml_hp['num_val_tasks']} tasks)")
        print(f"Wrote {out_dir / 'comparison.md'}, {out_dir / 'comparison.json'} and {plot_path}.")
    else:
        print(f"Wrote {out_dir / 'comparison.md'} and {out_dir / 'comparison.json'}; no plot: "
              f"a history.csv is missing in {maml_dir} or {transfer_dir}.")
    return results


# ------------------------------------------------------------------------ CLI


def parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    common = argparse.ArgumentParser(add_help=False)
    training.add_thread_arguments(common, intra=0)
    p = argparse.ArgumentParser(
        description="Part 2: pre-train the conv-4 network on all train characters, adapt a new linear "
                    "head per task (transfer learning) and compare with FO-MAML. Defaults are the "
                    "assignment's settings.", formatter_class=formatter)
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    pre = commands.add_parser("pretrain", parents=[common], formatter_class=formatter,
                              help="pre-train on all 1100 train characters, validating transfer as it goes")
    pre.add_argument("--log-dir", default=None, help="run folder (default: runs/transfer_<setting>)")
    settings.add_arguments(pre, settings.PretrainSettings)
    pre.add_argument("--resume", action="store_true", help="continue the run in --log-dir")

    tst = commands.add_parser("test", parents=[common], formatter_class=formatter,
                              help="transfer accuracy on the fixed test tasks, with 95 %% CI")
    swp = commands.add_parser("sweep", parents=[common], formatter_class=formatter,
                              help="validation accuracy over adaptation steps x learning rates")
    for sub in (tst, swp):
        sub.add_argument("--log-dir", required=True, help="a pretrain run folder")
        sub.add_argument("--num-support", type=int, default=settings.ASSIGNMENT.num_support,
                         help="K, support examples per class")
    tst.add_argument("--num-test-tasks", type=int, default=training.NUM_TEST_TASKS, help="test tasks")
    tst.add_argument("--transfer-steps", type=int, default=None,
                     help="gradient steps on the new head (default: the run's)")
    tst.add_argument("--transfer-lr", type=float, default=None, help="learning rate of the head (default: the run's)")
    swp.add_argument("--num-val-tasks", type=int, default=settings.ASSIGNMENT.num_val_tasks, help="validation tasks")
    swp.add_argument("--steps", type=int, nargs="+", default=[10, 30, 100, 300], help="adaptation steps to try")
    swp.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3, 1.0],
                     help="learning rates to try")

    cmp = commands.add_parser("compare", parents=[common], formatter_class=formatter,
                              help="FO-MAML vs transfer on the same test tasks: table and joint plot")
    cmp.add_argument("--maml-dir", required=True, help="a maml.py run folder (hparams.json, weights.npz)")
    cmp.add_argument("--transfer-dir", required=True, help="a pretrain run folder")
    cmp.add_argument("--shots", type=int, nargs="+", default=[5, 1], help="K values to test")
    cmp.add_argument("--num-test-tasks", type=int, default=training.NUM_TEST_TASKS, help="test tasks per K")
    cmp.add_argument("--out-dir", default=None, help="where the table goes (default: --transfer-dir)")
    cmp.add_argument("--plot", default=None, help="joint plot path (default: OUT_DIR/comparison_val_accuracy.png)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    training.configure_threads(args.intra_op_threads, args.inter_op_threads)
    if args.command == "pretrain":
        values = settings.from_args(settings.PretrainSettings, args)
        args.log_dir = args.log_dir or settings.default_pretrain_dir(values)
        pretrain(args, values)
    else:
        {"test": test, "sweep": sweep, "compare": compare}[args.command](args)


if __name__ == "__main__":
    main()
