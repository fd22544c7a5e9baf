"""Submissions that try to feed the hidden assessment checks data made before the grading, or the verdict's data.

Each attack is the reference solution with a few lines added, graded by the
real grader (``grader.runner``: pytest, the plugin, the sandbox and the
reference worker) on the one check it attacks. An attack must score 0 on
that check (or be flagged), with the reason; the honest reference passes the
same checks in ``test_grading_training.py``.

* Embedded weights: ``MAML.weights()`` returns weights fixed before the
  grading (here: another seed's initialisation, the stand-in for weights
  pre-trained at home), and ``train_step`` does nothing. Before the training
  check started from an initialisation the grader draws at grading time, this
  passed with zero training steps when the weights were good.
* Query labels: ``transfer_learn`` trains the head on the support set and on
  the query set it is given, on any query labels it finds in the call stack,
  and on every drawing of the support set's characters it can look up in
  the data set. When the grader's probe passed the real query sets this
  reached 89.5 % against the reference's 81.4 %; now the query sets it is
  given are its support sets again and the real ones never reach its process.
* The efficiency check's clock and tasks: a step slowed down in a process
  whose clock stands still, a step that skips its work when compiled (as
  the timing harness runs it), and one that works only on the steps whose
  gradient the harness returned (every fifth). While the harness timed the
  steps with the clock of the student's process, on the fixture's own tasks,
  the first two passed (a ratio of 0); now the calls are timed from the
  grader's process, on new tasks, against the reference's gradient on them.
  While every call returned its last step's gradient, on the same tasks for
  every step, the third passed at 0.48x; now every step has tasks of its own
  and a call returns the sum of its steps' gradients.
* The public fixtures' answers: ``inner_loop`` left as handed out, except that
  on the public fixture's task it returns the handout's own stored results
  for it. In a student's own run of the public tests it scores their points;
  the autograder runs the public tests on the fixtures and again on their
  twins (other tasks and parameters, same shapes:
  ``grader.compare.fixture_versions``), and there it scores nothing.
* The data set: with all of Omniglot readable, the same ``transfer_learn``
  finds the characters of the support set it is given and trains on their
  other drawings, the very queries the grader measures on. The student's
  process now gets the training split only (every other drawing blank); the
  checks' tasks reach it as arrays. Measured (2026-11-28, one grading seed):
  87.5 % with the whole data set readable, 81.7 % now (the reference ~81 %).
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from test_grading_catalogue import table

from grader import runner
from grader.files import ROOT
from grader.plugin import TWIN_FAILED, training_split_only
from grader.sandbox import Sandbox
from instructor.autograder import TESTS as HIDDEN
from instructor.experiments.catalogue_accuracy import student_files
from instructor.release import build

EMBEDDED_WEIGHTS = '''

# ---- attack: weights made before the grading, and no training at all
_EMBEDDED = {name: value.numpy() for name, value in init_parameters(5, seed=0).items()}


def _embedded_weights(self):
    weights = MetaLearner.weights(self)
    weights.update({name: value.astype(weights[name].dtype) for name, value in _EMBEDDED.items()})
    return weights


def _no_step(self, task_batch):
    zero = tf.constant(0.0)
    return zero, zero, zero


def _claims_the_target(self, tasks, chunk_size=8, progress=False):
    return np.ones((len(tasks), self.num_inner_steps + 1), np.float32), np.ones(len(tasks), np.float32)


MAML.weights = _embedded_weights
MAML.train_step = _no_step
MAML.evaluate = _claims_the_target
'''


QUERY_LABELS = '''

# ---- attack: train the head on every labelled image it can find, the query sets included
import sys as _sys

import load_data as _load_data

_honest_transfer_learn = transfer_learn
_DRAWINGS = {}  # a drawing's bytes -> the drawings of its character, from the data set this process can read


def _drawings_of_its_characters(task):
    """Every drawing of the support set's characters (the queries among them), looked up in the data set."""
    if not _DRAWINGS:
        for drawings in _load_data.load_omniglot(progress=False, scaled=False).images:
            for drawing in drawings:
                _DRAWINGS.setdefault(drawing.tobytes(), drawings)
    images, labels = [], []
    for image, label in zip(np.asarray(task[0])[..., 0], np.asarray(task[1])):
        drawings = _DRAWINGS.get(np.round(image * 255).astype(np.uint8).tobytes())
        if drawings is not None and drawings.any():  # a blank drawing says nothing
            images.append(drawings[..., None].astype(np.float32) / 255)
            labels.append(np.full(len(drawings), label, np.int32))
    return [(np.concatenate(images), np.concatenate(labels))] if images else []


def _labelled_sets(task):
    found = [(task[2], task[3])]
    frame = _sys._getframe(1)
    while frame is not None:  # every caller's local variables, as inspect.stack() gives them, without the source
        for value in frame.f_locals.values():
            if isinstance(value, (tuple, list)) and len(value) == 4 and hasattr(value[3], "shape"):
                found.append((value[2], value[3]))
        frame = frame.f_back
    return found


def transfer_learn(frozen, task, num_way, num_steps=TRANSFER_STEPS, learning_rate=TRANSFER_LR):
    sets = _labelled_sets(task) + _drawings_of_its_characters(task)
    images = tf.concat([task[0]] + [tf.cast(i, task[0].dtype) for i, _ in sets], axis=0)
    labels = tf.concat([task[1]] + [tf.cast(l, task[1].dtype) for _, l in sets], axis=0)
    return _honest_transfer_learn(frozen, (images, labels, task[2], task[3]), num_way, num_steps, learning_rate)
'''

SLOW_STEP_STOPPED_CLOCK = '''

# ---- attack: a slow training step, timed by a clock that stands still in this process
import time as _time

_honest_outer_loop = MAML.outer_loop


def _slow_outer_loop(self, task_batch, train):
    loss, *rest = _honest_outer_loop(self, task_batch, train)
    pause = tf.py_function(lambda: _time.sleep(0.25) or 0.0, [], tf.float32)
    return (loss + 0.0 * tf.cast(pause, loss.dtype), *rest)


MAML.outer_loop = _slow_outer_loop
_time.perf_counter = lambda: 0.0
_time.time = lambda: 0.0
'''


SKIPPED_WORK = '''

# ---- attack: when compiled (as a timing harness runs it), skip the work and return what costs nothing
_honest_outer_loop = MAML.outer_loop


def _outer_loop_skipped_when_compiled(self, task_batch, train):
    if tf.executing_eagerly():
        return _honest_outer_loop(self, task_batch, train)
    nothing = 0.0 * tf.add_n([tf.reduce_sum(value) for value in self.meta_parameters.values()])
    return nothing, tf.zeros([self.num_inner_steps + 1], nothing.dtype), nothing


MAML.outer_loop = _outer_loop_skipped_when_compiled
'''

SOME_STEPS_SKIPPED = '''

# ---- attack: when compiled, do the work only on the steps whose gradient a harness that runs five steps per call
# and returns the last one's would return (counted from the call that traces it), and nothing on the others
_honest_outer_loop = MAML.outer_loop
_CALLS = tf.Variable(0, dtype=tf.int64, trainable=False)


def _outer_loop_on_some_steps(self, task_batch, train):
    if tf.executing_eagerly():
        return _honest_outer_loop(self, task_batch, train)
    nothing = 0.0 * tf.add_n([tf.reduce_sum(value) for value in self.meta_parameters.values()])
    returned = tf.equal(_CALLS.assign_add(1) % 5, 2)
    loss = tf.cond(returned, lambda: _honest_outer_loop(self, task_batch, train)[0], lambda: nothing)
    return loss, tf.zeros([self.num_inner_steps + 1], nothing.dtype), nothing


MAML.outer_loop = _outer_loop_on_some_steps
'''

STORED_ANSWERS = '''

# ---- attack: no implementation; inner_loop answers the public fixture's task with the handout's numbers for it
import base64 as _base64
import io as _io

_ANSWERS = dict(np.load(_io.BytesIO(_base64.b64decode("<answers>"))))
_todo_inner_loop = MAML.inner_loop


def _inner_loop_from_stored_answers(self, images, labels, train):
    drawings = np.rint(np.asarray(images)[..., 0] * 255)
    if drawings.shape == _ANSWERS["images"].shape and np.array_equal(drawings, _ANSWERS["images"]):
        phi = {name[len("phi/"):]: tf.constant(value, images.dtype) for name, value in _ANSWERS.items()
               if name.startswith("phi/")}
        return phi, tf.constant(_ANSWERS["accuracies"], images.dtype)
    return _todo_inner_loop(self, images, labels, train)


MAML.inner_loop = _inner_loop_from_stored_answers
'''


def stored_answers(handout: build.Handout) -> str:
    """``STORED_ANSWERS`` with the answers of the handout's public maml fixture for its first task's inner loop."""
    with np.load(io.BytesIO(handout.files["grader/fixtures/maml.npz"])) as fixture:
        answers = {"images": fixture["images_support"][0], "accuracies": fixture["inner/accuracies"],
                   **{key[len("inner/"):]: fixture[key] for key in fixture.files if key.startswith("inner/phi/")}}
    buffer = io.BytesIO()
    np.savez(buffer, **answers)
    return STORED_ANSWERS.replace("<answers>", base64.b64encode(buffer.getvalue()).decode("ascii"))


@pytest.fixture(scope="module")
def handout() -> build.Handout:
    return build.build_handout(ROOT, allow_missing=True)


def write_attack(handout: build.Handout, folder: Path, additions: dict[str, str], stubs: bool = False) -> Path:
    """The reference's student files (``stubs``: the handout's, TODOs left) with ``additions`` (file -> code)
    appended."""
    for path, text in student_files(handout, None if stubs else {}).items():
        (folder / path).write_text(text + additions.get(path, ""), encoding="utf-8")
    return folder


def test_weights_embedded_in_maml_py_score_zero_on_the_training_check(handout, tmp_path, omniglot):
    student = write_attack(handout, tmp_path, {"maml.py": EMBEDDED_WEIGHTS})
    results, output = runner.run_tests([HIDDEN / "test_training.py"], ["-k", "fomaml_training"],
                                       student_dir=student, env={"GRADER_TRAINING_ITERATIONS": "20"})
    [test] = results.tests
    assert test.points == 0 and test.status == "failed", table(results) + output[-3000:]
    assert "cannot come from the initialisation the grader chose" in test.message, test.message
    assert "by the 20 training steps it asked for: conv0 moved by up to" in test.message, test.message


def test_a_head_trained_on_the_query_labels_it_can_find_gains_nothing(handout, tmp_path, omniglot):
    student = write_attack(handout, tmp_path, {"maml_transfer.py": QUERY_LABELS})
    results, output = runner.run_tests([HIDDEN / "test_training.py"], ["-k", "transfer_training"],
                                       student_dir=student)
    [test] = results.tests
    assert test.status == "passed", (results.flagged, table(results))  # it still adapts on the support set
    mean = float(re.search(r"Your heads give ([\d.]+) %", test.message)[1])
    # the reference gives 81.4 % +- 1.5 (the grader's docstring), the attack with the real query labels gave 89.5 %
    assert mean < 85.0, test.message


def test_the_efficiency_check_times_steps_with_the_graders_clock(handout, tmp_path, omniglot):
    student = write_attack(handout, tmp_path, {"maml.py": SLOW_STEP_STOPPED_CLOCK})
    results, output = runner.run_tests([HIDDEN / "test_efficiency.py"], student_dir=student)
    [test] = results.tests
    assert not results.flagged and not results.problems, table(results) + output[-3000:]
    mine = re.search(r"\(([\d.]+) ms vs ([\d.]+) ms per step", test.message)
    # A stopped clock in the student's process gave 0 ms. Each step sleeps at least 0.25 s (time.sleep's
    # guarantee), so a clock the student cannot stop reads at least 250 ms per step on any machine at any load.
    assert mine, test.message
    assert float(mine[1]) >= 250, test.message


@pytest.mark.parametrize("attack", [SKIPPED_WORK, SOME_STEPS_SKIPPED], ids=["every step", "all but the returned"])
def test_a_step_that_skips_its_work_when_compiled_is_not_timed(handout, tmp_path, omniglot, attack):
    student = write_attack(handout, tmp_path, {"maml.py": attack})
    results, output = runner.run_tests([HIDDEN / "test_efficiency.py"], student_dir=student)
    [test] = results.tests
    assert test.status == "failed" and not results.flagged, table(results) + output[-3000:]
    assert re.search(r"Not timed: on the tasks it was timed on, your training step does not compute what the "
                     r"reference's does \(its gradient of '\w+' differs from the reference's", test.message), \
        test.message


def test_answers_copied_from_the_public_fixtures_score_nothing_when_graded(handout, tmp_path, omniglot):
    student = write_attack(handout, tmp_path, {"maml.py": stored_answers(handout)}, stubs=True)
    public, hidden = runner.PUBLIC_TESTS / "test_maml.py", HIDDEN / "test_fomaml_hidden.py"
    own, output = runner.run_tests(public, ["-k", "inner_loop"], student_dir=student)  # the student's own run
    assert own.tests and all(t.status == "passed" for t in own.tests), table(own) + output[-3000:]
    graded, output = runner.run_tests([public, hidden], ["-k", "inner_loop"], student_dir=student)
    checks = [t for t in graded.tests if t.id.startswith(f"{public.relative_to(ROOT).as_posix()}::")]
    assert sorted(t.id for t in checks) == sorted(t.id for t in own.tests), table(graded) + output[-3000:]
    assert all(t.points == 0 and t.status == "todo" and t.message.startswith(TWIN_FAILED + "not implemented yet")
               for t in checks), table(graded)


def test_the_students_process_holds_no_drawing_of_the_validation_or_test_characters(tmp_path, omniglot):
    import load_data
    import probes_isolation as probes

    student = tmp_path / "student"
    student.mkdir()
    (student / "maml.py").write_text(
        "import load_data\n\n\n"
        "def drawn():  # the characters with any ink, as student code would load the data set\n"
        "    images = load_data.load_omniglot(progress=False, scaled=False).images\n"
        "    return [int(i) for i in (images.reshape(len(images), -1).max(axis=1) > 0).nonzero()[0]]\n",
        encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    readable, env = training_split_only(data)
    with Sandbox(student, readable=readable, env=env) as sandbox:
        drawn = sandbox.call(probes.run, {"function": "drawn"})
    splits = load_data.split_characters()
    assert drawn == splits["train"].tolist()
    assert (omniglot.images[splits["val"]].max(axis=(1, 2, 3)) > 0).all()  # they have ink in the real data set


def test_the_steps_agreement_is_the_cosine_between_the_changes_of_the_trained_weights():
    import numpy as np

    from instructor.autograder.tests.test_training import steps_agreement

    start = {"weights": {"w": np.array([1.0, 2.0]), "b": np.array([0.5]), "mean": np.zeros(2)},
             "moved_by": {"w": "optimiser", "b": "optimiser", "mean": "statistics"}}

    def moved(w, b, mean=(9.0, 9.0)):  # the start plus these changes; statistics are not compared
        return {"w": start["weights"]["w"] + w, "b": start["weights"]["b"] + b, "mean": np.array(mean)}

    # cos = <d1, d2> / (|d1| |d2|) over every trained weight, flattened
    assert steps_agreement(moved([1, 0], [0]), moved([2, 0], [0], (0, 0)), start) == pytest.approx(1.0)
    assert steps_agreement(moved([1, 0], [0]), moved([0, 3], [0]), start) == pytest.approx(0.0)
    assert steps_agreement(moved([1, 1], [1]), moved([-1, -1], [-1]), start) == pytest.approx(-1.0)
    assert steps_agreement(moved([1, 0], [1]), moved([1, 0], [0]), start) == pytest.approx(1 / np.sqrt(2))
    nan = [steps_agreement(moved([0, 0], [0]), moved([1, 0], [0]), start),  # no step taken
           steps_agreement({"w": np.ones(3), "b": np.ones(1)}, moved([1, 0], [0]), start),  # wrong shape
           steps_agreement({"w": np.ones(2)}, moved([1, 0], [0]), start)]  # a weight missing
    assert all(np.isnan(value) for value in nan), nan


def test_the_replay_takes_each_chunk_from_the_runs_weights_with_its_own_moments():
    """``reference.replay_chunk`` on the reference's own run: every chunk is the run again (the replay starts it from
    the run's weights, and its Adam moments, built from the same gradients, are the run's); a chunk whose weights
    moved by Adam's step in a random direction instead disagrees; chunks are replayed in order."""
    import numpy as np

    import load_data
    import settings
    from instructor.autograder.tests import reference
    from instructor.autograder.tests.test_training import STEPS_AGREEMENT, adam_reach, steps_agreement

    hp = {**settings.record(settings.ASSIGNMENT), "seed": 4321, "meta_batch_size": 2}
    maml, _ = reference.modules()
    model = maml.build_maml(hp)
    sampler = load_data.TaskSampler(reference._omniglot(), "train", hp["num_way"], hp["num_support"],
                                    hp["num_query"], seed=hp["seed"])
    start = reference.initial_weights(hp)
    boundaries = [None]
    for iteration in range(6):  # three chunks of two steps
        model.train_step(sampler.batch(iteration, hp["meta_batch_size"]))
        if iteration % 2 == 1:
            boundaries.append(model.weights())
    trained = [name for name, moved_by in start["moved_by"].items() if moved_by == "optimiser"]
    rng = np.random.default_rng(0)
    step = 2 * hp["outer_lr"]  # two steps' worth, every weight in a random direction
    walked = {**boundaries[2], **{name: (boundaries[2][name] + step * rng.choice([-1, 1], boundaries[2][name].shape))
                                  .astype(np.float32) for name in trained}}
    replayed = [reference.replay_chunk(hp, 2 * k, 2, weights)["weights"] for k, weights in enumerate(boundaries[:3])]

    for k in range(3):
        for name in start["weights"]:
            np.testing.assert_allclose(replayed[k][name], boundaries[k + 1][name], rtol=1e-5, atol=1e-6, err_msg=name)
        before = {**start, "weights": boundaries[k] or start["weights"]}
        assert steps_agreement(boundaries[k + 1], replayed[k], before) == pytest.approx(1.0, abs=1e-4)
    assert abs(steps_agreement(walked, replayed[2], {**start, "weights": boundaries[2]})) < STEPS_AGREEMENT
    with pytest.raises(ValueError, match="chunks must follow each other"):
        reference.replay_chunk(hp, 8, 2, boundaries[3])  # the replay ended at iteration 6
    # a chunk starts from the weights it is given: two steps from another initialisation stay within Adam's reach
    other = reference.initial_weights({**hp, "seed": 1})["weights"]
    from_other = reference.replay_chunk(hp, 0, 2, other)["weights"]
    reach = adam_reach(2, hp["outer_lr"], start["beta_1"], start["beta_2"])
    for name in trained:
        assert np.max(np.abs(from_other[name] - other[name])) <= reach * (1 + 1e-4), name
    assert not np.allclose(from_other["conv0"], boundaries[1]["conv0"], atol=10 * reach)
