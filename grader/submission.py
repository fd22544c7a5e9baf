"""What a submission zip is: its name, its layout, its manifest; writing one and reading one safely.

This module is the single definition of a submission. ``python -m grader submit``
writes zips with ``write_submission``; the autograder and the batch grader read
them with ``read_submission`` (or ``check_folder`` for a folder that is already
unpacked, e.g. by Gradescope). Both sides run the same checks, so a zip the
submit command wrote is always accepted by the grader of the same handout.

Name. ``{Name}_{StudentNumber}_Assignment2.zip`` (``ZIP_NAME``), for example
``송재현_2020-12345_Assignment2.zip``:

* Name: your name in any script (Hangul, accented Latin, ...), letters and
  combining marks, with spaces, ``-``, ``'`` or ``.`` between them; at most
  ``MAX_NAME_LENGTH`` characters; stored in Unicode NFC (macOS's decomposed
  names are recomposed). No ``_`` (it separates the parts of the file name),
  no digits, no ``/ \\ : * ? " < > |``.
* StudentNumber: ``STUDENT_NUMBER_PATTERN``, four digits, a hyphen, five
  digits (``2020-12345``). Full-width digits are accepted and stored as ASCII.
  An instructor changes the pattern here (it is graded material, so the
  handout version changes with it).

Layout. Files at the root of the zip, no top folder (``LAYOUT``)::

    maml.py  maml_transfer.py  report.md  SUBMISSION.json
    results/fomaml/    hparams.json history.csv val_accuracy.png weights.npz  [test_results_*.json]
    results/transfer/  hparams.json history.csv val_accuracy.png weights.npz
                       [test_results_*.json comparison.json comparison.md comparison_val_accuracy.png
                        sweep_*.json sweep_*.md]
    results/mamlpp/RUN/  (optional, extra credit; RUN e.g. maml_seed0, mamlpp_seed0)
                       hparams.json history.csv val_accuracy.png weights.npz  [test_results_*.json]

Nothing else: no data, no checkpoints, no macOS metadata. File names are
ASCII; entries are nevertheless written with the zip UTF-8 flag (0x800), so
every unzip program (Windows Explorer, macOS Archive Utility, ``unzip``)
decodes them the same way.

Manifest. ``SUBMISSION.json``: ``format`` (``MANIFEST_FORMAT``), ``name``,
``student_number``, ``version`` (``grader/VERSION`` of the handout the code was
written in), ``created`` (UTC, ISO 8601), ``files`` {path: SHA-256 hex} for
every other entry, and ``results`` (what the report claims, e.g. the final
validation accuracy of each run; informative, written by the submit command).

Limits (``MAX_FILE_BYTES``, ``MAX_TOTAL_BYTES``, ``MAX_ENTRIES``): a complete
submission is about 1.5 MB (2.5 MB with the extra credit).

Errors are ``SubmissionError``; ``.problems`` lists every problem found (not
only the first), each saying what is wrong and how to fix it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grader import version as handout_version
from grader.files import sha256
from load_data import atomic_output

ASSIGNMENT = "Assignment2"
ZIP_NAME = "{Name}_{StudentNumber}_" + ASSIGNMENT + ".zip"  # = course.toml's assignment.zip_name
STUDENT_NUMBER_PATTERN = r"[0-9]{4}-[0-9]{5}"
STUDENT_NUMBER_EXAMPLE = "2020-12345"
STUDENT_NUMBER_MEANING = "four digits, a hyphen and five digits"
MAX_NAME_LENGTH = 60
NAME_PUNCTUATION = " -'’."

MANIFEST = "SUBMISSION.json"
MANIFEST_FORMAT = 1
MAX_FILE_BYTES = 10 * 2**20  # any one file, unpacked
MAX_TOTAL_BYTES = 25 * 2**20  # all files together, unpacked (and the zip itself)
MAX_ENTRIES = 200
UTF8_FLAG = 0x800  # general purpose bit 11: the entry name is UTF-8

CODE = ("maml.py", "maml_transfer.py")
REPORT = "report.md"
RUN_FILES = ("hparams.json", "history.csv", "val_accuracy.png", "weights.npz")
REQUIRED = (*CODE, REPORT, *(f"results/{kind}/{f}" for kind in ("fomaml", "transfer") for f in RUN_FILES))
RUN_NAME = r"[a-z0-9][a-z0-9_.-]{0,62}"
_RUN_FILE = r"(?:hparams\.json|history\.csv|val_accuracy\.png|weights\.npz|test_results_[0-9]+way_[0-9]+shot\.json)"
OPTIONAL = tuple(re.compile(pattern) for pattern in (
    r"results/fomaml/test_results_[0-9]+way_[0-9]+shot\.json",
    r"results/transfer/(?:test_results_[0-9]+way_[0-9]+shot\.json|comparison\.json|comparison\.md"
    r"|comparison_val_accuracy\.png|sweep_[0-9]+way_[0-9]+shot\.(?:json|md))",
    rf"results/mamlpp/{RUN_NAME}/{_RUN_FILE}",
))
LAYOUT = __doc__[__doc__.index("    maml.py"):__doc__.index("\nNothing else")].rstrip()

_ZIP_NAME = re.compile(r"(?P<name>.+)_(?P<number>[^_]+)_" + re.escape(ASSIGNMENT) + r"\.zip", re.IGNORECASE)
_FORBIDDEN_IN_NAMES = '/\\:*?"<>|'


class SubmissionError(ValueError):
    """A submission that cannot be written or graded.

    Attributes:
        problems: every problem found, each a sentence saying what is wrong and
            how to fix it.
        file_name: (name, student number) of a zip whose file name was valid
            (``read_submission`` sets it), else None: who submitted a refused zip.
    """

    def __init__(self, problems: str | Iterable[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.file_name: tuple[str, str] | None = None
        if len(self.problems) == 1:
            text = self.problems[0]
        else:
            text = f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


@dataclass
class Submission:
    """A checked submission, unpacked in ``root``.

    Attributes:
        root: the folder holding maml.py, report.md, results/ ...
        name, student_number: of the student (NFC, as in the file name).
        version: the handout version the code was written in.
        files: every file but the manifest, path -> SHA-256 hex.
        manifest: SUBMISSION.json as read.
    """

    root: Path
    name: str
    student_number: str
    version: str
    files: dict[str, str]
    manifest: dict = field(repr=False)

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def mamlpp_runs(self) -> list[str]:
        """Names of the MAML++ extra-credit run folders (results/mamlpp/RUN)."""
        return sorted({p.split("/")[2] for p in self.files if p.startswith("results/mamlpp/")})


# ---------------------------------------------------------------- names


def normalize_name(name: str) -> str:
    """The student's name as it goes into the file name; SubmissionError says why it cannot.

    NFC, surrounding whitespace removed, inner runs of whitespace as one space.
    """
    text = " ".join(unicodedata.normalize("NFC", str(name)).split())
    if not text:
        raise SubmissionError("the name is empty: pass your name, e.g. --name \"Hong Gildong\" or --name 홍길동.")
    problems = []
    if len(text) > MAX_NAME_LENGTH:
        problems.append(f"the name has {len(text)} characters, more than {MAX_NAME_LENGTH}: shorten it.")
    if "_" in text:
        problems.append(f"the name {text!r} contains '_', which separates the parts of the file name: "
                        f"write a space instead.")
    if any(c.isdigit() for c in text):
        problems.append(f"the name {text!r} contains digits: did you swap --name and --student-number?")
    bad = sorted({c for c in text if c in _FORBIDDEN_IN_NAMES or unicodedata.category(c)[0] == "C"})
    if bad:
        problems.append(f"the name {text!r} contains {', '.join(repr(c) for c in bad)}, which cannot be part "
                        f"of a file name on every system: leave them out.")
    other = sorted({c for c in text if c not in _FORBIDDEN_IN_NAMES and c != "_" and not c.isdigit()
                    and unicodedata.category(c)[0] not in "LMC" and c not in NAME_PUNCTUATION})
    if other:
        problems.append(f"the name {text!r} contains {', '.join(repr(c) for c in other)}: a name holds "
                        f"letters (any script), spaces, '-', ''' and '.'.")
    if not any(unicodedata.category(c)[0] == "L" for c in text):
        problems.append(f"the name {text!r} has no letters.")
    if problems:
        raise SubmissionError(problems)
    return text


def normalize_student_number(number: str) -> str:
    """The student number in its canonical form; SubmissionError says what is expected.

    Full-width digits and hyphens (NFKC) become ASCII; surrounding spaces are removed.
    """
    text = unicodedata.normalize("NFKC", str(number)).strip()
    if not re.fullmatch(STUDENT_NUMBER_PATTERN, text):
        raise SubmissionError(f"the student number {str(number)!r} is not valid: expected "
                              f"{STUDENT_NUMBER_MEANING}, e.g. {STUDENT_NUMBER_EXAMPLE} (as on your student ID).")
    return text


def zip_name(name: str, student_number: str) -> str:
    """``{Name}_{StudentNumber}_Assignment2.zip`` for a valid name and number (SubmissionError if not)."""
    problems, parts = [], []
    for check, value in ((normalize_name, name), (normalize_student_number, student_number)):
        try:
            parts.append(check(value))
        except SubmissionError as error:
            problems += error.problems
    if problems:
        raise SubmissionError(problems)
    return ZIP_NAME.format(Name=parts[0], StudentNumber=parts[1])


def parse_zip_name(file_name: str) -> tuple[str, str]:
    """(name, student number) from a submission's file name; SubmissionError if it is not one."""
    text = unicodedata.normalize("NFC", Path(file_name).name)
    match = _ZIP_NAME.fullmatch(text)
    example = ZIP_NAME.format(Name="홍길동", StudentNumber=STUDENT_NUMBER_EXAMPLE)
    if not match:
        raise SubmissionError(f"the file name {text!r} is not {ZIP_NAME} (e.g. {example}): make the zip with "
                              f"`python -m grader submit` and upload it without renaming it.")
    name, number = match.group("name"), match.group("number")
    try:
        canonical = zip_name(name, number)
    except SubmissionError as error:
        raise SubmissionError([f"the file name {text!r}: {p}" for p in error.problems]) from None
    if canonical != text:
        raise SubmissionError(f"the file name {text!r} should be {canonical!r}: make the zip with "
                              f"`python -m grader submit` and upload it without renaming it.")
    return name, number


# ---------------------------------------------------------------- layout


def is_optional(path: str) -> bool:
    return any(pattern.fullmatch(path) for pattern in OPTIONAL)


def layout_problems(paths: Iterable[str]) -> list[str]:
    """What is missing from or not allowed in a submission holding ``paths`` (manifest excluded)."""
    paths = set(paths) - {MANIFEST}
    problems = []
    missing = [p for p in REQUIRED if p not in paths]
    if missing:
        problems.append(f"missing: {', '.join(missing)}. Train, fill the report and make the zip with "
                        f"`python -m grader submit` (see the README, Submission).")
    unexpected = sorted(p for p in paths if p not in REQUIRED and not is_optional(p))
    top = {p.split("/")[0] for p in paths}
    if missing and len(top) == 1 and "/".join([*top, "maml.py"]) in paths:
        folder = next(iter(top))
        problems.append(f"every file is inside the folder {folder!r}: the files belong at the top of the zip. "
                        f"Make the zip with `python -m grader submit`.")
    elif unexpected:
        shown = ", ".join(unexpected[:8]) + (f" and {len(unexpected) - 8} more" if len(unexpected) > 8 else "")
        problems.append(f"not part of a submission: {shown}. A submission holds only:\n{LAYOUT}")
    return problems


def size_problems(sizes: Mapping[str, int]) -> list[str]:
    problems = [f"{path} is {size / 2**20:.1f} MB, more than the limit of {MAX_FILE_BYTES // 2**20} MB per file."
                for path, size in sorted(sizes.items()) if size > MAX_FILE_BYTES]
    total = sum(sizes.values())
    if total > MAX_TOTAL_BYTES:
        largest = ", ".join(f"{p} {s / 2**20:.1f} MB" for p, s in sorted(sizes.items(), key=lambda x: -x[1])[:3])
        problems.append(f"the files add up to {total / 2**20:.1f} MB, more than the limit of "
                        f"{MAX_TOTAL_BYTES // 2**20} MB (largest: {largest}). Only the final weights, "
                        f"records and plots belong in a submission (no checkpoints or data).")
    if len(sizes) > MAX_ENTRIES:
        problems.append(f"{len(sizes)} files, more than the limit of {MAX_ENTRIES}.")
    return problems


# ---------------------------------------------------------------- writing


def manifest_for(name: str, student_number: str, files: Mapping[str, bytes], version: str,
                 results: Mapping | None = None) -> dict:
    return {"format": MANIFEST_FORMAT, "assignment": ASSIGNMENT, "name": name, "student_number": student_number,
            "version": version, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {path: sha256(content) for path, content in sorted(files.items())},
            "results": dict(results or {})}


class _Utf8ZipInfo(zipfile.ZipInfo):
    """An entry whose name is always stored as UTF-8 with the UTF-8 flag.

    ``zipfile`` sets the flag only for non-ASCII names and resets ``flag_bits``
    when it writes an entry, so the name encoding is the one place to set it.
    """

    __slots__ = ()

    def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's name
        return self.filename.encode("utf-8"), self.flag_bits | UTF8_FLAG


def _zip_info(path: str, when: tuple[int, ...]) -> zipfile.ZipInfo:
    info = _Utf8ZipInfo(path, date_time=when)
    info.create_system = 3  # Unix: the permission bits below are honoured
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def write_submission(files: Mapping[str, bytes | os.PathLike | str], name: str, student_number: str,
                     out_dir: str | os.PathLike = ".", *, version: str | None = None,
                     results: Mapping | None = None) -> Path:
    """Writes ``{Name}_{StudentNumber}_Assignment2.zip`` into ``out_dir``, atomically.

    Args:
        files: zip path -> content (bytes) or a file to read, e.g.
            {"maml.py": Path("maml.py"), "results/fomaml/weights.npz": Path("runs/x/weights.npz"), ...};
            exactly a valid layout (``REQUIRED`` plus any ``OPTIONAL``), no manifest.
        name, student_number: checked and normalised (``normalize_name``, ``normalize_student_number``).
        out_dir: where the zip goes (created if needed).
        version: the handout version for the manifest (default: this handout's, ``grader/VERSION``).
        results: what the report claims, stored in the manifest (informative).

    Returns:
        The zip's path. An existing zip of the same name is replaced only once the
        new one is complete; on any error nothing is written.

    Raises:
        SubmissionError: a bad name or number, a file missing or not allowed, a
            file that cannot be read, or sizes over the limits (every problem listed).
    """
    problems = []
    try:
        file_name = zip_name(name, student_number)
        name, student_number = parse_zip_name(file_name)
    except SubmissionError as error:
        problems += error.problems
    contents: dict[str, bytes] = {}
    for path, source in files.items():
        if isinstance(source, bytes):
            contents[path] = source
            continue
        try:
            contents[path] = Path(source).read_bytes()
        except OSError as error:
            problems.append(f"cannot read {source} (for {path}): {error.strerror or error}.")
    problems += layout_problems(files)
    problems += size_problems({p: len(c) for p, c in contents.items()})
    if problems:
        raise SubmissionError(problems)

    version = handout_version.current() if version is None else version
    manifest = manifest_for(name, student_number, contents, version, results)
    when = time.localtime()[:6]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / file_name
    with atomic_output(target) as tmp:
        with zipfile.ZipFile(tmp, "w") as archive:
            for path in sorted(contents):
                archive.writestr(_zip_info(path, when), contents[path])
            archive.writestr(_zip_info(MANIFEST, when),
                             json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
        size = tmp.stat().st_size
        if size > MAX_TOTAL_BYTES:
            raise SubmissionError(f"the zip would be {size / 2**20:.1f} MB, more than the limit of "
                                  f"{MAX_TOTAL_BYTES // 2**20} MB.")
        tmp.chmod(0o644)
    return target


# ---------------------------------------------------------------- reading


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why an entry must not be unpacked (None: it is safe)."""
    name = info.filename
    shown = repr(name)
    if "\x00" in name or "\\" in name:
        return f"the entry {shown} has a backslash or NUL in its name."
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return f"the entry {shown} has an absolute path."
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return f"the entry {shown} has '..', '.' or an empty part in its path."
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
        return f"the entry {shown} is {kind}."
    if info.flag_bits & 0x1:
        return f"the entry {shown} is encrypted: submit a zip without a password."
    return None


def read_submission(zip_path: str | os.PathLike, destination: str | os.PathLike, *,
                    expected_version: str | None = None, check_version: bool = True) -> Submission:
    """Checks a submission zip and unpacks it safely into ``destination``.

    Checks, before anything is written: the file name (``ZIP_NAME``), that it is
    a readable zip, every entry (no absolute paths, no '..', no links, no
    encryption, no duplicates), the sizes and the number of entries; then,
    unpacked into a temporary folder beside ``destination``, everything
    ``check_folder`` checks. Only a submission that passes is moved to
    ``destination``; otherwise nothing is left behind.

    Args:
        zip_path: the submission zip.
        destination: a folder that does not exist yet (or is empty).
        expected_version: the handout version being graded (default: this handout's).
        check_version: False to skip the version check (e.g. to inspect an old submission).

    Returns:
        The checked Submission, ``root`` = ``destination``.

    Raises:
        SubmissionError: with every problem found.
    """
    zip_path, destination = Path(zip_path), Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ValueError(f"{destination} exists and is not an empty folder")
    problems = []
    try:
        name, number = parse_zip_name(zip_path.name)
    except SubmissionError as error:
        problems += error.problems
        name = number = None
    try:
        return _read_zip(zip_path, destination, problems, (name, number) if name else None,
                         expected_version=expected_version, check_version=check_version)
    except SubmissionError as error:
        error.file_name = (name, number) if name else None
        raise


def _read_zip(zip_path: Path, destination: Path, problems: list[str], file_name: tuple[str, str] | None, *,
              expected_version: str | None, check_version: bool) -> Submission:
    """``read_submission`` once the file name was parsed (``file_name``; its problems in ``problems``)."""
    try:
        size = zip_path.stat().st_size
    except OSError as error:
        raise SubmissionError(f"cannot read {zip_path}: {error.strerror or error}.") from None
    if size > MAX_TOTAL_BYTES:
        raise SubmissionError(problems + [f"the zip is {size / 2**20:.1f} MB, more than the limit of "
                                          f"{MAX_TOTAL_BYTES // 2**20} MB."])
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise SubmissionError(problems + [f"{zip_path.name} is not a readable zip file ({error}): make it "
                                          f"again with `python -m grader submit`."]) from None
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ENTRIES:
            raise SubmissionError(problems + [f"the zip has {len(entries)} entries, more than {MAX_ENTRIES}."])
        unsafe = [p for p in map(_entry_problem, entries) if p]
        if unsafe:
            raise SubmissionError(problems + unsafe + ["make the zip with `python -m grader submit`."])
        files = [info for info in entries if not info.is_dir()]
        seen, duplicates = set(), set()
        for info in files:
            (duplicates if info.filename in seen else seen).add(info.filename)
        if duplicates:
            problems.append(f"the zip holds {', '.join(sorted(duplicates))} more than once.")
        problems += size_problems({info.filename: info.file_size for info in files})
        if problems:
            raise SubmissionError(problems)

        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
        try:
            total = 0
            for info in files:
                target = staging.joinpath(*info.filename.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with archive.open(info) as source, open(target, "xb") as out:
                        while chunk := source.read(2**20):
                            total += len(chunk)
                            if total > MAX_TOTAL_BYTES:
                                raise SubmissionError(f"the files unpack to more than {MAX_TOTAL_BYTES // 2**20} MB.")
                            out.write(chunk)
                except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                    raise SubmissionError(f"{info.filename} in the zip is damaged ({error}): make the zip "
                                          f"again with `python -m grader submit`.") from None
            submission = check_folder(staging, expected_version=expected_version, check_version=check_version,
                                      file_name=file_name)
            if destination.exists():
                destination.rmdir()
            os.replace(staging, destination)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    submission.root = destination
    return submission


def _list_files(root: Path) -> tuple[list[str], list[str]]:
    """(relative POSIX paths of regular files, paths of links or other non-files) under ``root``."""
    files, odd = [], []
    for current, folders, names in os.walk(root, followlinks=False):
        for entry in [*folders, *names]:
            path = Path(current, entry)
            relative = path.relative_to(root).as_posix()
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                odd.append(relative)
            elif path.is_file():
                files.append(relative)
    return sorted(files), sorted(odd)


def check_folder(root: str | os.PathLike, *, expected_version: str | None = None, check_version: bool = True,
                 file_name: tuple[str, str] | None = None) -> Submission:
    """Checks an unpacked submission: layout, manifest, hashes, version, name.

    Args:
        root: the folder holding maml.py, report.md, results/, SUBMISSION.json.
        expected_version: the handout version being graded (default: this handout's).
        check_version: False to skip the version check.
        file_name: (name, student number) from the zip's file name, which the
            manifest must agree with (None: not checked, e.g. Gradescope renames uploads).

    Raises:
        SubmissionError: with every problem found.
    """
    root = Path(root)
    files, odd = _list_files(root)
    if odd:
        raise SubmissionError(f"links or special files are not allowed: {', '.join(odd)}.")
    too_large = size_problems({p: (root / p).stat().st_size for p in files})  # before reading any of them
    if too_large:
        raise SubmissionError(too_large)
    problems = layout_problems(files)
    if MANIFEST not in files:
        raise SubmissionError(problems + [f"{MANIFEST} is missing: the zip was not made by "
                                          f"`python -m grader submit`. Make it with that command."])
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise TypeError("no 'files' object")
        listed = manifest["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise SubmissionError(problems + [f"{MANIFEST} is damaged ({type(error).__name__}: {error}): make the "
                                          f"zip again with `python -m grader submit`."]) from None
    present = set(files) - {MANIFEST}
    changed = sorted(p for p in present & set(listed) if sha256((root / p).read_bytes()) != listed[p])
    if changed:
        problems.append(f"changed after the zip was made (SHA-256 differs from {MANIFEST}): {', '.join(changed)}. "
                        f"Do not edit the zip by hand: run `python -m grader submit` again.")
    unlisted = sorted(present - set(listed))
    if unlisted:
        problems.append(f"added after the zip was made (not in {MANIFEST}): {', '.join(unlisted)}. "
                        f"Run `python -m grader submit` again instead of editing the zip.")
    gone = sorted(set(listed) - present)
    if gone:
        problems.append(f"listed in {MANIFEST} but not in the zip: {', '.join(gone)}. "
                        f"Run `python -m grader submit` again.")
    name, number = str(manifest.get("name", "")), str(manifest.get("student_number", ""))
    try:
        if zip_name(name, number) != ZIP_NAME.format(Name=name, StudentNumber=number):
            problems.append(f"{MANIFEST} holds the name {name!r} and number {number!r} in a non-canonical form.")
    except SubmissionError as error:
        problems += [f"{MANIFEST}: {p}" for p in error.problems]
    if file_name is not None and tuple(file_name) != (name, number):
        problems.append(f"the file name says {file_name[0]} {file_name[1]} but the zip was made for {name} "
                        f"{number}: do not rename the zip; make it again with `python -m grader submit`.")
    found_version = str(manifest.get("version", ""))
    if check_version:
        try:
            handout_version.check(found_version, expected_version)
        except handout_version.VersionMismatch as error:
            problems.append(str(error))
    if problems:
        raise SubmissionError(problems)
    return Submission(root, name, number, found_version, dict(sorted(listed.items())), manifest)
