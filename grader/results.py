"""Test results with points, and the table ``python -m grader`` prints.

One ``TestResult`` per graded test. The pytest plugin (``grader.plugin``)
writes them as JSON in the child process; the parent (``grader.runner``) reads
them back and prints ``format_table``. The JSON is the contract between the
two processes, so the parent never has to trust anything else the child did.
A run whose grader files changed is *flagged* (``Results.flag``): every test
scores 0 and ``flagged`` says why.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from dataclasses import asdict, dataclass, field

from load_data import atomic_output

# Outcome of one test, as the table shows it.
PASSED = "passed"
FAILED = "failed"  # ran, but a result is wrong
ERROR = "error"  # the student's code raised (or could not be imported)
TODO = "todo"  # the student's code raised NotImplementedError: a TODO is not done yet
SKIPPED = "skipped"
STATUSES = (PASSED, FAILED, ERROR, TODO, SKIPPED)

# The problem whose points are extra credit, beyond the assignment's total: the MAML++ checks
# (instructor/autograder/tests/test_mamlpp_hidden.py's PROBLEM). Gradescope gets them with max_score 0,
# so a student sees X/40 and the extra points on top; the table and the gradebook show them apart.
EXTRA_CREDIT = "Extra credit: MAML++"


@dataclass
class TestResult:
    """One graded test.

    Attributes:
        id: pytest node id, e.g. "grader/tests/test_maml.py::test_inner_loop_outputs".
        name: one line saying what is checked (the test's docstring summary).
        max_points: what the test is worth.
        points: what it earned (all or nothing here: max_points when passed).
        status: one of STATUSES.
        message: what went wrong and what to do about it ("" when passed).
        problem: the part of the assignment it belongs to, e.g. "FO-MAML implementation"
            (the test module's ``PROBLEM``, or a ``problem`` mark); the gradebook adds points per problem.
            ``EXTRA_CREDIT``'s points are extra credit.
    """

    __test__ = False  # not a pytest test class

    id: str
    name: str
    max_points: float
    points: float = 0.0
    status: str = PASSED
    message: str = ""
    problem: str = ""
    seconds: float = 0.0  # wall time of the test (setup, call and teardown)

    @property
    def extra_credit(self) -> bool:
        """Whether the test's points are extra credit (beyond the assignment's total)."""
        return self.problem == EXTRA_CREDIT


@dataclass
class Results:
    """Everything one grader run found."""

    tests: list[TestResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # e.g. a test file that could not be loaded
    version: str = ""
    notes: list[str] = field(default_factory=list)  # how the run went, e.g. what the sandbox achieved
    flagged: list[str] = field(default_factory=list)  # why the run scores 0 for review (``flag``); empty: not flagged
    changed_files: list[str] = field(default_factory=list)  # grader files the student's process changed in its
    # folder (``grader.sandbox.Sandbox.tampered``), for ``grader.runner`` to flag

    @property
    def points(self) -> float:
        """Every point earned, extra credit included (Gradescope's score)."""
        return sum(t.points for t in self.tests)

    @property
    def max_points(self) -> float:
        """What every test is worth, extra credit included."""
        return sum(t.max_points for t in self.tests)

    @property
    def base_points(self) -> float:
        """The points earned on the assignment itself (extra credit not included)."""
        return sum(t.points for t in self.tests if not t.extra_credit)

    @property
    def base_max_points(self) -> float:
        """The assignment's total (extra credit not included)."""
        return sum(t.max_points for t in self.tests if not t.extra_credit)

    @property
    def extra_points(self) -> float:
        """The extra-credit points earned."""
        return sum(t.points for t in self.tests if t.extra_credit)

    @property
    def extra_max_points(self) -> float:
        """The extra-credit points there are (0 when no extra-credit test ran)."""
        return sum(t.max_points for t in self.tests if t.extra_credit)

    @property
    def all_passed(self) -> bool:
        return not self.problems and all(t.status == PASSED for t in self.tests)

    def flag(self, reason: str, problem: str, test_message: str | None = None) -> None:
        """Flags the run for review: every test scores 0 (status failed), ``problem`` says why.

        Args:
            reason: what happened, for ``flagged`` (e.g. "the grader's files changed").
            problem: the sentence added to ``problems`` (the table, Gradescope's output, the gradebook's reason).
            test_message: replaces every test's message (None: the messages stay).
        """
        self.flagged.append(reason)
        self.problems.append(problem)
        for test in self.tests:
            test.points, test.status = 0.0, FAILED
            if test_message is not None:
                test.message = test_message

    def to_json(self) -> str:
        return json.dumps({"version": self.version, "tests": [asdict(t) for t in self.tests],
                           "problems": self.problems, "notes": self.notes, "flagged": self.flagged,
                           "changed_files": self.changed_files}, indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Results":
        data = json.loads(text)
        return cls([TestResult(**t) for t in data["tests"]], list(data["problems"]), data["version"],
                   list(data.get("notes", [])), list(data.get("flagged", [])), list(data.get("changed_files", [])))

    def write(self, path: str | os.PathLike) -> None:
        """Writes the JSON atomically (a reader never sees half a file)."""
        with atomic_output(path) as tmp:
            tmp.write_text(self.to_json(), encoding="utf-8")


def _number(value: float) -> str:
    return f"{value:g}"


def format_table(results: Results, width: int | None = None) -> str:
    """The summary table: one row per test, its message wrapped below it, then totals.

    The total is the assignment's ("x/40"); extra-credit tests, when any ran, add a
    line of their own ("extra credit: y/8").
    """
    width = width or max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
    rule = f"  {'-' * 7}  {'-' * 7}  {'-' * (width - 20)}"
    lines = [f"  {'points':>7}  {'result':<7}  test", rule]
    for test in results.tests:
        score = f"{_number(test.points)}/{_number(test.max_points)}"
        lines.append(f"  {score:>7}  {test.status.upper():<7}  {test.name}")
        for paragraph in test.message.splitlines():
            lines.extend(textwrap.wrap(paragraph, width=width, initial_indent=" " * 20,
                                       subsequent_indent=" " * 22) or [""])
    lines.append(rule)
    total = f"{_number(results.base_points)}/{_number(results.base_max_points)}"
    counts = {status: sum(t.status == status for t in results.tests) for status in STATUSES}
    lines.append(f"  {total:>7}  {'total':<7}  " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if any(t.extra_credit for t in results.tests):
        extra = f"{_number(results.extra_points)}/{_number(results.extra_max_points)}"
        lines.append(f"  {extra:>7}  {'extra':<7}  extra credit: {extra}, on top of the total")
    for problem in results.problems:
        lines.append(f"  PROBLEM: {problem}")
    return "\n".join(lines)


def _gradescope_test(test: TestResult) -> dict:
    message = test.message
    if test.extra_credit:  # max_score 0: Gradescope counts the score beyond the assignment's total
        message = "\n".join(filter(None, [f"Extra credit: {_number(test.points)} of up to "
                                           f"{_number(test.max_points)} extra points.", message]))
    return {"name": test.name, "score": test.points, "max_score": 0.0 if test.extra_credit else test.max_points,
            "status": "passed" if test.status == PASSED else "failed",
            "output": message, "visibility": "visible", **({"tags": [test.problem]} if test.problem else {})}


def to_gradescope(results: Results, output: str = "") -> dict:
    """``results`` in Gradescope's ``results.json`` schema (score, tests[], output).

    ``score`` is every point earned; extra-credit tests (``EXTRA_CREDIT``) keep
    their score but have ``max_score`` 0, so the tests' maximum is the
    assignment's total and Gradescope shows the extra points on top of it.
    """
    summary = "\n".join(filter(None, [output, *(f"PROBLEM: {p}" for p in results.problems)]))
    return {
        "score": results.points,
        "output": summary,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [_gradescope_test(t) for t in results.tests],
    }
