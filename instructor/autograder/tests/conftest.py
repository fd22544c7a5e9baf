"""Fixtures of the hidden tests: their reference numbers, the reference worker, and the student's runs.

As in the public tests, the reference numbers are loaded when the tests are
collected, before any student code runs, and never leave this process; the
student's code runs in the sandbox (``student`` fixture of ``grader.plugin``)
and gets only the inputs (``grader.compare.inputs``).

One TensorFlow at a time. This process never imports TensorFlow; the
reference's trusted measurements run in the reference worker (``reference_worker``),
and starting it stops the student's worker (``grader.sandbox``). So that this
happens once per grading, not once per check:

* the tests that use the reference run after all the others
  (``pytest_collection_modifyitems``);
* the student's part of those checks (training, the transfer heads, timing)
  runs in one go, in the fixture ``student_runs``, while the student's worker
  is still alive; each check then judges its part with the reference.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from grader import budget
from grader.plugin import title
from grader.sandbox import Sandbox, StudentFailure

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
STUDENT_WORK: dict[str, Callable] = {}  # name -> the student's part of a check (``student_work``)


def _load(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES_DIR / f"{name}.npz") as stored:
        return {key: stored[key] for key in stored.files}


FIXTURES = {name: _load(name) for name in ("maml_hidden", "transfer_hidden", "mamlpp_hidden", "reference_hidden")}
FACTS = json.loads(str(FIXTURES["reference_hidden"]["facts"]))  # see reference.facts


def pretrained(steps: int) -> dict[str, np.ndarray]:
    """The conv-4 features after ``steps`` minibatches of the reference's pre-training (stored by make_fixtures)."""
    prefix = f"pretrained_{steps}/"
    return {key[len(prefix):]: value for key, value in FIXTURES["reference_hidden"].items() if key.startswith(prefix)}


@pytest.fixture(scope="session")
def maml_hidden():
    return FIXTURES["maml_hidden"]


@pytest.fixture(scope="session")
def transfer_hidden():
    return FIXTURES["transfer_hidden"]


@pytest.fixture(scope="session")
def submission(pytestconfig) -> Path:
    """The submission's folder: the student's code files and its results/ (runs of the assessment)."""
    from grader import plugin

    return Path(pytestconfig.getoption("grader_student_dir") or plugin.ROOT)


@pytest.fixture(scope="session")
def reference_worker(student_runs):
    """The reference worker (``reference.py``'s functions run there); it starts after the student's runs."""
    import load_data

    worker = Sandbox.reference(env={"OMNIGLOT_DATA_DIR": str(load_data.data_dir().resolve())})
    try:
        yield worker
    finally:
        worker.close()


# ------------------------------------------------------------------ the student's part of the checks


@dataclass
class Outcome:
    """What the student's part of a check gave: its result, or the failure to report, and its seconds."""

    result: Any = None
    failure: BaseException | None = None
    seconds: float = 0.0

    def get(self):
        """The result; raises the student's failure (the check reports it as its own)."""
        if self.failure is not None:
            raise self.failure
        return self.result


def student_work(name: str):
    """Registers ``function(student) -> result`` as the student's part of the checks marked
    ``@pytest.mark.student_work(name)``; it runs in ``student_runs``, only when such a check is selected."""
    def register(function):
        STUDENT_WORK[name] = function
        return function
    return register


@pytest.fixture(scope="session")
def student_runs(request, student) -> dict[str, Outcome]:
    """Runs the student's part of every selected check that needs the reference, in one go (see above)."""
    checks = {mark.args[0]: item for item in reversed(request.session.items)
              for mark in item.iter_markers("student_work")}  # work -> the (first) check judging it
    wanted = list(dict.fromkeys(mark.args[0] for item in request.session.items
                                for mark in item.iter_markers("student_work")))
    budget.plan(wanted)
    outcomes = {}
    for name in wanted:
        # each run in a fresh worker: what earlier checks and runs left in memory would come on top of its peak
        # (FO-MAML training alone peaks at ~600 MiB, Gradescope's default container has 768 MB in all)
        student.recycle()
        outcome = outcomes[name] = Outcome()
        started, label = time.monotonic(), getattr(student, "label", "")
        student.label = title(checks[name])  # the sandbox's messages name the check this work is for
        try:
            outcome.result = STUDENT_WORK[name](student)
        except (StudentFailure, AssertionError) as error:
            outcome.failure = error
        finally:
            student.label = label
        outcome.seconds = time.monotonic() - started
        recorder = request.config.pluginmanager.get_plugin("grader-recorder")
        if recorder is not None:  # the timings show each check's own part, not all of it on the first check
            recorder.move_seconds(checks[name].nodeid, outcome.seconds)
    return outcomes


def pytest_collection_modifyitems(items):
    """Checks that use the reference last, those that also judge student runs first among them; those get
    pytest-timeout's limit of a whole grading (their runs are limited by the time budget, ``grader.budget``)."""
    def phase(item) -> int:
        if "reference_worker" not in item.fixturenames:
            return 0
        return 1 if "student_runs" in item.fixturenames else 2

    items[:] = sorted(items, key=phase)  # stable: the order within each phase stays
    for item in items:  # the first of them runs all the student's runs in its setup: the budget limits them
        if item.get_closest_marker("student_work"):
            item.add_marker(pytest.mark.timeout(budget.MAX_TIMEOUT))


def pytest_configure(config):
    config.addinivalue_line("markers", "student_work(name): the check judges the student's run `name` "
                                       "(conftest.student_work), made in one go before the reference starts")
