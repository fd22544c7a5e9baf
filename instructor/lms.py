"""The LMS (Moodle) side: ``python -m instructor.lms import-moodle DOWNLOAD.zip --worksheet WORKSHEET.csv --out submissions/``.

    python -m instructor.lms import-moodle Assignment2-download.zip --worksheet grading_worksheet.csv --out submissions/

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import submission  # noqa: E402

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


def write_csv(path: Path, header, rows) -> None:
    """A UTF-8 CSV written atomically."""
    from instructor.release.archive import write_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue().encode("utf-8"))


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
               if i.status == "imported" and i.student_number and i.submitted_at])
    write_csv(report, IMPORT_COLUMNS, [i.csv() for i in results])
    return results


def summary(results: list[Imported]) -> str:
    """The table printed at the end."""
    lines = [f"  {'participant':<11} {'name':<20} {'student':<12} {'submitted':<26} {'status':<9} file / reason"]
    for item in results:
        lines.append(f"  {item.participant:<11} {item.name[:20]:<20} {item.student_number:<12} "
                     f"{item.submitted_at[:25]:<26} {item.status:<9} {item.file}{' -- ' if item.file and item.reason else ''}"
                     f"{item.reason}")
    counts = {status: sum(1 for i in results if i.status == status) for status in ("imported", "refused", "missing")}
    lines.append("")
    lines.append(f"  {len(results)} students: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
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
    imp.add_argument("--config", type=Path, default=ROOT / "instructor" / "course.toml",
                     help="course.toml, for [late] timezone")
    imp.add_argument("--timezone", default=None, help="the worksheet's time zone (default: [late] timezone)")
    imp.add_argument("--time-format", default=MOODLE_TIME_FORMAT,
                     help="strptime format of the worksheet's times (default: Moodle's English one)")
    args = p.parse_args(argv)
    from instructor import late

    try:
        name = args.timezone
        if name is None:
            import tomllib

            name = tomllib.loads(args.config.read_text(encoding="utf-8")).get("late", {}).get("timezone")
            if not name:
                raise LmsError(f"{args.config} has no [late] timezone: set it, or pass --timezone")
        results = import_moodle(args.download, args.worksheet, args.out, late.zone(name), args.times,
                                time_format=args.time_format)
    except (LmsError, late.LateError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary(results))
    print(f"\nzips in {args.out}/; times in {args.times or args.out.parent / 'submission_times.csv'}; "
          f"every row in {args.out.parent / 'moodle_import.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
