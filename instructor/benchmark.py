"""Speed of the reference FO-MAML: seconds per meta-iteration, and time to 80 % validation accuracy.

A separate program, not a test: it prints figures for the README. Run it on a quiet machine:

    python instructor/benchmark.py                    # assignment settings, meta-batch 8
    python instructor/benchmark.py --meta-batch-sizes 4 8 16 --repeats 3
    python instructor/benchmark.py --full-run         # what a student waits for: python maml.py

--kernel-floor prints the least time a meta-iteration and a full run can take with
TensorFlow's CPU convolution kernels on this machine: every convolution the step
needs (per inner step the forward, the filter gradient and, above the first layer,
the input gradient on the support set; the support forward for the last accuracy;
forward and both gradients on the query set; a validation task without the query
gradients) timed alone in a compiled loop on one thread, summed, and shared out over
the cores as if both were busy every moment and nothing else took time.

--full-run runs ``python maml.py`` with its defaults (1000 iterations, 51
validations of 100 tasks) in a temporary run folder, as a student would, and
prints its wall time, its seconds per meta-iteration and per validation (as the
run measured them for its expected-wall-time line: the median of iterations 2-20,
the first compiles, and the validation at 20), and the machine's load average
before and after.

Per meta-batch size it reports:
  * first call: tracing and compiling the training step (once per run);
  * steady state: median seconds per meta-iteration (sampling the tasks and the training step),
    over --steps steps;
  * time to target: meta-iterations and wall seconds until the post-adaptation validation query
    accuracy on the 100 fixed validation tasks first reaches --target, validating every
    --val-interval iterations, median over --repeats seeds. Wall seconds include tracing and
    validation, i.e. what a student waits for.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import load_data  # noqa: E402
import maml  # noqa: E402
import settings  # noqa: E402
import training  # noqa: E402
from grader.files import ROOT  # noqa: E402


def seconds_per_iteration(data, meta_batch_size: int, steps: int) -> tuple[float, float]:
    """(first-call seconds, median steady-state seconds per training step)."""
    model = maml.MAML(num_way=5)
    sampler = load_data.TaskSampler(data, "train", 5, 5, 15, seed=100)
    start = time.perf_counter()
    model.train_step(sampler.batch(0, meta_batch_size))[0].numpy()
    first = time.perf_counter() - start
    times = []
    for step in range(1, steps + 1):
        start = time.perf_counter()  # sampling the tasks is part of an iteration
        model.train_step(sampler.batch(step, meta_batch_size))[0].numpy()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def time_to_target(data, meta_batch_size: int, seed: int, target: float, val_interval: int,
                   max_iterations: int) -> tuple[int | None, float]:
    """(iterations, wall seconds) until validation accuracy >= target; (None, s) if never."""
    start = time.perf_counter()
    model = maml.MAML(num_way=5, seed=seed)
    sampler = load_data.TaskSampler(data, "train", 5, 5, 15, seed=seed)
    val = load_data.TaskSampler(data, "val", 5, 5, 15, seed=training.VAL_SEED)
    val_tasks = [val.task(i) for i in range(100)]
    for step in range(max_iterations):
        model.train_step(sampler.batch(step, meta_batch_size))
        if (step + 1) % val_interval == 0:
            _, query = model.evaluate(val_tasks)
            if query.mean() >= target:
                return step + 1, time.perf_counter() - start
    return None, time.perf_counter() - start


def full_run() -> None:
    """Times ``python maml.py`` with its defaults, as a subprocess in a temporary run folder."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as log_dir:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "maml.py", "--log-dir", log_dir], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)  # the progress bar stays on the terminal
        wall = time.perf_counter() - start
    load_after = os.getloadavg()
    print(result.stdout, end="")
    if result.returncode != 0:
        raise SystemExit(f"python maml.py failed (exit code {result.returncode}).")
    measured = re.search(r"at ([\d.]+) s, \d+ validations at ([\d.]+) s", result.stdout)
    per_iteration, per_validation = (float(x) for x in measured.groups())
    print(f"\nfull default run (python maml.py): {wall:.0f} s wall ({wall / 60:.1f} min); "
          f"{per_iteration:.3f} s per meta-iteration, {per_validation:.1f} s per validation; "
          f"{os.cpu_count()} CPUs, load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} "
          f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")


def kernel_seconds(batch: int, size: int, channels: int, filters: int, repeats: int = 100) -> dict[str, float]:
    """Seconds of one of ``maml.features``' convolutions (stride 2, SAME) of a (batch, size, size, channels)
    input, its filter gradient and its input gradient, each the median over 3 compiled loops of ``repeats``
    calls on one thread."""
    import tensorflow as tf

    x = tf.random.normal((batch, size, size, channels))
    w = tf.random.normal((maml.KERNEL_SIZE, maml.KERNEL_SIZE, channels, filters))
    dy = tf.random.normal(tf.nn.conv2d(x, w, 2, "SAME").shape)
    strides = [1, 2, 2, 1]
    kernels = {
        "forward": lambda i: tf.nn.conv2d(x + i, w, 2, "SAME"),
        "filter gradient": lambda i: tf.raw_ops.Conv2DBackpropFilter(
            input=x + i, filter_sizes=tf.shape(w), out_backprop=dy, strides=strides, padding="SAME"),
        "input gradient": lambda i: tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x), filter=w, out_backprop=dy + i, strides=strides, padding="SAME"),
        "nothing": lambda i: x[:1, :1, :1, :1] + i,  # the loop's own cost, taken off the others
    }

    def looped(kernel):
        @tf.function
        def run():
            def body(i, total):
                return i + 1, total + tf.reduce_sum(kernel(tf.cast(i, tf.float32)))
            return tf.while_loop(lambda i, _: i < repeats, body, (0, 0.0))[1]
        run()  # trace
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run().numpy()
            times.append((time.perf_counter() - start) / repeats)
        return statistics.median(times)

    seconds = {name: looped(kernel) for name, kernel in kernels.items()}
    loop = seconds.pop("nothing")
    return {name: max(value - loop, 0.0) for name, value in seconds.items()}


def kernel_floor() -> None:
    """Prints the convolution-kernel floor of a meta-iteration and of a full default run (see the docstring)."""
    load_before = os.getloadavg()[0]
    training.configure_threads(1, 1)
    import tensorflow as tf

    values = settings.ASSIGNMENT
    support = values.num_way * values.num_support
    query = values.num_way * values.num_query
    steps, cores = values.num_inner_steps, len(os.sched_getaffinity(0))
    layers = [(28, 1)] + [(size, maml.NUM_FILTERS) for size in (14, 7, 4)]  # input of each conv layer
    kernels = {(batch, layer): kernel_seconds(batch, size, channels, maml.NUM_FILTERS)
               for batch in (support, query) for layer, (size, channels) in enumerate(layers)}

    def pass_seconds(batch: int, gradients: bool) -> float:
        total = 0.0
        for layer in range(len(layers)):
            k = kernels[batch, layer]
            total += k["forward"]
            if gradients:  # the first layer's input gradient is not needed (the images are not trained)
                total += k["filter gradient"] + (k["input gradient"] if layer else 0.0)
        return total

    rates = []
    for layer, (size, channels) in enumerate(layers):
        out = (size + 1) // 2
        flops = 2 * query * out * out * maml.NUM_FILTERS * maml.KERNEL_SIZE ** 2 * channels
        rates.append(f"layer {layer} {flops / kernels[query, layer]['forward'] / 1e9:.0f}")
    train_support, forward_support = pass_seconds(support, True), pass_seconds(support, False)
    train_query, forward_query = pass_seconds(query, True), pass_seconds(query, False)
    task = steps * train_support + forward_support + train_query
    validation_task = steps * train_support + forward_support + forward_query
    iteration = values.meta_batch_size * task / cores
    validation = values.num_val_tasks * validation_task / cores
    validations = values.num_iterations // values.val_interval + 1
    run = values.num_iterations * iteration + validations * validation
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores; TensorFlow {tf.__version__}; "
          f"load average before {load_before:.2f}")
    print(f"one thread: support set ({support} images) forward + gradients {1000 * train_support:.1f} ms, forward "
          f"{1000 * forward_support:.1f} ms; query set ({query}) forward + gradients {1000 * train_query:.1f} ms, "
          f"forward {1000 * forward_query:.1f} ms")
    print(f"forward GFLOP/s on one thread ({query} images): " + ", ".join(rates))
    print(f"floor on {cores} cores: meta-iteration (meta-batch {values.meta_batch_size}) {iteration:.3f} s, "
          f"validation ({values.num_val_tasks} tasks) {validation:.2f} s, full default run "
          f"({values.num_iterations} iterations, {validations} validations) {run:.0f} s = {run / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--meta-batch-sizes", type=int, nargs="+", default=[8])
    parser.add_argument("--steps", type=int, default=30, help="timed steady-state steps")
    parser.add_argument("--repeats", type=int, default=3, help="seeds for the time to target")
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--val-interval", type=int, default=5)
    parser.add_argument("--max-iterations", type=int, default=1000)
    parser.add_argument("--kernel-floor", action="store_true",
                        help="print the least time the convolutions alone take instead (see above)")
    parser.add_argument("--full-run", action="store_true",
                        help="time one full default run of python maml.py instead (ignores the options above)")
    training.add_thread_arguments(parser, intra=1)
    args = parser.parse_args()
    if args.full_run:
        return full_run()
    if args.kernel_floor:
        return kernel_floor()
    training.configure_threads(args.intra_op_threads, args.inter_op_threads)

    import tensorflow as tf

    data = load_data.load_omniglot(progress=False)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"TensorFlow {tf.__version__}; threads intra {args.intra_op_threads}, "
          f"inter {args.inter_op_threads or os.cpu_count()}")
    print("5-way 5-shot, 15 queries, 5 inner steps, inner lr 0.4, outer lr 0.001, first order\n")
    rows = []
    for batch in args.meta_batch_sizes:
        first, per_step = seconds_per_iteration(data, batch, args.steps)
        reached = [time_to_target(data, batch, seed, args.target, args.val_interval, args.max_iterations)
                   for seed in range(args.repeats)]
        iterations = [it for it, _ in reached if it is not None]
        rows.append((batch, first, per_step, per_step / batch,
                     f"{statistics.median(iterations):g} ({min(iterations)}-{max(iterations)})" if iterations else "never",
                     statistics.median(s for _, s in reached), f"{len(iterations)}/{len(reached)}"))
        print(f"meta-batch {batch}: done", flush=True)
    header = ("meta-batch", "first call s", "s / meta-iter", "s / task",
              f"iters to {args.target:.0%} (min-max)", "wall s to target", "runs reaching")
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for batch, first, per_step, per_task, iterations, wall, hits in rows:
        print(f"| {batch} | {first:.1f} | {per_step:.3f} | {per_task:.4f} | {iterations} | {wall:.0f} | {hits} |")


if __name__ == "__main__":
    main()
