"""How well the training check's steps agreement tells real training from steps that are not the meta-gradient.

The training check (``instructor/autograder/tests/test_training.py``) accepts a
run that reaches the target only if every chunk of its steps moved the weights
the way the reference's steps do from the same weights on the same tasks
(``reference.replay_chunk``: Adam's moments are the replay's own): the cosine
between the two changes (``steps_agreement``) must be at least
``STEPS_AGREEMENT`` in every chunk. This program measures that cosine, chunk by
chunk, for

* the reference itself, trained again in this process (``reference again``);
* catalogue entries of ``maml.py`` (``tests/submissions/*/NAME.py``, pasted into
  the handout as the catalogue's grading pastes them), named with ``--entries``;
* steps that are not the meta-gradient: Adam toward other weights (the walk a
  submission that recognised the check could take toward weights made at home),
  from the first step or only after an honest first chunk, and Adam on the
  query loss without adaptation (a gradient needing no MAML);

each trained ``--chunks`` chunks of ``--steps`` steps without a break, as the
student's run is, from the grader's start
(``reference.initial_weights``) on the training stream of each seed, in this
process (no sandbox: the numbers, not the isolation, are measured). With
``--mamlpp`` the settings are ``python maml.py --mamlpp``'s and the model
MAML++'s (catalogue entries are FO-MAML code and are not measured there).

Usage (from the repository root):
    python -m instructor.experiments.steps_agreement
    python -m instructor.experiments.steps_agreement --chunks 4 --entries no_stop_gradient sum_over_tasks
    python -m instructor.experiments.steps_agreement --mamlpp --chunks 3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import load_data
import settings
import training
from grader.files import ROOT
from instructor.autograder.tests import reference
from instructor.autograder.tests.test_training import (
    STEPS_AGREEMENT,
    steps_agreement,
)
from instructor.experiments.catalogue_accuracy import (
    CATALOGUE,
    read_entry,
    student_files,
)


def variants(maml, base: type, entries: list[str], folder: Path, honest_steps: int) -> dict[str, type]:
    """Name -> model class of every variant measured (see the module's docstring); ``base``: MAML or MAMLPlusPlus."""
    import tensorflow as tf

    other = {name: tf.constant(value) for name, value in maml.init_parameters(5, seed=987654).items()}

    def walk_loss(model, loss):
        return 0.0 * loss + tf.add_n([tf.reduce_sum(tf.square(model.meta_parameters[name] - other[name]))
                                      for name in model.meta_parameters])

    class Walk(base):
        def outer_loop(self, task_batch, train, **options):
            loss, support, query = super().outer_loop(task_batch, train, **options)
            return walk_loss(self, loss), support, query

    class WalkAfterFirstChunk(base):
        def outer_loop(self, task_batch, train, **options):
            loss, support, query = super().outer_loop(task_batch, train, **options)
            walking = tf.cast(self.optimizer.iterations >= honest_steps, loss.dtype)
            return (1.0 - walking) * loss + walking * walk_loss(self, loss), support, query

    class QueryLossWithoutAdaptation(maml.MAML):
        def inner_loop(self, images, labels, train):
            return dict(self.meta_parameters), tf.zeros(self.num_inner_steps + 1)

    found = {"reference again": base}
    handout = None
    for name in entries:
        if handout is None:
            from instructor.release import build

            handout = build.build_handout(ROOT, allow_missing=True)
        [path] = [p for p in (CATALOGUE / "buggy" / f"{name}.py", CATALOGUE / "correct" / f"{name}.py") if p.is_file()]
        source = folder / f"entry_{name}.py"
        source.write_text(student_files(handout, read_entry(path).functions)["maml.py"], encoding="utf-8")
        found[f"{path.parent.name}/{name}"] = reference._load(f"entry_{name}", source).MAML
    found["Adam toward other weights"] = Walk
    found["honest first chunk, then toward other weights"] = WalkAfterFirstChunk
    if base is maml.MAML:  # MAML++'s outer_loop adapts through `adapt`, not `inner_loop`
        found["query loss without adaptation"] = QueryLossWithoutAdaptation
    return found


def agreements(cls, hp: dict, data, chunks: int, steps: int) -> list[str]:
    """The cosine of every chunk of a run of ``cls`` with the reference's replay of it, as text."""
    model = cls(**settings.model_arguments(hp), **(settings.mamlpp_arguments(hp)
                                                   if settings.mamlpp_techniques(hp) else {}))
    sampler = load_data.TaskSampler(data, "train", hp["num_way"], hp["num_support"], hp["num_query"], seed=hp["seed"])
    start = reference.initial_weights(hp)
    boundaries = [None]
    try:
        for iteration in range(chunks * steps):
            model.train_step(sampler.batch(iteration, hp["meta_batch_size"]))
            if (iteration + 1) % steps == 0:
                boundaries.append(model.weights())
    except Exception as error:  # noqa: BLE001 - an entry that cannot train is reported, not fatal
        return [f"error: {type(error).__name__}"] * chunks
    cosines = []
    for k in range(chunks):
        replayed = reference.replay_chunk(hp, k * steps, steps, boundaries[k])["weights"]
        before = {**start, "weights": boundaries[k] or start["weights"]}
        cosines.append(f"{steps_agreement(boundaries[k + 1], replayed, before):.2f}")
    return cosines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[777, 12345], help="the grader's seeds")
    parser.add_argument("--steps", type=int, default=20, help="steps of a chunk (the check's val_interval)")
    parser.add_argument("--chunks", type=int, default=1, help="chunks of each run")
    parser.add_argument("--entries", nargs="*", default=[], help="catalogue entries of maml.py to measure too")
    parser.add_argument("--mamlpp", action="store_true", help="python maml.py --mamlpp's settings and model")
    args = parser.parse_args(argv)
    training.configure_threads(1, 0)
    import tensorflow as tf

    # as the grader's workers run (grader/sandbox.py sets TF_DETERMINISTIC_OPS): without it MAML++'s replay of the
    # reference measured 0.96-0.99 instead of 1.00
    tf.config.experimental.enable_op_determinism()
    maml, _ = reference.modules()
    data = load_data.load_omniglot(progress=False)
    hp = settings.record(training.parse(["--mamlpp"] if args.mamlpp else [])[1])
    rows: dict[str, list[list[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="steps-agreement-") as folder:
        found = variants(maml, maml.MAMLPlusPlus if args.mamlpp else maml.MAML,
                         [] if args.mamlpp else args.entries, Path(folder), args.steps)
        for seed in args.seeds:
            hp["seed"] = seed
            for name, cls in found.items():
                cosines = agreements(cls, hp, data, args.chunks, args.steps)
                rows.setdefault(name, []).append(cosines)
                print(f"seed {seed}: {name}: {' '.join(cosines)}", flush=True)
    print(f"\nSteps agreement per chunk of {args.steps} steps, over seeds {args.seeds} "
          f"({'MAML++' if args.mamlpp else 'FO-MAML'}; accepted: at least {STEPS_AGREEMENT:g})\n")
    print("| variant | " + " | ".join(f"steps {k * args.steps + 1}-{(k + 1) * args.steps}"
                                      for k in range(args.chunks)) + " |")
    print("|---|" + "---:|" * args.chunks)
    for name, per_seed in rows.items():
        cells = []
        for k in range(args.chunks):
            values = [cosines[k] for cosines in per_seed]
            numbers = sorted(float(v) for v in values if not v.startswith("error"))
            cells.append(values[0] if not numbers else f"{numbers[0]:.2f}" if numbers[0] == numbers[-1] or len(
                numbers) == 1 else f"{numbers[0]:.2f} to {numbers[-1]:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
