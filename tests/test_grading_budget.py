"""Grading within the platform's limits: the time budget (grader.budget) and the memory limit, for real.

Real submission zips (``grader.submission.write_submission``, the handout's
reference code), graded by ``python -m grader.gradescope`` as run_autograder
runs it, with the public checks only so that each grading is one TensorFlow
start:

* an endless loop that spends the whole (short) time budget: results.json is
  still complete, the check that was cut off and every check that did not run
  score 0 and say why, and the checks that ran before keep their points;
* a timeout Gradescope does not allow: refused, with a results.json saying so;
* student code that allocates without bound in one function: that check says
  "your code used more than N MB", the other checks keep their points.
"""

from __future__ import annotations

import sys
from pathlib import Path

from test_batch_grading import submission_files

from grader import budget, runner, submission
from instructor import gradescope_local

HOG = '''

def _hog(*args, **kwargs):
    import numpy
    kept = []
    while True:
        kept.append(numpy.ones(2**20))  # 8 MB more each time, never freed

transfer_learn = _hog
'''
ENDLESS = '''

def _endless(self, task_batch, train):
    while True:  # never returns
        pass

MAML.outer_loop = _endless
'''


def write(handout, folder: Path, maml_extra: str = "", transfer_extra: str = "") -> Path:
    files = submission_files(handout, maml_extra)  # the reference, a report, placeholder runs
    files["maml_transfer.py"] += transfer_extra.encode()
    return submission.write_submission(files, "Kim Minji", "2020-12345", folder, version=handout.version)


def grade(zip_path: Path, bundle_zip: Path, root: Path, *arguments: str, env: dict | None = None) -> tuple[dict, str]:
    """Grades the zip with the bundle in a Gradescope layout (run_autograder); (results.json, the log)."""
    data = gradescope_local.run(zip_path, bundle_zip, root, python=sys.executable, arguments=["--public-only",
                                *arguments], env={"TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}, timeout=900)
    return data, (root / "results" / "stdout").read_text(encoding="utf-8")


def test_a_budget_spent_by_an_endless_loop_still_gives_complete_results(handout, autograder_zip, tmp_path):
    zip_path = write(handout, tmp_path / "in", maml_extra=ENDLESS)
    # 80 s: 50 s of budget after the reserve, less than one call's limit (budget.MIN_CALL_SECONDS), and room for
    # the worker's start and the inner_loop checks on a loaded machine (at load 8 the start alone took 22 s).
    # The first call of outer_loop never returns, so it spends the budget; the checks after it are not run.
    data, log = grade(zip_path, autograder_zip, tmp_path / "ag", "--timeout", "80")
    tests = data["tests"]
    checks = sum(path.read_text(encoding="utf-8").count("\n@points(") for path in runner.PUBLIC_TESTS.glob("test_*.py"))
    assert len(tests) == checks, log[-3000:]  # every public check has its entry
    by_output = {t["name"]: t["output"] for t in tests}
    inner = [t for t in tests if t["name"].startswith("inner_loop")]
    assert inner and all(t["score"] == t["max_score"] for t in inner), by_output  # they ran before the loop
    spent = [t for t in tests if "when the time budget of the whole grading ran out" in t["output"]]
    not_run = [t for t in tests  # (an extra-credit check's output starts with its "Extra credit: ..." line)
               if t["output"].split("extra points.\n")[-1].startswith("not run: the time budget of 50 s was spent")]
    assert len(spent) == 1 and spent[0]["name"].startswith("outer_loop"), by_output
    assert not_run and all(t["score"] == 0 for t in not_run + spent), by_output
    assert {t["name"] for t in inner + spent + not_run} == set(by_output), by_output
    # the check that spent the budget is among the slowest named (the first check's time includes the worker's
    # TensorFlow start, which on a loaded machine can take as long as what is left for the endless one)
    slowest = not_run[0]["output"].split("(slowest checks: ", 1)[1]
    assert spent[0]["name"] in slowest, not_run[0]["output"]
    assert data["extra_data"]["status"] == "graded"


def test_a_timeout_gradescope_does_not_allow_is_refused_with_results(handout, autograder_zip, tmp_path):
    zip_path = write(handout, tmp_path / "in")
    data, log = grade(zip_path, autograder_zip, tmp_path / "ag", "--timeout", f"{budget.MAX_TIMEOUT + 1:g}")
    assert data["score"] == 0 and "40 minutes at most" in data["output"], data
    assert "40 minutes at most" in log


def test_code_that_exceeds_the_memory_limit_fails_that_check_and_the_others_still_pass(handout, autograder_zip,
                                                                                       tmp_path):
    zip_path = write(handout, tmp_path / "in", transfer_extra=HOG)
    data, log = grade(zip_path, autograder_zip, tmp_path / "ag", "-k", "inner_loop_outputs or transfer_learn_head or outer_loop_loss",
                        env={"GRADER_RESIDENT_BYTES": str(900 * 2**20)})
    by_name = {t["name"]: t for t in data["tests"]}
    hogged = [t for name, t in by_name.items() if name.startswith("transfer_learn")]
    others = [t for name, t in by_name.items() if not name.startswith("transfer_learn")]
    assert hogged and others, list(by_name)
    for test in hogged:
        assert test["score"] == 0 and "your code used more than 900 MB of memory in transfer_learn" in test["output"], \
            test["output"]
    assert all(t["score"] == t["max_score"] for t in others), [(t["name"], t["output"][:200]) for t in others]
