"""The extra credit, MAML++: each technique checked against its definition, then real runs.

The unit tests run on tiny real Omniglot tasks (3-way, 2-shot, 3 queries), most
of them eagerly; the ones about compiled behaviour (running statistics updated
inside the graph, retracing) run the compiled training step. Reference values
come from the base ``MAML`` class or from a few lines of independent arithmetic,
never from the MAML++ code under test.
"""

import json
import math
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import load_data
import maml
import runs
import settings
import training
from conftest import ROOT, run_python
from grader.sandbox import SCAFFOLD_FILES
from instructor.release.markers import stub_source
from maml import MAML, MAMLPlusPlus


@pytest.fixture(scope="module")
def tasks64(omniglot):
    sampler = load_data.TaskSampler(omniglot, "train", num_way=3, num_support=2, num_query=3, seed=5)
    return [tuple(tf.constant(p.astype(np.float64)) if p.dtype == np.float32 else tf.constant(p)
                  for p in sampler.task(i)) for i in range(2)]


@pytest.fixture(scope="module")
def sampler(omniglot):
    return load_data.TaskSampler(omniglot, "train", num_way=3, num_support=2, num_query=3, seed=7)


def gradients(model, tasks, variables, **kwargs):
    with tf.GradientTape() as tape:
        loss, _, _ = model.outer_loop(tasks, train=True, **kwargs)
    return [g.numpy() for g in tape.gradient(loss, variables)]


def layer_moments(images, parameters):
    """Per-channel batch mean and variance at the input of each batch norm, written out by hand."""
    moments, x = [], images
    for i in range(maml.NUM_CONV_LAYERS):
        x = tf.nn.conv2d(x, parameters[f"conv{i}"], strides=2, padding="SAME")
        mean = np.mean(x.numpy(), axis=(0, 1, 2))
        moments.append((mean, np.mean((x.numpy() - mean) ** 2, axis=(0, 1, 2))))
        x = tf.nn.relu(maml.batch_norm(x) + parameters[f"b{i}"])
    return moments


# --------------------------------------------------------------- all off


def test_with_every_technique_off_it_is_maml(tasks64):
    plain = MAML(3, num_inner_steps=2, dtype=tf.float64, seed=1)
    plus = MAMLPlusPlus(3, num_inner_steps=2, dtype=tf.float64, seed=1)
    for train in (True, False):
        for a, b in zip(plain.outer_loop(tasks64, train), plus.outer_loop(tasks64, train)):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(
        np.concatenate([g.ravel() for g in gradients(plain, tasks64, plain.trainable_variables)]),
        np.concatenate([g.ravel() for g in gradients(plus, tasks64, plus.trainable_variables)]), rtol=1e-10)
    assert float(plus.optimizer.learning_rate) == pytest.approx(1e-3)
    assert not plus.bn_weights and not plus.bn_stats and set(plus.inner_lrs) == set(plain.inner_lrs)


# ------------------------------------------------------------------- MSL


def test_importance_vector_sums_to_one_and_anneals_to_the_last_step():
    model = MAMLPlusPlus(3, num_inner_steps=4, multi_step_loss=True, msl_iterations=100)
    vectors = np.array([model.importance_vector(t).numpy() for t in range(0, 131)])
    np.testing.assert_allclose(vectors.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(vectors[0], [0.25] * 4, atol=1e-7)          # uniform at the start
    np.testing.assert_allclose(vectors[50], [0.125] * 3 + [0.625], atol=1e-6)  # 1/4 - 50/400, 1/4 + 3*50/400
    np.testing.assert_allclose(vectors[99], [0.0075] * 3 + [0.9775], atol=1e-6)  # floor 0.03/4
    assert (np.diff(vectors[:100, :3], axis=0) <= 1e-7).all()  # earlier steps only lose weight,
    assert (np.diff(vectors[:100, 3]) >= -1e-7).all()          # the last step only gains it
    np.testing.assert_array_equal(vectors[100:], np.tile([0, 0, 0, 1], (31, 1)))  # then MAML's loss


def test_importance_vector_reads_the_live_iteration_without_retracing():
    model = MAMLPlusPlus(3, num_inner_steps=2, multi_step_loss=True, msl_iterations=10)
    compiled = tf.function(lambda: model.importance_vector())
    seen = []
    for t in (0, 5, 10):
        model.optimizer.iterations.assign(t)
        seen.append(compiled().numpy())
        np.testing.assert_allclose(seen[-1], model.importance_vector(t), atol=1e-7)
    assert len({tuple(v) for v in seen}) == 3
    assert compiled.experimental_get_tracing_count() == 1


def test_multi_step_loss_weights_the_query_loss_after_every_step(tasks64):
    steps = 3
    model = MAMLPlusPlus(3, num_inner_steps=steps, multi_step_loss=True, msl_iterations=10,
                         dtype=tf.float64, seed=2)
    # Q_s, the query loss after s steps, from plain MAML stopped after s steps (same initialisation)
    query_losses = np.array([float(MAML(3, num_inner_steps=s, dtype=tf.float64, seed=2)
                                   .outer_loop(tasks64, train=True)[0]) for s in range(1, steps + 1)])
    for t in (0, 4, 10):
        model.optimizer.iterations.assign(t)
        expected = float(np.dot(model.importance_vector(t).numpy(), query_losses))
        loss = model.outer_loop(tasks64, train=True, multi_step=True)[0]
        assert float(loss) == pytest.approx(expected, rel=1e-10)
    assert float(loss) == pytest.approx(query_losses[-1], rel=1e-10)  # t = T: the final step only
    assert [model.multi_step_at(t) for t in (0, 9, 10, 11)] == [True, True, False, False]
    model.optimizer.iterations.assign(0)  # without multi_step, and in evaluation: the final step only
    assert float(model.outer_loop(tasks64, train=True)[0]) == pytest.approx(query_losses[-1], rel=1e-10)
    loss = model.outer_loop(tasks64, train=False, multi_step=True)[0]
    assert float(loss) == pytest.approx(query_losses[-1], rel=1e-10)
    assert not np.isclose(query_losses.mean(), query_losses[-1], rtol=1e-3)  # the weighting matters here


# ------------------------------------------------------------------ LSLR


def test_per_step_inner_lrs_are_distinct_variables_per_layer_and_step_with_gradients(tasks64):
    steps = 2
    model = MAMLPlusPlus(3, num_inner_steps=steps, per_step_inner_lrs=True, inner_lr=0.3,
                         dtype=tf.float64, seed=3)
    names = list(model.meta_parameters)
    assert set(model.inner_lrs) == {f"{n}_step{s}" for n in names for s in range(steps)}
    lrs = list(model.inner_lrs.values())
    assert len({v.ref() for v in lrs}) == len(names) * steps == 20
    assert all(v.trainable and v.shape == () and float(v) == pytest.approx(0.3) for v in lrs)
    trainable = {v.ref() for v in model.trainable_variables}
    assert all(v.ref() in trainable for v in lrs)

    grads = dict(zip(model.inner_lrs, gradients(model, tasks64, lrs)))
    for name in names:
        assert all(grads[f"{name}_step{s}"] != 0 for s in range(steps)), name
        assert grads[f"{name}_step0"] != pytest.approx(grads[f"{name}_step1"], rel=1e-6), name

    # Definition: step s uses its own rates. With every rate of step 1 at zero, phi_2 = phi_1,
    # which plain MAML with one inner step at the same rate computes.
    for name in names:
        model.inner_lrs[f"{name}_step1"].assign(0.0)
    one_step = MAML(3, num_inner_steps=1, inner_lr=0.3, dtype=tf.float64, seed=3)
    images, labels = tasks64[0][:2]
    adapted, _ = model.inner_loop(images, labels, train=False)
    expected, _ = one_step.inner_loop(images, labels, train=False)
    for name in names:
        np.testing.assert_allclose(adapted[name], expected[name], rtol=1e-10, atol=1e-14)


def test_per_step_inner_lrs_refuse_the_per_parameter_flag():
    with pytest.raises(ValueError, match="drop learn_inner_lrs"):
        MAMLPlusPlus(3, per_step_inner_lrs=True, learn_inner_lrs=True)


# ------------------------------------------------------------ BNRS, BNWB


def test_running_statistics_are_kept_per_layer_and_step(tasks64):
    model = MAMLPlusPlus(3, num_inner_steps=1, per_step_bn_stats=True, dtype=tf.float64, seed=4)
    assert len(model.bn_stats) == 2 * 4 * 2 and not any(v.trainable for v in model.bn_stats.values())
    assert not {v.ref() for v in model.bn_stats.values()} & {v.ref() for v in model.trainable_variables}
    images, labels = tasks64[0][:2]

    model.inner_loop(images, labels, train=False)  # evaluation changes nothing
    for name, v in model.bn_stats.items():
        np.testing.assert_array_equal(v, np.zeros(64) if name.startswith("mean") else np.ones(64))

    model.inner_loop(images, labels, train=True)  # one update of every (layer, step) from its batch
    phi = {0: dict(model.meta_parameters),
           1: MAML(3, num_inner_steps=1, dtype=tf.float64, seed=4).inner_loop(images, labels, False)[0]}
    m = maml.BN_MOMENTUM
    for step, parameters in phi.items():
        for layer, (mean, variance) in enumerate(layer_moments(images, parameters)):
            np.testing.assert_allclose(model.bn_stats[f"mean{layer}_step{step}"], m * mean, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(model.bn_stats[f"variance{layer}_step{step}"], (1 - m) + m * variance,
                                       rtol=1e-9)
    assert not np.allclose(model.bn_stats["mean2_step0"], model.bn_stats["mean2_step1"])

    # They are kept, not used to normalise: the forward pass is plain MAML's in both modes.
    for train in (True, False):
        np.testing.assert_allclose(model.forward(images, phi[1], 1, train), maml.forward(images, phi[1]),
                                   rtol=1e-10, atol=1e-12)


def test_running_statistics_update_inside_the_compiled_training_step(sampler):
    model = MAMLPlusPlus(3, num_inner_steps=1, per_step_bn_stats=True)
    for index in range(2):
        model.train_step(sampler.batch(index, 1))
    assert model._train_step.graph_fn.experimental_get_tracing_count() == 1 and not model._train_step.eager
    for name, v in model.bn_stats.items():
        assert not np.allclose(v, 0 if name.startswith("mean") else 1), name
    assert not np.allclose(model.bn_stats["variance3_step0"], model.bn_stats["variance3_step1"])


def test_per_step_bn_weights_are_per_layer_and_step_and_meta_learned(tasks64):
    steps = 2
    model = MAMLPlusPlus(3, num_inner_steps=steps, per_step_bn_weights=True, first_order=False,
                         dtype=tf.float64, seed=5)
    expected = {f"{k}{i}_step{s}" for k in ("gamma", "beta") for i in range(4) for s in range(steps + 1)}
    assert set(model.bn_weights) == expected
    assert len({v.ref() for v in model.bn_weights.values()}) == len(expected)
    trainable = {v.ref() for v in model.trainable_variables}
    assert all(v.ref() in trainable for v in model.bn_weights.values())

    images = tasks64[0][0]
    theta = dict(model.meta_parameters)
    np.testing.assert_allclose(model.forward(images, theta, 1, True), maml.forward(images, theta), rtol=1e-10)
    model.bn_weights["gamma1_step1"].assign(np.full(64, 2.0))
    model.bn_weights["beta1_step1"].assign(np.full(64, 0.5))
    np.testing.assert_allclose(model.forward(images, theta, 0, True), maml.forward(images, theta), rtol=1e-10)
    assert not np.allclose(model.forward(images, theta, 1, True), maml.forward(images, theta))

    # Second order: every step's scale and shift reaches the outer loss (step 0 through the
    # first inner gradient). They are not adapted: phi has only the meta-parameters' keys.
    grads = dict(zip(model.bn_weights, gradients(model, tasks64, list(model.bn_weights.values()),
                                                 second_order=True)))
    assert all(np.abs(g).max() > 0 for g in grads.values())
    adapted, _ = model.inner_loop(*tasks64[0][:2], train=True, second_order=True)
    assert set(adapted) == set(model.meta_parameters)


# ------------------------------------------------------------------- DA


def test_derivative_annealing_switches_to_second_order_at_the_set_iteration(tasks64):
    switch = 2
    model = MAMLPlusPlus(3, num_inner_steps=1, first_order=False, derivative_annealing=True,
                         da_iterations=switch, dtype=tf.float64, seed=6)
    model.optimizer = tf.keras.optimizers.SGD(learning_rate=1.0)  # the update is minus the gradient
    model.optimizer.build(model.trainable_variables)
    first = MAML(3, num_inner_steps=1, first_order=True, dtype=tf.float64)  # references
    second = MAML(3, num_inner_steps=1, first_order=False, dtype=tf.float64)
    names = list(model.meta_parameters)
    for t in range(4):
        before = {n: v.numpy() for n, v in model.meta_parameters.items()}
        for reference in (first, second):
            for n in names:
                reference.meta_parameters[n].assign(before[n])
        fo = gradients(first, tasks64, list(first.meta_parameters.values()))
        so = gradients(second, tasks64, list(second.meta_parameters.values()))
        assert max(np.abs(a - b).max() for a, b in zip(fo, so)) > 1e-3 * max(np.abs(a).max() for a in fo)
        assert model.second_order_at(t) == (t >= switch)
        model.train_step(tasks64)
        step = [before[n] - model.meta_parameters[n].numpy() for n in names]
        for got, want in zip(step, so if t >= switch else fo):
            np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-12)
        # one graph per order: traced once for iterations 0..switch-1, once more at the switch
        assert model._train_step.graph_fn.experimental_get_tracing_count() == (1 if t < switch else 2)


def test_derivative_annealing_needs_a_second_order_target():
    with pytest.raises(ValueError, match="ends in second order"):
        MAMLPlusPlus(3, derivative_annealing=True)


# ------------------------------------------------------------------- CA


def test_cosine_annealing_follows_the_schedule_inside_the_compiled_step(sampler):
    lr, low, total, msl_end = 4e-3, 1e-4, 4, 5
    model = MAMLPlusPlus(3, num_inner_steps=2, outer_lr=lr, cosine_outer_lr=True, cosine_iterations=total,
                         min_outer_lr=low, multi_step_loss=True, msl_iterations=msl_end)
    for t in range(total + 3):
        expected = low + (lr - low) * (1 + math.cos(math.pi * min(t, total) / total)) / 2
        assert float(model.optimizer.learning_rate) == pytest.approx(expected, rel=1e-5)
        model.train_step(sampler.batch(t, 1))
        # the learning rate and the MSL importance change every iteration, the graph does not;
        # it is traced once more when MSL ends and only the final query pass is left
        assert model._train_step.graph_fn.experimental_get_tracing_count() == (1 if t < msl_end else 2)
    assert int(model.optimizer.iterations.numpy()) == total + 3


# ------------------------------------------------------- weights, errors


def test_weights_round_trip_with_every_per_step_variable(tmp_path):
    settings = dict(num_inner_steps=2, per_step_inner_lrs=True, per_step_bn_stats=True, per_step_bn_weights=True)
    model = MAMLPlusPlus(3, **settings, seed=1)
    rng = np.random.default_rng(0)
    for v in [*model.inner_lrs.values(), *model.bn_weights.values(), *model.bn_stats.values()]:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype(np.float32))
    path = tmp_path / "weights.npz"
    model.save_weights(path)
    other = MAMLPlusPlus(3, **settings, seed=2)
    other.load_weights(path)
    with np.load(path) as stored:
        assert {"bn/gamma0_step2", "bn/variance3_step0", "inner_lr/w4_step1"} <= set(stored.files)
    for name, value in model.weights().items():
        np.testing.assert_array_equal(other.weights()[name], value)
    with pytest.raises(ValueError, match=r"missing \['bn/beta0_step0'"):
        MAMLPlusPlus(3, **settings).load_weights(_without_bn_betas(path, tmp_path))


def _without_bn_betas(path, tmp_path):
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files if not k.startswith("bn/beta")}
    target = tmp_path / "partial.npz"
    np.savez(target, **arrays)
    return target


@pytest.mark.parametrize("flags, message", [
    (["--mamlpp", "--learn-inner-lrs"], "drop learn_inner_lrs"),
    (["--multi-step-loss", "--num-inner-steps", "0"], "needs num_inner_steps >= 1"),
    (["--cosine-outer-lr", "--min-outer-lr", "0.1"], r"min_outer_lr must be in \[0, outer_lr=0.001\]"),
])
def test_bad_flag_combinations_say_what_to_change(flags, message):
    with pytest.raises(SystemExit, match=message):
        training.parse(flags)


def test_mamlpp_flag_switches_on_all_six_and_second_order():
    hp = settings.record(training.parse(["--mamlpp"])[1])
    assert settings.mamlpp_techniques(hp) == ["MSL", "LSLR", "BNRS", "BNWB", "DA", "CA"]
    assert hp["first_order"] is False
    plain = settings.record(training.parse([])[1])
    assert plain == settings.record(settings.ASSIGNMENT)
    assert settings.mamlpp_techniques(plain) == [] and plain["first_order"] is True
    assert type(maml.build_maml(plain)) is MAML


# ------------------------------------------------------------- real runs


SMALL = ["--num-way", "5", "--num-support", "5", "--num-query", "5", "--meta-batch-size", "4",
         "--num-inner-steps", "2", "--val-interval", "10", "--num-val-tasks", "40"]


def test_all_techniques_on_learn_omniglot(tmp_path):
    """`python maml.py --mamlpp` for 30 iterations: DA switches at 20, MSL ends at 10, CA runs to 30."""
    log_dir = tmp_path / "mamlpp"
    flags = [*SMALL, "--mamlpp", "--num-iterations", "30", "--msl-iterations", "10", "--da-iterations", "20"]
    result = run_python(["maml.py", "--log-dir", str(log_dir), *flags], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    history = runs.read_history(log_dir / "history.csv")
    assert [r["iteration"] for r in history] == [0, 10, 20, 30]
    start, final = history[0]["val_accuracy_query"], history[-1]["val_accuracy_query"]
    # chance is 0.2; two inner steps from the random initialisation already give about 0.73
    assert final >= 0.6 and final >= start + 0.03, f"{start:.3f} -> {final:.3f} in 30 iterations: {history}"
    hp = json.loads((log_dir / "hparams.json").read_text())["hparams"]
    assert settings.mamlpp_techniques(hp) == ["MSL", "LSLR", "BNRS", "BNWB", "DA", "CA"]
    assert hp["first_order"] is False and hp["da_iterations"] == 20
    with np.load(log_dir / "weights.npz") as weights:
        names = set(weights.files)
    assert {"bn/gamma0_step2", "bn/mean3_step1", "inner_lr/conv0_step1"} <= names
    assert (log_dir / "val_accuracy.png").stat().st_size > 10_000
    assert list((log_dir / "checkpoints").glob("ckpt-30.index"))

    tested = run_python(["maml.py", "--test", "--log-dir", str(log_dir), "--num-support", "5",
                         "--num-test-tasks", "40"], timeout=300)
    assert tested.returncode == 0, tested.stderr[-3000:]
    accuracy = json.loads((log_dir / "test_results_5way_5shot.json").read_text())["accuracy_query"]
    assert accuracy >= 0.5


def test_resume_restores_the_per_step_state(tmp_path):
    """Two iterations, then two more with --resume: the same weights as four in one go.

    Every technique but CA (whose period is --num-iterations, which this test changes between
    the two legs); DA switches and MSL ends inside the second leg, both read the restored
    iteration count.
    """
    tiny = ["--num-way", "2", "--num-support", "1", "--num-query", "2", "--meta-batch-size", "2",
            "--num-inner-steps", "1", "--val-interval", "2", "--num-val-tasks", "2", "--multi-step-loss",
            "--msl-iterations", "3", "--per-step-inner-lrs", "--per-step-bn-stats", "--per-step-bn-weights",
            "--derivative-annealing", "--da-iterations", "3"]

    def train(log_dir, iterations, *extra):
        args, values = training.parse(["--log-dir", str(log_dir), "--num-iterations", str(iterations), *tiny, *extra])
        return training.train(args, values, maml.build_maml)

    train(tmp_path / "one", 4)
    train(tmp_path / "two", 2)
    train(tmp_path / "two", 4, "--resume")
    with np.load(tmp_path / "one" / "weights.npz") as a, np.load(tmp_path / "two" / "weights.npz") as b:
        assert set(a.files) == set(b.files) and "bn/mean0_step1" in a.files
        for name in a.files:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_the_handout_trains_maml_with_the_extra_credit_left_to_the_student(tmp_path):
    """The release tool's stubs for the extra-credit region, the base solutions kept."""
    source = (ROOT / "maml.py").read_text()
    stubbed = stub_source(source, "maml.py")
    todos = [b.function for b in stubbed.blocks if b.function.startswith("MAMLPlusPlus.")]
    assert len(todos) == 7 and "MAMLPlusPlus.outer_loop" in todos
    banner, end_banner = "# ==== Extra credit: MAML++ ====", "# ==== End of extra credit: MAML++ ===="
    handout = stubbed.handout
    region = handout[handout.index(banner):handout.index(end_banner)]
    assert "BEGIN SOLUTION" not in region and region.count("raise NotImplementedError") == 7
    (tmp_path / "maml.py").write_text(source[:source.index(banner)] + region + source[source.index(end_banner):])
    for provided in SCAFFOLD_FILES:
        shutil.copy(ROOT / provided, tmp_path)
    tiny = ["--num-way", "2", "--num-support", "1", "--num-query", "2", "--meta-batch-size", "2",
            "--num-inner-steps", "1", "--num-iterations", "2", "--val-interval", "2", "--num-val-tasks", "2"]
    env = {**os.environ, load_data.DATA_DIR_ENV: str(load_data.data_dir())}  # the cached data set
    base = run_python(["maml.py", "--log-dir", "runs/base", *tiny], cwd=tmp_path, timeout=300, env=env)
    assert base.returncode == 0, base.stderr[-3000:]
    assert (tmp_path / "runs" / "base" / "weights.npz").is_file()
    plus = run_python(["maml.py", "--log-dir", "runs/plus", "--multi-step-loss", *tiny], cwd=tmp_path,
                      timeout=300, env=env)
    assert plus.returncode != 0
    assert "NotImplementedError: MAMLPlusPlus." in plus.stderr.strip().splitlines()[-1]
