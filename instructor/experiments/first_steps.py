"""How well the training check's first-steps agreement tells real training from steps that are not the meta-gradient.

The training check (``instructor/autograder/tests/test_training.py``) accepts a
run that reaches the target only if its first chunk of steps moved the weights
the way the reference's first steps do from the same start on the same tasks:
the cosine between the two changes (``first_steps_agreement``) must be at least
``FIRST_STEPS_AGREEMENT``. This program measures that cosine for

* the reference itself, trained again in this process (``reference again``);
* catalogue entries of ``maml.py`` (``tests/submissions/*/NAME.py``, pasted into
  the handout as the catalogue's grading pastes them), named with ``--entries``;
* steps that are not the meta-gradient: Adam toward other weights (the walk a
  submission that recognised the check could take toward weights made at home)
  and Adam on the query loss without adaptation (a gradient needing no MAML);

each trained ``--steps`` steps of the assignment's FO-MAML from the grader's
start (``reference.initial_weights``) on the training stream of each seed, in
this process (no sandbox: the numbers, not the isolation, are measured).

Usage (from the repository root):
    python -m instructor.experiments.first_steps
    python -m instructor.experiments.first_steps --seeds 777 12345 --entries no_stop_gradient sum_over_tasks
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
    FIRST_STEPS_AGREEMENT,
    first_steps_agreement,
)
from instructor.experiments.catalogue_accuracy import (
    CATALOGUE,
    read_entry,
    student_files,
)


def variants(maml, entries: list[str], folder: Path) -> dict[str, type]:
    """Name -> MAML class of every variant measured (see the module's docstring)."""
    import tensorflow as tf

    other = {name: tf.constant(value) for name, value in maml.init_parameters(5, seed=987654).items()}

    class Walk(maml.MAML):
        def outer_loop(self, task_batch, train):
            loss, support, query = super().outer_loop(task_batch, train)
            distance = tf.add_n([tf.reduce_sum(tf.square(self.meta_parameters[name] - other[name]))
                                 for name in self.meta_parameters])
            return 0.0 * loss + distance, support, query

    class QueryLossWithoutAdaptation(maml.MAML):
        def inner_loop(self, images, labels, train):
            return dict(self.meta_parameters), tf.zeros(self.num_inner_steps + 1)

    found = {"reference again": maml.MAML}
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
    found["query loss without adaptation"] = QueryLossWithoutAdaptation
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[777, 12345], help="the grader's seeds")
    parser.add_argument("--steps", type=int, default=20, help="steps of the first chunk (the check's val_interval)")
    parser.add_argument("--entries", nargs="*", default=[], help="catalogue entries of maml.py to measure too")
    args = parser.parse_args(argv)
    training.configure_threads(1, 0)
    maml, _ = reference.modules()
    data = load_data.load_omniglot(progress=False)
    hp = settings.record(settings.ASSIGNMENT)
    rows: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="first-steps-") as folder:
        found = variants(maml, args.entries, Path(folder))
        for seed in args.seeds:
            hp["seed"] = seed
            start = reference.initial_weights(hp)
            replayed = reference.first_steps(hp, args.steps)["weights"]
            for name, cls in found.items():
                model = cls(hp["num_way"], hp["num_inner_steps"], hp["inner_lr"], hp["learn_inner_lrs"],
                            hp["outer_lr"], hp["first_order"], seed)
                sampler = load_data.TaskSampler(data, "train", hp["num_way"], hp["num_support"], hp["num_query"],
                                                seed=seed)
                try:
                    for step in range(args.steps):
                        model.train_step(sampler.batch(step, hp["meta_batch_size"]))
                    cosine = f"{first_steps_agreement(model.weights(), replayed, start):.2f}"
                except Exception as error:  # noqa: BLE001 - an entry that cannot train is reported, not fatal
                    cosine = f"error: {type(error).__name__}"
                rows.setdefault(name, []).append(cosine)
                print(f"seed {seed}: {name}: {cosine}", flush=True)
    print(f"\nFirst-steps agreement after {args.steps} steps (accepted: at least {FIRST_STEPS_AGREEMENT:g})\n")
    print("| variant | " + " | ".join(f"seed {seed}" for seed in args.seeds) + " |")
    print("|---|" + "---:|" * len(args.seeds))
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(values) + " |")


if __name__ == "__main__":
    main()
