"""Grades one submission: ``python -m grader.gradescope`` (the bundle's run_autograder, and each batch job).

    python -m grader.gradescope --submission /autograder/submission --results /autograder/results/results.json
    python -m grader.gradescope --submission Kim_2020-12345_Assignment2.zip --results Kim.json

Steps:

1. Read the submission with ``grader.submission`` (its one definition): a zip
   (``read_submission``), a folder holding one (Gradescope keeps an uploaded
   zip as is when asked), a folder with ``SUBMISSION.json`` (Gradescope unpacks
   uploaded zips: ``check_folder``), or bare code files (an upload of
   ``maml.py`` and ``maml_transfer.py``: only the code is graded, with a note).
   A submission the reader refuses (damaged zip, wrong name, missing pieces,
   another handout version) scores 0 with every reason.
2. Run the public tests (``grader/tests``) and, when this copy holds them, the
   hidden tests (``grader.runner.HIDDEN_TESTS``), with the student's code in the sandbox
   (``grader.sandbox``; limits from ``GRADER_*`` variables), within the time
   budget of the platform's timeout (``--timeout``, ``grader.budget``): a check
   that would not fit scores 0 with that reason, and results.json is written
   before the platform would stop the autograder.
3. A run whose grader files changed is flagged by ``grader.runner`` (the one
   check of tampering): the submission scores 0 and its status is "flagged".
4. Write ``results.json`` in Gradescope's schema (``score``, ``execution_time``,
   ``output``, ``tests[]`` with ``name``, ``score``, ``max_score``, ``status``,
   ``output``, ``tags``, ``visibility``; ``extra_data`` with the student's name
   and number, ``status`` graded/rejected/flagged/error and ``reason``), atomically.
   Inside Gradescope (``$AUTOGRADER_ROOT/submission_metadata.json`` beside
   the submission folder) the late penalty is applied once (``grader.late``).

A valid results file exists whatever happens: a provisional one (score 0,
"did not finish") is written first and replaced at the end, and any error of
the grader itself becomes a score-0 file with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader import budget, late, runner, version
from grader import submission as submission_format
from grader.files import ROOT
from grader.results import PASSED, Results, to_gradescope
from grader.sandbox import STUDENT_FILES, Limits
from load_data import atomic_output

HIDDEN_VISIBILITY_ENV = "GRADER_HIDDEN_VISIBILITY"  # Gradescope visibility of hidden tests' results
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")  # Gradescope's
DEFAULT_HIDDEN_VISIBILITY = "after_due_date"  # hidden tests' results are shown once the due date has passed
MARGIN_SECONDS = 120  # for the test process beyond the sandbox's total limit
TIMEOUT_ENV = "GRADER_PLATFORM_TIMEOUT"  # the platform's timeout, when --timeout is not given


@dataclass
class Identity:
    """Who submitted, as far as the submission says."""

    name: str = ""
    student_number: str = ""
    version: str = ""
    notes: list[str] = field(default_factory=list)


class Rejected(Exception):
    """The submission cannot be graded; ``problems`` say why."""

    def __init__(self, problems: list[str], identity: Identity | None = None):
        super().__init__("\n".join(problems))
        self.problems = problems
        self.identity = identity or Identity()


def hidden_tests() -> list[Path]:
    """The hidden test folder, when this copy holds one with tests in it."""
    hidden = runner.HIDDEN_TESTS
    return [hidden] if hidden.is_dir() and any(hidden.rglob("test_*.py")) else []


def _shallowest(folder: Path, pattern: str) -> list[Path]:
    found = [p for p in folder.rglob(pattern) if p.is_file() and "__MACOSX" not in p.parts]
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


def _identity_from_manifest(path: Path) -> Identity:
    """Who the manifest says submitted (for the gradebook row of a submission that is refused)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return Identity(str(manifest.get("name", ""))[:100], str(manifest.get("student_number", ""))[:40],
                        str(manifest.get("version", ""))[:100])
    except (OSError, ValueError, AttributeError):
        return Identity()


def load_submission(path: Path, staging: Path) -> tuple[Path, Identity]:
    """The folder holding the student's code files, and who submitted.

    Args:
        path: a submission zip, or a folder (Gradescope's /autograder/submission).
        staging: an empty private folder to unpack into.

    Raises:
        Rejected: the reasons the submission cannot be graded.
    """

    def read_zip(zip_path: Path) -> tuple[Path, Identity]:
        try:
            found = submission_format.read_submission(zip_path, staging / "submission")
        except submission_format.SubmissionError as error:  # who submitted, when the file name said so
            raise Rejected(error.problems, Identity(*(error.file_name or ("", "")))) from None
        return found.root, Identity(found.name, found.student_number, found.version)

    if path.is_file():
        return read_zip(path)
    if not path.is_dir():
        raise Rejected([f"{path} does not exist"])
    if (path / submission_format.MANIFEST).is_file():
        try:
            found = submission_format.check_folder(path)
        except submission_format.SubmissionError as error:
            raise Rejected(error.problems, _identity_from_manifest(path / submission_format.MANIFEST)) from None
        return found.root, Identity(found.name, found.student_number, found.version)
    zips = _shallowest(path, "*.zip")
    if zips and not _shallowest(path, "maml.py"):
        if len(zips) > 1:
            raise Rejected([f"the upload holds {len(zips)} zip files ({', '.join(p.name for p in zips[:4])}): "
                            f"submit exactly one, made with `python -m grader submit`."])
        return read_zip(zips[0])
    return _bare_files(path, staging)


def _bare_files(path: Path, staging: Path) -> tuple[Path, Identity]:
    """An upload of code files without a manifest: the code is graded, the rest cannot be."""
    stamp = next((p for p in _shallowest(path, "VERSION") if p.parent.name == "grader"), None)
    identity = Identity()
    if stamp is not None:
        identity.version = stamp.read_text(encoding="utf-8", errors="replace").strip()
        try:
            version.check(identity.version)
        except version.VersionMismatch as error:
            raise Rejected([str(error)], identity) from None
    found = {name: _shallowest(path, name)[:1] for name in STUDENT_FILES}
    too_large = submission_format.size_problems({name: p[0].stat().st_size for name, p in found.items() if p})
    if too_large:
        raise Rejected(too_large, identity)
    code = staging / "code"
    code.mkdir()
    missing = []
    for name, paths in found.items():
        if paths:
            shutil.copyfile(paths[0], code / name)
        else:
            missing.append(name)
    if len(missing) == len(STUDENT_FILES):
        raise Rejected([f"{missing[0]} is not in the submission, nor {', '.join(missing[1:])}: upload the zip "
                        f"made by `python -m grader submit`."], identity)
    identity.notes.append("No SUBMISSION.json: only the code was graded (upload the zip made by `python -m "
                          "grader submit` to have the trained runs and the report graded too)."
                          + (f" Missing: {', '.join(missing)}." if missing else ""))
    return code, identity


def _results_json(results: Results, output: str, status: str, reason: str, identity: Identity,
                  started: float) -> dict:
    """Gradescope's results.json for ``results``.

    Hidden tests get the visibility ``GRADER_HIDDEN_VISIBILITY`` names (default
    ``after_due_date``: students see them once the due date has passed; a
    course that shows them at once sets ``visible``); a value Gradescope does
    not know falls back to the default, with a note in the instructor's log
    (``extra_data["notes"]``). Extra-credit tests have ``max_score`` 0
    (``grader.results.to_gradescope``): the tests add up to the assignment's
    total, and ``extra_data`` says how much of ``score`` is extra credit.
    """
    data = to_gradescope(results, output)
    notes = list(results.notes)
    hidden_visibility = os.environ.get(HIDDEN_VISIBILITY_ENV, "").strip() or DEFAULT_HIDDEN_VISIBILITY
    if hidden_visibility not in VISIBILITIES:
        notes.append(f"{HIDDEN_VISIBILITY_ENV}={hidden_visibility!r} is not a Gradescope visibility "
                     f"({', '.join(VISIBILITIES)}): hidden tests are {DEFAULT_HIDDEN_VISIBILITY}.")
        print(f"note: {notes[-1]}", file=sys.stderr)  # the instructor's log
        hidden_visibility = DEFAULT_HIDDEN_VISIBILITY
    hidden_prefix = runner.HIDDEN_TESTS.relative_to(ROOT).as_posix() + "/"
    for test, entry in zip(results.tests, data["tests"]):
        if test.id.startswith(hidden_prefix):
            entry["visibility"] = hidden_visibility
    data["execution_time"] = round(time.monotonic() - started, 1)
    data["extra_data"] = {
        "name": identity.name, "student_number": identity.student_number, "version": identity.version,
        "status": status, "reason": reason, "graded_with": version.current(),
        "max_score": results.base_max_points,  # the assignment's total; score may go beyond it
        "extra_credit": results.extra_points, "max_extra_credit": results.extra_max_points,
        "problems": {problem or "other": sum(t.points for t in results.tests if t.problem == problem)
                     for problem in dict.fromkeys(t.problem for t in results.tests)},
        "max_problems": {problem or "other": sum(t.max_points for t in results.tests if t.problem == problem)
                         for problem in dict.fromkeys(t.problem for t in results.tests)},
        "notes": notes,
        "seconds": {t.name: t.seconds for t in results.tests},  # where the grading time went
    }
    return data


def _reason(results: Results) -> str:
    """One line saying why points were lost (the first failing test), for the gradebook."""
    if results.problems:
        return results.problems[0].splitlines()[0]
    failing = [t for t in results.tests if t.status != PASSED or t.points < t.max_points]
    if not failing:
        return "all tests passed"
    first = failing[0]
    message = first.message.splitlines()[0] if first.message else first.status
    return f"{len(failing)} test(s) lost points; first: {first.name}: {message}"


def grade(submission: Path, *, extra: list[str] | None = None, limits: Limits | None = None,
          public_only: bool = False, started: float | None = None) -> dict:
    """Gradescope results for a submission zip or folder (see the module docstring)."""
    started = time.monotonic() if started is None else started
    limits = limits or Limits.from_env()
    with tempfile.TemporaryDirectory(prefix="grader-submission-") as tmp:
        try:
            code, identity = load_submission(Path(submission), Path(tmp))
        except Rejected as rejected:
            reason = "not graded: " + " ".join(rejected.problems)
            text = "Not graded:\n" + "\n".join(f"- {p}" for p in rejected.problems)
            return _results_json(Results(), text, "rejected", reason, rejected.identity, started)
        env = {f"GRADER_{k.upper()}": str(v) for k, v in vars(limits).items()}
        env["GRADER_ISOLATION"] = "process"  # never the in-process stand-in (grader.sandbox.open_sandbox)
        tests = [runner.PUBLIC_TESTS, *([] if public_only else hidden_tests())]
        timeout = min(limits.total_seconds + MARGIN_SECONDS, budget.left() + budget.RESERVE_SECONDS / 2)
        # the output goes to the instructor's log as it comes (Gradescope shows stdout to instructors only)
        results, output = runner.run_tests(tests, extra, student_dir=code, timeout=timeout, env=env, stream=True)
    notes = "\n".join(identity.notes)
    # a problem is the grader's (tests not loaded, a worker refused to start): an error, not a score
    status = "flagged" if results.flagged else "error" if results.problems else "graded"
    data = _results_json(results, notes, status, _reason(results), identity, started)
    # inside Gradescope only (its submission_metadata.json): batch grading records lateness.csv instead
    return late.apply_to_results(data, Path(submission), identity.student_number)


def failure_results(message: str, started: float | None = None) -> dict:
    """A valid score-0 results file saying why grading did not happen."""
    return {"score": 0.0, "output": message, "visibility": "visible", "stdout_visibility": "hidden",
            "execution_time": round(time.monotonic() - started, 1) if started else 0.0, "tests": [],
            "extra_data": {"status": "error", "reason": message}}


def write_results(path: Path, data: dict) -> None:
    """Writes the results atomically (a reader sees the old file or the new one, never half)."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.chmod(0o600)  # the grader's alone: no other user (a student's process included) reads a grade


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    p = argparse.ArgumentParser(prog="python -m grader.gradescope", description=__doc__.split("\n\n")[0])
    p.add_argument("--submission", type=Path, default=Path("/autograder/submission"),
                   help="the submission: a zip, or a folder (Gradescope's)")
    p.add_argument("--results", type=Path, default=Path("/autograder/results/results.json"))
    p.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")
    p.add_argument("--public-only", action="store_true", help="skip the hidden tests (quick checks of the grader)")
    p.add_argument("--timeout", type=float, default=float(os.environ.get(TIMEOUT_ENV, budget.DEFAULT_TIMEOUT)),
                   help=f"the platform's timeout in seconds, which grading plans within (default ${TIMEOUT_ENV} or "
                        f"{budget.DEFAULT_TIMEOUT:g}, Gradescope's default; at most {budget.MAX_TIMEOUT:g})")
    args = p.parse_args(argv)
    write_results(args.results, failure_results(
        "The autograder did not finish (it was stopped, probably by the platform's time limit); "
        "please tell the course staff.", started))
    try:
        budget.start(args.timeout, time.time() - (time.monotonic() - started))
    except ValueError as error:
        write_results(args.results, failure_results(f"The autograder is set up wrongly ({error}); please tell the "
                                                    f"course staff.", started))
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        results = grade(args.submission, extra=["-k", args.keyword] if args.keyword else None,
                        public_only=args.public_only, started=started)
    except Exception as error:  # noqa: BLE001 - the last-ditch results file below
        results = failure_results(f"The autograder failed ({type(error).__name__}: {error}); please tell "
                                  f"the course staff.", started)
    write_results(args.results, results)
    extra = results.get("extra_data", {})
    print(f"score {results['score']:g}: {extra.get('status')}: {extra.get('reason')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
