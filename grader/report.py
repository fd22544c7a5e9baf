"""Test results with points, and the table ``python -m grader`` prints.

One ``TestResult`` per graded test. The pytest plugin (``grader.plugin``)
writes them as JSON in the child process; the parent (``grader.runner``) reads
them back and prints ``format_table``. The JSON is the contract between the
two processes, so the parent never has to trust anything else the child did.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Outcome of one test, as the table shows it.
PASSED = "passed"
FAILED = "failed"  # ran, but a result is wrong
ERROR = "error"  # the student's code raised (or could not be imported)
TODO = "todo"  # the student's code raised NotImplementedError: a TODO is not done yet
SKIPPED = "skipped"
STATUSES = (PASSED, FAILED, ERROR, TODO, SKIPPED)


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


@dataclass
class Results:
    """Everything one grader run found."""

    tests: list[TestResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # e.g. a test file that could not be loaded
    version: str = ""
    notes: list[str] = field(default_factory=list)  # how the run went, e.g. what the sandbox achieved

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)

    @property
    def max_points(self) -> float:
        return sum(t.max_points for t in self.tests)

    @property
    def all_passed(self) -> bool:
        return not self.problems and all(t.status == PASSED for t in self.tests)

    def to_json(self) -> str:
        return json.dumps({"version": self.version, "tests": [asdict(t) for t in self.tests],
                           "problems": self.problems, "notes": self.notes}, indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Results":
        data = json.loads(text)
        return cls([TestResult(**t) for t in data["tests"]], list(data["problems"]), data["version"],
                   list(data.get("notes", [])))

    def write(self, path: str | os.PathLike) -> None:
        """Writes the JSON atomically (a reader never sees half a file)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_text(self.to_json(), encoding="utf-8")
        os.replace(tmp, path)


def _number(value: float) -> str:
    return f"{value:g}"


def format_table(results: Results, width: int | None = None) -> str:
    """The summary table: one row per test, its message wrapped below it, then totals."""
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
    total = f"{_number(results.points)}/{_number(results.max_points)}"
    counts = {status: sum(t.status == status for t in results.tests) for status in STATUSES}
    lines.append(f"  {total:>7}  {'total':<7}  " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for problem in results.problems:
        lines.append(f"  PROBLEM: {problem}")
    return "\n".join(lines)


def to_gradescope(results: Results, output: str = "") -> dict:
    """``results`` in Gradescope's ``results.json`` schema (score, tests[], output)."""
    summary = "\n".join(filter(None, [output, *(f"PROBLEM: {p}" for p in results.problems)]))
    return {
        "score": results.points,
        "output": summary,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [{"name": t.name, "score": t.points, "max_score": t.max_points,
                   "status": "passed" if t.status == PASSED else "failed",
                   "output": t.message, "visibility": "visible", **({"tags": [t.problem]} if t.problem else {})}
                  for t in results.tests],
    }
