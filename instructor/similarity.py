"""Compares every pair of submissions' code and flags pairs that are too alike.

    python -m instructor.similarity SUBMISSIONS/ --out grades/
    python -m instructor.similarity SUBMISSIONS/ --out grades/ --archive OLD_YEARS/ --threshold 0.6

The comparison is ``copydetect`` (winnowed fingerprints of the token stream,
MOSS's method): identifiers become one symbol and comments are dropped, so
renamed variables do not hide a copy, and fingerprints do not depend on where
the code stands, so reordered functions do not either. The code every student
received, the handout's ``maml.py`` and ``maml_transfer.py`` stubs with their
scaffold and docstrings, is given to it as boilerplate: fingerprints found in it
never count. It is read from the released handout (``--handout``, default
``dist/handout.zip`` as ``python -m instructor.release`` wrote it; without one,
built from this repository now), and a warning names any submission version
that differs from it: a scaffold changed since the release would count as
shared code and inflate every score.

Each submission's ``maml.py`` and ``maml_transfer.py`` are read from its zip
with ``grader.submission.read_submission`` into a temporary folder (the zips
are never changed) and compared as one file per student. A pair's score is
the larger of the two shares of each student's own (non-handout) code found in
the other's (0 to 1); pairs at or above ``--threshold`` (default: ``[similarity]
threshold`` in ``instructor/course.toml``) are flagged. With ``--archive``,
earlier years' submissions are compared with this year's only: an archived
pair is never reported.

Writes, in ``--out`` (each file atomically; UTF-8 with BOM, as gradebook.csv):

* ``similarity.csv``: every pair, ranked: rank, student_a, name_a, student_b,
  name_b, score, flagged (``yes``/``no``); an archived student's name ends in
  `` (archive)``;
* ``similarity_flags.csv``: one row per flagged student of this year:
  student_number, name, flagged_with (the other students' numbers, ``;``
  between them, highest score first), max_score;
* ``similarity/report.html``: copydetect's report: the flagged pairs (at most
  ``REPORT_PAIRS``, the highest) side by side, the matching code highlighted
  with a few lines around it, plus the histogram of all scores.

A zip that cannot be read (wrong name, damaged, pieces missing) is left out
with the reason, and the run goes on. A progress bar shows the work on a
terminal; a summary table of the top pairs follows at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grader.files import ROOT

os.environ.setdefault("MPLBACKEND", "Agg")  # copydetect's report draws its plots with matplotlib, off screen

from tqdm import tqdm

from grader import submission as submission_format
from instructor.course import COURSE_TOML, add_config_argument, cell
from instructor.csvfiles import write_csv
from instructor.release import build
from instructor.release.archive import write_atomic

CODE = submission_format.CODE  # maml.py, maml_transfer.py: what is compared
HANDOUT_VERSION = "grader/VERSION"  # in the released handout: the version its students' SUBMISSION.json names
RELEASED_HANDOUT = ROOT / "dist" / "handout.zip"  # python -m instructor.release's
ARCHIVE_MARK = " (archive)"
REPORT = Path("similarity") / "report.html"
PAIRS_CSV = "similarity.csv"
FLAGS_CSV = "similarity_flags.csv"
PAIR_COLUMNS = ("rank", "student_a", "name_a", "student_b", "name_b", "score", "flagged")
FLAG_COLUMNS = ("student_number", "name", "flagged_with", "max_score")
# copydetect's settings: the shortest run of (filtered) code characters that counts as a match, and the one
# that is always found (equal: every fingerprint is kept, the slowest and most thorough setting; fast enough
# here). Filtered code is short: `x = tf.reduce_mean(y)` is `V=V.V(V)`.
NOISE_THRESHOLD = 35
GUARANTEE_THRESHOLD = 35
REPORT_PAIRS = 100  # the HTML report shows at most this many flagged pairs, the highest (the CSV has all)


class SimilarityError(ValueError):
    """The comparison cannot run; the message says what is wrong and how to fix it."""


@dataclass
class Student:
    """One submission whose code is compared.

    Attributes:
        student_number: normalised (``grader.submission.normalize_student_number``).
        name: as in the zip's name (NFC).
        code: where its concatenated code was written for the comparison.
        archived: from ``--archive`` (earlier years).
        version: the handout version its SUBMISSION.json names.
    """

    student_number: str
    name: str
    code: Path
    archived: bool = False
    version: str = ""

    @property
    def label(self) -> str:
        return self.name + (ARCHIVE_MARK if self.archived else "")


@dataclass
class Pair:
    """Two compared students; ``a`` is always of this year."""

    a: Student
    b: Student
    score: float
    flagged: bool


def default_threshold(config_path: str | os.PathLike = COURSE_TOML) -> float:
    """``[similarity] threshold`` of the course settings (a share of a student's own code, 0 to 1)."""
    path = Path(config_path)
    try:
        with open(path, "rb") as f:
            value = tomllib.load(f)["similarity"]["threshold"]
    except FileNotFoundError:
        raise SimilarityError(f"{path} is missing: pass --threshold, or restore instructor/course.toml") from None
    except (KeyError, TypeError):
        raise SimilarityError(f"{path} has no [similarity] threshold: add it (e.g. threshold = 0.5) "
                              f"or pass --threshold") from None
    except tomllib.TOMLDecodeError as error:
        raise SimilarityError(f"{path} is not valid TOML ({error}): fix it or pass --threshold") from None
    return check_threshold(value, f"{path}: [similarity] threshold")


def check_threshold(value, what: str = "--threshold") -> float:
    """``value`` as a float in (0, 1]; SimilarityError saying so otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise SimilarityError(f"{what} is {value!r}: it must be a number above 0 and at most 1 "
                              f"(the share of a student's own code found in another's, e.g. 0.5)")
    return float(value)


def handout_code(handout: Path | None = None, root: str | os.PathLike = ROOT) -> tuple[dict[str, str], str]:
    """(maml.py and maml_transfer.py as every student received them, that handout's version).

    Args:
        handout: the released handout, ``handout.zip`` or its unpacked folder (``python -m
            instructor.release`` writes both in ``dist/``); None builds it from ``root`` now, which
            is what students received only if the student files have not changed since the release.
    """
    if handout is None:
        try:
            built = build.build_handout(root, allow_missing=True)
        except build.ReleaseError as error:
            raise SimilarityError(f"cannot build the handout to leave its code out: {error}") from None
        return {name: built.files[name].decode("utf-8") for name in CODE if name in built.files}, built.version
    wanted = (*CODE, HANDOUT_VERSION)
    try:
        if handout.is_dir():
            files = {name: (handout / name).read_text(encoding="utf-8") for name in wanted if (handout / name).is_file()}
        else:
            with zipfile.ZipFile(handout) as archive:  # entries under the handout's top folder
                files = {name: archive.read(entry).decode("utf-8") for entry in archive.namelist()
                         for name in wanted if entry.split("/", 1)[-1] == name}
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise SimilarityError(f"--handout {handout}: cannot read it ({error}): give dist/handout.zip "
                              f"or dist/handout/ as python -m instructor.release wrote them") from None
    if not set(CODE) <= set(files):
        raise SimilarityError(f"--handout {handout} has no {' or '.join(sorted(set(CODE) - set(files)))}: give "
                              f"dist/handout.zip or dist/handout/ as python -m instructor.release wrote them")
    return {name: files[name] for name in CODE}, files.get(HANDOUT_VERSION, "").strip()


def joined(files: dict[str, str]) -> str:
    """The student's files as one Python text, each under a comment naming it (comments never count)."""
    return "".join(f"# ======== {name} ========\n{files[name].rstrip()}\n\n" for name in CODE if name in files)


def collect(folder: Path, work: Path, archived: bool, progress: bool) -> tuple[list[Student], list[str]]:
    """Reads every submission zip of ``folder``, writing each student's code under ``work``.

    Returns:
        The students (one per student number: a second zip of the same number is
        left out) and a line per zip left out, with the reason.
    """
    students: dict[str, Student] = {}
    skipped = []
    zips = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".zip" and p.is_file())
    what = "archive" if archived else "reading"
    for index, path in enumerate(tqdm(zips, desc=what, unit="zip", file=sys.stderr, disable=not progress)):
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            try:
                found = submission_format.read_submission(path, Path(tmp) / "s", check_version=False)
            except submission_format.SubmissionError as error:
                skipped.append(f"{path.name}: {'; '.join(error.problems)}")
                continue
            number = submission_format.normalize_student_number(found.student_number)
            key = ("archive:" if archived else "") + number
            if key in students:
                skipped.append(f"{path.name}: another zip of {number} was read first "
                               f"({students[key].name}); keep one zip per student")
                continue
            files = {name: found.path(name).read_text(encoding="utf-8", errors="replace") for name in CODE}
        code = work / ("archive" if archived else "current") / f"{index:04d} {number}.py"
        code.parent.mkdir(parents=True, exist_ok=True)
        code.write_text(joined(files), encoding="utf-8")
        students[key] = Student(number, found.name, code, archived, found.version)
    return list(students.values()), skipped


def compare(current: list[Student], archive: list[Student], boilerplate: Path, threshold: float,
            progress: bool):
    """Runs copydetect: this year's students against this year's and the archive's.

    Returns:
        (pairs ranked by score, highest first; the copydetect detector, for its report).
    """
    from copydetect import CopyDetector

    detector = CopyDetector(noise_t=NOISE_THRESHOLD, guarantee_t=GUARANTEE_THRESHOLD, display_t=threshold,
                            force_language="python", autoopen=False, silent=not progress, extensions=["py"])
    detector.add_file(str(boilerplate), "boilerplate")
    for student in current:
        detector.add_file(str(student.code), "testref")
    for student in archive:
        detector.add_file(str(student.code), "ref")
    by_path = {str(s.code): s for s in (*current, *archive)}
    detector.run()

    scores: dict[tuple[str, str], float] = {}
    matrix = detector.similarity_matrix
    for i, test in enumerate(detector.test_files):
        for j, ref in enumerate(detector.ref_files):
            if test == ref or matrix.size == 0 or matrix[i, j, 0] < 0:
                continue
            b = by_path[ref]
            # both shares: of a's own code found in b, and of b's in a; nan where one has no code of its own
            share = max((float(x) for x in matrix[i, j] if x == x), default=0.0)
            key = (test, ref) if b.archived or test < ref else (ref, test)
            scores[key] = max(scores.get(key, 0.0), share)
    pairs = [Pair(by_path[a], by_path[b], round(score, 4), round(score, 4) >= threshold)
             for (a, b), score in scores.items()]
    for pair in pairs:
        if not pair.b.archived and pair.b.student_number < pair.a.student_number:
            pair.a, pair.b = pair.b, pair.a
    pairs.sort(key=lambda p: (-p.score, p.a.student_number, p.b.archived, p.b.student_number))
    return pairs, detector


def flags(pairs: list[Pair]) -> list[dict]:
    """One row per flagged student of this year: with whom, and their highest score."""
    found: dict[str, dict] = {}
    for pair in pairs:  # ranked: the first pair of a student is its highest
        if not pair.flagged:
            continue
        for me, other in ((pair.a, pair.b), (pair.b, pair.a)):
            if me.archived:
                continue
            row = found.setdefault(me.student_number, {"student_number": me.student_number, "name": me.name,
                                                       "flagged_with": [], "max_score": pair.score})
            row["flagged_with"].append(other.student_number + (ARCHIVE_MARK if other.archived else ""))
    rows = sorted(found.values(), key=lambda r: (-r["max_score"], r["student_number"]))
    for row in rows:
        row["flagged_with"] = ";".join(row["flagged_with"])
        row["max_score"] = f"{row['max_score']:.3f}"
    return rows


def pair_rows(pairs: list[Pair]) -> list[dict]:
    return [{"rank": rank, "student_a": p.a.student_number, "name_a": p.a.label,
             "student_b": p.b.student_number, "name_b": p.b.label, "score": f"{p.score:.3f}",
             "flagged": "yes" if p.flagged else "no"} for rank, p in enumerate(pairs, 1)]


def summary(pairs: list[Pair], students: int, archived: int, skipped: list[str], threshold: float,
            out: Path, top: int = 10) -> str:
    """The top pairs, the counts and what was left out, as text."""
    flagged = [p for p in pairs if p.flagged]
    lines = [f"{'rank':>4}  {'score':>5}  {'flag':4}  student a{'':<32}  student b"]
    for rank, p in enumerate(pairs[:top], 1):
        lines.append(f"{rank:>4}  {p.score:5.3f}  {'FLAG' if p.flagged else '':4}  "
                     f"{cell(f'{p.a.student_number} {p.a.label}', 41)}  "
                     f"{p.b.student_number} {p.b.label}")
    if not pairs:
        lines.append("  (no pairs: fewer than two submissions could be read)")
    lines += ["",
              f"{students} submissions compared" + (f" (and {archived} archived)" if archived else "")
              + f", {len(pairs)} pairs, {len(flagged)} flagged at score >= {threshold:g}, "
              f"{len({s.student_number for p in flagged for s in (p.a, p.b) if not s.archived})} students flagged"]
    if skipped:
        lines.append(f"{len(skipped)} zips left out:")
        lines += [f"  {line}" for line in skipped]
    lines.append(f"wrote {out / PAIRS_CSV}, {out / FLAGS_CSV}, {out / REPORT}")
    return "\n".join(lines)


def report_note(pairs: list[Pair], shown: int, threshold: float) -> str:
    """The report's first paragraph: how many pairs it shows of how many, and where the rest are."""
    flagged = sum(p.flagged for p in pairs)
    shows = f"the {shown} highest of them (at most {REPORT_PAIRS})" if shown < flagged else "them all"
    return (f"<p><b>{len(pairs)} pairs compared, {flagged} flagged (score &ge; {threshold:g}). This page shows "
            f"{shows}; similarity.csv beside this folder ranks every pair with its score.</b> "
            f"Scores count only code the handout did not give. A flag is a pointer for a person, never a "
            f"penalty.</p>")


def run(submissions: Path, out: Path, threshold: float, archive: Path | None = None,
        handout: Path | None = None, progress: bool = False) -> tuple[list[Pair], list[str]]:
    """Compares the submissions in ``submissions`` and writes the outputs in ``out``.

    ``handout`` is the released handout whose code is left out (``handout_code``).

    Returns:
        (the ranked pairs, the zips left out with their reasons).

    Raises:
        SimilarityError: a folder that does not exist, or a handout that cannot be built.
    """
    for folder, what in ((submissions, "the submissions folder"), (archive, "--archive")):
        if folder is not None and not Path(folder).is_dir():
            raise SimilarityError(f"{what} {folder} is not a folder: give the folder holding the "
                                  f"{submission_format.ZIP_NAME} zips")
    with tempfile.TemporaryDirectory(prefix="similarity-") as tmp:
        work = Path(tmp)
        boilerplate = work / "handout.py"
        given, version = handout_code(handout)
        boilerplate.write_text(joined(given), encoding="utf-8")
        current, skipped = collect(Path(submissions), work, archived=False, progress=progress)
        others = sorted({s.version for s in current} - {version})
        if others:
            print(f"warning: the handout left out is {version} ({handout or 'built from the repository now'}) but "
                  f"submissions name {', '.join(others)}: its scaffold may not be what they received, which "
                  f"inflates every score; pass --handout with the handout they were given", file=sys.stderr)
        archived, skipped_archive = ([], []) if archive is None else collect(Path(archive), work, True, progress)
        skipped += [f"archive {line}" for line in skipped_archive]
        if len(current) + len(archived) >= 2 and current:
            pairs, detector = compare(current, archived, boilerplate, threshold, progress)
            # the report shows the flagged pairs, at most REPORT_PAIRS of them (the highest, ties cut too), with
            # ten lines around each match
            scores = [p.score for p in pairs if p.flagged][:REPORT_PAIRS]
            detector.conf.display_t = (min(scores) if scores else 1.0) - 1e-6
            detector.conf.truncate = True
            shown = detector.get_copied_code_list()[:REPORT_PAIRS]  # ranked by score
            detector.get_copied_code_list = lambda: shown  # what generate_html_report lists
            report = detector.generate_html_report(output_mode="return")
            report = report.replace("</h1>", "</h1>" + report_note(pairs, len(shown), threshold), 1)
        else:
            pairs, report = [], "<html><body><p>Fewer than two submissions could be read: nothing compared.</p></body></html>"
        # the report names each student's file: make it say who it is
        for student in (*current, *archived):
            report = report.replace(str(student.code), f"{student.student_number} {student.label}")
    write_csv(out / PAIRS_CSV, PAIR_COLUMNS, ([row[c] for c in PAIR_COLUMNS] for row in pair_rows(pairs)))
    write_csv(out / FLAGS_CSV, FLAG_COLUMNS, ([row[c] for c in FLAG_COLUMNS] for row in flags(pairs)))
    write_atomic(out / REPORT, report.encode("utf-8"))
    print(summary(pairs, len(current), len(archived), skipped, threshold, out))
    return pairs, skipped


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m instructor.similarity", description=__doc__.split("\n")[0])
    p.add_argument("submissions", type=Path, help=f"folder of {submission_format.ZIP_NAME} zips")
    p.add_argument("--out", type=Path, default=Path("grades"), help="where to write (default: grades/)")
    p.add_argument("--archive", type=Path, help="folder of earlier years' zips, compared with this year's only")
    p.add_argument("--threshold", type=float,
                   help="flag pairs with at least this score, 0 to 1 (default: [similarity] threshold "
                        "in instructor/course.toml)")
    p.add_argument("--handout", type=Path, default=None,
                   help="the handout the students received, whose code never counts (default: dist/handout.zip "
                        "when python -m instructor.release wrote it, else built from this repository now)")
    add_config_argument(p, "[similarity] threshold")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        threshold = (check_threshold(args.threshold) if args.threshold is not None
                     else default_threshold(args.config))
        handout = args.handout or (RELEASED_HANDOUT if RELEASED_HANDOUT.is_file() else None)
        run(args.submissions, args.out, threshold, args.archive, handout, progress=sys.stderr.isatty())
    except SimilarityError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
