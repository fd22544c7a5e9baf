"""The autograder's training checks, run once on the reference: a complete submission gets full marks.

The submission is made as a student makes it: the handout with the reference
solutions, and real runs of the assignment's commands, shortened so CI stays
quick (FO-MAML 20 iterations, 83.4 %; MAML++ 40 iterations, since at 20 it
measured 80.0 %, on the target; pre-training: 2 epochs, ~90 %) but still above the targets (80 %,
85 %); the runs are deterministic. The real grader then grades it with every public and hidden
test, training and efficiency included: full marks from every check whose verdict
is not a timing (the efficiency check must have timed the step), the FO-MAML
training check stopping early at a validation (from the initialisation the
grader draws for the grading).

The same submission, zipped, is graded in the container the bundle's
instructions name (``bundle.GRADESCOPE_SETTINGS``), inside ``gradescope-box``
(a cgroup with that CPU quota and memory limit), on a subset of the checks
that still exercises everything that shares the container: a public check,
the student's run of a hidden check, the reference worker taking over from
the student's worker, and a submitted weights file: every verdict full marks,
no OOM kill, a complete results.json. (The benchmark,
``instructor/benchmark_grading.py``, grades in full in every shape.)

One broken variant (its query loss uses the meta-parameters, not the adapted
ones) shows the training check failing with its reason; GRADER_TRAINING_ITERATIONS
lowers the grader's budget to 20 iterations for it.

One attack (the others are in ``test_unfeedable.py``): the FO-MAML weights of the
submission's own run, embedded in maml.py as weights trained at home, and a
``train_step`` that takes no meta-gradient but walks every parameter toward
them by at most Adam's learning rate per step, so the weights stay within the
reach of the steps the grader asked for (200 here), from the first step or after
an honest first chunk. Before the training check compared the run's steps with
the reference's, this scored full marks (measured 2026-11-28: 3/3, 83.2 % after
200 iterations); while it compared the first chunk only, a walk after an honest
first chunk passed that comparison (cosine 1.00, experiments/steps_agreement.py).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_grading_catalogue import table

from grader import runner, submission
from grader.files import ROOT
from grader.results import PASSED
from grader.sandbox import SCAFFOLD_FILES
from instructor import benchmark_grading
from instructor.autograder import TESTS as HIDDEN
from instructor.experiments.catalogue_accuracy import CATALOGUE, read_entry, student_files
from instructor.release import build, bundle

RUNS = {  # results/<run> of the submission -> the command that makes it (shortened assignment settings)
    "fomaml": ["maml.py", "--num-iterations", "20", "--val-interval", "20", "--num-val-tasks", "10"],
    "transfer": ["maml_transfer.py", "pretrain", "--num-epochs", "2", "--val-interval", "1000",
                 "--num-val-tasks", "10"],
    # 40, not 20: after 20 MAML++ iterations the weights measured 80.0 % on the grader's 100 tasks, on the
    # target itself, so the submitted-weights check passed or failed by rounding
    "mamlpp/mamlpp_seed0": ["maml.py", "--mamlpp", "--num-iterations", "40", "--val-interval", "20",
                            "--num-val-tasks", "10"],
}


@pytest.fixture(scope="module")
def handout() -> build.Handout:
    return build.build_handout(ROOT, allow_missing=True)


@pytest.fixture(scope="module")
def complete_submission(handout, tmp_path_factory, omniglot) -> Path:
    """The reference code and its runs (results/fomaml, transfer, mamlpp/...), as `python -m grader submit` packs them."""
    import load_data

    folder = tmp_path_factory.mktemp("submission")
    provided = {name: handout.files[name].decode() for name in SCAFFOLD_FILES}  # what python maml.py imports
    for path, text in {**student_files(handout, {}), **provided}.items():
        (folder / path).write_text(text, encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", load_data.DATA_DIR_ENV: str(load_data.data_dir())}

    def run(kind: str) -> subprocess.CompletedProcess:
        command = [sys.executable, *RUNS[kind], "--log-dir", str(folder / "results" / kind)]
        return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=900, env=env)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for kind, child in zip(RUNS, pool.map(run, RUNS)):
            assert child.returncode == 0, f"{kind}: {child.stderr[-3000:]}"
    for kind in RUNS:  # a submission holds the run's records, not its checkpoints
        for extra in ("checkpoints", "tensorboard"):
            shutil.rmtree(folder / "results" / kind / extra, ignore_errors=True)
    for name in provided:  # not part of a submission
        (folder / name).unlink()
    return folder


def test_the_reference_with_its_runs_gets_full_marks_from_every_check(complete_submission):
    results, output = runner.run_tests([runner.PUBLIC_TESTS, HIDDEN], student_dir=complete_submission)
    assert results.tests and not results.problems, output[-3000:]
    messages = {t.name: t.message for t in results.tests}
    # The efficiency verdict is a ratio of two timings (the reference against itself measured 1.1x, bound 4x):
    # this test asserts that it was timed, not how fast (test_grading_catalogue checks the verdict's rule).
    [efficiency] = [n for n, m in messages.items() if "training step with your outer_loop took" in m]
    assert re.search(r"took [\d.]+x the reference's time \([\d.]+ ms vs [\d.]+ ms per step", messages[efficiency])
    assert all(t.status == PASSED and t.points == t.max_points for t in results.tests if t.name != efficiency), \
        table(results)
    training = next(m for n, m in messages.items() if n.startswith("FO-MAML trained by your code"))
    # stopped early, at a validation (the first, for most of the initialisations the grader draws)
    assert re.search(r"after \d*[02468]0 iterations \(target 80\.0 %", training), training
    assert any(n.startswith("your submitted FO-MAML weights") and "Your weights give" in m for n, m in messages.items())


def test_training_check_fails_with_its_reason_when_training_does_not_reach_the_target(handout, tmp_path):
    functions = read_entry(CATALOGUE / "buggy" / "query_with_meta_parameters.py").functions
    for path, text in student_files(handout, functions).items():
        (tmp_path / path).write_text(text, encoding="utf-8")
    results, output = runner.run_tests([HIDDEN / "test_training.py"], ["-k", "fomaml_training"],
                                       student_dir=tmp_path, env={"GRADER_TRAINING_ITERATIONS": "20"})
    [test] = results.tests
    assert test.points == 0 and test.status == "failed", table(results)
    assert test.message.startswith("training: after 20 iterations the validation accuracy is "), test.message
    assert "below the target 80.0 %" in test.message and "fix the failed checks" in test.message


def test_a_grader_without_omniglot_reports_its_own_problem_not_the_students(handout, tmp_path):
    """Without data (no setup.sh, an empty mirror) the training check is the grader's error, not a failed check
    blaming the student's code for a download it was never meant to make."""
    student, mirror = tmp_path / "student", tmp_path / "empty-mirror"
    student.mkdir()
    mirror.mkdir()
    for path, text in student_files(handout, {}).items():
        (student / path).write_text(text, encoding="utf-8")
    results, output = runner.run_tests([HIDDEN / "test_training.py"], ["-k", "fomaml_training"], student_dir=student,
                                       env={"OMNIGLOT_DATA_DIR": str(tmp_path / "no-data"),
                                            "OMNIGLOT_MIRROR": str(mirror)})
    [test] = results.tests
    assert test.points == 0 and test.status == "error", table(results) + output[-3000:]
    assert "a problem of the grader" in test.message and "the grader has no Omniglot data" in test.message, \
        test.message
    assert any("the grader has no Omniglot data" in problem for problem in results.problems), results.problems


WALK_HOME = '''

# ---- attack: after _HONEST_STEPS real steps, no meta-gradient: each training step walks toward weights trained
# before the grading, by at most Adam's learning rate per parameter (within the reach of the steps the grader asks for)
import base64 as _base64
import io as _io

with np.load(_io.BytesIO(_base64.b64decode(_HOME_NPZ))) as _stored:
    _HOME = {name: _stored[name] for name in _stored.files}


_honest_step, _steps_taken = MAML.train_step, [0]


def _walk(self, task_batch):
    _steps_taken[0] += 1
    if _steps_taken[0] <= _HONEST_STEPS:
        return _honest_step(self, task_batch)
    step = float(self.optimizer.learning_rate)
    for name, variable in self.meta_parameters.items():
        gap = _HOME[name] - variable.numpy()
        variable.assign_add(np.clip(gap, -step, step).astype(gap.dtype))
    zero = tf.constant(0.0)
    return zero, zero, zero


def _claims_the_target_once_home(self, tasks, chunk_size=8, progress=False):
    home = all(np.array_equal(_HOME[name], variable.numpy()) for name, variable in self.meta_parameters.items())
    return (np.full((len(tasks), self.num_inner_steps + 1), float(home), np.float32),
            np.full(len(tasks), float(home), np.float32))


MAML.train_step = _walk
MAML.evaluate = _claims_the_target_once_home
'''


@pytest.mark.parametrize("honest_steps, caught", [(0, "steps 1-20"), (20, "steps 21-40")],
                         ids=["from the first step", "after an honest first chunk"])
def test_a_walk_toward_weights_trained_at_home_fails_the_training_check(handout, complete_submission, tmp_path,
                                                                        honest_steps, caught):
    home = base64.b64encode((complete_submission / "results" / "fomaml" / "weights.npz").read_bytes()).decode()
    for path, text in student_files(handout, {}).items():
        attack = f"\n_HOME_NPZ = {home!r}\n_HONEST_STEPS = {honest_steps}\n{WALK_HOME}" if path == "maml.py" else ""
        (tmp_path / path).write_text(text + attack, encoding="utf-8")
    results, output = runner.run_tests([HIDDEN / "test_training.py"], ["-k", "fomaml_training"],
                                       student_dir=tmp_path, env={"GRADER_TRAINING_ITERATIONS": "200"})
    [test] = results.tests
    assert test.points == 0 and test.status == "failed", table(results) + output[-3000:]
    assert f"but its {caught} did not move the weights the way the assignment's training does" in test.message, \
        test.message


BOX_SUBSET = "inner_loop_outputs or transfer_training or transfer_submitted"  # see the module docstring


def test_the_reference_is_graded_fully_in_the_documented_gradescope_container(handout, complete_submission,
                                                                             tmp_path):
    box = benchmark_grading.DEFAULT_BOX
    if not box.is_file():
        pytest.skip(f"{box} not found (it comes with ../shared/tools)")
    code = {name: handout.stubbed[name].solved.encode() for name in submission.CODE}
    zip_path = submission.write_submission({**benchmark_grading.run_files(complete_submission), **code}, "Kim Minji",
                                           "2020-12345", tmp_path / "zip", version=handout.version)
    bundle_zip = bundle.write_bundle(handout, tmp_path / "dist", ROOT)
    shape = benchmark_grading.documented_shape()
    row = benchmark_grading.grade_in_box(box, shape, zip_path, bundle_zip, tmp_path, ("-k", BOX_SUBSET))
    if "cannot create cgroups" in row["box"] or row["exit"] is None:
        pytest.skip(f"gradescope-box cannot run here: {row['box'] or 'no figures printed'}")
    assert row["ooms"] == 0 and row["exit"] == 0, row["box"]
    results = row["results"]
    names = [t["name"] for t in results["tests"]]
    assert len(names) == 3 and results["extra_data"]["status"] == "graded", (names, results["output"])
    assert all(t["score"] == t["max_score"] > 0 for t in results["tests"]), \
        [(t["name"], t["output"][:300]) for t in results["tests"]]
    assert results["score"] == sum(t["max_score"] for t in results["tests"])
    notes = " ".join(results["extra_data"]["notes"])
    assert "network" in notes, notes
