"""Final grades back to the LMS: Moodle's grading worksheet, or a Canvas gradebook CSV.

    python -m instructor.lms_export export-moodle grades/final_gradebook.csv --worksheet grading_worksheet.csv \\
        --out upload.csv
    python -m instructor.lms_export export-canvas grades/final_gradebook.csv --assignment "Assignment 2 (1234)" \\
        [--roster canvas_gradebook_export.csv] --out canvas_upload.csv

Moodle: the grading worksheet is the CSV Moodle's assignment exports ("Download
grading worksheet"; columns Identifier, Full name, [ID number,] Email address,
Status, Grade, Maximum Grade, ..., Feedback comments). ``export-moodle``
fills its ``Grade`` (the final, penalised grade, scaled to the worksheet's
Maximum Grade) and ``Feedback comments`` (how the grade was made) and keeps
every other byte as it was: other columns, rows, quoting, line endings, BOM.
Students are matched by student number: the worksheet's ``ID number``
column when Moodle shows it, else an email address holding the number
(``2020-12345@...`` or ``202012345@...``), else the full name (NFC, case and
spaces ignored; only when one student has it). A gradebook student without a
worksheet row, a row without a student, or a student with no final grade is
printed, never dropped silently; their Grade is left as it was.

Canvas: a gradebook import CSV: ``Student, ID, SIS User ID, SIS Login ID,
Section`` then one column named as the assignment in Canvas ("Assignment 2
(1234)", its id in brackets), and a ``Points Possible`` row. With
``--roster`` (Canvas's own gradebook export) the Canvas ids and sections are
copied from it, students matched by SIS User ID / SIS Login ID / name as above;
without it, SIS User ID is the student number.

(Part 1 of issue 14 plans ``instructor/lms.py`` for Moodle's import; this
module can move into it.)
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import submission as submission_format  # noqa: E402
from load_data import atomic_output  # noqa: E402

TOTAL = 50.0  # the assignment's total (autograded 40 + report 10)
GRADE, MAX_GRADE, FEEDBACK = "Grade", "Maximum Grade", "Feedback comments"
ID_NUMBER, EMAIL, FULL_NAME = "ID number", "Email address", "Full name"
CANVAS_FIXED = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")


class ExportError(ValueError):
    """An input cannot be used; the message says what to do."""


def _name_key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def _number_in(text: str) -> str | None:
    """A student number found in ``text`` (an ID number, an email's local part), normalised."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    local = text.split("@")[0]
    for candidate in (text, local):
        try:
            return submission_format.normalize_student_number(candidate)
        except submission_format.SubmissionError:
            pass
    digits = re.sub(r"\D", "", local)
    if len(digits) == 9:  # 202012345: the pattern without its hyphen
        try:
            return submission_format.normalize_student_number(f"{digits[:4]}-{digits[4:]}")
        except submission_format.SubmissionError:
            return None
    return None


def read_final(path: Path) -> dict[str, dict[str, str]]:
    """final_gradebook.csv by student number."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ExportError(f"cannot read {path}: {error}; write it with `python -m instructor.gradebook grades/`") from None
    return {row["student_number"]: row for row in csv.DictReader(io.StringIO(text, newline=""))}


# ---------------------------------------------------------------- CSV records with their raw bytes


def split_records(text: str) -> list[list[str]]:
    """The CSV as records of raw field texts (quotes kept), so untouched fields are written back as they were.

    Each record's last element is its line ending ("" for the last record without one).
    """
    records, fields, start, i, quoted = [], [], 0, 0, False
    n = len(text)
    while i < n:
        c = text[i]
        if quoted:
            if c == '"':
                if i + 1 < n and text[i + 1] == '"':
                    i += 1
                else:
                    quoted = False
        elif c == '"':
            quoted = True
        elif c == ",":
            fields.append(text[start:i])
            start = i + 1
        elif c in "\r\n":
            end = i + 2 if text.startswith("\r\n", i) else i + 1
            fields.append(text[start:i])
            records.append([*fields, text[i:end]])
            fields, start, i = [], end, end
            continue
        i += 1
    if start < n or fields:
        fields.append(text[start:])
        records.append([*fields, ""])
    return records


def value_of(raw: str) -> str:
    """A raw field's value."""
    return next(csv.reader([raw]))[0] if raw else ""


def raw_of(value: str) -> str:
    """A value as Moodle writes it (PHP's fputcsv: quoted when it holds a comma, quote or white space)."""
    if re.search(r'[,"\s]', value):
        return '"' + value.replace('"', '""') + '"'
    return value


def match_rows(rows: list[dict[str, str]], final: dict[str, dict[str, str]], id_column: str | None,
               email_column: str | None, name_column: str) -> tuple[dict[int, str], list[str]]:
    """Row index -> student number, and notes on how the less certain matches were made."""
    by_name: dict[str, list[str]] = {}
    for number, row in final.items():
        by_name.setdefault(_name_key(row.get("name", "")), []).append(number)
    matched, notes = {}, []
    for index, row in enumerate(rows):
        number = None
        for column in (id_column, email_column):
            if column and not number:
                found = _number_in(row.get(column, ""))
                number = found if found in final else None
        if not number:
            candidates = by_name.get(_name_key(row.get(name_column, "")), [])
            if len(candidates) == 1:
                number = candidates[0]
                notes.append(f"{row.get(name_column)}: matched by full name to {number}")
            elif len(candidates) > 1:
                notes.append(f"{row.get(name_column)}: {len(candidates)} students have this name "
                             f"({', '.join(candidates)}); add the ID number column to the worksheet")
        if number:
            if number in matched.values():
                notes.append(f"{number}: matched by two worksheet rows; only the first is filled")
                continue
            matched[index] = number
    return matched, notes


def feedback(row: dict[str, str]) -> str:
    """The Feedback comments: how the grade was made, in one line."""
    parts = [f"Autograded {row.get('autograded') or '?'}/40, report {row.get('report') or '?'}/10, "
             f"total {row.get('total') or '?'}/50"]
    if row.get("extra_credit"):
        parts.append(f"extra credit {row['extra_credit']}/10")
    if row.get("penalty_pp") and float(row["penalty_pp"]) > 0:
        parts.append(f"{row.get('late_minutes') or '?'} min late: -{row['penalty_pp']} %p")
    parts.append(f"final {row.get('final') or '?'}/50" + (f" + {row['final_extra']} extra" if row.get("final_extra") else ""))
    if row.get("overrides_applied"):
        parts.append(f"regraded: {row['overrides_applied']}")
    return "; ".join(parts) + "."


def export_moodle(final_path: Path, worksheet: Path, out: Path, *, with_extra: bool = False) -> dict:
    """Writes ``out``: the worksheet with Grade and Feedback comments filled; returns what happened."""
    final = read_final(final_path)
    data = worksheet.read_bytes()
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data[3 if bom else 0:].decode("utf-8")
    except UnicodeDecodeError as error:
        raise ExportError(f"{worksheet} is not UTF-8 ({error}): use the CSV Moodle exported, unedited.") from None
    records = split_records(text)
    if not records:
        raise ExportError(f"{worksheet} is empty")
    header = [value_of(f) for f in records[0][:-1]]
    for column in (GRADE, FEEDBACK, FULL_NAME):
        if column not in header:
            raise ExportError(f"{worksheet} has no {column!r} column (found {', '.join(header)}): export the "
                              f"grading worksheet from the assignment again (View all submissions > Download "
                              f"grading worksheet) with offline grading worksheets and feedback comments enabled.")
    body = [r for r in records[1:] if any(f.strip() for f in r[:-1])]
    rows = [dict(zip(header, map(value_of, r[:-1]))) for r in body]
    matched, notes = match_rows(rows, final, ID_NUMBER if ID_NUMBER in header else None,
                                EMAIL if EMAIL in header else None, FULL_NAME)
    g, fb = header.index(GRADE), header.index(FEEDBACK)
    filled, no_grade = 0, []
    index_of = {id(r): i for i, r in enumerate(body)}
    for record in body:
        i = index_of[id(record)]
        number = matched.get(i)
        if number is None:
            continue
        row = final[number]
        value = row.get("final", "")
        if not value:
            no_grade.append(f"{row.get('name')} ({number}): no final grade ({row.get('status')}); Grade left as it was")
            continue
        grade = float(value) + (float(row.get("final_extra") or 0) if with_extra else 0.0)
        maximum = rows[i].get(MAX_GRADE, "")
        try:
            scale = float(maximum) / TOTAL if maximum else 1.0
        except ValueError:
            scale = 1.0
        record[g] = raw_of(f"{grade * scale:.2f}")
        record[fb] = raw_of(feedback(row))
        filled += 1
    unmatched_rows = [rows[i].get(FULL_NAME, "?") for i in range(len(rows)) if i not in matched]
    missing = [f"{r.get('name')} ({n})" for n, r in final.items() if n not in matched.values()]
    output = "".join(",".join(r[:-1]) + r[-1] for r in records)
    with atomic_output(out) as tmp:
        tmp.write_bytes((b"\xef\xbb\xbf" if bom else b"") + output.encode("utf-8"))
    return {"filled": filled, "notes": notes, "no_grade": no_grade, "worksheet_only": unmatched_rows,
            "gradebook_only": missing}


def export_canvas(final_path: Path, assignment: str, out: Path, *, roster: Path | None = None,
                  with_extra: bool = False) -> dict:
    """Writes a Canvas gradebook import CSV; returns what happened."""
    final = read_final(final_path)
    people, notes, roster_only = [], [], []
    if roster is not None:
        text = roster.read_text(encoding="utf-8-sig")
        rows = [r for r in csv.DictReader(io.StringIO(text, newline=""))
                if (r.get("Student") or "").strip() not in ("", "Points Possible")
                and "Student, Test" not in (r.get("Student") or "")]
        missing = [c for c in CANVAS_FIXED if c not in (rows[0] if rows else {})]
        if missing:
            raise ExportError(f"{roster}: no {', '.join(missing)} column: use the CSV Canvas exports "
                              f"(Grades > Export > Export Entire Gradebook)")
        matched, notes = match_rows(rows, final, "SIS User ID", "SIS Login ID", "Student")
        for i, row in enumerate(rows):
            if i in matched:
                people.append(([row[c] for c in CANVAS_FIXED], matched[i]))
            else:
                roster_only.append(row["Student"])
    else:
        for number, row in final.items():
            people.append(([row.get("name", ""), "", number, "", ""], number))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CANVAS_FIXED, assignment])
    writer.writerow(["Points Possible", "", "", "", "", f"{TOTAL:g}"])
    no_grade = []
    for fixed, number in people:
        row = final[number]
        if row.get("final"):
            grade = float(row["final"]) + (float(row.get("final_extra") or 0) if with_extra else 0.0)
            writer.writerow([*fixed, f"{grade:.2f}"])
        else:
            no_grade.append(f"{row.get('name')} ({number}): no final grade ({row.get('status')})")
            writer.writerow([*fixed, ""])
    with atomic_output(out) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    placed = {number for _, number in people}
    return {"filled": len(people) - len(no_grade), "notes": notes, "no_grade": no_grade,
            "worksheet_only": roster_only, "gradebook_only": [f"{r.get('name')} ({n})" for n, r in final.items()
                                                               if n not in placed]}


def report(done: dict, what: str) -> None:
    print(f"{done['filled']} grades filled")
    for note in done["notes"]:
        print(f"note: {note}")
    for line in done["no_grade"]:
        print(f"not filled: {line}")
    for name in done["worksheet_only"]:
        print(f"in the {what} but not in the gradebook: {name}")
    for name in done["gradebook_only"]:
        print(f"in the gradebook but not in the {what}: {name}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m instructor.lms_export", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("export-moodle", help="fill Moodle's grading worksheet for upload")
    m.add_argument("final", type=Path, help="grades/final_gradebook.csv")
    m.add_argument("--worksheet", type=Path, required=True, help="the grading worksheet CSV Moodle exported")
    m.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("export-canvas", help="write a Canvas gradebook import CSV")
    c.add_argument("final", type=Path, help="grades/final_gradebook.csv")
    c.add_argument("--assignment", required=True, help='the assignment column as Canvas names it: "Name (id)"')
    c.add_argument("--roster", type=Path, default=None, help="Canvas's gradebook export, for its ids and sections")
    c.add_argument("--out", type=Path, required=True)
    for q in (m, c):
        q.add_argument("--with-extra", action="store_true",
                       help="add the extra credit to the grade (the LMS must allow grades above the maximum)")
    args = p.parse_args(argv)
    try:
        if args.command == "export-moodle":
            done = export_moodle(args.final, args.worksheet, args.out, with_extra=args.with_extra)
            report(done, "worksheet")
        else:
            done = export_canvas(args.final, args.assignment, args.out, roster=args.roster, with_extra=args.with_extra)
            report(done, "roster")
    except (ExportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
