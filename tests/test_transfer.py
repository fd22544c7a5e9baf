"""Part 2 (maml_transfer.py): the contract of transfer_learn, and real short runs of its CLI.

Everything is real: Omniglot tasks, TensorFlow, subprocesses of the command line.
The contract tests use random convolutional features (the contract does not
depend on pre-training); the run tests pre-train for one epoch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import load_data
import maml
import maml_transfer as mt
from grader.files import ROOT
from runs import read_history
from training import VAL_SEED

NUM_WAY = 5


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def data() -> load_data.Omniglot:
    return load_data.load_omniglot(progress=False)


@pytest.fixture(scope="module")
def frozen() -> dict[str, tf.Variable]:
    """Random conv features as variables, so that an ``assign`` would show."""
    return {name: tf.Variable(value, name=name)
            for name, value in mt.feature_parameters(maml.init_parameters(NUM_WAY, seed=0)).items()}


def _task(data, split="val", shots=5, seed=VAL_SEED, index=0) -> tuple[tf.Tensor, ...]:
    task = load_data.TaskSampler(data, split, NUM_WAY, shots, 15, seed=seed).task(index)
    return tuple(tf.convert_to_tensor(part) for part in task)


@pytest.fixture(scope="module")
def task(data):
    return _task(data)


def _bits(tensors: dict) -> dict[str, bytes]:
    return {name: np.asarray(value).tobytes() for name, value in tensors.items()}


# ------------------------------------------------------------ transfer_learn


def test_frozen_parameters_stay_bit_identical_and_only_the_head_moves(frozen, task):
    before = _bits({name: v.numpy() for name, v in frozen.items()})
    accuracy_query, head = mt.transfer_learn(frozen, task, NUM_WAY)
    assert _bits({name: v.numpy() for name, v in frozen.items()}) == before
    assert {name: tuple(t.shape) for name, t in head.items()} == {"w4": (64, NUM_WAY), "b4": (NUM_WAY,)}
    assert np.abs(head["w4"].numpy()).max() > 0  # it moved away from the zero start
    # The returned accuracy is that of the frozen features with this head, computed
    # by part 1's network: no other (e.g. fine-tuned) parameters were used.
    logits = maml.forward(task[2], {**frozen, **head})
    assert float(accuracy_query) == pytest.approx(float(maml.accuracy(logits, task[3])), abs=1e-6)
    # Compiled, as the scaffold runs it: still nothing changes, and it traces (no eager fallback).
    evaluator = mt.TransferEvaluator(NUM_WAY, chunk_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _, query = evaluator(frozen, [task])
    assert not evaluator._evaluate.eager
    assert query[0] == pytest.approx(float(accuracy_query), abs=1e-6)
    assert _bits({name: v.numpy() for name, v in frozen.items()}) == before


def test_the_head_never_sees_the_query_set(frozen, task, data):
    images_support, labels_support, images_query, labels_query = task
    accuracy_query, head = mt.transfer_learn(frozen, task, NUM_WAY)
    other = _task(data, seed=123)
    for corrupted in [(images_support, labels_support, images_query, (labels_query + 1) % NUM_WAY),
                      (images_support, labels_support, other[2], other[3])]:
        accuracy_corrupted, head_corrupted = mt.transfer_learn(frozen, corrupted, NUM_WAY)
        assert _bits(head_corrupted) == _bits(head)
        # ... while the query set does decide the accuracy, so the check above is not vacuous.
        assert float(accuracy_corrupted) != float(accuracy_query)


def test_deterministic(frozen, task):
    first = mt.transfer_learn(frozen, task, NUM_WAY)
    second = mt.transfer_learn(frozen, task, NUM_WAY)
    assert float(first[0]) == float(second[0])
    assert _bits(first[1]) == _bits(second[1])


def test_steps_and_learning_rate_are_plain_gradient_descent_from_zero(frozen, task):
    """Checked against an independent float64 numpy logistic regression on the support features."""
    features = mt.extract_features(task[0], frozen).numpy().astype(np.float64)
    targets = np.eye(NUM_WAY)[task[1].numpy()]
    for steps, lr in [(0, 0.5), (1, 0.7), (20, 0.5)]:
        accuracy_query, head = mt.transfer_learn(frozen, task, NUM_WAY, num_steps=steps, learning_rate=lr)
        w, b = np.zeros((features.shape[1], NUM_WAY)), np.zeros(NUM_WAY)
        for _ in range(steps):
            logits = features @ w + b
            p = np.exp(logits - logits.max(1, keepdims=True))
            error = (p / p.sum(1, keepdims=True) - targets) / len(features)  # d mean CE / d logits
            w, b = w - lr * features.T @ error, b - lr * error.sum(0)
        np.testing.assert_allclose(head["w4"].numpy(), w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(head["b4"].numpy(), b, rtol=1e-4, atol=1e-6)
        if steps == 0:  # all logits equal: argmax predicts class 0
            assert float(accuracy_query) == pytest.approx(np.mean(task[3].numpy() == 0))


def test_extract_features_is_part_1_network_without_its_head(frozen, task):
    head = {"w4": tf.random.stateless_normal((64, NUM_WAY), seed=(1, 2)),
            "b4": tf.random.stateless_normal((NUM_WAY,), seed=(3, 4))}
    np.testing.assert_allclose(mt.head_logits(mt.extract_features(task[2], frozen), head).numpy(),
                               maml.forward(task[2], {**frozen, **head}).numpy(), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------ the grader's transfer fixtures


def _fixture_accuracies(name: str) -> list[dict]:
    """Per query set of a stored transfer fixture, the reference's head (float32, as the checks run it) and
    its query accuracy measured the right way and in ways a student may get wrong."""
    from grader import compare
    from instructor import make_fixtures

    fixture = make_fixtures.load(name)
    frozen = {n: tf.constant(fixture[f"frozen/{n}"].astype(np.float32))
              for n in compare.parameter_names(fixture, "frozen/")}
    num_way, found = int(fixture["num_way"]), []
    for j, task in enumerate(compare.tasks_from_fixture(fixture, np.float32)):
        accuracy, head = mt.transfer_learn(frozen, [tf.constant(part) for part in task], num_way,
                                           num_steps=int(fixture["num_steps"]),
                                           learning_rate=float(fixture["learning_rate"]))
        images_support, labels_support, images_query, labels_query = task
        correct = np.argmax(mt.head_logits(mt.extract_features(images_query, frozen), head).numpy(), -1) == labels_query
        support = np.argmax(mt.head_logits(mt.extract_features(images_support, frozen), head).numpy(), -1)
        found.append({"stored": float(fixture["accuracy_query"][j]), "accuracy": float(accuracy),
                      "by_hand": float(np.mean(correct)), "support": float(np.mean(support == labels_support)),
                      "per_class": float(np.mean([np.mean(correct[labels_query == c]) for c in range(num_way)])),
                      "counts": np.bincount(labels_query, minlength=num_way), "size": len(labels_query)})
    return found


@pytest.mark.parametrize("name", ["transfer", "transfer_hidden"])
def test_transfer_fixtures_make_every_accuracy_informative(name):
    """On the stored pre-trained features the reference's query accuracy is well above chance (and below 1),
    fine-grained, different between query sets, and a changed definition of it gives another number:
    the support set's accuracy, a mean of per-class accuracies (on the set with unequal classes), one
    example's 0 or 1."""
    sets = _fixture_accuracies(name)
    margin = max(1 / s["size"] for s in sets)  # one query example
    assert margin <= 1 / 50 and len(sets) >= 2
    for s in sets:
        assert s["accuracy"] == pytest.approx(s["stored"], abs=1e-6) and s["by_hand"] == pytest.approx(s["stored"])
        assert 0.6 <= s["stored"] <= 0.95, s
        assert abs(s["support"] - s["stored"]) >= margin, s
    assert len({round(s["stored"], 6) for s in sets}) >= 2  # "the same on every query set" is a finding
    unequal = [s for s in sets if len(set(s["counts"])) > 1]
    assert unequal and all(abs(s["per_class"] - s["stored"]) >= margin / 2 for s in unequal), unequal


# ------------------------------------------------------------ scaffold pieces


def test_minibatches_are_reproducible_fixed_size_and_cover_each_epoch_once(data):
    images, labels = mt.pretraining_data(data)
    assert images.shape == (1100 * 20, 28, 28, 1) and labels.shape == (1100 * 20,)
    assert np.array_equal(np.bincount(labels), np.full(1100, 20))
    stream = mt.MinibatchStream(images, labels, batch_size=1000, seed=3)
    seen = np.concatenate([stream.batch(step)[1] for step in range(stream.steps_per_epoch)])
    assert len(seen) == 22000 and np.bincount(seen, minlength=1100).max() <= 20
    again = mt.MinibatchStream(images, labels, batch_size=1000, seed=3)
    assert np.array_equal(again.batch(stream.steps_per_epoch + 5)[0],
                          stream.batch(stream.steps_per_epoch + 5)[0])
    assert not np.array_equal(stream.batch(0)[1], stream.batch(stream.steps_per_epoch)[1])


def test_load_features_explains_bad_files(tmp_path):
    with pytest.raises(SystemExit, match="pre-train first"):
        mt.load_features(tmp_path / "weights.npz")
    np.savez(tmp_path / "bad.npz", conv0=np.zeros((3, 3, 1, 32), np.float32))
    with pytest.raises(SystemExit, match=r"missing .*conv1.*conv0 \(3, 3, 1, 32\) \(expected \(3, 3, 1, 64\)\)"):
        mt.load_features(tmp_path / "bad.npz")


# ------------------------------------------------------------ real runs of the CLI


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """One epoch of real pre-training (171 steps of 128 images), validated every 57 steps."""
    log_dir = tmp_path_factory.mktemp("transfer") / "run"
    result = _run("maml_transfer.py", "pretrain", "--log-dir", str(log_dir), "--num-epochs", "1",
                  "--val-interval", "57", "--num-val-tasks", "40")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "Final validation transfer accuracy" in result.stdout
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith(("Training on the CPU (", "Training on GPU:0 (")) for line in lines)
    assert "Expected wall time of this run: about " in result.stdout  # after the validation at step 57
    assert lines[-1].startswith("Trained steps 0..171 in ")
    return log_dir


def test_short_pretraining_transfers_clearly_above_chance(pretrained):
    history = read_history(pretrained / "history.csv")
    assert [row["iteration"] for row in history] == [0, 57, 114, 171]
    start, end = history[0]["val_accuracy_query"], history[-1]["val_accuracy_query"]
    assert end > 0.6, f"transfer accuracy {end:.3f} after one epoch; chance is 0.2"
    assert end > start + 0.1, f"pre-training did not help: {start:.3f} at random init, {end:.3f} after"
    hparams = json.loads((pretrained / "hparams.json").read_text())["hparams"]
    assert hparams["transfer_steps"] == mt.TRANSFER_STEPS and hparams["num_classes"] == 1100
    with np.load(pretrained / "weights.npz") as weights:
        assert weights["w4"].shape == (64, 1100)
    assert (pretrained / "val_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((pretrained / "checkpoints").iterdir())
    again = _run("maml_transfer.py", "pretrain", "--log-dir", str(pretrained), "--num-epochs", "1")
    assert again.returncode != 0 and "--resume" in again.stderr


def test_compare_on_the_same_test_tasks(pretrained, tmp_path):
    """A (very short) real maml.py run against the pre-trained features: table, JSON and plot."""
    maml_dir = tmp_path / "fomaml"
    trained = _run("maml.py", "--log-dir", str(maml_dir), "--num-iterations", "2", "--val-interval", "2",
                   "--meta-batch-size", "2", "--num-val-tasks", "4")
    assert trained.returncode == 0, trained.stderr[-4000:]
    out_dir = tmp_path / "comparison"
    result = _run("maml_transfer.py", "compare", "--maml-dir", str(maml_dir), "--transfer-dir", str(pretrained),
                  "--num-test-tasks", "10", "--out-dir", str(out_dir))
    assert result.returncode == 0, result.stderr[-4000:]
    stored = json.loads((out_dir / "comparison.json").read_text())
    assert [r["num_support"] for r in stored["results"]] == [5, 1]
    for row in stored["results"]:
        assert row["num_tasks"] == 10
        assert row["difference_accuracy"] == pytest.approx(row["maml_accuracy"] - row["transfer_accuracy"])
        assert 0.2 < row["transfer_accuracy"] <= 1.0
    assert "FO-MAML − transfer (paired)" in (out_dir / "comparison.md").read_text()
    assert (out_dir / "comparison_val_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    missing = _run("maml_transfer.py", "compare", "--maml-dir", str(tmp_path / "nothing"),
                   "--transfer-dir", str(pretrained))
    assert missing.returncode != 0 and "No maml.py run in" in missing.stderr
