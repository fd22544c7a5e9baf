"""Batch grading (instructor/grade_batch.py) and the bundle in a Gradescope layout (instructor/gradescope_local.py).

One handout and one autograder bundle are built per module, and real
submission zips are written with ``grader.submission.write_submission`` from
the reference solution: two students with the same code, a syntax error, code
that ends the process on import, a damaged zip, a renamed zip, one with
pieces missing, one from an older handout, and a file that is not a zip.
Grading runs only a few public tests (``-k``), which is what these tests are
about: every row gets a score and a reason, the batch never stops, and the
same code gets the same score everywhere.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader import submission
from grader.files import ROOT
from grader.results import EXTRA_CREDIT

SUBSET = "inner_loop_outputs or transfer_learn_head"  # 2 + 3 points, one TensorFlow start per submission
SUBSET_POINTS = 5.0
REFERENCE = "Kim Minji_2020-12345_Assignment2.zip"


def submission_files(handout, maml_extra: str = "") -> dict[str, bytes]:
    """A complete submission: the reference code (plus ``maml_extra``), a report and placeholder runs."""
    files = {name: handout.stubbed[name].solved.encode() for name in submission.CODE}
    files["maml.py"] += maml_extra.encode()
    files["report.md"] = "# Report\n".encode()
    for kind in ("fomaml", "transfer"):
        for name in submission.RUN_FILES:
            files[f"results/{kind}/{name}"] = f"placeholder {kind}/{name}\n".encode()
    return files


@pytest.fixture(scope="module")
def submissions(handout, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("submissions")
    write = submission.write_submission
    good = write(submission_files(handout), "Kim Minji", "2020-12345", folder, version=handout.version)
    write(submission_files(handout), "Park Jiwoo", "2020-23456", folder, version=handout.version)
    write(submission_files(handout, "\ndef broken(:\n    pass\n"), "Choi Yuna", "2020-34567", folder,
          version=handout.version)
    write(submission_files(handout, "\nimport os\nos._exit(0)\n"), "Jung Hoon", "2020-45678", folder,
          version=handout.version)
    write(submission_files(handout), "Oh Sejin", "2019-22222", folder, version="2019.1+abcdef123456")
    (folder / "Lee Jiho_2021-54321_Assignment2.zip").write_bytes(b"this is not a zip file\n" * 10)
    shutil.copy(good, folder / "kim_final_v2.zip")
    with zipfile.ZipFile(folder / "Han Sora_2021-11111_Assignment2.zip", "w") as archive:
        archive.writestr("maml.py", handout.stubbed["maml.py"].solved)
    (folder / "notes.txt").write_text("not a submission\n")
    return folder


@pytest.fixture(scope="module")
def batch(submissions, autograder_zip, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("grades")
    base = tmp_path_factory.getbasetemp()  # the README's example: paths relative to where it is run
    child = subprocess.run(
        [sys.executable, "-m", "instructor.grade_batch", os.path.relpath(submissions, base), "--out",
         os.path.relpath(out, base), "--jobs", "2", "--bundle", os.path.relpath(autograder_zip, base),
         "--public-only", "-k", SUBSET, "--timeout", "600"],
        cwd=base, capture_output=True, text=True, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "GRADER_CALL_SECONDS": "120",
             "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    return child, out


def gradebook(out: Path) -> dict[str, dict]:
    with open(out / "gradebook.csv", encoding="utf-8-sig", newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def test_every_submission_gets_a_row_with_a_score_and_a_reason(batch, submissions):
    child, out = batch
    assert child.returncode == 0, child.stderr[-3000:]
    rows = gradebook(out)
    assert set(rows) == {p.name for p in submissions.iterdir()}
    expected = {  # file -> (status, score, words of the reason)
        REFERENCE: ("graded", SUBSET_POINTS, "all tests passed"),
        "Park Jiwoo_2020-23456_Assignment2.zip": ("graded", SUBSET_POINTS, "all tests passed"),
        "Choi Yuna_2020-34567_Assignment2.zip": ("graded", 0.0, "could not import maml.py: SyntaxError"),
        "Jung Hoon_2020-45678_Assignment2.zip": ("graded", 0.0, "ended with exit status 0"),
        "Oh Sejin_2019-22222_Assignment2.zip": ("rejected", 0.0, "handout version 2019.1+abcdef123456"),
        "Lee Jiho_2021-54321_Assignment2.zip": ("rejected", 0.0, "is not a readable zip file"),
        "kim_final_v2.zip": ("rejected", 0.0, "is not {Name}_{StudentNumber}_Assignment2.zip"),
        "Han Sora_2021-11111_Assignment2.zip": ("rejected", 0.0, "missing: maml_transfer.py, report.md"),
        "notes.txt": ("rejected", 0.0, "not a zip file"),
    }
    for name, (status, score, reason) in expected.items():
        row = rows[name]
        assert (row["status"], float(row["score"])) == (status, score), row
        assert reason in row["reason"], row
        assert float(row["max_score"]) == SUBSET_POINTS, row
        assert float(row["extra_credit"]) == 0.0, row  # no MAML++ check in the subset
    assert rows[REFERENCE]["name"] == "Kim Minji" and rows[REFERENCE]["student_number"] == "2020-12345"
    assert rows["Lee Jiho_2021-54321_Assignment2.zip"]["name"] == "Lee Jiho"  # known from the file name
    private = [out / "results", out / "logs", out / "gradebook.csv", *(out / "results").iterdir(),
               *(out / "logs").iterdir()]  # grades and students' output: the instructor's alone
    assert [p.name for p in private if p.stat().st_mode & 0o077] == []
    assert float(rows[REFERENCE]["FO-MAML implementation"]) == 2.0
    assert float(rows[REFERENCE]["Transfer learning implementation"]) == 3.0


def test_results_files_follow_gradescope_and_the_same_code_scores_the_same(batch, submissions):
    child, out = batch
    results = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (out / "results").glob("*.json")}
    assert len(results) == len(list(submissions.glob("*.zip")))
    for name, data in results.items():
        assert isinstance(data["score"], (int, float)) and isinstance(data["execution_time"], (int, float))
        assert data["extra_data"]["status"] in ("graded", "rejected") and data["extra_data"]["reason"], name
        for test in data["tests"]:
            assert {"name", "score", "max_score", "output", "visibility"} <= set(test), test
            # extra credit: max_score 0, the score on top of the total (tests/test_results_format.py)
            assert 0 <= test["score"] <= test["max_score"] or EXTRA_CREDIT in test.get("tags", []), test
        assert data["score"] == sum(t["score"] for t in data["tests"])
        assert (out / "logs" / name.replace(".json", ".log")).is_file()

    def scores(data):
        return [(t["name"], t["score"], t["output"]) for t in data["tests"]]

    kim, park = results["Kim Minji_2020-12345_Assignment2.json"], results["Park Jiwoo_2020-23456_Assignment2.json"]
    assert scores(kim) == scores(park) and kim["score"] == SUBSET_POINTS
    assert "Grading 8 submissions" in child.stdout and "9 submissions in" in child.stdout
    assert "4 graded, 5 rejected" in child.stdout
    assert "grading: 100%" in child.stderr  # the progress bar


def test_gradescope_layout_runs_setup_and_grades_like_the_batch(batch, submissions, autograder_zip, tmp_path,
                                                                omniglot):
    """The bundle unpacked as Gradescope does, setup.sh run with a ready interpreter, the zip unpacked by "Gradescope"."""
    import load_data

    # setup.sh makes the data readable by everyone: work on a copy of the cache (`omniglot` builds it if missing)
    data = tmp_path / "omniglot"
    data.mkdir()
    shutil.copy(load_data.data_dir() / load_data.CACHE_NAME, data / load_data.CACHE_NAME)
    root = tmp_path / "autograder"
    child = subprocess.run(
        [sys.executable, "-m", "instructor.gradescope_local", str(submissions / REFERENCE), "--bundle",
         str(autograder_zip), "--root", str(root), "--setup", "--", "--public-only", "-k", SUBSET],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMNIGLOT_DATA_DIR": str(data),
             "AUTOGRADER_OPT": str(tmp_path / "opt")})
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-3000:]
    assert "autograder ready: Python 3." in child.stdout
    assert sorted(p.name for p in root.iterdir()) == ["GRADESCOPE_SETTINGS.txt", "results", "run_autograder", "setup.sh",
                                                      "source", "submission"]
    assert (root / "submission" / "SUBMISSION.json").is_file()  # unpacked, as Gradescope unpacks uploaded zips
    assert (root / "source" / "instructor" / "autograder").is_dir()  # the hidden tests travel in the bundle
    assert (root / "source").stat().st_mode & 0o077 == 0  # and are root's alone while grading
    assert os.stat(data / load_data.CACHE_NAME).st_mode & 0o044 == 0o044
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    from_batch = json.loads((batch[1] / "results" / REFERENCE.replace(".zip", ".json")).read_text(encoding="utf-8"))
    assert results["score"] == from_batch["score"] == SUBSET_POINTS
    assert [t["name"] for t in results["tests"]] == [t["name"] for t in from_batch["tests"]]
    assert "sandbox: user" in (root / "results" / "stdout").read_text(encoding="utf-8")  # the instructor's log


def test_gradescope_layout_refuses_a_renamed_zip_with_a_reason(submissions, autograder_zip, tmp_path):
    root = tmp_path / "autograder"
    child = subprocess.run(
        [sys.executable, "-m", "instructor.gradescope_local", str(submissions / "kim_final_v2.zip"), "--bundle",
         str(autograder_zip), "--root", str(root), "--keep-zip"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    results = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    assert results["score"] == 0 and results["tests"] == []
    assert "the file name 'kim_final_v2.zip' is not" in results["output"]
    assert results["extra_data"]["status"] == "rejected"


def test_the_summary_table_keeps_its_columns_with_hangul_names_and_shows_the_extra_credit_apart():
    """Wide characters take two terminal columns; the score is the assignment's points over its total, then
    the extra credit (Gradescope's score holds both, e.g. 48 of "40 + 8")."""
    from instructor.course import width
    from instructor.grade_batch import Row, summary

    rows = [Row("a.zip", "김민준", "2020-12345", 48.0, 40.0, 8.0, status="graded", reason="ok"),
            Row("b.zip", "Alexandra Konstantinopoulou", "2020-54321", 31.5, 40.0, 0.0, status="graded",
                reason="2 checks failed"),
            Row("c.zip", status="error", reason="not a zip")]
    lines = summary(rows, seconds=12.0).splitlines()
    table = lines[2:-2]
    assert "40/40 +8" in table[0] and "31.5/40" in table[1] and "+0" not in table[1]
    starts = {width(line[:line.index(status)]) for line, status in zip(table, ("graded", "graded", "error"))}
    assert len(starts) == 1, "\n".join(table)  # the status column starts at one terminal column on every row
    assert "  Alexandra Konstantinopou 2020-54321" in table[1]  # the name cut to its 24 columns
    assert "graded scores without extra credit: mean 35.75" in lines[-1]
