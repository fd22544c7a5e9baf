"""pytest plugin of the grader: points per test, failures turned into actionable messages.

Loaded with ``-p grader.plugin`` (``grader.runner`` does it). Public tests say
what they are worth with the ``points`` decorator::

    from grader.plugin import points

    @points(3)
    def test_outer_loop_loss():
        \"\"\"outer_loop: outer loss and accuracies match the reference\"\"\"

The first line of a test's docstring is its name in the table. At the end of
the session the plugin writes ``grader.report.Results`` as JSON to the path
given by ``--grader-json``.

Failures become one short message, never a traceback wall:

* ``NotImplementedError`` -> status "todo": "not implemented yet: MAML.inner_loop
  (maml.py line 251)", from the frame that raised it;
* ``AssertionError`` (the checks' own messages) -> status "failed";
* ``StudentCodeError`` (the grader's message is the whole story, e.g. an
  import that failed) and any other exception -> status "error", naming the
  exception and the innermost line of the student's code it came from, after
  a known cause of that error if there is one (``grader.feedback.explain_error``).
* ``StudentFailure`` from the sandbox: the status and message the student's
  process reported (the same rules, applied there), or why it ended.
* ``PartialCredit`` (raised by ``Parts.finish``): status "failed" with that
  fraction of the test's points, "passed" with a note when the fraction is 1.

Student code never runs in this process: tests get the session fixture
``student``, a ``grader.sandbox.Sandbox`` on the code in ``--grader-student-dir``
(default: the handout folder), and call probes in it (``grader/probes.py``).
The sandbox is stopped before the results are written.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path

import pytest

from grader import budget, feedback
from grader.report import ERROR, FAILED, PASSED, SKIPPED, TODO, Results, TestResult
from grader.sandbox import Sandbox, SandboxError, StudentFailure, open_sandbox

ROOT = Path(__file__).resolve().parent.parent  # the handout folder
GRADER_DIR = ROOT / "grader"
FLAGGED = "flagged for review:"  # starts a problem that sets the score to 0 (see grader.gradescope)
MAX_MESSAGE_LINES = 8
MAX_MESSAGE_CHARS = 1200


class StudentCodeError(Exception):
    """Raised by grader code with a complete, student-facing message."""


class PartialCredit(AssertionError):
    """A test earned ``fraction`` (0..1) of its points; the message says what was missing."""

    def __init__(self, fraction: float, message: str):
        super().__init__(message)
        self.fraction = min(max(float(fraction), 0.0), 1.0)


class Parts:
    """Partial credit inside one test: every part has a weight, a failed part loses it::

        parts = Parts()
        with parts.part(3, "adapted parameters"):
            checks.check_parameters(...)
        with parts.part(1, "support accuracies"):
            ...
        parts.finish()  # PartialCredit naming the failed parts, unless all passed

    A part fails on an AssertionError or a StudentFailure (its message is kept);
    a StudentFailure with status "todo" (code not written yet) ends the test.
    A diagnosis (``grader.feedback.check`` sets ``error.diagnosis``) that an
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


def points(value: float):
    """Decorator: the test is worth ``value`` points (all or nothing)."""
    if not value >= 0:
        raise ValueError(f"points must be >= 0, got {value!r}")
    return pytest.mark.points(value)


def _student_frames(tb) -> list[traceback.FrameSummary]:
    """Frames of the traceback in the student's files (the handout, minus grader/)."""
    frames = []
    for frame, line in traceback.walk_tb(tb):
        path = Path(frame.f_code.co_filename)
        try:
            path.resolve().relative_to(ROOT)
        except ValueError:
            continue
        if GRADER_DIR in path.resolve().parents:
            continue
        frames.append((frame, line))
    return frames


def _where(frame, line: int) -> str:
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    return f"{name} ({Path(code.co_filename).name} line {line})"


def _shorten(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    lines = lines[:next((i for i, line in enumerate(lines) if line.startswith("assert ")), len(lines))]
    short = "\n".join(lines[:MAX_MESSAGE_LINES])
    if len(short) > MAX_MESSAGE_CHARS:
        short = short[:MAX_MESSAGE_CHARS] + " ..."
    elif len(lines) > MAX_MESSAGE_LINES:
        short += "\n..."
    return short


def describe_failure(error: BaseException) -> tuple[str, str]:
    """(status, message) for an exception raised while running a test."""
    if isinstance(error, StudentFailure):
        return error.status, error.message
    if isinstance(error, SandboxError):
        return ERROR, _shorten(f"the grader could not run your code, a problem of the grader (please tell "
                               f"the course staff): {error}")
    frames = _student_frames(error.__traceback__)
    if isinstance(error, NotImplementedError):
        if frames:
            return TODO, f"not implemented yet: {_where(*frames[-1])}"
        return TODO, f"not implemented yet: {error}"
    if isinstance(error, (StudentCodeError, budget.BudgetSpent)):
        return ERROR, _shorten(str(error))
    if isinstance(error, AssertionError):
        return FAILED, _shorten(str(error)) or "a check failed (no details)"
    if isinstance(error, pytest.fail.Exception):
        text = str(error)
        if text.startswith("Timeout"):  # pytest-timeout: "Timeout (>300.0s) from pytest-timeout."
            limit = text.split()[1].strip("(>)") if len(text.split()) > 1 else "the limit"
            return ERROR, (f"took longer than {limit}, the limit of this test: look for an endless "
                           f"loop, or work repeated far more often than needed")
        return FAILED, _shorten(text)
    detail = _shorten(f"{type(error).__name__}: {error}")
    hint = feedback.explain_error(str(error))
    if hint:
        detail = f"{hint}\n{detail}"
    if frames:
        return ERROR, f"{detail}\n(raised in {_where(*frames[-1])})"
    return ERROR, detail


def title(item: pytest.Item) -> str:
    """The check's name in the table: the first line of the test's docstring."""
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    first = doc.strip().splitlines()[0].strip() if doc.strip() else ""
    return first or item.name


class Recorder:
    """Collects one TestResult per test and writes them at the end of the session."""

    def __init__(self, path: str | None, student_dir: str | None):
        self.path = path
        self.student_dir = student_dir or str(ROOT)
        self.results = Results()
        self.by_id: dict[str, TestResult] = {}
        self.sandbox: Sandbox | None = None
        self.sandbox_log = ""
        self.tampered: list[str] = []
        self.charged: dict[str, float] = {}  # node id -> seconds moved to (or from) that test (``move_seconds``)
        self.current = ""  # node id of the test running now
        self.progress = False  # a line per finished check (--grader-progress)
        self.total = 0

    def move_seconds(self, nodeid: str, seconds: float) -> None:
        """Counts ``seconds`` of shared work done during the running test (e.g. a session fixture's) to the
        test ``nodeid`` instead, so each check's timing shows its own work."""
        self.charged[nodeid] = self.charged.get(nodeid, 0.0) + seconds
        self.charged[self.current] = self.charged.get(self.current, 0.0) - seconds

    @pytest.fixture(scope="session")
    def student(self):
        """The sandbox running the student's code (started on the first call)."""
        readable, env = [], {}
        try:  # Omniglot, preprocessed: probes that train read it (the worker has no network to fetch it)
            import load_data

            env["OMNIGLOT_DATA_DIR"] = str(load_data.data_dir().resolve())
            cache = load_data.data_dir() / load_data.CACHE_NAME
            readable = [str(cache)] if cache.is_file() else []
        except Exception:  # noqa: BLE001 - no data: probes that need it say so
            pass
        self.sandbox = open_sandbox(self.student_dir, readable=tuple(readable), env=env)
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
        self.tampered += sandbox.tampered()
        sandbox.close()
        if sandbox.starts:
            self.results.notes.append(f"student code ran as {sandbox.notes.get('account')}; network: "
                                      f"{sandbox.notes.get('network')}")
        self.sandbox_log = sandbox.report()

    def pytest_runtest_setup(self, item):
        self.current = item.nodeid
        if budget.left() < budget.MIN_CHECK_SECONDS:
            done = sorted(((t.name, t.seconds) for t in self.results.tests), key=lambda pair: -pair[1])
            raise budget.BudgetSpent(budget.spent_message(done))
        if self.sandbox is not None:
            self.sandbox.label = title(item)  # messages of the sandbox name the check that was running

    def pytest_runtest_logfinish(self, nodeid):
        result = self.by_id.get(nodeid)
        if self.progress and result is not None:
            print(f"\n[{len(self.results.tests)}/{self.total}] {result.points:g}/{result.max_points:g} "
                  f"{result.status:<7} {result.name} ({result.seconds:.0f} s)", flush=True)

    def pytest_collection_finish(self, session):
        self.total = len(session.items)

    def pytest_terminal_summary(self, terminalreporter):
        if self.sandbox_log:
            terminalreporter.write_sep("-", "sandbox (what the student's code printed, and the limits)")
            terminalreporter.write_line(self.sandbox_log)

    def _result(self, item: pytest.Item) -> TestResult:
        if item.nodeid not in self.by_id:
            mark = item.get_closest_marker("points")
            value = float(mark.args[0]) if mark and mark.args else 0.0
            problem = item.get_closest_marker("problem")
            problem = str(problem.args[0]) if problem and problem.args else getattr(item.module, "PROBLEM", "")
            result = TestResult(item.nodeid, title(item), value, value, PASSED, problem=str(problem))
            self.by_id[item.nodeid] = result
            self.results.tests.append(result)
        return self.by_id[item.nodeid]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        result = self._result(item)
        result.seconds = round(max(result.seconds + report.duration + self.charged.pop(item.nodeid, 0.0), 0.0), 2)
        if result.status != PASSED:  # the first problem (setup, call or teardown) is the message
            return report
        if report.skipped:
            result.status, result.points = SKIPPED, 0.0
            result.message = str(call.excinfo.value) if call.excinfo else "skipped"
        elif report.failed:
            error = call.excinfo.value
            status, message = describe_failure(error)
            earned = error.fraction * result.max_points if isinstance(error, PartialCredit) else 0.0
            if isinstance(error, PartialCredit) and error.fraction == 1.0:
                status = PASSED  # a passed check with a note: passed for pytest too (its summary, -x)
                if call.when == "call":  # a passed setup would go on to run the test
                    report.outcome, report.longrepr = "passed", None
            result.status, result.points, result.message = status, earned, message
        return report

    def pytest_collectreport(self, report):
        if report.failed:
            self.results.problems.append(
                f"could not load {report.nodeid or 'the tests'}: "
                + _shorten(str(report.longrepr).strip().splitlines()[-1] if report.longrepr else "unknown error"))

    def pytest_sessionfinish(self, session):
        self.close_sandbox()  # nothing of the student's runs any more when the results are written
        if self.tampered:
            self.results.problems.append(
                f"{FLAGGED} the submission's code changed the grader's files ({', '.join(self.tampered[:5])}); "
                f"every check scores 0 and the course staff will review the submission.")
            for result in self.results.tests:
                result.points, result.status = 0.0, FAILED
                result.message = "not graded: the submission changed the grader's files"
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
