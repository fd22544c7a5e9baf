"""Generates the public grader's fixtures from the reference solution.

    python -m instructor.make_fixtures          # (re)write grader/fixtures/*.npz
    python -m instructor.make_fixtures --check  # exit 1 if they differ from the reference's numbers

The fixtures are the expected numbers of the public tests (``grader/checks.py``
documents their keys). They are computed here, by the reference solution in
this repository's ``maml.py``, on a few real Omniglot validation tasks:

* 3-way 2-shot tasks with 2 queries per class, 2 tasks: the drawings are stored
  as uint8, which is exact (the preprocessed data set is uint8 / 255);
* a conv-4 network with 4 filters (a few hundred parameters, so the files stay
  small) and non-zero biases, in float64, so a correct implementation matches
  to round-off (~1e-12) and the tests can use tight tolerances;
* 2 inner steps with a different inner learning rate for every parameter, so an
  implementation that ignores ``self.inner_lrs`` cannot match.

Files are written byte-reproducibly: regenerating unchanged fixtures changes
nothing in git.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from grader import checks  # noqa: E402
from instructor.release.archive import npz_bytes, write_atomic  # noqa: E402

NUM_WAY, NUM_SUPPORT, NUM_QUERY, NUM_TASKS = 3, 2, 2, 2
NUM_INNER_STEPS = 2
NUM_FILTERS = 4
SEED = 5  # task stream of the validation split, and the initialisation
TRANSFER_STEPS, TRANSFER_LR = 5, 0.5  # fewer steps than the default: the test checks they are honoured
COMPARE_RTOL = 1e-9  # regenerated vs stored: float64 on another machine differs by round-off only


def _uint8(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28, 1) float32 in {k/255} -> (n, 28, 28) uint8, checked to be exact."""
    stored = np.rint(images[..., 0] * 255.0).astype(np.uint8)
    if not np.array_equal(stored.astype(np.float32) / np.float32(255.0), images[..., 0]):
        raise ValueError("the Omniglot images are not multiples of 1/255; the uint8 fixture would not be exact")
    return stored


def maml_fixture() -> dict[str, np.ndarray]:
    """The arrays of ``grader/fixtures/maml.npz``, computed by the reference."""
    import tensorflow as tf

    import load_data
    import maml

    data = load_data.load_omniglot(progress=False)
    sampler = load_data.TaskSampler(data, "val", NUM_WAY, NUM_SUPPORT, NUM_QUERY, seed=SEED)
    tasks = [sampler.task(i) for i in range(NUM_TASKS)]
    fixture: dict[str, np.ndarray] = {
        "num_way": np.array(NUM_WAY), "num_inner_steps": np.array(NUM_INNER_STEPS),
        "images_support": np.stack([_uint8(t.images_support) for t in tasks]),
        "labels_support": np.stack([t.labels_support for t in tasks]).astype(np.int32),
        "images_query": np.stack([_uint8(t.images_query) for t in tasks]),
        "labels_query": np.stack([t.labels_query for t in tasks]).astype(np.int32),
    }
    theta = maml.init_parameters(NUM_WAY, num_filters=NUM_FILTERS, seed=SEED, dtype=tf.float64)
    rng = np.random.default_rng(SEED)
    for i, (name, value) in enumerate(theta.items()):
        value = value.numpy()
        if name.startswith("b"):  # zero biases would hide a bias that is never updated
            value = rng.normal(0.0, 0.1, value.shape)
        fixture[f"theta/{name}"] = value
        fixture[f"inner_lr/{name}"] = np.array(0.3 + 0.04 * i)

    model = checks.maml_from_fixture(maml, fixture, first_order=True)
    task_tensors = [tuple(tf.constant(part) for part in task) for task in checks.tasks_from_fixture(fixture)]
    phi, accuracies = model.inner_loop(task_tensors[0][0], task_tensors[0][1], train=True)
    fixture.update({f"inner/phi/{name}": value.numpy() for name, value in phi.items()})
    fixture["inner/accuracies"] = accuracies.numpy().astype(np.float64)
    for order, first_order in (("fo", True), ("so", False)):
        model = checks.maml_from_fixture(maml, fixture, first_order=first_order)
        with tf.GradientTape() as tape:
            loss, accuracies_support, accuracy_query = model.outer_loop(task_tensors, train=True)
        gradients = tape.gradient(loss, model.meta_parameters)
        fixture.update({f"grad_{order}/{name}": g.numpy() for name, g in gradients.items()})
        if first_order:
            fixture["outer/loss"] = np.array(float(loss))
            fixture["outer/accuracies_support"] = accuracies_support.numpy().astype(np.float64)
            fixture["outer/accuracy_query"] = np.array(float(accuracy_query))
    return fixture


def transfer_fixture(source: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of ``grader/fixtures/transfer.npz``: ``transfer_learn`` on task 0 of ``maml.npz``.

    ``source`` is the maml fixture: its conv0..3 / b0..3 are the frozen feature extractor. The
    reference runs in float64, the public test in float32 (the documented input
    dtype): measured, the two heads differ by ~7e-6 relative after 5 steps.
    """
    import tensorflow as tf

    import maml_transfer

    fixture = {key: source[key][:1] for key in ("images_support", "labels_support", "images_query", "labels_query")}
    fixture.update({f"frozen/{name}": source[f"theta/{name}"] for name in maml_transfer.FEATURE_KEYS})
    fixture.update({"num_way": source["num_way"], "num_steps": np.array(TRANSFER_STEPS),
                    "learning_rate": np.array(TRANSFER_LR)})
    frozen = {name: tf.constant(fixture[f"frozen/{name}"]) for name in maml_transfer.FEATURE_KEYS}
    task = [tf.constant(part) for part in checks.tasks_from_fixture(fixture)[0]]
    accuracy_query, head = maml_transfer.transfer_learn(frozen, task, int(fixture["num_way"]),
                                                        num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR)
    fixture.update({f"head/{name}": value.numpy() for name, value in head.items()})
    fixture["accuracy_query"] = np.array(float(accuracy_query))
    return fixture


def all_fixtures() -> dict[str, dict[str, np.ndarray]]:
    """Every fixture, name -> arrays; part 2's only once maml_transfer.py exists."""
    fixtures = {"maml": maml_fixture()}
    if (ROOT / "maml_transfer.py").is_file():
        fixtures["transfer"] = transfer_fixture(fixtures["maml"])
    else:
        print(f"transfer fixture skipped: {ROOT / 'maml_transfer.py'} does not exist yet")
    return fixtures


def differences(name: str, fresh: dict[str, np.ndarray]) -> list[str]:
    """How the stored fixture ``name`` differs from ``fresh`` (empty: it is current)."""
    path = checks.FIXTURES / f"{name}.npz"
    if not path.is_file():
        return [f"{path} is missing"]
    stored = checks.load_fixture(name)
    problems = []
    if sorted(stored) != sorted(fresh):
        problems.append(f"{name}: keys differ: only stored {sorted(set(stored) - set(fresh))}, "
                        f"only fresh {sorted(set(fresh) - set(stored))}")
    for key in sorted(set(stored) & set(fresh)):
        a, b = stored[key], fresh[key]
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"{name}/{key}: stored {a.dtype}{a.shape}, fresh {b.dtype}{b.shape}")
        elif checks.relative_error(a.astype(np.float64), b.astype(np.float64), b) > COMPARE_RTOL:
            problems.append(f"{name}/{key}: max difference {np.max(np.abs(a - b)):.3g}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the stored fixtures, write nothing")
    args = p.parse_args(argv)
    status = 0
    for name, fresh in all_fixtures().items():
        path = checks.FIXTURES / f"{name}.npz"
        if args.check:
            problems = differences(name, fresh)
            print(f"{path}: " + ("current" if not problems else "STALE\n  " + "\n  ".join(problems)))
            status |= bool(problems)
        else:
            content = npz_bytes(fresh)
            write_atomic(path, content)
            print(f"wrote {path} ({len(content) / 1024:.1f} KiB, {len(fresh)} arrays)")
    return status


if __name__ == "__main__":
    sys.exit(main())
