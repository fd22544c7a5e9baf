"""The report's rubric: a grading sheet a TA fills in, one HTML page per student, and the check of the sheet.

    python -m instructor.rubric sheet SUBMISSIONS_DIR --grades grades/
    python -m instructor.rubric merge grades/

The report's points (``[rubric]`` in ``instructor/course.toml``: FO-MAML
assessment 5, transfer assessment 5, MAML++ discussion 2 extra) are graded by
hand. ``sheet`` writes, in the grades folder (``grade_batch``'s ``--out``):

* ``report_points.csv`` (UTF-8 with BOM): one row per student, ``student_number``,
  ``name``, one column per rubric item (left empty for the TA) and
  ``comments``. Run again after new submissions arrive: the rows already there
  are kept as the TA left them (merged by student number), new students are
  added, and nothing a TA typed is ever overwritten.
* ``reports/<student number>.html``: the student's report.md rendered, its
  plots embedded, and the facts the grader already checked: the accuracies it
  re-evaluated (from ``results/<zip>.json``), the runs' hyper-parameters,
  whether the collaborators and references section is filled. One file per
  student, readable offline; the student's own HTML is shown as text and no
  script runs.

``merge`` checks the filled sheet (every value a number within its item's
range; errors name the row and the column) and lists who is still
ungraded. ``python -m instructor.gradebook`` reads the sheet the same way
(``read_sheet``) for the final gradebook.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import io
import json
import math
import re
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader import submission as submission_format
from grader.fill_report import PLACEHOLDER
from grader.results import EXTRA_CREDIT
from instructor.course import COURSE_TOML, add_config_argument, cell
from instructor.csvfiles import write_csv
from load_data import atomic_output

SHEET = "report_points.csv"
REPORTS = "reports"
# The report's heading for the collaborators and references (report_template.md).
COLLABORATORS_HEADING = "Collaborators and code references"
FIXED = ("student_number", "name")
COMMENTS = "comments"


class RubricError(ValueError):
    """The rubric or the TA's sheet is wrong; the message says where and how to fix it."""


@dataclass(frozen=True)
class Item:
    """One rubric item: a column of the TA's sheet."""

    id: str
    problem: str
    points: float
    extra: bool
    earns: str


@dataclass(frozen=True)
class Rubric:
    """The report's rubric (``[rubric]`` of course.toml)."""

    items: tuple[Item, ...]
    total: float  # the report's points within the assignment (10)
    extra_credit: float  # the report's extra credit (2)

    @property
    def columns(self) -> list[str]:
        return [*FIXED, *(item.id for item in self.items), COMMENTS]


def load_rubric(path: str | Path = COURSE_TOML) -> Rubric:
    """Reads ``[rubric]`` from course.toml; RubricError says what is wrong."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("rubric")
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RubricError(f"cannot read {path}: {error}") from None
    if not isinstance(table, dict) or not isinstance(table.get("items"), dict) or not table["items"]:
        raise RubricError(f"{path} has no [rubric] with [rubric.items.<id>] tables: see the README, "
                          f"'Running the course'.")
    items = []
    for key, entry in table["items"].items():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key) or key in (*FIXED, COMMENTS):
            raise RubricError(f"{path}: rubric item {key!r}: an id is lower-case letters, digits and '_', "
                              f"and not {', '.join((*FIXED, COMMENTS))}.")
        points = entry.get("points") if isinstance(entry, dict) else None
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
            raise RubricError(f"{path}: [rubric.items.{key}] needs points = a positive number.")
        items.append(Item(key, str(entry.get("problem", "")), float(points), bool(entry.get("extra", False)),
                          " ".join(str(entry.get("earns", "")).split())))
    rubric = Rubric(tuple(items), float(table.get("total", 0)), float(table.get("extra_credit", 0)))
    for extra, declared, name in ((False, rubric.total, "total"), (True, rubric.extra_credit, "extra_credit")):
        found = sum(item.points for item in items if item.extra == extra)
        if not math.isclose(found, declared):
            raise RubricError(f"{path}: [rubric] {name} = {declared:g} but its items add up to {found:g}: "
                              f"make them agree.")
    return rubric


# ---------------------------------------------------------------- the sheet


def _number(text: str) -> float:
    return float(text.strip().replace(",", "."))


@dataclass
class SheetRow:
    """One student's row of the TA's sheet, checked."""

    line: int  # the row's line number in the CSV (header = 1)
    student_number: str
    name: str
    points: dict[str, float | None]  # item id -> points (None: empty)
    comments: str
    raw: dict[str, str]

    def missing(self, rubric: Rubric) -> list[str]:
        """The required (non-extra) items still empty."""
        return [item.id for item in rubric.items if not item.extra and self.points.get(item.id) is None]

    def report(self, rubric: Rubric) -> float | None:
        """The report's points (out of ``rubric.total``), None while an item is empty."""
        if self.missing(rubric):
            return None
        return sum(self.points[item.id] for item in rubric.items if not item.extra)

    def extra(self, rubric: Rubric) -> float:
        """The report's extra credit; an empty extra item counts 0 (``empty_extra`` says which)."""
        return sum(self.points.get(item.id) or 0.0 for item in rubric.items if item.extra)

    def empty_extra(self, rubric: Rubric) -> list[str]:
        return [item.id for item in rubric.items if item.extra and self.points.get(item.id) is None]


def read_sheet(path: Path, rubric: Rubric) -> list[SheetRow]:
    """Reads and checks the TA's sheet; RubricError lists every wrong cell with its row and column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RubricError(f"{path} does not exist: write it with `python -m instructor.rubric sheet "
                          f"SUBMISSIONS/ --grades {path.parent}`.") from None
    except UnicodeDecodeError as error:
        raise RubricError(f"{path} is not UTF-8 ({error}): save it from the spreadsheet as "
                          f"'CSV UTF-8'.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in rubric.columns if c not in header]
    if missing:
        raise RubricError(f"{path}: the columns {', '.join(missing)} are missing (found: {', '.join(header)}); "
                          f"the sheet must keep the header `python -m instructor.rubric sheet` wrote.")
    problems, rows, seen = [], [], {}
    for row in reader:
        line = reader.line_num
        raw = {key: (value or "") for key, value in row.items() if key is not None}
        name = raw.get("name", "").strip()
        where = f"{path.name} row {line}"
        try:
            number = submission_format.normalize_student_number(raw.get("student_number", ""))
        except submission_format.SubmissionError as error:
            problems.append(f"{where} ({name or 'no name'}), column student_number: {error}")
            continue
        where = f"{where} ({name}, {number})"
        if number in seen:
            problems.append(f"{where}: the student number is also on row {seen[number]}: keep one row per student.")
            continue
        seen[number] = line
        points = {}
        for item in rubric.items:
            cell = raw.get(item.id, "").strip()
            if not cell:
                points[item.id] = None
                continue
            try:
                value = _number(cell)
            except ValueError:
                problems.append(f"{where}, column {item.id}: {cell!r} is not a number: write the points "
                                f"(0 to {item.points:g}) or leave the cell empty while ungraded.")
                continue
            if not math.isfinite(value) or not 0 <= value <= item.points:
                problems.append(f"{where}, column {item.id}: {cell} is outside 0 to {item.points:g}, the "
                                f"points of this item.")
                continue
            points[item.id] = value
        rows.append(SheetRow(line, number, name, points, raw.get(COMMENTS, ""), raw))
    if problems:
        raise RubricError(f"{path}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    return rows


# ---------------------------------------------------------------- facts the grader checked


def collaborators_section(report: str) -> tuple[bool, bool, str]:
    """(heading present, filled in, its text) for the collaborators and references section."""
    match = re.search(rf"^#+\s*{re.escape(COLLABORATORS_HEADING)}\s*$(?P<body>.*?)(?=^#+\s|\Z)", report,
                      re.M | re.S | re.I)
    if not match:
        return False, False, ""
    body = re.sub(r"<!--.*?-->", "", match.group("body"), flags=re.S).strip()
    return True, bool(body) and not PLACEHOLDER.search(body), body


def graded_checks(results: dict) -> list[dict]:
    """The tests of a results.json (grade_batch's), with their problem."""
    tests = results.get("tests") if isinstance(results.get("tests"), list) else []
    return [{"name": str(t.get("name", "")), "score": t.get("score"), "max_score": t.get("max_score"),
             "output": str(t.get("output") or ""), "problem": ", ".join(map(str, t.get("tags") or []))}
            for t in tests if isinstance(t, dict)]


def run_hparams(root: Path) -> dict[str, dict]:
    """results/<run>/hparams.json's hyper-parameters, run folder -> {name: value} (an error as text)."""
    found = {}
    for path in sorted(root.glob("results/**/hparams.json")):
        run = path.parent.relative_to(root / "results").as_posix()
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            found[run] = record.get("hparams", record) if isinstance(record, dict) else {"(not an object)": record}
        except (OSError, ValueError) as error:
            found[run] = {"(unreadable)": str(error)}
    return found


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_report(text: str, root: Path) -> str:
    """report.md as HTML: raw HTML shown as text, images from the submission embedded as data URIs."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S).replace("&", "&amp;").replace("<", "&lt;")
    try:
        import markdown

        body = markdown.markdown(text, extensions=["tables", "fenced_code"])
    except ImportError:  # the page still shows everything
        return f"<pre>{text}</pre>"
    body = re.sub(r'href="\s*(?:javascript|data|vbscript):[^"]*"', 'href="#"', body, flags=re.I)

    def embed(match: re.Match) -> str:
        source = html.unescape(match.group(1))
        target = (root / source).resolve()
        if target.is_relative_to(root.resolve()) and target.is_file() and target.suffix.lower() == ".png":
            return f'src="{_data_uri(target)}"'
        return 'src="" data-missing="' + html.escape(source) + '"'

    return re.sub(r'src="([^"]*)"', embed, body)


STYLE = """body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;
vertical-align:top}img{max-width:100%}.facts{background:#f4f6f8;padding:.5em 1em;border-radius:6px}
.bad{color:#b00020}.ok{color:#1b5e20}pre{white-space:pre-wrap}.report{border-top:3px solid #ccc;margin-top:2em}"""


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def student_page(rubric: Rubric, name: str, number: str, file: str, root: Path | None, results: dict | None,
                 problems: list[str]) -> str:
    """One student's HTML page for the TA."""
    e = html.escape
    parts = [f"<h1>{e(name)} ({e(number)})</h1>", f"<p>Submission: <code>{e(file)}</code></p>",
             "<h2>Rubric</h2>",
             _table(["column", "problem", "points", "what earns them"],
                    [[i.id, i.problem, f"{i.points:g}" + (" (extra)" if i.extra else ""), i.earns]
                     for i in rubric.items]),
             '<div class="facts"><h2>Checked by the grader</h2>']
    if problems:
        parts.append('<p class="bad">The submission could not be read: ' +
                     "".join(f"<br>{e(p)}" for p in problems) + "</p>")
    if results is None:
        parts.append('<p class="bad">No grading results (grades/results/&lt;zip&gt;.json): run '
                     '<code>python -m instructor.grade_batch</code> first.</p>')
    else:
        checks = graded_checks(results)
        assessed = [c for c in checks if "assessment" in c["problem"].lower() or EXTRA_CREDIT in c["problem"]]
        status = (results.get("extra_data") or {}).get("status", "")
        parts.append(f"<p>Autograder score {e(str(results.get('score')))} (status {e(str(status))}). "
                     f"Accuracies re-evaluated by the grader:</p>")
        parts.append(_table(["check", "problem", "points", "what the grader measured"],
                            [[c["name"], c["problem"], f"{c['score']}/{c['max_score']}", c["output"] or "passed"]
                             for c in assessed]) if assessed else "<p>(no assessment check in the results)</p>")
        parts.append("<details><summary>every check</summary>" +
                     _table(["check", "problem", "points", "output"],
                            [[c["name"], c["problem"], f"{c['score']}/{c['max_score']}", c["output"]]
                             for c in checks]) + "</details>")
    if root is not None:
        manifest = json.loads((root / submission_format.MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("results"):
            parts.append("<p>Accuracies the report claims (SUBMISSION.json, checked by <code>grader submit</code>):"
                         f"</p><pre>{e(json.dumps(manifest['results'], indent=1, ensure_ascii=False))}</pre>")
        for run, hp in run_hparams(root).items():
            parts.append(f"<p>Hyper-parameters of results/{e(run)}:</p>" +
                         _table(["name", "value"], [[k, json.dumps(v)] for k, v in hp.items()]))
        report = (root / submission_format.REPORT).read_text(encoding="utf-8", errors="replace")
        present, filled, body = collaborators_section(report)
        verdict = ("filled" if filled else "present but not filled") if present else "missing"
        parts.append(f'<p>Collaborators and code references section: <b class="{"ok" if filled else "bad"}">'
                     f"{verdict}</b>" + (f"<br>{e(body[:500])}" if filled else "") + "</p>")
        plots = sorted(root.glob("results/**/*.png"))
        parts.append("</div><h2>Plots</h2>" + "".join(
            f"<figure><img alt=\"{e(p.relative_to(root).as_posix())}\" src=\"{_data_uri(p)}\">"
            f"<figcaption>{e(p.relative_to(root).as_posix())}</figcaption></figure>" for p in plots))
        parts.append(f'<div class="report"><h2>The report (report.md)</h2>{render_report(report, root)}</div>')
    else:
        parts.append("</div>")
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            f"<title>{e(name)} {e(number)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


# ---------------------------------------------------------------- commands


def _latest_per_student(zips: list[Path]) -> tuple[dict[str, tuple[str, Path]], list[str]]:
    """student number -> (name, zip); notes on zips that name no student or the same one twice."""
    found, notes = {}, []
    for path in zips:
        try:
            name, number = submission_format.parse_zip_name(path.name)
        except submission_format.SubmissionError as error:
            notes.append(f"{path.name}: skipped, {error}")
            continue
        if number in found:
            notes.append(f"{number}: two zips, {found[number][1].name} and {path.name}; the sheet uses {path.name}")
        found[number] = (name, path)
    return found, notes


def make_sheet(submissions: Path, grades: Path, rubric: Rubric, *, progress: bool = True) -> dict:
    """Writes report_points.csv (merged with what is there) and reports/<number>.html; returns a summary."""
    from tqdm import tqdm

    from instructor.grade_batch import find_submissions

    zips, _ = find_submissions(submissions)
    students, notes = _latest_per_student(zips)
    sheet_path = grades / SHEET
    existing = {row.student_number: row for row in read_sheet(sheet_path, rubric)} if sheet_path.exists() else {}
    pages = grades / REPORTS
    pages.mkdir(parents=True, exist_ok=True)
    unreadable = []
    for number, (name, path) in tqdm(sorted(students.items()), desc="report pages", unit="student",
                                     disable=not (progress and sys.stderr.isatty()), file=sys.stderr):
        results_path = grades / "results" / f"{path.stem}.json"
        try:
            results = json.loads(results_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            results = None
            notes.append(f"{name} ({number}): no readable {results_path.relative_to(grades)}; the page says so")
        with tempfile.TemporaryDirectory(prefix="rubric-") as tmp:
            problems, root = [], None
            try:
                submission_format.read_submission(path, Path(tmp) / "s", check_version=False)
                root = Path(tmp) / "s"
            except submission_format.SubmissionError as error:
                problems = error.problems
                unreadable.append(f"{name} ({number})")
            page = student_page(rubric, name, number, path.name, root, results, problems)
        with atomic_output(pages / f"{number}.html") as tmp_page:
            tmp_page.write_text(page, encoding="utf-8")
    rows, added = [], []
    for number in sorted(set(existing) | set(students), key=lambda n: (
            (existing[n].name if n in existing else students[n][0]).casefold(), n)):
        if number in existing:
            old = existing[number]
            rows.append([old.raw.get(column, "") for column in rubric.columns])
            if not old.name and number in students:
                rows[-1][1] = students[number][0]
        else:
            added.append(number)
            rows.append([number, students[number][0], *("" for _ in rubric.items), ""])
    kept_only = sorted(set(existing) - set(students))
    for number in kept_only:
        notes.append(f"{existing[number].name} ({number}): on the sheet but no submission now; row kept")
    write_csv(sheet_path, rubric.columns, rows)
    return {"students": len(students), "added": added, "kept": len(existing), "unreadable": unreadable,
            "notes": notes, "sheet": sheet_path, "pages": pages}


def summary_table(rows: list[SheetRow], rubric: Rubric) -> str:
    """Every student with their points per item, the report's total and whether they are graded."""
    width = 24
    head = f"  {'name':<{width}} {'student no.':<12} " + " ".join(f"{i.id:>{len(i.id)}}" for i in rubric.items)
    lines = [head + f" {'report':>8}  status", "  " + "-" * (len(head) + 16)]
    for row in rows:
        cells = " ".join(f"{'' if row.points[i.id] is None else f'{row.points[i.id]:g}':>{len(i.id)}}"
                         for i in rubric.items)
        report = row.report(rubric)
        status = "graded" if report is not None else "ungraded: " + ", ".join(row.missing(rubric))
        lines.append(f"  {cell(row.name, width)} {row.student_number:<12} {cells} "
                     f"{'' if report is None else f'{report:g}/{rubric.total:g}':>8}  {status}")
    graded = [r for r in rows if r.report(rubric) is not None]
    lines.append("  " + "-" * (len(head) + 16))
    lines.append(f"  {len(rows)} students: {len(graded)} graded, {len(rows) - len(graded)} still ungraded")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m instructor.rubric", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sheet", help="write the TA's sheet (merged with one already there) and a page per student")
    s.add_argument("submissions", type=Path, help="the folder of submission zips (grade_batch's input)")
    s.add_argument("--grades", type=Path, required=True, help="grade_batch's --out folder")
    add_config_argument(s, "[rubric]")
    m = sub.add_parser("merge", help="check the TA's sheet and list who is still ungraded")
    m.add_argument("grades", type=Path, help="the grades folder holding report_points.csv")
    add_config_argument(m, "[rubric]")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        rubric = load_rubric(args.config)
        if args.command == "sheet":
            if not args.submissions.is_dir():
                print(f"error: {args.submissions} is not a folder of submission zips", file=sys.stderr)
                return 2
            done = make_sheet(args.submissions, args.grades, rubric)
            for note in done["notes"]:
                print(f"note: {note}")
            print(f"{done['students']} students: {len(done['added'])} new rows, {done['kept']} rows kept as the TA "
                  f"left them; {len(done['unreadable'])} submission(s) could not be read"
                  + (f" ({', '.join(done['unreadable'])})" if done["unreadable"] else ""))
            print(f"Sheet: {done['sheet']}; pages: {done['pages']}/<student number>.html")
            return 0
        rows = read_sheet(args.grades / SHEET, rubric)
        print(summary_table(rows, rubric))
        print(f"\nThe sheet is valid. Next: python -m instructor.gradebook {args.grades}")
        return 0
    except RubricError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
