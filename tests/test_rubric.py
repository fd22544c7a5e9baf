"""The report rubric (instructor/rubric.py): the TA's sheet, the pages per student, the sheet's checks.

Real zips (``grader.submission.write_submission``) with a report, real PNG plots and
hyper-parameters; a grades folder with results/*.json in grade_batch's format.
No TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from grader import submission
from grader.files import ROOT
from grader.results import EXTRA_CREDIT
from instructor import rubric

STUDENTS = [("김민지", "2020-12345"), ("Park Jiwoo", "2020-23456"), ("이서준", "2021-11111")]


def png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 1.5), dpi=40)
    axes.plot([0, 1, 2], [0.2, 0.6, 0.85])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


REPORT = """# Report

## 2. FO-MAML assessment (10 points)

![FO-MAML validation accuracy](results/fomaml/val_accuracy.png)

| run | accuracy |
|---|---|
| fomaml | 0.91 |

It learns fast. <script>alert("x")</script> [click](javascript:alert(1))

## Collaborators and code references

{collaborators}
"""


def submission_files(collaborators: str, plot: bytes) -> dict[str, bytes]:
    files = {name: f"# {name}\n".encode() for name in submission.CODE}
    files["report.md"] = REPORT.format(collaborators=collaborators).encode()
    for kind in ("fomaml", "transfer"):
        for name in submission.RUN_FILES:
            files[f"results/{kind}/{name}"] = f"placeholder {kind}/{name}\n".encode()
        files[f"results/{kind}/val_accuracy.png"] = plot
        files[f"results/{kind}/hparams.json"] = json.dumps(
            {"hparams": {"inner_lr": 0.4, "num_inner_steps": 5, "kind": kind}}).encode()
    return files


def results_json(name: str, number: str, fomaml_weights: float = 2.0) -> dict:
    """A results.json as grader.gradescope writes it (the fields grade_batch and these tools read)."""
    tests = [
        {"name": "inner_loop outputs", "score": 2.0, "max_score": 2.0, "status": "passed", "output": "",
         "tags": ["FO-MAML implementation"], "visibility": "visible"},
        {"name": "your submitted FO-MAML weights (results/fomaml) reach 80 % validation accuracy",
         "score": fomaml_weights, "max_score": 2.0, "status": "passed" if fomaml_weights else "failed",
         "output": "Your weights give 91.3 % ± 0.8 % on the 100 validation tasks after 5 inner steps",
         "tags": ["FO-MAML assessment"], "visibility": "after_due_date"},
        {"name": "MAML++ training is more stable", "score": 4.0, "max_score": 0.0, "status": "passed",
         "output": "Extra credit: 4 of up to 8 extra points.", "tags": [EXTRA_CREDIT], "visibility": "after_due_date"},
    ]
    points = {}
    for t in tests:
        points[t["tags"][0]] = points.get(t["tags"][0], 0) + t["score"]
    return {"score": sum(t["score"] for t in tests), "execution_time": 1.0, "output": "", "tests": tests,
            "extra_data": {"name": name, "student_number": number, "status": "graded", "reason": "",
                           "max_score": 4.0, "extra_credit": 4.0, "max_extra_credit": 8.0, "problems": points,
                           "max_problems": {"FO-MAML implementation": 2.0, "FO-MAML assessment": 2.0,
                                            EXTRA_CREDIT: 8.0}}}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> tuple[Path, Path]:
    """(submissions folder, grades folder): three real zips, one without results."""
    root = tmp_path_factory.mktemp("course")
    folder, grades = root / "submissions", root / "grades"
    plot = png()
    for (name, number), collaborators in zip(STUDENTS, ["None.", "[[ANSWER: who did you discuss with?]]", "Kim"]):
        path = submission.write_submission(submission_files(collaborators, plot), name, number, folder)
        if number != "2021-11111":
            (grades / "results").mkdir(parents=True, exist_ok=True)
            (grades / "results" / f"{path.stem}.json").write_text(json.dumps(results_json(name, number)),
                                                                  encoding="utf-8")
    (folder / "notes.txt").write_text("not a submission")
    return folder, grades


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instructor.rubric", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def sheet(grades: Path) -> list[dict[str, str]]:
    with open(grades / rubric.SHEET, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write_sheet(grades: Path, rows: list[dict[str, str]]) -> None:
    with open(grades / rubric.SHEET, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_the_course_rubric_is_the_reports_points():
    loaded = rubric.load_rubric()
    assert [(i.id, i.points, i.extra) for i in loaded.items] == [
        ("fomaml_assessment", 5, False), ("transfer_assessment", 5, False), ("mamlpp_discussion", 2, True)]
    assert (loaded.total, loaded.extra_credit) == (10, 2)
    assert all(i.earns for i in loaded.items)


def test_a_rubric_whose_items_disagree_with_its_total_is_refused(tmp_path):
    bad = tmp_path / "course.toml"
    bad.write_text('[rubric]\ntotal = 10\nextra_credit = 0\n[rubric.items.a]\npoints = 4\n', encoding="utf-8")
    with pytest.raises(rubric.RubricError, match="total = 10 but its items add up to 4"):
        rubric.load_rubric(bad)


def test_sheet_pages_and_merge_keep_what_the_ta_typed(course):
    folder, grades = course
    child = run("sheet", str(folder), "--grades", str(grades))
    assert child.returncode == 0, child.stderr
    rows = sheet(grades)
    assert list(rows[0]) == ["student_number", "name", "fomaml_assessment", "transfer_assessment",
                             "mamlpp_discussion", "comments"]
    assert {(r["name"], r["student_number"]) for r in rows} == set(STUDENTS)
    assert all(r["fomaml_assessment"] == "" for r in rows)
    assert "no readable results/이서준_2021-11111_Assignment2.json" in child.stdout
    assert (grades / rubric.SHEET).read_bytes().startswith(b"\xef\xbb\xbf")

    page = (grades / "reports" / "2020-12345.html").read_text(encoding="utf-8")
    assert "김민지" in page and "91.3 % ± 0.8 %" in page  # the accuracy the grader re-evaluated
    assert "inner_lr" in page and "0.4" in page  # hyper-parameters
    assert page.count("data:image/png;base64,") >= 3  # the plots, and the report's own image embedded
    assert 'src="results/' not in page
    assert "<table>" in page and "<td>fomaml</td>" in page  # markdown rendered
    assert "<script>" not in page and "javascript:" not in page  # the student's HTML is text
    assert "Content-Security-Policy" in page
    assert '<b class="ok">filled</b>' in page
    other = (grades / "reports" / "2020-23456.html").read_text(encoding="utf-8")
    assert "present but not filled" in other
    assert "No grading results" in (grades / "reports" / "2021-11111.html").read_text(encoding="utf-8")

    # the TA grades two students; a re-run of `sheet` keeps every cell
    for r in rows:
        if r["student_number"] == "2020-12345":
            r.update(fomaml_assessment="4.5", transfer_assessment="5", mamlpp_discussion="2", comments="좋아요, clear")
        if r["student_number"] == "2020-23456":
            r.update(fomaml_assessment="3")
    write_sheet(grades, rows)
    child = run("sheet", str(folder), "--grades", str(grades))
    assert child.returncode == 0, child.stderr
    again = {r["student_number"]: r for r in sheet(grades)}
    assert again["2020-12345"]["fomaml_assessment"] == "4.5" and again["2020-12345"]["comments"] == "좋아요, clear"
    assert again["2020-23456"]["fomaml_assessment"] == "3" and "0 new rows, 3 rows kept" in child.stdout

    child = run("merge", str(grades))
    assert child.returncode == 0, child.stderr
    assert "3 students: 1 graded, 2 still ungraded" in child.stdout
    assert "ungraded: transfer_assessment" in child.stdout and "9.5/10" in child.stdout


def test_merge_names_the_row_and_column_of_every_wrong_cell(tmp_path):
    loaded = rubric.load_rubric()
    rows = [{"student_number": "2020-12345", "name": "김민지", "fomaml_assessment": "6", "transfer_assessment": "x",
             "mamlpp_discussion": "", "comments": ""},
            {"student_number": "12345", "name": "Park", "fomaml_assessment": "", "transfer_assessment": "",
             "mamlpp_discussion": "", "comments": ""}]
    write_sheet(tmp_path, rows)
    child = run("merge", str(tmp_path))
    assert child.returncode == 1
    assert "row 2 (김민지, 2020-12345), column fomaml_assessment: 6 is outside 0 to 5" in child.stderr
    assert "column transfer_assessment: 'x' is not a number" in child.stderr
    assert "row 3 (Park), column student_number" in child.stderr
    with pytest.raises(rubric.RubricError, match="3 problem"):
        rubric.read_sheet(tmp_path / rubric.SHEET, loaded)
