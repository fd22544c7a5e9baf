"""Grades a folder of submission zips in parallel: one results file per student and a gradebook.

    python -m instructor.grade_batch SUBMISSIONS_DIR --out grades/ --jobs 4
    python -m instructor.grade_batch SUBMISSIONS_DIR --out grades/ --bundle dist/autograder.zip --public-only

Every ``*.zip`` in SUBMISSIONS_DIR is graded exactly as Gradescope grades it:
the autograder bundle (``python -m instructor.release`` writes
``dist/autograder.zip``) is unpacked once into a private folder, each job gets
its own copy of it and runs ``python -m grader.gradescope`` on one zip (which
unpacks it with ``grader.submission`` into a temporary folder and runs the
student's code in its sandbox). Jobs run in parallel (``--jobs``).

Writes, in ``--out``:

* ``results/<zip name>.json``: the Gradescope-schema results of each student;
* ``logs/<zip name>.log``: what the grader printed (the student's output included);
* ``gradebook.csv`` (UTF-8 with BOM, so spreadsheets show Hangul names):
  name, student number, file, score (Gradescope's: extra credit included),
  max score (the assignment's total, extra credit not included), extra credit
  (the part of the score that is extra credit), points per problem, status
  (graded, rejected, error, flagged), and the reason.

One bad zip never stops the batch: a damaged zip, a wrong file name, missing
pieces, another handout version, a crash or a time-out of the grader each
give a row with score 0 and the reason. A job whose grader files changed is
flagged by the grader (``grader.runner``; score 0, status flagged), and the
next job starts from a fresh copy anyway.
Other files in the folder are listed as not graded. A progress bar shows
the work (on a terminal, with the submissions being graded); a summary table
follows at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from grader import submission as submission_format
from grader.files import ROOT
from grader.results import EXTRA_CREDIT
from instructor.course import cell
from instructor.gradescope_local import unpack_bundle
from load_data import atomic_output

DEFAULT_TIMEOUT = 2400.0  # seconds per submission: the grader plans within it (grader.budget), as on Gradescope
STATUSES = ("graded", "rejected", "flagged", "error")


@dataclass
class Row:
    """One student's line of the gradebook."""

    file: str
    name: str = ""
    student_number: str = ""
    score: float = 0.0  # Gradescope's score: extra credit included
    max_score: float = 0.0  # the assignment's total: extra credit not included
    extra_credit: float = 0.0  # the part of score that is extra credit
    problems: dict[str, float] = field(default_factory=dict)
    status: str = "error"
    reason: str = ""
    seconds: float = 0.0


def find_submissions(folder: Path) -> tuple[list[Path], list[Path]]:
    """(the zips, the other files) directly in ``folder``, sorted by name."""
    entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    zips = [p for p in entries if p.is_file() and p.suffix.lower() == ".zip"]
    return zips, [p for p in entries if p not in zips]


def _identity(path: Path) -> tuple[str, str]:
    try:
        return submission_format.parse_zip_name(path.name)
    except submission_format.SubmissionError:
        return "", ""


def row_from_results(path: Path, data: dict, seconds: float) -> Row:
    """The gradebook row of one results.json (already checked to be a dict)."""
    extra = data.get("extra_data") if isinstance(data.get("extra_data"), dict) else {}
    name, number = _identity(path)
    tests = data.get("tests") if isinstance(data.get("tests"), list) else []
    row = Row(path.name, str(extra.get("name") or name), str(extra.get("student_number") or number),
              seconds=seconds)
    row.score = float(data.get("score") or 0.0)
    # extra-credit tests have max_score 0 (grader.results.to_gradescope): the sum is the assignment's total
    row.max_score = float(sum(float(t.get("max_score") or 0.0) for t in tests if isinstance(t, dict)))
    row.problems = {str(k): float(v) for k, v in (extra.get("problems") or {}).items()}
    row.extra_credit = float(extra.get("extra_credit", row.problems.get(EXTRA_CREDIT, 0.0)) or 0.0)
    row.status = str(extra.get("status") or ("graded" if tests else "error"))
    row.reason = str(extra.get("reason") or data.get("output") or "")
    return row


def grade_one(path: Path, pristine: Path, out: Path, *, arguments: list[str], timeout: float,
              env: dict[str, str]) -> Row:
    """Grades one zip in a private copy of the unpacked bundle; never raises."""
    started = time.monotonic()
    results_path = out / "results" / f"{path.stem}.json"
    log_path = out / "logs" / f"{path.stem}.log"
    name, number = _identity(path)
    try:
        with tempfile.TemporaryDirectory(prefix="grade-job-") as tmp:
            source = Path(tmp) / "source"
            shutil.copytree(pristine, source, symlinks=False)
            command = [sys.executable, "-B", "-m", "grader.gradescope", "--submission", str(path),
                       "--results", str(results_path), *arguments]
            with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as log:
                try:
                    subprocess.run(command, cwd=source, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   timeout=timeout + 60, check=False)  # the grader itself ends by `timeout`
                except subprocess.TimeoutExpired:
                    return Row(path.name, name, number, status="error", seconds=time.monotonic() - started,
                               reason=f"grading did not finish within {timeout:g} s (see logs/{log_path.name})")
        data = json.loads(results_path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("results.json is not an object")
    except (OSError, ValueError) as error:
        return Row(path.name, name, number, status="error", seconds=time.monotonic() - started,
                   reason=f"the grader wrote no valid results ({type(error).__name__}: {error}); "
                          f"see logs/{log_path.name}")
    return row_from_results(path, data, time.monotonic() - started)


def write_gradebook(rows: list[Row], path: Path) -> list[str]:
    """Writes the CSV atomically; returns the problem columns (in the order the tests gave them)."""
    problems = list(dict.fromkeys(p for row in rows for p in row.problems))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "student_number", "file", "score", "max_score", "extra_credit", *problems, "status",
                     "reason"])
    for row in rows:
        writer.writerow([row.name, row.student_number, row.file, f"{row.score:g}", f"{row.max_score:g}",
                         f"{row.extra_credit:g}", *(f"{row.problems.get(p, 0.0):g}" for p in problems), row.status,
                         " ".join(row.reason.split())])
    with atomic_output(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8-sig")
        tmp.chmod(0o600)  # grades: the instructor's alone
    return problems


def score_text(row: Row) -> str:
    """"38.5/40 +6": the assignment's points over its total, then the extra credit (Gradescope's score holds both)."""
    if not row.max_score:
        return f"{row.score:g}"
    extra = f" +{row.extra_credit:g}" if row.extra_credit else ""
    return f"{row.score - row.extra_credit:g}/{row.max_score:g}{extra}"


def summary(rows: list[Row], seconds: float, width: int = 100) -> str:
    """The table printed at the end: every row, then counts and the score distribution."""
    lines = [f"  {'name':<24} {'student no.':<12} {'score':>14}  {'status':<8}  reason", "  " + "-" * (width - 2)]
    for row in rows:
        reason = " ".join(row.reason.split())
        room = max(width - 65, 20)
        lines.append(f"  {cell(row.name or '?', 24)} {cell(row.student_number or '?', 12)} {score_text(row):>14}  "
                     f"{row.status:<8}  {reason[:room] + ('...' if len(reason) > room else '')}")
    lines.append("  " + "-" * (width - 2))
    counts = ", ".join(f"{sum(r.status == s for r in rows)} {s}" for s in STATUSES if any(r.status == s for r in rows))
    graded = sorted(r.score - r.extra_credit for r in rows if r.status == "graded")
    spread = (f"; graded scores without extra credit: mean {sum(graded) / len(graded):.2f}, "
              f"median {graded[len(graded) // 2]:g}, min {graded[0]:g}, max {graded[-1]:g}") if graded else ""
    lines.append(f"  {len(rows)} submissions in {seconds:.0f} s: {counts}{spread}")
    return "\n".join(lines)


class Progress:
    """The bar's description names the submissions being graded, on a terminal only (quiet in a log)."""

    WIDTH = 60  # characters of names in the description

    def __init__(self, bar, interactive: bool):
        self.bar, self.interactive = bar, interactive
        self.active: dict[str, float] = {}  # name -> when its grading started
        self.lock = threading.Lock()

    def _describe(self) -> None:
        now = time.monotonic()
        names = ", ".join(f"{name} ({(now - start) / 60:.0f} min)" if now - start >= 60 else name
                          for name, start in self.active.items())
        if len(names) > self.WIDTH:
            names = names[:self.WIDTH - 3] + "..."
        self.bar.set_description(f"grading {names}" if names else "grading", refresh=True)

    @contextlib.contextmanager
    def grading(self, name: str):
        key = name
        with self.lock:
            while key in self.active:  # two zips of one student at once
                key += "'"
            self.active[key] = time.monotonic()
            if self.interactive:
                self._describe()
        try:
            yield
        finally:
            with self.lock:
                del self.active[key]
                if self.interactive:
                    self._describe()

    def tick(self) -> None:
        """Refreshes the bar (its elapsed time), as a job takes minutes between updates."""
        if self.interactive:
            with self.lock:
                self._describe()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m instructor.grade_batch", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("submissions", type=Path, help="folder holding the submission zips")
    p.add_argument("--out", type=Path, required=True, help="where results/, logs/ and gradebook.csv go")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="submissions graded at once (each uses about one core and up to the memory limit)")
    p.add_argument("--bundle", type=Path, default=ROOT / "dist" / "autograder.zip", help="the autograder bundle")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="seconds per submission, at most 2400 like Gradescope's; the grader plans its checks "
                        "within it (a check that would not fit scores 0 with that reason)")
    p.add_argument("--public-only", action="store_true", help="skip the hidden tests (a quick first pass)")
    p.add_argument("-k", dest="keyword", default=None, help="only tests matching this pytest -k expression")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # absolute: each job runs in its own copy of the bundle (cwd), where a relative path means nothing
    args.submissions, args.out, args.bundle = (path.resolve() for path in (args.submissions, args.out, args.bundle))
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a folder", file=sys.stderr)
        return 2
    if not args.bundle.is_file():
        print(f"error: no autograder bundle at {args.bundle}: run `python -m instructor.release` first "
              f"(or pass --bundle)", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    from tqdm import tqdm

    started = time.monotonic()
    zips, others = find_submissions(args.submissions)
    for sub in ("results", "logs"):  # grades and students' output: the instructor's alone
        (args.out / sub).mkdir(parents=True, exist_ok=True)
        (args.out / sub).chmod(0o700)
    arguments = (["--public-only"] if args.public_only else []) + (["-k", args.keyword] if args.keyword else [])
    arguments += ["--timeout", f"{args.timeout:g}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1"}
    if "OMNIGLOT_DATA_DIR" not in env:
        import load_data

        env["OMNIGLOT_DATA_DIR"] = str(load_data.data_dir().resolve())
    rows = [Row(p.name, *_identity(p), status="rejected",
                reason="not a zip file: a submission is the zip made by `python -m grader submit`") for p in others]
    with tempfile.TemporaryDirectory(prefix="grade-batch-") as tmp:
        unpack_bundle(args.bundle, Path(tmp))
        pristine = Path(tmp) / "source"
        print(f"Grading {len(zips)} submissions from {args.submissions} with {args.bundle} "
              f"({(pristine / 'grader' / 'VERSION').read_text().strip()}), {args.jobs} at a time ...", flush=True)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool, \
                tqdm(total=len(zips), unit="submission", desc="grading", file=sys.stderr) as bar:
            progress = Progress(bar, interactive=sys.stderr.isatty())

            def job(path: Path) -> Row:
                with progress.grading(_identity(path)[0] or path.stem):
                    return grade_one(path, pristine, args.out, arguments=arguments, timeout=args.timeout, env=env)

            pending = {pool.submit(job, path) for path in zips}
            while pending:
                done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in done:
                    row = future.result()
                    rows.append(row)
                    bar.set_postfix_str(f"{row.name or row.file[:20]}: {row.score:g} {row.status}", refresh=False)
                    bar.update()
                progress.tick()
    rows.sort(key=lambda r: (r.name.casefold(), r.student_number, r.file))
    full = max((r.max_score for r in rows), default=0.0)
    for row in rows:  # a refused submission has no tests, but the same maximum as everyone
        row.max_score = row.max_score or full
    gradebook = args.out / "gradebook.csv"
    write_gradebook(rows, gradebook)
    print()
    print(summary(rows, time.monotonic() - started, width=max(80, min(shutil.get_terminal_size((110, 24)).columns, 140))))
    print(f"\nGradebook: {gradebook}; results per student: {args.out / 'results'}; logs: {args.out / 'logs'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
