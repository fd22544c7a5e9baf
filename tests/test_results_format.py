"""What instructors and students see of the points: hidden tests' visibility, totals, extra credit, the log.

Gradescope's results.json (``grader.results.to_gradescope``, ``grader.gradescope._results_json``),
the grader's table (``grader.results.format_table``), the gradebook (``instructor.grade_batch``),
and pytest's own summary line in the instructor's log (``grader.plugin``). Fast: no TensorFlow;
the one real grader run uses tiny test files of its own.
"""

from __future__ import annotations

import ast
import csv
import re
import time
from pathlib import Path

import pytest

from grader import gradescope, runner
from grader.files import ROOT
from grader.results import (
    EXTRA_CREDIT,
    FAILED,
    PASSED,
    TODO,
    Results,
    TestResult,
    format_table,
    to_gradescope,
)
from instructor import grade_batch

HIDDEN = "instructor/autograder/tests"


def sample() -> Results:
    """Public and hidden tests (40 points) and extra-credit ones (8), some points lost on each side."""
    return Results([
        TestResult("grader/tests/test_maml.py::test_inner", "inner_loop outputs", 20, 18, FAILED,
                   "adapted parameters: wrong", "FO-MAML implementation"),
        TestResult(f"{HIDDEN}/test_training.py::test_train", "training reaches 80 %", 20, 20, PASSED,
                   "measured 83 %", "FO-MAML assessment"),
        TestResult(f"{HIDDEN}/test_mamlpp_hidden.py::test_schedules", "MAML++ schedules", 5, 5, PASSED,
                   "", EXTRA_CREDIT),
        TestResult(f"{HIDDEN}/test_mamlpp_hidden.py::test_bn", "MAML++ batch norm", 3, 0, TODO,
                   "not implemented yet", EXTRA_CREDIT),
    ], version="test")


def results_json(results: Results) -> dict:
    return gradescope._results_json(results, "", "graded", "reason", gradescope.Identity("Kim", "2020-1"),
                                    time.monotonic())


def test_the_extra_credit_constant_names_the_maml_plus_plus_tests_problem():
    tree = ast.parse((ROOT / HIDDEN / "test_mamlpp_hidden.py").read_text(encoding="utf-8"))
    problem = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", "") == "PROBLEM" for t in node.targets))
    assert problem == EXTRA_CREDIT


def test_hidden_tests_are_shown_after_the_due_date_by_default(monkeypatch):
    monkeypatch.delenv(gradescope.HIDDEN_VISIBILITY_ENV, raising=False)
    data = results_json(sample())
    assert [t["visibility"] for t in data["tests"]] == ["visible"] + ["after_due_date"] * 3
    assert data["visibility"] == "visible"  # the score and the public tests: at once


@pytest.mark.parametrize("value", ["visible", "hidden", "after_published", "after_due_date"])
def test_a_course_chooses_the_hidden_tests_visibility(monkeypatch, value):
    monkeypatch.setenv(gradescope.HIDDEN_VISIBILITY_ENV, value)
    data = results_json(sample())
    assert [t["visibility"] for t in data["tests"]] == ["visible"] + [value] * 3
    assert not data["extra_data"]["notes"]


def test_an_unknown_visibility_falls_back_to_after_the_due_date_with_a_note(monkeypatch, capsys):
    monkeypatch.setenv(gradescope.HIDDEN_VISIBILITY_ENV, "after_deadline")
    data = results_json(sample())
    assert [t["visibility"] for t in data["tests"]] == ["visible"] + ["after_due_date"] * 3
    note = data["extra_data"]["notes"][-1]
    assert "'after_deadline' is not a Gradescope visibility" in note and "after_due_date" in note
    assert "after_deadline" in capsys.readouterr().err  # the instructor's log
    assert "after_deadline" not in data["output"]  # not the student's business


def test_gradescope_counts_the_extra_credit_on_top_of_the_assignments_total():
    results = sample()
    data = to_gradescope(results)
    assert data["score"] == 18 + 20 + 5 + 0  # every point earned
    assert sum(t["max_score"] for t in data["tests"]) == 40  # the tests add up to the assignment's total
    extra = [t for t in data["tests"] if t["tags"] == [EXTRA_CREDIT]]
    assert [(t["score"], t["max_score"]) for t in extra] == [(5, 0.0), (0, 0.0)]
    assert extra[0]["output"].startswith("Extra credit: 5 of up to 5 extra points.")
    assert "Extra credit: 0 of up to 3 extra points.\nnot implemented yet" == extra[1]["output"]
    base = [t for t in data["tests"] if t["tags"] != [EXTRA_CREDIT]]
    assert [(t["score"], t["max_score"], t["output"]) for t in base] == [
        (18, 20, "adapted parameters: wrong"), (20, 20, "measured 83 %")]
    extra_data = results_json(results)["extra_data"]
    assert (extra_data["max_score"], extra_data["extra_credit"], extra_data["max_extra_credit"]) == (40, 5, 8)


def test_the_table_shows_the_total_out_of_40_and_the_extra_credit_apart():
    table = format_table(sample(), width=100)
    total = next(line for line in table.splitlines() if " total " in line)
    assert total.split()[0] == "38/40", table
    assert re.search(r"^\s*5/8\s+extra\s+extra credit: 5/8\b", table, re.M), table
    public = Results([t for t in sample().tests if not t.extra_credit])
    assert "extra credit" not in format_table(public, width=100)  # students' own runs: no extra-credit line


def test_the_gradebook_has_the_base_maximum_and_an_extra_credit_column(monkeypatch, tmp_path):
    monkeypatch.delenv(gradescope.HIDDEN_VISIBILITY_ENV, raising=False)
    data = results_json(sample())
    row = grade_batch.row_from_results(Path("Kim_2020-1_Assignment2.zip"), data, 1.0)
    assert (row.score, row.max_score, row.extra_credit) == (43, 40, 5)
    path = tmp_path / "gradebook.csv"
    grade_batch.write_gradebook([row], path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        [line] = list(csv.DictReader(handle))
    assert (line["score"], line["max_score"], line["extra_credit"]) == ("43", "40", "5")
    assert (line["FO-MAML implementation"], line["FO-MAML assessment"], line[EXTRA_CREDIT]) == ("18", "20", "5")
    assert list(line)[:6] == ["name", "student_number", "file", "score", "max_score", "extra_credit"]


NOTED_TESTS = '''
from grader.plugin import Parts, points


@points(2)
def test_noted():
    """passes, with a note"""
    parts = Parts()
    with parts.part(1, "the part"):
        pass
    parts.note("measured 83 %")
    parts.finish()


@points(1)
def test_plain():
    """passes"""


@points(2)
def test_partial():
    """half of it"""
    parts = Parts()
    with parts.part(1, "good part"):
        pass
    with parts.part(1, "bad part"):
        assert False, "wrong"
    parts.finish()
'''


def summary_line(output: str) -> str:
    return next(line for line in reversed(output.splitlines()) if re.search(r"\d+ (passed|failed)", line))


def test_pytests_summary_counts_a_passed_check_with_a_note_as_passed(tmp_path):
    tests = tmp_path / "test_checks.py"
    tests.write_text(NOTED_TESTS, encoding="utf-8")
    results, output = runner.run_tests(tests, ["-k", "noted or plain"], timeout=300)
    assert not results.problems, results.problems
    assert [(t.name, t.status, t.points, t.message) for t in results.tests] == [
        ("passes, with a note", PASSED, 2.0, "measured 83 %"), ("passes", PASSED, 1.0, "")]
    line = summary_line(output)
    assert "2 passed" in line and "failed" not in line, output

    results, output = runner.run_tests(tests, timeout=300)  # partial credit is still a failure for pytest
    assert [(t.status, t.points) for t in results.tests] == [(PASSED, 2.0), (PASSED, 1.0), (FAILED, 1.0)]
    line = summary_line(output)
    assert "1 failed" in line and "2 passed" in line, output
