"""pytest plugin of the grader: points per test, failures turned into actionable messages.

Loaded with ``-p grader.plugin`` (``grader.runner`` does it). Public tests say
what they are worth with the ``points`` decorator::

    from grader.plugin import points

    @points(3)
    def test_outer_loop_loss():
        \"\"\"outer_loop: outer loss and accuracies match the reference\"\"\"

The first line of a test's docstring is its name in the table. At the end of
the session the plugin writes ``grader.results.Results`` as JSON to the path
given by ``--grader-json``.

Failures become one short message, never a traceback wall
(``grader.failures.describe_failure``; a test stopped by pytest-timeout says
which limit it hit).

Student code never runs in this process: tests get the session fixture
``student``, a ``grader.sandbox.Sandbox`` on the code in ``--grader-student-dir``
(default: the handout folder), and call probes in it (``grader/probes.py``).
The sandbox is stopped before the results are written.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import pytest

from grader import budget, compare, failures
from grader.failures import PartialCredit, StudentFailure
from grader.files import ROOT
from grader.results import ERROR, FAILED, PASSED, SKIPPED, TODO, Results, TestResult
from grader.sandbox import Sandbox, open_sandbox


class Parts:
    """Partial credit inside one test: every part has a weight, a failed part loses it::

        parts = Parts()
        with parts.part(3, "adapted parameters"):
            compare.assert_parameters_close(...)
        with parts.part(1, "support accuracies"):
            ...
        parts.finish()  # PartialCredit naming the failed parts, unless all passed

    A part fails on an AssertionError or a StudentFailure (its message is kept);
    a StudentFailure with status "todo" (code not written yet) ends the test.
    A diagnosis (``grader.feedback.assert_expected`` sets ``error.diagnosis``) that an
    earlier part already gave is not repeated. ``note`` adds a sentence shown
    even when everything passed.
    """

    def __init__(self):
        self.total = self.earned = 0.0
        self.messages: list[str] = []
        self.diagnoses: set[str] = set()

    @contextlib.contextmanager
    def part(self, weight: float, name: str):
        self.total += weight
        try:
            yield
        except (AssertionError, StudentFailure) as error:
            if isinstance(error, StudentFailure) and error.status == TODO:
                raise
            message = error.message if isinstance(error, StudentFailure) else str(error)
            diagnosis = getattr(error, "diagnosis", "")
            if diagnosis and diagnosis in self.diagnoses:
                message = message.replace(diagnosis, "Looks like the same mistake as above.")
            self.diagnoses.add(diagnosis)
            self.messages.append(f"{name}: {message.strip() or 'failed'}")
        else:
            self.earned += weight

    def note(self, message: str) -> None:
        self.messages.append(message)

    def finish(self) -> None:
        if self.messages or self.earned < self.total:
            raise PartialCredit(self.earned / self.total if self.total else 1.0, "\n".join(self.messages))


def training_split_only(folder: Path) -> tuple[tuple[str, ...], dict[str, str]]:
    """Omniglot, preprocessed, with every drawing outside the training split blank, written in ``folder``
    under the name ``load_data`` looks for: (the file, for ``Sandbox(readable=)``; the worker's environment).

    The student's process trains on the training split (``probes_hidden.train``); the tasks of every
    verdict come from the validation split and reach it as arrays, support sets only for transfer. With
    the whole data set it could find a support set's characters and fetch their other drawings, the very
    queries a check measures on. Same shape and indices, so ``load_data.TaskSampler`` works unchanged.
    """
    import numpy as np

    import load_data

    # fetched and preprocessed on first use, as the reference worker's copy is (setup.sh does it on Gradescope)
    images, names = load_data.load_omniglot(progress=False, scaled=False)
    blank = np.ones(len(images), bool)
    blank[load_data.split_characters(len(images))["train"]] = False
    images[blank] = 0
    folder.chmod(0o755)  # the worker's uid reads it (in its view, or, without one, through the folder)
    target = folder / load_data.CACHE_NAME
    with load_data.atomic_output(target) as tmp, open(tmp, "wb") as out:
        np.savez(out, images=images, names=names)
    target.chmod(0o644)
    return (str(target),), {"OMNIGLOT_DATA_DIR": str(folder)}


def has_training_data(sandbox) -> bool:
    """Whether the student's worker was given Omniglot's training split (``training_split_only``); without it a
    probe that trains fails in the student's process, a problem of the grader's set-up, not of the student. An
    in-process sandbox (no ``readable``) reads the grader's own data."""
    import load_data

    readable = getattr(sandbox, "readable", None)
    return readable is None or any(Path(path).name == load_data.CACHE_NAME for path in readable)


def points(value: float):
    """Decorator: the test is worth ``value`` points (all or nothing)."""
    if not value >= 0:
        raise ValueError(f"points must be >= 0, got {value!r}")
    return pytest.mark.points(value)


def describe_test_failure(error: BaseException) -> tuple[str, str]:
    """(status, message) for an exception raised while running a test: ``grader.failures.describe_failure``,
    and pytest-timeout's stop."""
    if isinstance(error, pytest.fail.Exception):
        text = str(error)
        if text.startswith("Timeout"):  # pytest-timeout: "Timeout (>300.0s) from pytest-timeout."
            limit = text.split()[1].strip("(>)") if len(text.split()) > 1 else "the limit"
            return ERROR, (f"took longer than {limit}, the limit of this test: look for an endless "
                           f"loop, or work repeated far more often than needed")
        return FAILED, failures.shorten(text)
    return failures.describe_failure(error)


def title(item: pytest.Item) -> str:
    """The check's name in the table: the first line of the test's docstring."""
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    first = doc.strip().splitlines()[0].strip() if doc.strip() else ""
    return first or item.name


TWIN_FAILED = ("passed on the public fixture, but not on its twin, on which the autograder runs it too (the same "
               "shapes and settings, other tasks and parameters): ")


def fixture_version(item: pytest.Item) -> str | None:
    """compare.FIXTURE or compare.TWIN when the autograder runs a public test on its fixture and on the fixture's
    twin (``grader.compare.fixture_versions``), else None."""
    spec = getattr(item, "callspec", None)
    return spec.id if spec is not None and spec.id in (compare.FIXTURE, compare.TWIN) else None


def check_id(item: pytest.Item) -> str:
    """The check a test item grades: its node id without the fixture version: a public test's runs on the
    fixture and on its twin make one check, with the id it has in a student's own run."""
    version = fixture_version(item)
    return item.nodeid[:-len(f"[{version}]")] if version else item.nodeid


class Recorder:
    """Collects one TestResult per test and writes them at the end of the session."""

    def __init__(self, path: str | None, student_dir: str | None):
        self.path = path
        self.student_dir = student_dir or str(ROOT)
        self.results = Results()
        self.by_id: dict[str, TestResult] = {}
        self.sandbox: Sandbox | None = None
        self.sandbox_log = ""
        self.changed_files: list[str] = []  # grader files changed in the student's worker folder
        self.charged: dict[str, float] = {}  # node id -> seconds moved to (or from) that test (``move_seconds``)
        self.current = ""  # node id of the test running now
        self.progress = False  # a line per finished check (--grader-progress)
        self.total, self.finished = 0, 0  # checks
        self.pending: dict[str, int] = {}  # check id -> its items not finished yet

    def move_seconds(self, nodeid: str, seconds: float) -> None:
        """Counts ``seconds`` of shared work done during the running test (e.g. a session fixture's) to the
        test ``nodeid`` instead, so each check's timing shows its own work."""
        self.charged[nodeid] = self.charged.get(nodeid, 0.0) + seconds
        self.charged[self.current] = self.charged.get(self.current, 0.0) - seconds

    @pytest.fixture(scope="session")
    def student(self):
        """The sandbox running the student's code (started on the first call)."""
        readable, env = (), {}
        with tempfile.TemporaryDirectory(prefix="grader-data-") as folder:
            try:  # Omniglot's training split: probes that train read it (the worker has no network to fetch it)
                readable, env = training_split_only(Path(folder))
            except Exception as error:  # noqa: BLE001 - no data: checks that train say so (has_training_data)
                print(f"grader: no Omniglot data for the student's worker: {type(error).__name__}: {error}",
                      file=sys.stderr)
            self.sandbox = open_sandbox(self.student_dir, readable=readable, env=env)
            try:
                yield self.sandbox
            finally:
                self.close_sandbox()

    @pytest.fixture(scope="session")
    def submission_dir(self) -> Path:
        """The student's folder: the code files, and with a full submission its report.md and results/.

        Tests that grade the submitted runs read them here, in the grader's
        process (``np.load(..., allow_pickle=False)``), or pass them to a probe.
        """
        return Path(self.student_dir)

    def close_sandbox(self) -> None:
        """Stops the student's process (and everything it started); notes what the sandbox achieved."""
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is None:
            return
        self.changed_files += sandbox.tampered()
        sandbox.close()
        if sandbox.starts:
            self.results.notes.append(f"student code ran as {sandbox.notes.get('account')}; network: "
                                      f"{sandbox.notes.get('network')}")
        self.sandbox_log = sandbox.log_text()

    def pytest_runtest_setup(self, item):
        self.current = item.nodeid
        if budget.left() < budget.MIN_CHECK_SECONDS:
            done = sorted(((t.name, t.seconds) for t in self.results.tests), key=lambda pair: -pair[1])
            raise budget.BudgetSpent(budget.spent_message(done))
        if self.sandbox is not None:
            self.sandbox.label = title(item)  # messages of the sandbox name the check that was running

    def pytest_runtest_logfinish(self, nodeid):
        result = self.by_id.get(nodeid)
        if self.progress and result is not None and not self.pending.get(result.id):
            self.finished += 1
            print(f"\n[{self.finished}/{self.total}] {result.points:g}/{result.max_points:g} "
                  f"{result.status:<7} {result.name} ({result.seconds:.0f} s)", flush=True)

    def pytest_collection_finish(self, session):
        checks = [check_id(item) for item in session.items]
        self.total = len(set(checks))
        self.pending = {check: checks.count(check) for check in checks}  # its items still to finish

    def pytest_terminal_summary(self, terminalreporter):
        if self.sandbox_log:
            terminalreporter.write_sep("-", "sandbox (what the student's code printed, and the limits)")
            terminalreporter.write_line(self.sandbox_log)

    def _result(self, item: pytest.Item) -> TestResult:
        """The check's result (one for the items of a check, ``check_id``), found by check or node id."""
        check = check_id(item)
        if check not in self.by_id:
            mark = item.get_closest_marker("points")
            value = float(mark.args[0]) if mark and mark.args else 0.0
            problem = item.get_closest_marker("problem")
            problem = str(problem.args[0]) if problem and problem.args else getattr(item.module, "PROBLEM", "")
            result = TestResult(check, title(item), value, value, PASSED, problem=str(problem))
            self.by_id[check] = result
            self.results.tests.append(result)
        self.by_id[item.nodeid] = self.by_id[check]
        return self.by_id[check]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        result = self._result(item)
        result.seconds = round(max(result.seconds + report.duration + self.charged.pop(item.nodeid, 0.0), 0.0), 2)
        if call.when == "teardown":
            self.pending[result.id] = self.pending.get(result.id, 1) - 1
        if result.status != PASSED:  # the first problem (setup, call or teardown) is the message
            return report
        if report.skipped:
            result.status, result.points = SKIPPED, 0.0
            result.message = str(call.excinfo.value) if call.excinfo else "skipped"
        elif report.failed:
            error = call.excinfo.value
            status, message = describe_test_failure(error)
            if isinstance(error, failures.SandboxError) and message not in self.results.problems:
                self.results.problems.append(message)  # the grader's problem (e.g. a refused worker): an error
            earned = error.fraction * result.max_points if isinstance(error, PartialCredit) else 0.0
            if isinstance(error, PartialCredit) and error.fraction == 1.0:
                status = PASSED  # a passed check with a note: passed for pytest too (its summary, -x)
                if call.when == "call":  # a passed setup would go on to run the test
                    report.outcome, report.longrepr = "passed", None
            if fixture_version(item) == compare.TWIN:  # passed on the fixture: keep its note, or say why it fails
                if status == PASSED:
                    return report
                message = TWIN_FAILED + message
            result.status, result.points, result.message = status, earned, message
        return report

    def pytest_collectreport(self, report):
        if report.failed:
            last = str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "unknown error"
            self.results.problems.append(f"could not load {report.nodeid or 'the tests'}: {failures.shorten(last)}")

    def pytest_sessionfinish(self, session):
        self.close_sandbox()  # nothing of the student's runs any more when the results are written
        self.results.changed_files = self.changed_files  # grader.runner flags the run (one place for tampering)
        if self.path:
            from grader import version

            self.results.version = version.current()
            self.results.write(self.path)


def pytest_addoption(parser):
    parser.addoption("--grader-json", default=None, help="write the graded results (JSON) to this path")
    parser.addoption("--grader-progress", action="store_true",
                     help="print a line per finished check: its points, status, name and seconds")
    parser.addoption("--grader-student-dir", default=None,
                     help="folder holding the student's maml.py and maml_transfer.py (default: the handout)")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(value): what a graded test is worth")
    config.addinivalue_line("markers", "problem(name): the part of the assignment a test belongs to "
                                       "(default: the test module's PROBLEM)")
    recorder = Recorder(config.getoption("grader_json"), config.getoption("grader_student_dir"))
    recorder.progress = bool(config.getoption("grader_progress"))
    config.pluginmanager.register(recorder, "grader-recorder")
