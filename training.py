"""The training programs' harness: run folders, resume, history, plots, checkpoints, Ctrl-C.

Provided; you do not need to change anything here. ``python maml.py`` (``main``,
``train``, ``test``) and ``python maml_transfer.py pretrain`` both train through
``run_training``, which

* refuses to overwrite a run, and checks that ``--resume`` continues the same
  settings (``settings.changed``);
* validates at step 0 and every ``val_interval`` steps, appending a row to
  ``history.csv``, TensorBoard and the plot ``val_accuracy.png``, and saving a
  checkpoint (the plot at most every ``PLOT_EVERY_S`` seconds, and always at the end);
* says which device trains, and after the first validation that follows
  training steps the run's expected wall time (``RunClock``); its last line
  says how long it took;
* turns the first Ctrl-C into "stop after this step, save a checkpoint and
  print the command that resumes" (``DeferredInterrupt``);
* writes ``weights.npz`` at the end.

A resumed run computes exactly what an uninterrupted one does: the task or
minibatch of every step is a pure function of the seed and the step.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

import load_data
import settings
from runs import HISTORY, read_history, write_history
from scaffold import mean_and_ci95

VAL_SEED = 1  # task streams: training uses --seed, validation and test fixed seeds
TEST_SEED = 2
NUM_TEST_TASKS = 600  # the fixed test tasks of --test (both programs) and of `compare`
HISTORY_FIELDS = ["iteration", "seconds", "train_loss", "train_accuracy_query",
                  "val_accuracy_query", "val_accuracy_query_ci95",
                  "val_accuracy_support_pre", "val_accuracy_support_post"]


# ------------------------------------------------------------------ machine


def environment() -> dict:
    """Software and machine facts recorded beside the hyper-parameters."""
    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "numpy": np.__version__, "machine": platform.machine(), "cpus": os.cpu_count()}


def configure_threads(intra: int, inter: int) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter or os.cpu_count() or 1)


def add_thread_arguments(parser: argparse.ArgumentParser, intra: int) -> None:
    """--intra-op-threads (default ``intra``) and --inter-op-threads."""
    parser.add_argument("--intra-op-threads", type=int, default=intra,
                        help="threads inside one op; " + ("1 is fastest for these small ops on few cores"
                                                          if intra == 1 else "0 = one per CPU core"))
    parser.add_argument("--inter-op-threads", type=int, default=0,
                        help="ops run in parallel (tasks of a batch); 0 = one per CPU core")


def training_device() -> str:
    """Which device trains, as the start-up line; on a GPU, also switches on deterministic ops.

    With ``tf.config.experimental.enable_op_determinism`` the same seeds give the
    same validation numbers on the same GPU, as they do on the CPU (what the
    grader relies on). Not yet tried on a GPU: no GPU was available when written.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return f"Training on the CPU ({cores} cores)."
    tf.config.experimental.enable_op_determinism()
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "unknown model")
    return f"Training on GPU:0 ({name}), with deterministic ops."


def duration(seconds: float) -> str:
    """``seconds`` as "12 min 05 s" (or "42 s")."""
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


class RunClock:
    """Times the training steps and, once, predicts the run's wall time from them.

    The prediction comes after the first validation that follows at least two
    training steps of this process (the first step compiles, so it is left out):
    time since ``started`` + remaining steps x median seconds per step +
    remaining validations x the seconds of that validation.
    """

    def __init__(self, started: float, num_steps: int, val_interval: int, unit: str):
        self.started, self.num_steps, self.val_interval, self.unit = started, num_steps, val_interval, unit
        self.step_seconds: list[float] = []
        self.said = False

    def timed_step(self, run: Callable[[], tuple[float, float]]) -> tuple[float, float]:
        """``run()``, timed."""
        start = time.perf_counter()
        result = run()
        self.step_seconds.append(time.perf_counter() - start)
        return result

    def estimate(self, done: int, validation_seconds: float) -> str | None:
        """The expected-wall-time line after the validation at step ``done``; None if not yet or said."""
        if self.said or len(self.step_seconds) < 2:
            return None
        self.said = True
        per_step = float(np.median(self.step_seconds[1:]))
        remaining = self.num_steps - done
        validations = (self.num_steps // self.val_interval - done // self.val_interval
                       + (self.num_steps % self.val_interval != 0))
        total = time.perf_counter() - self.started + remaining * per_step + validations * validation_seconds
        return (f"Expected wall time of this run: about {duration(total)} ({remaining} more {self.unit}s "
                f"at {per_step:.2f} s, {validations} validations at {validation_seconds:.1f} s, "
                f"measured on this machine).")


class Prefetch:
    """``make(at)`` for consecutive ``at``, the next one computed in a background thread.

    For training batches, which depend only on the step: sampling batch
    ``at + 1`` overlaps with training step ``at``. A context manager (the
    thread ends on exit).
    """

    def __init__(self, make: Callable[[int], object], stop: int):
        self.make, self.stop = make, stop
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.pending = None  # (step, future)

    def __call__(self, at: int):
        pending, self.pending = self.pending, None
        result = pending[1].result() if pending and pending[0] == at else self.make(at)
        if at + 1 < self.stop:
            self.pending = (at + 1, self.executor.submit(self.make, at + 1))
        return result

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc) -> None:
        self.executor.shutdown(cancel_futures=True)


# -------------------------------------------------------------------- plots


PLOT_EVERY_S = 10.0  # during training the plot is redrawn at most this often (and always at the end)


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


# ---------------------------------------------------------------- the harness


class DeferredInterrupt:
    """Turns the first Ctrl-C into a request to stop after the current step.

    Stopping between steps never leaves a half-written file or a checkpoint
    of a half-applied step; a second Ctrl-C interrupts at once.
    """

    def __init__(self, say: Callable[[str], None], unit: str):
        self.requested = False
        self.say = say
        self.unit = unit
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.say(f"Ctrl-C: stopping after this {self.unit} and saving a checkpoint (Ctrl-C again to quit now).")

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def open_run(log_dir: Path, values: settings.Settings, hp: dict, resume: bool, kind: str) -> None:
    """Checks that ``log_dir`` may hold this run: a new folder, or ``resume`` with the same settings.

    Raises:
        SystemExit: the folder holds a run and ``resume`` is off, or the run's settings differ.
    """
    hparams_path = log_dir / "hparams.json"
    if hparams_path.is_file() and not resume:
        raise SystemExit(f"{log_dir} already holds a {kind}. Pass --resume to continue it, "
                         f"or choose a new --log-dir.")
    if resume and hparams_path.is_file():
        length = "num_iterations" if isinstance(values, settings.MAMLSettings) else "num_epochs"
        differ = settings.changed(json.loads(hparams_path.read_text())["hparams"], hp, length)
        if differ:
            raise SystemExit(f"--resume with other settings than the run in {log_dir}: "
                             + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in differ.items()))
    log_dir.mkdir(parents=True, exist_ok=True)


def run_training(log_dir: Path, values: settings.Settings, hp: dict, *, resume: bool, state: dict,
                 counter: str, num_steps: int, step: Callable[[int], tuple[float, float]],
                 validate: Callable[[int, list[tuple[float, float]]], dict], fields: Sequence[str],
                 plot: Callable[[list[dict]], None], save_weights: Callable[[Path], None],
                 resume_command: str, desc: str, loss_name: str, record: dict | None = None,
                 summaries: Sequence[str] = (), step_summaries: Sequence[str] = (),
                 stop_at: float | None = None, final_words: Callable[[dict], str] | None = None) -> dict:
    """Trains ``num_steps`` steps in the run folder ``log_dir``, validating, checkpointing and plotting.

    Args:
        log_dir: the run folder, checked with ``open_run`` before.
        values, hp: the run's settings and their ``hparams.json`` record.
        resume: continue from the folder's last checkpoint.
        state: the variables a checkpoint holds, besides the step counter.
        counter: the step counter's name ("iteration" or "step"), in checkpoints and messages.
        num_steps: train until the counter reaches this.
        step: trains on batch ``step``; returns (loss, accuracy) as floats.
        validate: (step, the (loss, accuracy) pairs since the last validation) -> the history
            row without "iteration" and "seconds".
        fields: the columns of ``history.csv``.
        plot: draws the history (``val_accuracy.png``).
        save_weights: writes ``weights.npz`` at the given path.
        resume_command: the program's command line, for the hint after Ctrl-C.
        desc, loss_name: the progress bar's label; what the loss is, for the error if it is not finite.
        record: more entries of ``hparams.json`` (between "hparams" and "environment").
        summaries: history keys also written to TensorBoard at every validation.
        step_summaries: the names of a step's (loss, accuracy) in TensorBoard, if written every step.
        stop_at: stop once validation query accuracy reaches this.
        final_words: the last history row -> a line printed after training, before the
            last line, which says how long training took.

    Returns:
        The last history row.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    print(training_device())
    counter_variable = tf.Variable(0, dtype=tf.int64, name=counter)
    checkpoint = tf.train.Checkpoint(**state, **{counter: counter_variable})
    manager = tf.train.CheckpointManager(checkpoint, log_dir / "checkpoints", max_to_keep=2)
    history_path = log_dir / HISTORY
    history: list[dict[str, float]] = []
    elapsed = 0.0
    if resume and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        history = [r for r in read_history(history_path) if r["iteration"] <= int(counter_variable.numpy())]
        elapsed = history[-1]["seconds"] if history else 0.0
        print(f"Resuming {log_dir} from {counter} {int(counter_variable.numpy())}.")
    with load_data.atomic_output(log_dir / "hparams.json") as tmp:
        tmp.write_text(json.dumps({"hparams": hp, **(record or {}), "environment": environment()}, indent=2))

    writer = tf.summary.create_file_writer(str(log_dir / "tensorboard"))
    window: list[tuple[float, float]] = []  # (loss, accuracy) of the steps since the last validation
    plotted = {"rows": -1, "at": -math.inf}  # how many history rows the plot shows, and when it was drawn

    def draw_plot() -> None:
        plot(history)
        plotted.update(rows=len(history), at=time.perf_counter())

    def add_row(at: int, seconds: float) -> dict:
        row = {"iteration": at, "seconds": round(seconds, 3), **validate(at, window)}
        row = {key: row[key] for key in fields}
        window.clear()
        history.append(row)
        write_history(history_path, history, fields)
        with writer.as_default(step=at):
            for key in summaries:
                tf.summary.scalar(key, row[key])
        if time.perf_counter() - plotted["at"] >= PLOT_EVERY_S:
            draw_plot()
        manager.save(checkpoint_number=at)
        return row

    start = int(counter_variable.numpy())
    if not history:  # the start of the curve: validation at initialisation
        add_row(0, 0.0)
    t0 = time.perf_counter() - elapsed  # the clock counts training and its validations, not step 0's
    row = history[-1]
    reached = False
    clock = RunClock(started, num_steps, values.val_interval, counter)
    bar = tqdm(range(start, num_steps), initial=start, total=num_steps, desc=desc,
               unit="it" if counter == "iteration" else counter, dynamic_ncols=True,
               disable=None)  # None: no bar when the output is not a terminal (a log file, CI)
    interrupt = DeferredInterrupt(bar.write, counter)
    try:
        for at in bar:
            if interrupt.requested:
                break
            loss, accuracy = clock.timed_step(lambda: step(at))
            counter_variable.assign(at + 1)
            if not math.isfinite(loss):
                raise FloatingPointError(f"the {loss_name} became {loss} at {counter} {at + 1}")
            window.append((loss, accuracy))
            if step_summaries:
                with writer.as_default(step=at + 1):
                    for name, value in zip(step_summaries, (loss, accuracy)):
                        tf.summary.scalar(name, value)
            if (at + 1) % values.val_interval == 0 or at + 1 == num_steps:
                validation_started = time.perf_counter()
                row = add_row(at + 1, validation_started - t0)
                expected = clock.estimate(at + 1, time.perf_counter() - validation_started)
                if expected:
                    bar.write(expected)
                reached = stop_at is not None and row["val_accuracy_query"] >= stop_at
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", val=f"{row['val_accuracy_query']:.3f}")
            if reached:
                bar.write(f"Validation accuracy {row['val_accuracy_query']:.3f} >= "
                          f"{stop_at} at {counter} {at + 1}: stopping early.")
                break
    finally:
        interrupt.restore()
        bar.close()
        writer.flush()
        if plotted["rows"] != len(history):  # the final plot shows every validation
            draw_plot()
    if interrupt.requested:
        manager.save(checkpoint_number=int(counter_variable.numpy()))
        raise SystemExit(
            f"Interrupted at {counter} {int(counter_variable.numpy())}; checkpoint saved. Continue with:\n"
            f"  {resume_command} --log-dir {log_dir} --resume " + " ".join(settings.cli_flags(values)))
    save_weights(log_dir / "weights.npz")
    if final_words:
        print(final_words(row))
    print(f"Trained {counter}s {start}..{int(counter_variable.numpy())} in "
          f"{duration(time.perf_counter() - started)} (compiling, training, validating, writing files).")
    return row


# ------------------------------------------------------------- python maml.py


def parser() -> argparse.ArgumentParser:
    """The flags of ``python maml.py``: ``settings.MAMLSettings`` and how to run."""
    p = argparse.ArgumentParser(
        description="Train or test (FO-)MAML on Omniglot. Defaults are the assignment's settings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--log-dir", default=None,
                   help="where checkpoints, history, plots and weights go (default: runs/<setting>)")
    settings.add_maml_arguments(p)
    p.add_argument("--stop-at-accuracy", type=float, default=None,
                   help="stop once validation query accuracy reaches this (e.g. 0.8)")
    p.add_argument("--resume", action="store_true", help="continue the run in --log-dir")
    p.add_argument("--test", action="store_true", help="evaluate saved weights on test tasks")
    p.add_argument("--weights", default=None, help="weights for --test (default: LOG_DIR/weights.npz)")
    p.add_argument("--num-test-tasks", type=int, default=NUM_TEST_TASKS, help="test tasks for --test")
    add_thread_arguments(p, intra=1)
    settings.add_maml_arguments(p, mamlpp=True)  # extra credit
    return p


def parse(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, settings.MAMLSettings]:
    """``python maml.py``'s arguments and its settings (--mamlpp expanded, --log-dir filled in)."""
    args = parser().parse_args(argv)
    values = settings.finish_maml_args(args)
    args.log_dir = args.log_dir or settings.default_log_dir(values)
    return args, values


def title(values: settings.MAMLSettings) -> str:
    """The plot title of a ``maml.py`` run."""
    techniques = settings.mamlpp_techniques(settings.record(values))
    name = f"MAML++ ({'+'.join(techniques)})" if techniques else f"{'FO-' if values.first_order else ''}MAML"
    return f"{name}, {values.num_way}-way {values.num_support}-shot, {values.num_inner_steps} inner steps"


def train(args: argparse.Namespace, values: settings.MAMLSettings, build: Callable) -> dict:
    """Meta-trains ``build(hp)`` in ``args.log_dir``; returns the last history row."""
    log_dir = Path(args.log_dir)
    hp = settings.record(values)
    open_run(log_dir, values, hp, args.resume, "training run")
    data = load_data.load_omniglot()
    train_tasks = load_data.TaskSampler(data, "train", values.num_way, values.num_support, values.num_query,
                                        seed=values.seed, augment_rotations=values.augment_rotations)
    val_sampler = load_data.TaskSampler(data, "val", values.num_way, values.num_support, values.num_query,
                                        seed=VAL_SEED)
    val_tasks = [val_sampler.task(i) for i in range(values.num_val_tasks)]
    model = build(hp)

    batch = Prefetch(lambda at: train_tasks.batch(at, values.meta_batch_size), values.num_iterations)

    def step(at: int) -> tuple[float, float]:
        loss, _, accuracy_query = model.train_step(batch(at))
        return float(loss), float(accuracy_query)

    def validate(at: int, window: list[tuple[float, float]]) -> dict:
        support, query = model.evaluate(val_tasks)
        mean, ci = mean_and_ci95(query)
        loss, accuracy = window[-1] if window else (float("nan"), float("nan"))
        return {"train_loss": loss, "train_accuracy_query": accuracy, "val_accuracy_query": mean,
                "val_accuracy_query_ci95": ci, "val_accuracy_support_pre": float(support[:, 0].mean()),
                "val_accuracy_support_post": float(support[:, -1].mean())}

    with batch:
        return run_training(
            log_dir, values, hp, resume=args.resume, state=model.checkpoint_state(), counter="iteration",
            num_steps=values.num_iterations, step=step, validate=validate, fields=HISTORY_FIELDS,
            plot=lambda history: plot_validation(history, log_dir / "val_accuracy.png", title(values)),
            save_weights=model.save_weights, resume_command="python maml.py", desc="meta-train",
            loss_name="outer loss", stop_at=args.stop_at_accuracy,
            summaries=("val_accuracy_query", "val_accuracy_support_pre", "val_accuracy_support_post"),
            step_summaries=("train_loss", "train_accuracy_query"),
            final_words=lambda row: (
                f"Final validation query accuracy {row['val_accuracy_query']:.3f} "
                f"± {row['val_accuracy_query_ci95']:.3f} at iteration {row['iteration']}. "
                f"Wrote {log_dir / 'weights.npz'}, {log_dir / 'val_accuracy.png'}, {log_dir / HISTORY}."))


def fixed_test_tasks(num_way: int, num_support: int, num_query: int, num_tasks: int) -> list[load_data.Task]:
    """The fixed test tasks of both programs' ``test`` and of ``compare`` (seed ``TEST_SEED``)."""
    sampler = load_data.TaskSampler(load_data.load_omniglot(), "test", num_way, num_support, num_query,
                                    seed=TEST_SEED)
    return [sampler.task(i) for i in range(num_tasks)]


def write_test_results(log_dir: Path, result: dict) -> Path:
    """Writes ``result`` as ``test_results_<N>way_<K>shot.json`` in ``log_dir``, atomically; returns its path."""
    path = log_dir / f"test_results_{result['num_way']}way_{result['num_support']}shot.json"
    with load_data.atomic_output(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    return path


def test(args: argparse.Namespace, values: settings.MAMLSettings, build: Callable) -> dict:
    """Mean query accuracy with a 95 % CI over ``num_test_tasks`` test tasks."""
    log_dir = Path(args.log_dir)
    weights = Path(args.weights) if args.weights else log_dir / "weights.npz"
    hparams_path = log_dir / "hparams.json"
    hp = json.loads(hparams_path.read_text())["hparams"] if hparams_path.is_file() else settings.record(values)
    if not weights.is_file():
        raise SystemExit(f"No weights at {weights}: train first (python maml.py --log-dir {log_dir}).")
    model = build(hp)
    model.load_weights(weights)
    tasks = fixed_test_tasks(hp["num_way"], values.num_support, hp["num_query"], args.num_test_tasks)
    start = time.perf_counter()
    support, query = model.evaluate(tasks, progress=True)
    mean, ci = mean_and_ci95(query)
    result = {"num_tasks": len(tasks), "num_way": hp["num_way"], "num_support": values.num_support,
              "num_query": hp["num_query"], "accuracy_query": mean, "accuracy_query_ci95": ci,
              "accuracy_support_pre": float(support[:, 0].mean()),
              "accuracy_support_post": float(support[:, -1].mean()),
              "weights": str(weights), "seconds": round(time.perf_counter() - start, 2)}
    path = write_test_results(log_dir, result)
    print(f"Test accuracy over {len(tasks)} tasks ({hp['num_way']}-way {values.num_support}-shot): "
          f"{mean:.4f} ± {ci:.4f} (95 % CI). Wrote {path}.")
    return result


def main(argv: Sequence[str] | None, build: Callable) -> None:
    """``python maml.py``: trains (or with --test, tests) the model that ``build(hp)`` makes."""
    args, values = parse(argv)
    configure_threads(args.intra_op_threads, args.inter_op_threads)
    (test if args.test else train)(args, values, build)
