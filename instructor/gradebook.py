"""The final gradebook: autograded points, report points, late penalty, similarity flags and overrides.

    python -m instructor.gradebook grades/ [--overrides overrides.csv]
    python -m instructor.gradebook override grades/ --student 2020-12345 --target "CHECK OR PROBLEM" \\
        --points 2 --reason "..." --who "TA name" [--overrides overrides.csv]

Reads, in the grades folder (``grade_batch``'s ``--out``), whichever exist:

* ``gradebook.csv`` (grade_batch): the autograded score; ``score - extra_credit``
  is the assignment's part (out of 40), ``extra_credit`` the MAML++ checks' (8);
* ``results/<zip>.json`` (grade_batch): each check's score, for overrides;
* ``report_points.csv`` (the TA's sheet, ``instructor.rubric``): the report (10 + 2 extra);
* ``lateness.csv`` (``penalty_pp``, ``late_minutes``): the late penalty, deducted here
  and only here (``late_penalty``), with ``grader.late.apply_penalty``, the
  arithmetic the autograder uses inside Gradescope: ``penalty_pp`` percentage
  points of the full marks (50) per the course rule, so 20 %p is 10 points,
  never below ``[late] floor``. The deduction comes off the student's whole
  score, extra credit included, as in Gradescope (where results.json's score
  holds the extra credit): ``final`` (/50) loses it first, ``final_extra``
  only what ``final`` could not absorb;
* ``similarity_flags.csv``: a flag column;
* the overrides file (default ``overrides.csv`` in the grades folder):
  ``student_number,target,points,reason,who,check_digest``. ``target`` is a
  check's name or a problem's name as in results.json (``tests[].name``,
  ``tests[].tags``); ``points`` replaces what the grader gave it. Overrides are
  applied after grading, so re-grading keeps them. ``check_digest`` is a
  fingerprint of that check's score and output when the override was written
  (filled by the ``override`` command, or on the first merge); when the
  check's result changes later, the merge says so and marks the student for
  review (the override is still applied).

Writes ``final_gradebook.csv`` (UTF-8 with BOM): name, student_number,
autograded (/40), report (/10), total (/50), extra_credit (/10), late_minutes,
penalty_pp, final, final_extra, similarity_flag, overrides_applied, status and
``sources`` (where every number came from). A missing input leaves its
column empty and says so in the summary, never a silent zero.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grader import submission as submission_format
from grader.late import apply_penalty
from grader.results import EXTRA_CREDIT
from instructor import late as late_module
from instructor import rubric as rubric_module
from instructor.course import add_config_argument, cell
from instructor.csvfiles import write_csv

AUTOGRADED_MAX = 40.0  # grade_batch's max_score: the autograded part of the assignment
FINAL = "final_gradebook.csv"
OVERRIDES = "overrides.csv"
OVERRIDE_COLUMNS = ("student_number", "target", "points", "reason", "who", "check_digest")
COLUMNS = ("name", "student_number", "autograded", "report", "total", "extra_credit", "late_minutes", "penalty_pp",
           "final", "final_extra", "similarity_flag", "overrides_applied", "status", "sources")


class GradebookError(ValueError):
    """An input cannot be used; the message says which, where, and how to fix it."""


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{round(value, 4):g}"


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a UTF-8 CSV (with or without BOM) as dicts; GradebookError if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise GradebookError(f"{path} is not UTF-8 ({error}): save it as 'CSV UTF-8'.") from None
    return [{k: (v or "") for k, v in row.items() if k is not None}
            for row in csv.DictReader(io.StringIO(text, newline=""))]


def _key(number: str, where: str) -> str:
    try:
        return submission_format.normalize_student_number(number)
    except submission_format.SubmissionError as error:
        raise GradebookError(f"{where}: {error}") from None


# ---------------------------------------------------------------- checks and overrides


def check_digest(results: dict, target: str) -> str | None:
    """A fingerprint of the score and output of the checks ``target`` names (None: no such check)."""
    tests = [t for t in results.get("tests") or [] if isinstance(t, dict)]
    chosen = [t for t in tests if t.get("name") == target] or [t for t in tests if target in (t.get("tags") or [])]
    if not chosen:
        return None
    text = json.dumps([[t.get("name"), t.get("score"), t.get("output")] for t in chosen], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def target_points(results: dict, target: str) -> tuple[float, float, bool]:
    """(points the grader gave, the most there are, whether extra credit) for a check or a problem."""
    tests = [t for t in results.get("tests") or [] if isinstance(t, dict)]
    by_name = [t for t in tests if t.get("name") == target]
    extra = results.get("extra_data") or {}
    if by_name:
        test = by_name[0]
        is_extra = EXTRA_CREDIT in (test.get("tags") or [])
        most = float(test.get("max_score") or 0)
        if is_extra:  # extra credit has max_score 0 in results.json: its own maximum is in the output
            most = float(extra.get("max_extra_credit") or 0)
        return float(test.get("score") or 0), most, is_extra
    chosen = [t for t in tests if target in (t.get("tags") or [])]
    if not chosen:
        names = sorted({str(t.get("name")) for t in tests} | {str(g) for t in tests for g in t.get("tags") or []})
        raise GradebookError(f"no check or problem named {target!r} in the results (there are: "
                             f"{'; '.join(names) or 'no checks'})")
    most = float((extra.get("max_problems") or {}).get(target, sum(float(t.get("max_score") or 0) for t in chosen)))
    return sum(float(t.get("score") or 0) for t in chosen), most, target == EXTRA_CREDIT


def read_overrides(path: Path) -> list[dict[str, str]]:
    rows = read_csv(path)
    if rows:
        missing = [c for c in OVERRIDE_COLUMNS[:5] if c not in rows[0]]
        if missing:
            raise GradebookError(f"{path}: the columns {', '.join(missing)} are missing: the header is "
                                 f"{','.join(OVERRIDE_COLUMNS)}.")
    return rows


def write_overrides(path: Path, rows: list[dict[str, str]]) -> None:
    write_csv(path, OVERRIDE_COLUMNS, ([row.get(c, "") for c in OVERRIDE_COLUMNS] for row in rows), bom=False)


# ---------------------------------------------------------------- the merge


@dataclass
class Student:
    name: str
    number: str
    autograded: float | None = None
    autograded_extra: float | None = None
    report: float | None = None
    report_extra: float | None = None
    late_minutes: str = ""
    penalty_pp: float | None = None
    flag: str = ""
    overrides: list[str] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @property
    def total(self) -> float | None:
        return None if self.autograded is None or self.report is None else self.autograded + self.report

    @property
    def extra(self) -> float | None:
        if self.autograded_extra is None and self.report_extra is None:
            return None
        return (self.autograded_extra or 0.0) + (self.report_extra or 0.0)



def full_marks(rubric: rubric_module.Rubric) -> float:
    """The assignment's total: the autograded part (40) and the report's ``[rubric] total`` (10)."""
    return AUTOGRADED_MAX + rubric.total


def late_penalty(total: float | None, extra: float | None, penalty_pp: float, maximum: float,
                 floor: float = 0.0) -> tuple[float | None, float | None]:
    """(final, final_extra): ``total`` and ``extra`` after a late penalty of ``penalty_pp``.

    One deduction of ``penalty_pp`` percentage points of ``maximum`` (the
    assignment's total, 50), taken by ``grader.late.apply_penalty`` from the
    whole score, extra credit included, exactly as the autograder does inside
    Gradescope with results.json's ``score``. ``final`` is ``total`` penalised;
    ``final_extra`` is what remains of the whole score beyond ``final``, so the
    extra credit loses points only when the deduction is larger than ``total``
    (above ``floor``). None while ``total`` is None (the report not graded yet:
    how much of the deduction the extra credit bears is not known), and
    ``final_extra`` None when there is no extra credit at all.
    """
    if total is None:
        return None, None
    final = apply_penalty(total, maximum, penalty_pp, floor)
    if extra is None:
        return final, None
    return final, round(apply_penalty(total + extra, maximum, penalty_pp, floor) - final, 4)


def build(grades: Path, overrides_path: Path | None, rubric: rubric_module.Rubric) -> tuple[list[Student], list[str]]:
    """Every student of any input, merged; notes for the summary. Raises GradebookError on a bad input."""
    students: dict[str, Student] = {}
    notes: list[str] = []

    def student(number: str, name: str) -> Student:
        if number not in students:
            students[number] = Student(name, number)
        elif not students[number].name:
            students[number].name = name
        return students[number]

    # autograded
    results_of: dict[str, dict] = {}
    book = grades / "gradebook.csv"
    if book.exists():
        chosen: dict[str, tuple[int, dict]] = {}
        for line, row in enumerate(read_csv(book), start=2):
            if not row.get("student_number"):
                notes.append(f"gradebook.csv row {line} ({row.get('file')}): no student number (file name not "
                             f"{submission_format.ZIP_NAME}); not in the final gradebook")
                continue
            number = _key(row["student_number"], f"gradebook.csv row {line}")
            if number in chosen:
                notes.append(f"{number}: several rows in gradebook.csv ({chosen[number][1]['file']}, {row['file']}); "
                             f"the highest score counts: review")
                student(number, row["name"]).status.append("several submissions")
                if float(row.get("score") or 0) <= float(chosen[number][1].get("score") or 0):
                    continue
            chosen[number] = (line, row)
        for number, (line, row) in chosen.items():
            s = student(number, row.get("name", ""))
            score, extra = float(row.get("score") or 0), float(row.get("extra_credit") or 0)
            s.autograded, s.autograded_extra = score - extra, extra
            s.sources.append(f"autograded: gradebook.csv row {line} ({row['file']}: score {score:g} - extra "
                             f"{extra:g}, status {row.get('status')})")
            if row.get("status") != "graded":
                s.status.append(f"autograder: {row.get('status')}")
            results_path = grades / "results" / f"{Path(row['file']).stem}.json"
            try:
                results_of[number] = json.loads(results_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass
    else:
        notes.append("no gradebook.csv: the autograded column is empty (run python -m instructor.grade_batch)")

    # report
    sheet = grades / rubric_module.SHEET
    if sheet.exists():
        try:
            rows = rubric_module.read_sheet(sheet, rubric)
        except rubric_module.RubricError as error:
            raise GradebookError(str(error)) from None
        for row in rows:
            s = student(row.student_number, row.name)
            s.report = row.report(rubric)
            s.report_extra = row.extra(rubric)
            empty = row.empty_extra(rubric)
            s.sources.append(f"report: {sheet.name} row {row.line}" + (f" ({', '.join(empty)} empty: 0)" if empty else ""))
            if s.report is None:
                s.status.append("report ungraded: " + ", ".join(row.missing(rubric)))
    else:
        notes.append(f"no {sheet.name}: the report column is empty (python -m instructor.rubric sheet ...)")

    # lateness
    lateness = grades / "lateness.csv"
    if lateness.exists():
        seen = set()
        for line, row in enumerate(read_csv(lateness), start=2):
            number = _key(row.get("student_number", ""), f"lateness.csv row {line}")
            s = student(number, row.get("name", ""))
            try:
                s.penalty_pp = float(row.get("penalty_pp") or 0)
            except ValueError:
                raise GradebookError(f"lateness.csv row {line}, column penalty_pp: {row.get('penalty_pp')!r} is "
                                     f"not a number") from None
            if not 0 <= s.penalty_pp <= 100:
                raise GradebookError(f"lateness.csv row {line}, column penalty_pp: {s.penalty_pp:g} is outside 0-100")
            s.late_minutes = row.get("late_minutes", "")
            s.sources.append(f"penalty: lateness.csv row {line} ({row.get('source') or 'no source'})")
            seen.add(number)
        for s in students.values():
            if s.number not in seen:
                s.status.append("no lateness row")
    else:
        notes.append("no lateness.csv: no late penalty applied (penalty_pp empty, final = total)")
        for s in students.values():
            s.penalty_pp = None

    # similarity
    flags = grades / "similarity_flags.csv"
    if flags.exists():
        for line, row in enumerate(read_csv(flags), start=2):
            s = student(_key(row.get("student_number", ""), f"similarity_flags.csv row {line}"), row.get("name", ""))
            s.flag = f"with {row.get('flagged_with', '?')} (score {row.get('max_score', '?')})"
            s.status.append("similarity flagged")
            s.sources.append(f"flag: similarity_flags.csv row {line}")
    else:
        notes.append("no similarity_flags.csv: the similarity_flag column is empty (python -m instructor.similarity)")

    # overrides
    if overrides_path is not None and overrides_path.exists():
        rows = read_overrides(overrides_path)
        filled = False
        for line, row in enumerate(rows, start=2):
            where = f"{overrides_path.name} row {line}"
            number = _key(row.get("student_number", ""), where)
            s = students.get(number)
            if s is None or number not in results_of:
                notes.append(f"{where}: no grading results for {number}; override not applied")
                continue
            results = results_of[number]
            target = row.get("target", "").strip()
            try:
                before, most, is_extra = target_points(results, target)
                points = float(row.get("points", ""))
            except GradebookError as error:
                raise GradebookError(f"{where} ({number}): {error}") from None
            except ValueError:
                raise GradebookError(f"{where} ({number}), column points: {row.get('points')!r} is not a number") from None
            if not 0 <= points <= most:
                raise GradebookError(f"{where} ({number}), column points: {points:g} is outside 0-{most:g}, what "
                                     f"{target!r} is worth")
            if not row.get("reason", "").strip() or not row.get("who", "").strip():
                raise GradebookError(f"{where} ({number}): an override needs a reason and who made it")
            digest = check_digest(results, target)
            if not row.get("check_digest"):
                row["check_digest"], filled = digest, True
                notes.append(f"{where}: check_digest recorded for {target!r} ({digest})")
            elif row["check_digest"] != digest:
                notes.append(f"{where}: {s.name} ({number}) {target!r}: the check's result changed since the "
                             f"override was written (digest {row['check_digest']} -> {digest}): review it")
                s.status.append(f"review override: {target} changed")
            if is_extra:
                s.autograded_extra = (s.autograded_extra or 0) - before + points
            else:
                s.autograded = (s.autograded or 0) - before + points
            s.overrides.append(f"{target}: {before:g} -> {points:g} ({row['reason'].strip()}; {row['who'].strip()})")
            s.sources.append(f"override: {overrides_path.name} row {line}")
        if filled:
            write_overrides(overrides_path, rows)
    elif overrides_path is not None:
        notes.append(f"no {overrides_path.name}: no overrides")
    if not lateness.exists():
        for s in students.values():
            s.sources.append("penalty: none (no lateness.csv)")
    return sorted(students.values(), key=lambda s: (s.name.casefold(), s.number)), notes


def final_row(s: Student, lateness_known: bool, maximum: float, floor: float = 0.0) -> list[str]:
    """The student's row of final_gradebook.csv; the late penalty by ``late_penalty`` (``maximum``: 50)."""
    penalty = (s.penalty_pp or 0.0) if lateness_known else 0.0
    final, final_extra = late_penalty(s.total, s.extra, penalty, maximum, floor)
    if s.autograded is None:
        s.status.append("not autograded")
    status = "; ".join(dict.fromkeys(s.status)) or "complete"
    return [s.name, s.number, _fmt(s.autograded), _fmt(s.report), _fmt(s.total), _fmt(s.extra), s.late_minutes,
            _fmt(s.penalty_pp), _fmt(final), _fmt(final_extra), s.flag, " | ".join(s.overrides), status,
            "; ".join(s.sources)]


def write_final(path: Path, rows: list[list[str]]) -> None:
    write_csv(path, COLUMNS, rows)


def summary(rows: list[list[str]], notes: list[str]) -> str:
    lines = [f"  {'name':<20} {'student no.':<11} {'auto':>5} {'report':>6} {'total':>6} {'extra':>5} {'pen%':>5} "
             f"{'final':>6}  status", "  " + "-" * 96]
    for r in rows:
        lines.append(f"  {cell(r[0], 20)} {r[1]:<11} {r[2]:>5} {r[3]:>6} {r[4]:>6} {r[5]:>5} {r[7]:>5} {r[8]:>6}  "
                     f"{r[12][:60]}")
    lines.append("  " + "-" * 96)
    finals = sorted(float(r[8]) for r in rows if r[8])
    spread = (f"; final: mean {sum(finals) / len(finals):.2f}, median {finals[len(finals) // 2]:g}, "
              f"min {finals[0]:g}, max {finals[-1]:g} (/50)") if finals else ""
    complete = sum(r[12] == "complete" for r in rows)
    lines.append(f"  {len(rows)} students: {complete} complete, {len(rows) - complete} to look at{spread}")
    lines += [f"  note: {n}" for n in notes]
    return "\n".join(lines)


def cmd_override(args) -> int:
    grades = args.grades
    number = _key(args.student, "--student")
    if not (grades / "gradebook.csv").is_file():
        raise GradebookError(f"{grades / 'gradebook.csv'} does not exist: an override changes a graded check, so "
                             f"grade first (python -m instructor.grade_batch SUBMISSIONS --out {grades})")
    book = {(_key(r["student_number"], "gradebook.csv")): r for r in read_csv(grades / "gradebook.csv")
            if r.get("student_number")}
    if number not in book:
        raise GradebookError(f"{number} is not in {grades / 'gradebook.csv'}")
    results = json.loads((grades / "results" / f"{Path(book[number]['file']).stem}.json").read_text(encoding="utf-8"))
    before, most, _ = target_points(results, args.target)
    if not 0 <= args.points <= most:
        raise GradebookError(f"--points {args.points:g} is outside 0-{most:g}, what {args.target!r} is worth")
    path = args.overrides or grades / OVERRIDES
    rows = read_overrides(path) if path.exists() else []
    rows.append({"student_number": number, "target": args.target, "points": f"{args.points:g}", "reason": args.reason,
                 "who": args.who, "check_digest": check_digest(results, args.target) or ""})
    write_overrides(path, rows)
    print(f"{path}: {book[number]['name']} ({number}) {args.target!r}: {before:g} -> {args.points:g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["override"]:
        p = argparse.ArgumentParser(prog="python -m instructor.gradebook override",
                                    description="record an override with the fingerprint of its check")
        p.add_argument("grades", type=Path)
        p.add_argument("--student", required=True)
        p.add_argument("--target", required=True, help="a check's name or a problem's name (results.json)")
        p.add_argument("--points", type=float, required=True, help="the points it gets instead")
        p.add_argument("--reason", required=True)
        p.add_argument("--who", required=True)
        p.add_argument("--overrides", type=Path, default=None, help="default: GRADES/overrides.csv")
        args = p.parse_args(argv[1:])
        try:
            return cmd_override(args)
        except (GradebookError, OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    p = argparse.ArgumentParser(prog="python -m instructor.gradebook", description=__doc__.split("\n\n")[0])
    p.add_argument("grades", type=Path, help="grade_batch's --out folder")
    p.add_argument("--overrides", type=Path, default=None, help="default: GRADES/overrides.csv")
    add_config_argument(p, "[rubric] and [late] (its floor)")
    args = p.parse_args(argv)
    if not args.grades.is_dir():
        print(f"error: {args.grades} is not a folder", file=sys.stderr)
        return 2
    try:
        rubric = rubric_module.load_rubric(args.config)
        students, notes = build(args.grades, args.overrides or args.grades / OVERRIDES, rubric)
    except (GradebookError, rubric_module.RubricError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    lateness_known = (args.grades / "lateness.csv").exists()
    floor = 0.0
    if lateness_known:
        try:
            policy = late_module.load_policy(args.config)
        except late_module.LateError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        if policy is None:
            notes.append(f"{args.config} has no [late] deadline: the penalty's floor is 0 points")
        else:
            floor = policy.floor
    rows = [final_row(s, lateness_known, full_marks(rubric), floor) for s in students]
    write_final(args.grades / FINAL, rows)
    print(summary(rows, notes))
    print(f"\nFinal gradebook: {args.grades / FINAL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
