"""Late penalties for a graded class: ``python -m instructor.late grades/ --times submission_times.csv``.

    python -m instructor.late grades/ --times submission_times.csv
    python -m instructor.late grades/ --times submission_times.csv --config course-2025.toml

Reads the course's rule from ``course.toml``'s ``[late]`` section (deadline
and IANA time zone, ``points_per_hour`` per started hour, ``grace_minutes``,
``floor``, and an ``extensions`` CSV of ``student_number,new_deadline`` or
``student_number,extra_hours``), and each student's submission time from
``submission_times.csv`` (``student_number,name,submitted_at``, ISO 8601 with
the UTC offset; ``python -m instructor.lms import-moodle`` writes it from the
LMS's worksheet). Writes ``grades/lateness.csv`` atomically
(``student_number,name,submitted_at,deadline,late_minutes,hours_charged,penalty_pp,source``)
and prints a table. Students of ``grades/gradebook.csv`` with no time get a
row with penalty 0 and the source saying so, and are listed.

The arithmetic is ``grader.late`` (the same the autograder applies inside
Gradescope). This command applies nothing: the final gradebook
(``python -m instructor.gradebook``) deducts ``penalty_pp`` once, with
``grader.late.apply_penalty``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from grader import submission
from grader.late import (  # noqa: E402,F401
    LateError,
    Lateness,
    Policy,
    apply_penalty,
    duration,
    lateness,
    parse_time,
)
from instructor.course import COURSE_TOML, add_config_argument, cell

SECTION = "late"
TIMES_COLUMNS = ("student_number", "name", "submitted_at")
LATENESS_COLUMNS = ("student_number", "name", "submitted_at", "deadline", "late_minutes", "hours_charged",
                    "penalty_pp", "source")
LATENESS_FILE = "lateness.csv"
UNSET = "TBA"


class LateConfigError(LateError):
    """``[late]`` or the extensions file is missing, incomplete or malformed; the message says how to fix it."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. ``Asia/Seoul``); LateConfigError if unknown."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise LateConfigError(f"timezone = {name!r} is not an IANA time zone such as \"Asia/Seoul\" (on a system "
                              f"without time-zone data, `pip install tzdata`)") from None


def local_time(text: str, tz: ZoneInfo, what: str) -> datetime:
    """A time written as ``2026-12-05T23:59`` in ``tz`` (or with its own offset, which is kept)."""
    try:
        moment = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise LateConfigError(f"{what} = {text!r} is not a time such as \"2026-12-05T23:59\"") from None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=tz)


def read_extensions(path: Path, deadline: datetime, tz: ZoneInfo) -> tuple[tuple[str, datetime], ...]:
    """``student_number,new_deadline`` or ``student_number,extra_hours`` rows -> (number, deadline) pairs.

    Extra hours are real elapsed hours after the course's deadline.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LateConfigError(f"the extensions file {path} does not exist: create it with the header "
                              f"student_number,new_deadline (or student_number,extra_hours), or remove "
                              f"`extensions` from [late]") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    fields = set(rows[0]) if rows else set()
    if rows and ("student_number" not in fields or not fields & {"new_deadline", "extra_hours"}):
        raise LateConfigError(f"{path}: the header must be student_number,new_deadline or "
                              f"student_number,extra_hours (found {', '.join(sorted(fields))})")
    found, problems = {}, []
    for line, row in enumerate(rows, start=2):
        try:
            number = submission.normalize_student_number(row.get("student_number") or "")
            if (row.get("new_deadline") or "").strip():
                new = local_time(row["new_deadline"], tz, "new_deadline")
            else:
                new = deadline + timedelta(hours=float(row.get("extra_hours") or "x"))
            if number in found:
                raise LateConfigError(f"student {number} has two extensions")
            found[number] = new
        except (submission.SubmissionError, LateConfigError, ValueError) as error:
            problems.append(f"{path}:{line}: {error}")
    if problems:
        raise LateConfigError("; ".join(problems))
    return tuple(sorted(found.items()))


def load_policy(config: str | Path = COURSE_TOML) -> Policy | None:
    """The ``[late]`` policy of ``config``; None when it has no ``[late]`` or its deadline still says TBA.

    Raises:
        LateConfigError: a value is missing or malformed (names the key and the fix).
    """
    config = Path(config)
    try:
        table = tomllib.loads(config.read_text(encoding="utf-8")).get(SECTION)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise LateConfigError(f"{config}: {error}") from None
    if table is None or str(table.get("deadline", "")).strip().upper().startswith(UNSET):
        return None
    missing = [key for key in ("deadline", "timezone") if not str(table.get(key, "")).strip()]
    if missing:
        raise LateConfigError(f"{config}: [late] needs {' and '.join(missing)} (e.g. deadline = \"2026-12-05T23:59\", "
                              f"timezone = \"Asia/Seoul\")")
    try:
        tz = zone(table["timezone"])
        deadline = local_time(table["deadline"], tz, "deadline")
        extensions = ()
        if str(table.get("extensions", "")).strip():
            extensions = read_extensions(config.parent / table["extensions"], deadline, tz)
        return Policy(deadline=deadline, timezone=str(table["timezone"]),
                      points_per_hour=float(table.get("points_per_hour", 10)),
                      grace_minutes=float(table.get("grace_minutes", 0)), floor=float(table.get("floor", 0)),
                      extensions=extensions)
    except (LateError, TypeError, ValueError) as error:
        raise LateConfigError(f"{config}: [late]: {error}") from None


@dataclass
class Row:
    """One line of lateness.csv."""

    student_number: str
    name: str
    submitted_at: str
    deadline: str
    late_minutes: int
    hours_charged: int
    penalty_pp: float
    source: str

    def csv(self) -> list:
        return [self.student_number, self.name, self.submitted_at, self.deadline, self.late_minutes,
                self.hours_charged, f"{self.penalty_pp:g}", self.source]


def read_times(path: Path) -> list[tuple[str, str, datetime]]:
    """``submission_times.csv`` rows as (normalised student number, name, time); LateError names bad lines."""
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    except FileNotFoundError:
        raise LateError(f"{path} does not exist: write it (student_number,name,submitted_at) or make it with "
                        f"`python -m instructor.lms import-moodle`") from None
    if rows and not set(TIMES_COLUMNS) <= set(rows[0]):
        raise LateError(f"{path}: the header must be {','.join(TIMES_COLUMNS)} (found {', '.join(rows[0])})")
    times, problems, seen = [], [], set()
    for line, row in enumerate(rows, start=2):
        try:
            number = submission.normalize_student_number(row["student_number"] or "")
            if number in seen:
                raise LateError(f"student {number} appears twice")
            seen.add(number)
            times.append((number, (row["name"] or "").strip(), parse_time(row["submitted_at"] or "", "submitted_at")))
        except (submission.SubmissionError, LateError) as error:
            problems.append(f"{path}:{line}: {error}")
    if problems:
        raise LateError("; ".join(problems))
    return times


def gradebook_students(grades: Path) -> dict[str, str]:
    """Student number -> name of the rows of ``grades/gradebook.csv`` (empty when there is none)."""
    path = grades / "gradebook.csv"
    if not path.is_file():
        return {}
    found = {}
    for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))):
        try:
            found[submission.normalize_student_number(row.get("student_number") or "")] = row.get("name") or ""
        except submission.SubmissionError:
            continue  # a rejected file without a student number: nothing to charge
    return found


def compute(times: list[tuple[str, str, datetime]], policy: Policy, source: str,
            students: dict[str, str] | None = None) -> list[Row]:
    """One row per student with a time, plus one per gradebook student without one (penalty 0, said so)."""
    tz = zone(policy.timezone)
    rows = []
    for number, name, submitted in times:
        late = lateness(submitted, policy, number)
        rows.append(Row(number, name or (students or {}).get(number, ""), submitted.astimezone(tz).isoformat(),
                        late.deadline.astimezone(tz).isoformat(), late.late_minutes, late.hours_charged,
                        late.penalty_pp, source + (" (extension)" if late.source == "extension" else "")))
    timed = {row.student_number for row in rows}
    for number, name in sorted((students or {}).items()):
        if number not in timed:
            deadline, _ = policy.deadline_for(number)
            rows.append(Row(number, name, "", deadline.astimezone(tz).isoformat(), 0, 0, 0.0,
                            f"no submission time in {source}: not charged"))
    return sorted(rows, key=lambda row: row.student_number)


def write_lateness(path: Path, rows: list[Row]) -> None:
    """Writes ``lateness.csv`` atomically (UTF-8 with BOM, for spreadsheets, like gradebook.csv)."""
    from instructor.csvfiles import write_csv

    write_csv(path, LATENESS_COLUMNS, (row.csv() for row in rows))


def table(rows: list[Row], policy: Policy) -> str:
    """The summary printed at the end."""
    lines = [f"Late policy: {policy.rule()}; deadline {policy.deadline.isoformat()} ({policy.timezone}), "
             f"{len(policy.extensions)} extension(s)", "",
             f"  {'student':<12} {'name':<20} {'submitted':<26} {'late':>14} {'hours':>5} {'penalty':>8}  source"]
    for row in rows:
        late = duration(row.late_minutes) if row.late_minutes else ("-" if not row.submitted_at else "on time")
        lines.append(f"  {row.student_number:<12} {cell(row.name, 20)} {row.submitted_at[:25]:<26} {late:>14} "
                     f"{row.hours_charged:>5} {row.penalty_pp:>6g}%p  {row.source}")
    charged = [row for row in rows if row.penalty_pp]
    missing = [row for row in rows if not row.submitted_at]
    lines.append("")
    lines.append(f"  {len(rows)} students: {len(rows) - len(charged) - len(missing)} on time or within the grace, "
                 f"{len(charged)} charged, {len(missing)} without a submission time")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m instructor.late", description=__doc__.split("\n\n")[0])
    p.add_argument("grades", type=Path, help="the grades folder (grade_batch's --out); lateness.csv goes there")
    p.add_argument("--times", type=Path, required=True,
                   help="submission_times.csv: student_number,name,submitted_at (ISO 8601 with the UTC offset)")
    add_config_argument(p, "[late]")
    args = p.parse_args(argv)
    try:
        policy = load_policy(args.config)
        if policy is None:
            raise LateConfigError(
                f"{args.config}: [late] deadline is still to be announced (\"TBA\"), so no lateness can be computed "
                f"and nothing was written. Set deadline (e.g. \"2026-12-05T23:59\") and timezone in its [late], or "
                f"pass --config with a copy of it that has them. Without lateness.csv, python -m instructor.gradebook "
                f"applies no late penalty and says so.")
        rows = compute(read_times(args.times), policy, args.times.name, gradebook_students(args.grades))
    except LateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_lateness(args.grades / LATENESS_FILE, rows)
    print(table(rows, policy))
    print(f"\nwrote {args.grades / LATENESS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
