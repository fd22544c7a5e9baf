"""Issue 11, the grading paths around the sandbox: sizes checked before unpacking, refusals, private grades.

The sandbox's own attacks (its filesystem view, a uid of its own, daemons,
planted compiled files) are in tests/test_isolation.py. Here: a zip bomb in
the Gradescope layout, a Gradescope-unpacked upload whose manifest lists
files over the limits, oversized bare code files, and a worker the grader
refuses to start (GRADER_USER=always), which must be an error, never a
"graded" score of 0. The limits are lowered in each test (the module's own
settings, read where they are used) so that small real zips stand for
gigabytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from grader import gradescope, submission
from grader.files import ROOT
from instructor.gradescope_local import place_submission


@pytest.fixture
def small_limits(monkeypatch):
    """1 MiB per file, 2 MiB in all: what 10 MiB / 25 MiB are to the real sizes."""
    monkeypatch.setattr(submission, "MAX_FILE_BYTES", 2**20)
    monkeypatch.setattr(submission, "MAX_TOTAL_BYTES", 2 * 2**20)


def test_a_zip_bomb_is_not_unpacked_in_the_gradescope_layout_and_is_refused_with_its_sizes(tmp_path, small_limits):
    bomb = tmp_path / "Kim Minji_2020-12345_Assignment2.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(3):
            archive.writestr(f"results/fomaml/part{number}.npz", bytes(3 * 2**20))  # 9 MiB of zeros, ~27 KiB
    folder = tmp_path / "submission"
    place_submission(bomb, folder, keep_zip=False)
    assert [p.name for p in folder.iterdir()] == [bomb.name]  # kept as uploaded, nothing unpacked
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(gradescope.Rejected) as rejected:
        gradescope.load_submission(folder, staging)
    assert any("more than the limit of 1 MB per file" in p for p in rejected.value.problems), rejected.value.problems
    assert sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) == 0


def test_an_unpacked_upload_whose_manifest_lists_files_over_the_limits_is_refused(tmp_path, small_limits):
    """Gradescope unpacks the zip itself: the sizes are checked on the folder, before any file is read."""
    folder = tmp_path / "submission"
    (folder / "results" / "fomaml").mkdir(parents=True)
    big = {f"results/fomaml/weights{n}.npz": os.urandom(2**20 + 1) for n in range(2)}
    for name, content in big.items():
        (folder / name).write_bytes(content)
    manifest = {"name": "Kim Minji", "student_number": "2020-12345", "version": "x",
                "files": {name: submission.sha256(content) for name, content in big.items()}}
    (folder / submission.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(gradescope.Rejected) as rejected:
        gradescope.load_submission(folder, tmp_path)
    problems = " ".join(rejected.value.problems)
    assert "weights0.npz is 1.0 MB, more than the limit of 1 MB per file" in problems
    assert "more than the limit of 2 MB" in problems


def test_bare_code_files_over_the_limit_are_refused(tmp_path, small_limits):
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "maml.py").write_bytes(b"#" * (2**20 + 1))
    with pytest.raises(gradescope.Rejected, match="maml.py is 1.0 MB, more than the limit"):
        gradescope.load_submission(folder, tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches the student's code to a user of its own")
def test_a_worker_refused_under_grader_user_always_is_an_error_not_a_graded_0(tmp_path):
    """Without the view, a grader whose temporary folder only root can enter (the worker's own folders are made
    there): the worker refuses to start, and the results say it is the grader's error. (The Omniglot file is
    no such case: the worker reads the grader's own world-readable copy of its training split.)"""
    private = tmp_path / "grader-tmp"  # pytest's folder of root, mode 700: no other user reaches into it
    private.mkdir()
    upload = tmp_path / "upload"
    upload.mkdir()
    for name in ("maml.py", "maml_transfer.py"):
        shutil.copy(ROOT / name, upload / name)
    results_path = tmp_path / "results" / "results.json"
    results_path.parent.mkdir()
    child = subprocess.run(
        [sys.executable, "-m", "grader.gradescope", "--submission", str(upload), "--results", str(results_path),
         "--public-only", "-k", "inner_loop_outputs"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "GRADER_USER": "always", "GRADER_OWN_VIEW": "0", "TMPDIR": str(private),
             "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert child.returncode == 0, child.stderr[-3000:]
    results = json.loads(results_path.read_text(encoding="utf-8"))
    assert results["extra_data"]["status"] == "error", results["extra_data"]
    assert "is not readable by other users" in results["extra_data"]["reason"]
    assert results["score"] == 0
    assert results_path.stat().st_mode & 0o077 == 0  # a grade is the grader's alone
