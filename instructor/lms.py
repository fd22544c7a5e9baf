"""The LMS side: Moodle's download and worksheet in, the final grades back out (Moodle or Canvas).

    python -m instructor.lms import-moodle Assignment2-download.zip --worksheet grading_worksheet.csv --out submissions/
    python -m instructor.lms export-moodle grades/final_gradebook.csv --worksheet grading_worksheet.csv --out upload.csv
    python -m instructor.lms export-canvas grades/final_gradebook.csv --assignment "Assignment 2 (1234)" \\
        [--roster canvas_gradebook_export.csv] --out canvas_upload.csv

Moodle's layouts (assignment module, ``mod/assign``), as this module reads them:

* **"Download all submissions"** zip: one folder per student and submission
  plugin, named ``{full name}_{participant id}_assignsubmission_file_``
  (Moodle 3.1 to 4.x; 4.x drops the trailing ``_``; any ``_`` in the full name
  becomes a space), holding the files the student uploaded. With "Download
  submissions in folders" off, the files sit at the top as
  ``{full name}_{participant id}_assignsubmission_file_{file name}``. Both are
  read (``FOLDER_PATTERN``, ``FLAT_PATTERN``); other plugins' entries (e.g.
  ``assignsubmission_onlinetext``) are ignored.
* **Grading worksheet** (assignment > "Download grading worksheet", the
  offline grading feedback plugin): a CSV whose columns are ``Identifier``
  (``Participant 123456``, the same participant id as the folder), ``Full
  name``, the site's identity fields (often ``ID number``, ``Email address``),
  ``Status``, ``Grade``, ``Maximum Grade``, ``Grade can be changed``, ``Last
  modified (submission)``, ``Last modified (grade)``, ``Feedback comments``
  (``WORKSHEET_COLUMNS``). Times are written in the exporting account's time
  zone and language, in English ``Monday, 1 December 2025, 11:59 PM``
  (``strftimedaydatetime``, ``MOODLE_TIME_FORMAT``), to the minute; ``-``
  when there is none.

``import-moodle`` copies each student's one zip, unchanged, into ``--out``
(the folder ``python -m instructor.grade_batch`` grades), and writes beside
it ``submission_times.csv`` (``student_number,name,submitted_at``, ISO 8601
with the offset, parsed in the course's time zone, ``[late] timezone``) and
``moodle_import.csv`` (one row per student: what was copied, or why not: a
folder with no zip, or several). The student number is the one in the
zip's name (``grader.submission.parse_zip_name``), else the worksheet's
``ID number``. Nothing in the download is changed; every output is written
atomically.

``export-moodle`` fills that same worksheet (read by ``read_worksheet``) for
upload: its ``Grade`` (the final, penalised grade of
``grades/final_gradebook.csv``, scaled to the row's ``Maximum Grade``) and
``Feedback comments`` (how the grade was made), and keeps every other byte
as it was: other columns, rows, quoting, line endings, BOM
(``field_spans`` only locates the fields to replace; the values are
``read_worksheet``'s). Students are matched by student number: the ``ID
number`` column when Moodle shows it, else an email address holding the
number (``2020-12345@...`` or ``202012345@...``), else the full name (NFC,
case and spaces ignored; only when one student has it). A gradebook student
without a worksheet row, a row without a student, or a student with no final
grade is printed, never dropped silently; their Grade is left as it was.

``export-canvas`` writes a Canvas gradebook import CSV (``CANVAS_COLUMNS``:
``Student, ID, SIS User ID, SIS Login ID, Section``, then one column named as
the assignment in Canvas, "Assignment 2 (1234)", and a ``Points Possible``
row). With ``--roster`` (Canvas's own gradebook export) the Canvas ids and
sections are copied from it, students matched by SIS User ID / SIS Login ID /
name as above; without it, SIS User ID is the student number.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from grader import submission
from instructor.course import add_config_argument, cell
from instructor.csvfiles import write_csv

# --- Moodle's layouts (mod/assign); part of the interface: the grade export writes the same worksheet ---
IDENTIFIER = "Identifier"
FULL_NAME = "Full name"
ID_NUMBER = "ID number"
EMAIL = "Email address"
STATUS = "Status"
GRADE = "Grade"
MAXIMUM_GRADE = "Maximum Grade"
GRADE_CAN_BE_CHANGED = "Grade can be changed"
LAST_MODIFIED_SUBMISSION = "Last modified (submission)"
LAST_MODIFIED_GRADE = "Last modified (grade)"
FEEDBACK_COMMENTS = "Feedback comments"
WORKSHEET_COLUMNS = (IDENTIFIER, FULL_NAME, ID_NUMBER, EMAIL, STATUS, GRADE, MAXIMUM_GRADE, GRADE_CAN_BE_CHANGED,
                     LAST_MODIFIED_SUBMISSION, LAST_MODIFIED_GRADE, FEEDBACK_COMMENTS)
REQUIRED_COLUMNS = (IDENTIFIER, FULL_NAME, LAST_MODIFIED_SUBMISSION)
PARTICIPANT_PREFIX = "Participant "  # Identifier = "Participant 123456"
NO_VALUE = "-"  # Moodle's empty time or grade
MOODLE_TIME_FORMAT = "%A, %d %B %Y, %I:%M %p"  # English strftimedaydatetime: Monday, 1 December 2025, 11:59 PM
FILE_PLUGIN = "assignsubmission_file"
FOLDER_PATTERN = re.compile(r"(?P<name>.*)_(?P<participant>\d+)_(?P<plugin>assignsubmission_[a-z]+)_?")
FLAT_PATTERN = re.compile(r"(?P<name>.*?)_(?P<participant>\d+)_(?P<plugin>assignsubmission_[a-z]+)_(?P<file>.+)")
IMPORT_COLUMNS = ("participant", "name", "student_number", "file", "submitted_at", "status", "reason")

# --- Canvas's gradebook CSV (Grades > Export / Import) ---
CANVAS_STUDENT = "Student"
CANVAS_ID = "ID"
CANVAS_SIS_USER_ID = "SIS User ID"
CANVAS_SIS_LOGIN_ID = "SIS Login ID"
CANVAS_SECTION = "Section"
CANVAS_COLUMNS = (CANVAS_STUDENT, CANVAS_ID, CANVAS_SIS_USER_ID, CANVAS_SIS_LOGIN_ID, CANVAS_SECTION)
CANVAS_POINTS_POSSIBLE = "Points Possible"
CANVAS_TEST_STUDENT = "Student, Test"  # Canvas's Student View user, in every export


class LmsError(ValueError):
    """An export that cannot be read as Moodle writes it; the message says what is wrong and how to fix it."""


@dataclass
class WorksheetRow:
    """One student of the grading worksheet; ``values`` keeps every column as written."""

    participant: str
    full_name: str
    id_number: str
    email: str
    status: str
    last_modified_submission: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Worksheet:
    """A Moodle grading worksheet: its columns in order, and one row per participant."""

    columns: list[str]
    rows: list[WorksheetRow]

    def by_participant(self) -> dict[str, WorksheetRow]:
        return {row.participant: row for row in self.rows}


def participant_id(identifier: str) -> str:
    """``Participant 123456`` -> ``123456``; LmsError otherwise."""
    text = unicodedata.normalize("NFKC", str(identifier)).strip()
    match = re.fullmatch(r"(?:Participant\s*)?(\d+)", text)
    if not match:
        raise LmsError(f"the {IDENTIFIER} {identifier!r} is not {PARTICIPANT_PREFIX!r} followed by a number")
    return match.group(1)


def read_worksheet(path: str | Path) -> Worksheet:
    """Reads Moodle's grading worksheet CSV (UTF-8, with or without BOM).

    Raises:
        LmsError: not a worksheet (a required column missing, a bad Identifier), naming the line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LmsError(f"{path} does not exist: download it in Moodle (assignment > View all submissions > "
                       f"Grading action: Download grading worksheet)") from None
    except UnicodeDecodeError:
        raise LmsError(f"{path} is not UTF-8: download the worksheet again from Moodle (do not re-save it "
                       f"from a spreadsheet in another encoding)") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise LmsError(f"{path} is not a Moodle grading worksheet: no column {', '.join(map(repr, missing))} "
                       f"(found {', '.join(columns) or 'nothing'})")
    rows, problems = [], []
    for line, raw in enumerate(reader, start=2):
        values = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            rows.append(WorksheetRow(participant_id(values[IDENTIFIER]),
                                     unicodedata.normalize("NFC", values[FULL_NAME]), values.get(ID_NUMBER, ""),
                                     values.get(EMAIL, ""), values.get(STATUS, ""),
                                     values[LAST_MODIFIED_SUBMISSION], values))
        except LmsError as error:
            problems.append(f"{path}:{line}: {error}")
    if problems:
        raise LmsError("; ".join(problems))
    return Worksheet(columns, rows)


def parse_moodle_time(text: str, tz, time_format: str = MOODLE_TIME_FORMAT) -> datetime | None:
    """A worksheet time (``Monday, 1 December 2025, 11:59 PM``) in ``tz``; None for ``-`` or empty.

    Raises:
        LmsError: another format (e.g. a worksheet exported in another language: pass its ``time_format``).
    """
    text = " ".join(str(text).split())
    if text in ("", NO_VALUE):
        return None
    try:
        naive = datetime.strptime(text, time_format)
    except ValueError:
        raise LmsError(f"the time {text!r} is not in Moodle's format {time_format!r} (e.g. Monday, 1 December "
                       f"2025, 11:59 PM): export the worksheet with English as the language, or give "
                       f"--time-format") from None
    return naive.replace(tzinfo=tz)


@dataclass
class Imported:
    """What happened to one student's submission."""

    participant: str
    name: str
    student_number: str = ""
    file: str = ""
    submitted_at: str = ""
    status: str = "imported"
    reason: str = ""

    def csv(self) -> list[str]:
        return [self.participant, self.name, self.student_number, self.file, self.submitted_at, self.status,
                self.reason]


def download_entries(download: zipfile.ZipFile) -> dict[tuple[str, str], list[tuple[str, zipfile.ZipInfo]]]:
    """(participant, full name) -> [(file name, entry)] of the file-submission plugin's entries."""
    found: dict[tuple[str, str], list[tuple[str, zipfile.ZipInfo]]] = {}
    for info in download.infolist():
        parts = PurePosixPath(unicodedata.normalize("NFC", info.filename)).parts
        if not parts or "__MACOSX" in parts:
            continue
        folder = FOLDER_PATTERN.fullmatch(parts[0]) if len(parts) > 1 else None
        flat = FLAT_PATTERN.fullmatch(parts[0]) if len(parts) == 1 else None
        match = folder or flat
        if match is None or match.group("plugin") != FILE_PLUGIN:
            continue
        key = (match.group("participant"), match.group("name").strip())
        entries = found.setdefault(key, [])
        if not info.is_dir():
            entries.append((parts[-1] if folder else match.group("file"), info))
    return found


def import_moodle(download: Path, worksheet: Path, out: Path, tz, times: Path | None = None,
                  report: Path | None = None, time_format: str = MOODLE_TIME_FORMAT) -> list[Imported]:
    """Copies each student's zip from Moodle's download into ``out``; writes submission_times.csv and the report.

    Args:
        download: Moodle's "Download all submissions" zip.
        worksheet: Moodle's grading worksheet CSV (for the submission times).
        out: the submissions folder (created); only the students' zips go in it.
        tz: the time zone of the worksheet's times (the course's).
        times: where submission_times.csv goes (default: beside ``out``).
        report: where moodle_import.csv goes (default: beside ``out``).

    Raises:
        LmsError: the download or the worksheet cannot be read at all.
    """
    from tqdm import tqdm

    from instructor.release.archive import write_atomic

    sheet = read_worksheet(worksheet).by_participant()
    try:
        archive = zipfile.ZipFile(download)
    except (OSError, zipfile.BadZipFile) as error:
        raise LmsError(f"{download} is not a zip ({error}): download it again from Moodle (View all submissions > "
                       f"Download all submissions)") from None
    results: list[Imported] = []
    written: dict[str, str] = {}
    with archive:
        entries = download_entries(archive)
        if not entries and archive.namelist():
            raise LmsError(f"{download} has no '*_{FILE_PLUGIN}_' folders or files: is it Moodle's "
                           f"\"Download all submissions\" of an assignment with file submissions?")
        for (participant, folder_name), files in tqdm(sorted(entries.items()), desc="importing", unit="student",
                                                       disable=not sys.stderr.isatty()):
            row = sheet.get(participant)
            item = Imported(participant, row.full_name if row else folder_name)
            results.append(item)
            zips = [(name, info) for name, info in files if name.lower().endswith(".zip")]
            if len(zips) != 1:
                item.status = "refused"
                names = ", ".join(name for name, _ in files) or "nothing"
                item.reason = (f"no zip in the submission (found {names})" if not zips else
                               f"{len(zips)} zips in the submission ({', '.join(n for n, _ in zips)}): "
                               f"ask the student which one to grade and copy it by hand")
                continue
            name, info = zips[0]
            try:
                _, number = submission.parse_zip_name(name)
            except submission.SubmissionError:
                try:
                    number = submission.normalize_student_number(row.id_number if row else "")
                except submission.SubmissionError:
                    number = ""
            item.student_number, item.file = number, name
            if name in written:
                item.status, item.reason = "refused", f"{name} was already imported for participant {written[name]}"
                continue
            write_atomic(out / name, archive.read(info))
            written[name] = participant
            if not number:
                item.reason = "no student number in the zip's name nor in the worksheet: no submission time written"
            if row is None:
                item.reason = f"participant {participant} is not in the worksheet: no submission time"
                continue
            try:
                moment = parse_moodle_time(row.last_modified_submission, tz, time_format)
            except LmsError as error:
                item.reason = str(error)
                continue
            if moment is None:
                item.reason = f"the worksheet has no {LAST_MODIFIED_SUBMISSION!r} time"
            else:
                item.submitted_at = moment.isoformat()
        present = {item.participant for item in results}
        for participant, row in sorted(sheet.items()):
            if participant not in present:
                results.append(Imported(participant, row.full_name, status="missing",
                                        reason=f"no submission in the download (worksheet status: {row.status or '-'})"))
    times = times or out.parent / "submission_times.csv"
    report = report or out.parent / "moodle_import.csv"
    write_csv(times, ("student_number", "name", "submitted_at"),
              [(i.student_number, i.name, i.submitted_at) for i in results
               if i.status == "imported" and i.student_number and i.submitted_at], bom=False)
    write_csv(report, IMPORT_COLUMNS, [i.csv() for i in results], bom=False)
    return results


def summary(results: list[Imported]) -> str:
    """The table printed at the end."""
    lines = [f"  {'participant':<11} {'name':<20} {'student':<12} {'submitted':<26} {'status':<9} file / reason"]
    for item in results:
        lines.append(f"  {item.participant:<11} {cell(item.name, 20)} {item.student_number:<12} "
                     f"{item.submitted_at[:25]:<26} {item.status:<9} {item.file}{' -- ' if item.file and item.reason else ''}"
                     f"{item.reason}")
    counts = {status: sum(1 for i in results if i.status == status) for status in ("imported", "refused", "missing")}
    lines.append("")
    lines.append(f"  {len(results)} students: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    return "\n".join(lines)


# ---------------------------------------------------------------- the grades back: Moodle's worksheet, Canvas's CSV


def name_key(name: str) -> str:
    """A full name for matching: NFC, case and runs of spaces ignored."""
    return " ".join(unicodedata.normalize("NFC", name or "").casefold().split())


def number_in(text: str) -> str | None:
    """A student number found in ``text`` (an ID number, an email's local part), normalised; else None."""
    text = unicodedata.normalize("NFKC", text or "").strip()
    local = text.split("@")[0]
    for candidate in (text, local):
        try:
            return submission.normalize_student_number(candidate)
        except submission.SubmissionError:
            pass
    digits = re.sub(r"\D", "", local)
    if len(digits) == 9:  # 202012345: the pattern without its hyphen
        try:
            return submission.normalize_student_number(f"{digits[:4]}-{digits[4:]}")
        except submission.SubmissionError:
            return None
    return None


def read_final(path: Path) -> dict[str, dict[str, str]]:
    """``final_gradebook.csv`` (``python -m instructor.gradebook``) by student number."""
    from instructor import gradebook

    if not Path(path).is_file():
        raise LmsError(f"{path} does not exist: write it with `python -m instructor.gradebook grades/`")
    try:
        rows = gradebook.read_csv(Path(path))
    except gradebook.GradebookError as error:
        raise LmsError(str(error)) from None
    if rows and not {"student_number", "final"} <= set(rows[0]):
        raise LmsError(f"{path} is not a final gradebook (no student_number / final column): write it with "
                       f"`python -m instructor.gradebook grades/`")
    return {row["student_number"]: row for row in rows if row.get("student_number")}


def match_students(people: list[tuple[str, str, str]], final: dict[str, dict[str, str]]
                   ) -> tuple[dict[int, str], list[str]]:
    """Index -> student number for (id value, email or login, full name) triples; notes on uncertain matches."""
    by_name: dict[str, list[str]] = {}
    for number, row in final.items():
        by_name.setdefault(name_key(row.get("name", "")), []).append(number)
    matched, notes = {}, []
    for index, (id_value, email, full_name) in enumerate(people):
        number = None
        for value in (id_value, email):
            if not number:
                found = number_in(value)
                number = found if found in final else None
        if not number:
            candidates = by_name.get(name_key(full_name), [])
            if len(candidates) == 1:
                number = candidates[0]
                notes.append(f"{full_name}: matched by full name to {number}")
            elif len(candidates) > 1:
                notes.append(f"{full_name}: {len(candidates)} students have this name ({', '.join(candidates)}); "
                             f"add the ID number column to the worksheet")
        if number:
            if number in matched.values():
                notes.append(f"{number}: matched by two rows; only the first is filled")
                continue
            matched[index] = number
    return matched, notes


def final_grade(row: dict[str, str], with_extra: bool) -> float:
    """The grade to upload: ``final`` (/50), plus ``final_extra`` with ``with_extra``."""
    return float(row["final"]) + (float(row.get("final_extra") or 0) if with_extra else 0.0)


def feedback(row: dict[str, str], full_marks: float) -> str:
    """The Feedback comments: how the grade was made, in one line."""
    from instructor.gradebook import AUTOGRADED_MAX

    parts = [f"Autograded {row.get('autograded') or '?'}/{AUTOGRADED_MAX:g}, report {row.get('report') or '?'}/"
             f"{full_marks - AUTOGRADED_MAX:g}, total {row.get('total') or '?'}/{full_marks:g}"]
    if row.get("extra_credit"):
        parts.append(f"extra credit {row['extra_credit']}/10")
    if row.get("penalty_pp") and float(row["penalty_pp"]) > 0:
        points = float(row["penalty_pp"]) / 100 * full_marks
        parts.append(f"{row.get('late_minutes') or '?'} min late: -{row['penalty_pp']} %p of {full_marks:g} "
                     f"(-{points:g} points)")
    parts.append(f"final {row.get('final') or '?'}/{full_marks:g}"
                 + (f" + {row['final_extra']} extra" if row.get("final_extra") else ""))
    if row.get("overrides_applied"):
        parts.append(f"regraded: {row['overrides_applied']}")
    return "; ".join(parts) + "."


def field_spans(text: str) -> list[list[str]]:
    """The CSV's records as their raw field texts (quotes kept), so the fields not replaced are written back as
    they were; each record's last element is its line ending ("" for a last record without one).

    Only for rewriting: the values themselves are ``read_worksheet``'s.
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


def moodle_field(value: str) -> str:
    """A value as Moodle writes it (PHP's fputcsv: quoted when it holds a comma, quote or white space)."""
    if re.search(r'[,"\s]', value):
        return '"' + value.replace('"', '""') + '"'
    return value


def export_moodle(final_path: Path, worksheet_path: Path, out: Path, full_marks: float, *,
                  with_extra: bool = False) -> dict:
    """Writes ``out``: Moodle's worksheet with Grade and Feedback comments filled; returns what happened.

    Raises:
        LmsError: the worksheet or the final gradebook cannot be used (says how to fix it).
    """
    from load_data import atomic_output

    final = read_final(final_path)
    sheet = read_worksheet(worksheet_path)
    for column in (GRADE, FEEDBACK_COMMENTS):
        if column not in sheet.columns:
            raise LmsError(f"{worksheet_path} has no {column!r} column (found {', '.join(sheet.columns)}): export "
                           f"the grading worksheet again (View all submissions > Download grading worksheet) with "
                           f"offline grading worksheets and feedback comments enabled")
    data = Path(worksheet_path).read_bytes()
    bom = data.startswith(b"\xef\xbb\xbf")
    records = field_spans(data[3 if bom else 0:].decode("utf-8"))
    body = [r for r in records[1:] if r[:-1] != [""]]  # csv skips blank lines too
    if len(body) != len(sheet.rows) or any(len(r) - 1 != len(sheet.columns) for r in body):
        raise LmsError(f"{worksheet_path}: some rows do not have the header's {len(sheet.columns)} fields: use the "
                       f"CSV Moodle exported, unedited")
    matched, notes = match_students([(row.id_number, row.email, row.full_name) for row in sheet.rows], final)
    grade_at, feedback_at = sheet.columns.index(GRADE), sheet.columns.index(FEEDBACK_COMMENTS)
    filled, no_grade = 0, []
    for index, (record, row) in enumerate(zip(body, sheet.rows)):
        number = matched.get(index)
        if number is None:
            continue
        student = final[number]
        if not student.get("final"):
            no_grade.append(f"{student.get('name')} ({number}): no final grade ({student.get('status')}); Grade "
                            f"left as it was")
            continue
        maximum = row.values.get(MAXIMUM_GRADE, "")
        try:
            scale = float(maximum) / full_marks if maximum not in ("", NO_VALUE) else 1.0
        except ValueError:
            scale = 1.0
        record[grade_at] = moodle_field(f"{final_grade(student, with_extra) * scale:.2f}")
        record[feedback_at] = moodle_field(feedback(student, full_marks))
        filled += 1
    with atomic_output(out) as tmp:
        tmp.write_bytes((b"\xef\xbb\xbf" if bom else b"")
                        + "".join(",".join(r[:-1]) + r[-1] for r in records).encode("utf-8"))
    return {"filled": filled, "notes": notes, "no_grade": no_grade,
            "lms_only": [row.full_name for i, row in enumerate(sheet.rows) if i not in matched],
            "gradebook_only": [f"{r.get('name')} ({n})" for n, r in final.items() if n not in matched.values()]}


def export_canvas(final_path: Path, assignment: str, out: Path, full_marks: float, *, roster: Path | None = None,
                  with_extra: bool = False) -> dict:
    """Writes a Canvas gradebook import CSV; returns what happened.

    Raises:
        LmsError: the roster or the final gradebook cannot be used (says how to fix it).
    """
    from load_data import atomic_output

    final = read_final(final_path)
    people, notes, roster_only = [], [], []
    if roster is not None:
        try:
            text = Path(roster).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise LmsError(f"{roster} cannot be read ({error}): use the UTF-8 CSV Canvas exports") from None
        rows = [r for r in csv.DictReader(io.StringIO(text, newline=""))
                if (r.get(CANVAS_STUDENT) or "").strip() not in ("", CANVAS_POINTS_POSSIBLE)
                and CANVAS_TEST_STUDENT not in (r.get(CANVAS_STUDENT) or "")]
        missing = [c for c in CANVAS_COLUMNS if c not in (rows[0] if rows else {})]
        if missing:
            raise LmsError(f"{roster}: no {', '.join(missing)} column: use the CSV Canvas exports "
                           f"(Grades > Export > Export Entire Gradebook)")
        matched, notes = match_students([(r[CANVAS_SIS_USER_ID], r[CANVAS_SIS_LOGIN_ID], r[CANVAS_STUDENT])
                                         for r in rows], final)
        for i, row in enumerate(rows):
            if i in matched:
                people.append(([row[c] for c in CANVAS_COLUMNS], matched[i]))
            else:
                roster_only.append(row[CANVAS_STUDENT])
    else:
        for number, row in final.items():
            people.append(([row.get("name", ""), "", number, "", ""], number))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CANVAS_COLUMNS, assignment])
    writer.writerow([CANVAS_POINTS_POSSIBLE, *[""] * (len(CANVAS_COLUMNS) - 1), f"{full_marks:g}"])
    no_grade = []
    for fixed, number in people:
        row = final[number]
        if row.get("final"):
            writer.writerow([*fixed, f"{final_grade(row, with_extra):.2f}"])
        else:
            no_grade.append(f"{row.get('name')} ({number}): no final grade ({row.get('status')})")
            writer.writerow([*fixed, ""])
    with atomic_output(out) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    placed = {number for _, number in people}
    return {"filled": len(people) - len(no_grade), "notes": notes, "no_grade": no_grade, "lms_only": roster_only,
            "gradebook_only": [f"{r.get('name')} ({n})" for n, r in final.items() if n not in placed]}


def export_summary(done: dict, what: str) -> str:
    """What an export did, printed at the end."""
    lines = [f"{done['filled']} grades filled"]
    lines += [f"note: {note}" for note in done["notes"]]
    lines += [f"not filled: {line}" for line in done["no_grade"]]
    lines += [f"in the {what} but not in the gradebook: {name}" for name in done["lms_only"]]
    lines += [f"in the gradebook but not in the {what}: {name}" for name in done["gradebook_only"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m instructor.lms", description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import-moodle", help="copy the students' zips out of Moodle's download")
    imp.add_argument("download", type=Path, help="Moodle's \"Download all submissions\" zip")
    imp.add_argument("--worksheet", type=Path, required=True, help="Moodle's grading worksheet CSV")
    imp.add_argument("--out", type=Path, required=True, help="the submissions folder to fill")
    imp.add_argument("--times", type=Path, default=None,
                     help="where submission_times.csv goes (default: beside --out)")
    imp.add_argument("--timezone", default=None, help="the worksheet's time zone (default: [late] timezone)")
    imp.add_argument("--time-format", default=MOODLE_TIME_FORMAT,
                     help="strptime format of the worksheet's times (default: Moodle's English one)")
    exm = commands.add_parser("export-moodle", help="fill Moodle's grading worksheet with the final grades, to upload")
    exm.add_argument("final", type=Path, help="grades/final_gradebook.csv (python -m instructor.gradebook)")
    exm.add_argument("--worksheet", type=Path, required=True, help="the grading worksheet CSV Moodle exported")
    exm.add_argument("--out", type=Path, required=True, help="the filled worksheet to upload")
    exc = commands.add_parser("export-canvas", help="write a Canvas gradebook import CSV of the final grades")
    exc.add_argument("final", type=Path, help="grades/final_gradebook.csv (python -m instructor.gradebook)")
    exc.add_argument("--assignment", required=True, help='the assignment column as Canvas names it: "Name (id)"')
    exc.add_argument("--roster", type=Path, default=None, help="Canvas's gradebook export, for its ids and sections")
    exc.add_argument("--out", type=Path, required=True, help="the CSV to import in Canvas")
    for command in (exm, exc):
        command.add_argument("--with-extra", action="store_true",
                             help="add the extra credit to the grade (the LMS must allow grades above the maximum)")
    for command in (imp, exm, exc):
        add_config_argument(command, "[late] timezone" if command is imp else "[rubric] total (the full marks)")
    args = p.parse_args(argv)
    from instructor import gradebook, late, rubric

    try:
        if args.command == "import-moodle":
            name = args.timezone
            if name is None:
                import tomllib

                name = tomllib.loads(args.config.read_text(encoding="utf-8")).get("late", {}).get("timezone")
                if not name:
                    raise LmsError(f"{args.config} has no [late] timezone: set it, or pass --timezone")
            results = import_moodle(args.download, args.worksheet, args.out, late.zone(name), args.times,
                                    time_format=args.time_format)
        else:
            full_marks = gradebook.full_marks(rubric.load_rubric(args.config))
            if args.command == "export-moodle":
                done = export_moodle(args.final, args.worksheet, args.out, full_marks, with_extra=args.with_extra)
            else:
                done = export_canvas(args.final, args.assignment, args.out, full_marks, roster=args.roster,
                                     with_extra=args.with_extra)
    except (LmsError, late.LateError, rubric.RubricError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.command == "import-moodle":
        print(summary(results))
        print(f"\nzips in {args.out}/; times in {args.times or args.out.parent / 'submission_times.csv'}; "
              f"every row in {args.out.parent / 'moodle_import.csv'}")
    else:
        print(export_summary(done, "worksheet" if args.command == "export-moodle" else "roster"))
        print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
