"""Runs graded tests in a child process and reads back their results.

The tests run in a separate ``python -m pytest`` process with the grader's
plugin, which runs the student's code in a sandboxed worker of its own
(``grader.sandbox``); this process only reads the JSON results file the plugin
writes into a private temporary folder. Whatever happens (an import error, an
exception, a crash of TensorFlow, ``sys.exit``), the parent gets a
``Results``: if the results file is missing the run is reported as a problem
with the end of the child's output.

Tampering is checked here, and only here: the grader's own files
(``WATCHED``: ``grader/``, the hidden tests, the provided modules such as
``load_data.py``, ``grader.sandbox.SCAFFOLD_FILES``) before the child
starts and after it ended, and the copies in the student's worker folder,
which the child reports (``Results.changed_files``). If either changed, the run
is flagged (``Results.flag``): every test scores 0 for the course staff to review.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from grader.compare import TWINS_ENV
from grader.files import ROOT, file_digests
from grader.results import Results
from grader.sandbox import SCAFFOLD_FILES

PUBLIC_TESTS = ROOT / "grader" / "tests"
HIDDEN_TESTS = ROOT / "instructor" / "autograder"  # in the bundle's source/, as in the instructor's tree
INI = ROOT / "grader" / "pytest.ini"
WATCHED = ("grader", HIDDEN_TESTS.relative_to(ROOT).as_posix(), *SCAFFOLD_FILES)  # must not change while grading
FLAGGED = "flagged for review:"  # starts the problem of a flagged run
DEFAULT_TIMEOUT = 1800  # seconds for the whole run; each test has its own limit (pytest.ini)
OUTPUT_TAIL_LINES = 30


def pytest_command(tests: Path | list[Path], results_path: Path, extra: list[str]) -> list[str]:
    paths = [str(t) for t in (tests if isinstance(tests, (list, tuple)) else [tests])]
    return [sys.executable, "-m", "pytest", *paths, "-p", "grader.plugin", "-c", str(INI),
            "--rootdir", str(ROOT), "--grader-json", str(results_path), *extra]


def _run_streamed(command: list[str], *, env: dict, timeout: float) -> tuple[str, int | None]:
    """Runs ``command``, echoing its output line by line as it comes; (the output, exit code or None on timeout)."""
    import threading

    child = subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, errors="replace")
    lines: list[str] = []

    def pump():
        for line in child.stdout:
            lines.append(line)
            sys.stdout.write(line)
            sys.stdout.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        code = None
    reader.join(timeout=5)
    return "".join(lines), code


def run_tests(tests: Path | list[Path] = PUBLIC_TESTS, extra: list[str] | None = None, *,
              timeout: float = DEFAULT_TIMEOUT, verbose: bool = False, student_dir: Path | None = None,
              env: dict[str, str] | None = None, stream: bool = False) -> tuple[Results, str]:
    """Runs the tests under ``tests`` against the student's code.

    Args:
        tests: a folder (or file) of graded tests, or several.
        extra: more pytest arguments, e.g. ["-k", "inner_loop"].
        timeout: seconds before the whole run is stopped.
        verbose: stream pytest's own output instead of capturing it.
        stream: capture the output and also echo it as it comes, with a line per finished check
            (the autograder's log: an instructor sees where grading is).
        student_dir: the folder holding the student's code files (default: ``ROOT``).
        env: more environment variables for the tests, e.g. the sandbox's
            limits (``GRADER_TOTAL_SECONDS``, see ``grader.sandbox.Limits``).

    Returns:
        (results, output): the results (``problems`` says when the run itself
        broke; ``flagged`` when the grader's files changed) and the child's
        captured output ("" when verbose).
    """
    before = watched_digests()
    results, output = _run_child(tests, extra, timeout=timeout, verbose=verbose, student_dir=student_dir,
                                 env=env, stream=stream)
    if results.changed_files:
        results.flag("the submission's code changed the grader's files in its folder",
                     f"{FLAGGED} the submission's code changed the grader's files "
                     f"({', '.join(results.changed_files[:5])}); every check scores 0 and the course staff will "
                     f"review the submission.", test_message="not graded: the submission changed the grader's files")
    if watched_digests() != before:
        results.flag("the grader's files changed while the tests ran",
                     f"{FLAGGED} the grader's files changed while this submission ran; it scores 0 and the course "
                     f"staff will review it.")
    return results, output


def grades_hidden(tests: Path | list[Path]) -> bool:
    """Whether ``tests`` include hidden tests, i.e. this run is the autograder's, not a student's own."""
    paths = tests if isinstance(tests, (list, tuple)) else [tests]
    return any(Path(path).resolve().is_relative_to(HIDDEN_TESTS.resolve()) for path in paths)


def watched_digests(root: Path = ROOT) -> dict[str, str]:
    """Digests of the grader's files (``WATCHED``), to see whether anything changed them."""
    return file_digests(*(root / top for top in WATCHED), root=root)


def _run_child(tests, extra, *, timeout, verbose, student_dir, env, stream) -> tuple[Results, str]:
    """``run_tests`` without the check of the grader's files."""
    env = {**os.environ, **(env or {})}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if grades_hidden(tests):  # the autograder: the public tests run on their fixtures and on the twins too
        env.setdefault(TWINS_ENV, str(HIDDEN_TESTS / "fixtures"))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    quiet = [] if verbose else ["-q", "--no-header", "-p", "no:cacheprovider"]
    with tempfile.TemporaryDirectory(prefix="grader-") as tmp:
        results_path = Path(tmp) / "results.json"
        student = ["--grader-student-dir", str(student_dir)] if student_dir else []
        progress = ["--grader-progress"] if stream else []
        command = pytest_command(tests, results_path, quiet + progress + student + list(extra or []))
        if stream and not verbose:
            output, code = _run_streamed(command, env=env, timeout=timeout)
            if code is None:
                return Results(problems=[f"the tests did not finish within {timeout:g} s and were stopped"]), output
        else:
            try:
                child = subprocess.run(command, cwd=ROOT, env=env, timeout=timeout, text=True,
                                       stdout=None if verbose else subprocess.PIPE,
                                       stderr=None if verbose else subprocess.STDOUT)
                output, code = child.stdout or "", child.returncode
            except subprocess.TimeoutExpired as expired:
                output = expired.stdout.decode(errors="replace") if isinstance(expired.stdout, bytes) else ""
                return Results(problems=[f"the tests did not finish within {timeout:g} s and were stopped"]), output
        if results_path.is_file():
            results = Results.from_json(results_path.read_text(encoding="utf-8"))
            if code not in (0, 1) and not results.problems:  # 1: some test failed; else pytest broke
                results.problems.append(f"pytest ended with exit code {code}")
            return results, output
        tail = "\n".join(output.strip().splitlines()[-OUTPUT_TAIL_LINES:])
        return Results(problems=[f"the test run crashed (exit code {code}) before writing results:\n{tail}"]), output
