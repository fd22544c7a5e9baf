"""Assembles the student handout from the instructor's source, in memory, then writes it.

``build_handout`` reads the repository and returns a ``Handout``: every file's
path and bytes, the stubbed sources and the version. Nothing is written until
every guard has passed (markers, compilation, leak checks), so a failed
release leaves ``dist/`` as it was. ``write_handout`` then writes
``dist/handout/`` and ``dist/handout.zip``, each atomically.

The student layout is an allowlist (``HANDOUT_PATTERNS``): nothing else can
reach the handout, whatever else the repository holds.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.sandbox import SCAFFOLD_FILES, STUDENT_FILES
from instructor.course import COURSE_FILE
from load_data import replace_folder

from . import archive, config, leaks, markers

STUDENT_CODE = (*STUDENT_FILES, *SCAFFOLD_FILES)
NOTEBOOK = "assignment2.ipynb"  # the README's steps as notebook cells, for Colab and Jupyter
PLAIN_FILES = ("requirements.txt", "requirements-base.txt", "requirements-gpu.txt", "report_template.md",
               NOTEBOOK)
GRADER_PATTERNS = ("grader/*.py", "grader/pytest.ini", "grader/tests/*.py", "grader/fixtures/*.npz")
README = "README.md"
VERSION = "grader/VERSION"
HANDOUT_PATTERNS = (*STUDENT_CODE, *PLAIN_FILES, *GRADER_PATTERNS, README, VERSION)
README_TEMPLATE = "instructor/handout/README.md"
CONFIG = COURSE_FILE  # the release settings: course.toml, relative to the released root
INSTRUCTOR_ONLY = ("instructor", "tests")  # folders whose files must never be copied into the handout
NOT_GRADED = (README, "report_template.md", NOTEBOOK, VERSION)  # left out of the version digest


class ReleaseError(RuntimeError):
    """The release cannot be built; the message says why and how to fix it."""


@dataclass
class Handout:
    """A built handout, not yet written anywhere."""

    files: dict[str, bytes]  # handout path -> content
    stubbed: dict[str, markers.StubbedFile]  # every .py file, after stubbing
    version: str
    folder: str  # top folder inside the zip
    missing: list[str] = field(default_factory=list)  # student files absent from the source
    warnings: list[str] = field(default_factory=list)

    @property
    def todos(self) -> dict[str, list[str]]:
        return {path: f.todos for path, f in self.stubbed.items() if f.todos}

    def zip_bytes(self) -> bytes:
        return archive.zip_bytes(self.files, prefix=f"{self.folder}/")

    def text_files(self) -> dict[str, str]:
        texts = {}
        for path, content in self.files.items():
            try:
                texts[path] = content.decode("utf-8")
            except UnicodeDecodeError:
                continue
        return texts


def _grader_files(root: Path) -> list[str]:
    found = set()
    for pattern in GRADER_PATTERNS:
        found.update(p.relative_to(root).as_posix() for p in root.glob(pattern)
                     if p.is_file() and "__pycache__" not in p.parts)
    return sorted(found - {VERSION})


def instructor_files(root: Path) -> dict[str, bytes]:
    """Every instructor-only file (instructor/, tests/), path -> content."""
    files = {}
    for folder in INSTRUCTOR_ONLY:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def version_digest(files: dict[str, bytes]) -> str:
    """SHA-256 (12 hex digits) of the graded material: all files but the README, report and VERSION."""
    digest = hashlib.sha256()
    for path in sorted(files):
        if path not in NOT_GRADED:
            digest.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return digest.hexdigest()[:12]


def build_handout(root: str | Path, config_path: str | Path | None = None,
                  allow_missing: bool = False) -> Handout:
    """Builds the handout of the repository at ``root`` in memory.

    Args:
        root: the instructor's repository.
        config_path: the release settings (default ``root/instructor/course.toml``).
        allow_missing: build even if a student file (e.g. ``maml_transfer.py``)
            is not in the source yet; it is then listed in ``Handout.missing``.

    Raises:
        ReleaseError: a missing file, bad markers (file and line), a stub that
            does not compile, a leak, or a bad config.
    """
    root = Path(root).resolve()
    try:
        settings = config.load_config(config_path or root / CONFIG)
    except config.ConfigError as error:
        raise ReleaseError(str(error)) from None
    files: dict[str, bytes] = {}
    missing = []
    for path in (*STUDENT_CODE, *PLAIN_FILES):
        if (root / path).is_file():
            files[path] = (root / path).read_bytes()
        else:
            missing.append(path)
    if missing and not allow_missing:
        raise ReleaseError(f"not in the source yet: {', '.join(missing)}. The handout would lack them; "
                           f"add them, or pass --allow-missing to build a partial handout for testing.")
    for path in _grader_files(root):
        files[path] = (root / path).read_bytes()
    if not any(p.startswith("grader/tests/") for p in files):
        raise ReleaseError(f"no public tests in {root / 'grader/tests'}: the handout's grader would have nothing to run")

    stubbed = {}
    for path in sorted(p for p in files if p.endswith(".py")):
        try:
            stubbed[path] = markers.stub_source(files[path].decode("utf-8"), path)
        except markers.MarkerError as error:
            raise ReleaseError(str(error)) from None
        files[path] = stubbed[path].handout.encode("utf-8")

    template_path = root / README_TEMPLATE
    if not template_path.is_file():
        raise ReleaseError(f"the student README template {template_path} is missing")
    digest = version_digest(files)
    version = f"{settings.version}+{digest}"
    try:
        readme = config.fill(template_path.read_text(encoding="utf-8"),
                             {**settings.values, "assignment.full_version": version}, README_TEMPLATE)
    except config.ConfigError as error:
        raise ReleaseError(str(error)) from None
    files[README] = readme.encode("utf-8")
    files[VERSION] = (version + "\n").encode()

    handout = Handout(dict(sorted(files.items())), stubbed, version, settings.folder, missing)
    handout.warnings += [f"{settings.path.name}: {key} is still {settings.values[key]!r}" for key in settings.unset()]
    handout.warnings += [f"{path} is not in the source yet: the handout lacks it" for path in missing]
    problems = check_handout(handout, root)
    if problems:
        raise ReleaseError("the handout failed its leak checks:\n  " + "\n  ".join(problems))
    return handout


def check_handout(handout: Handout, root: Path) -> list[str]:
    """All leak-check problems of a built handout (empty: it is clean)."""
    return (leaks.forbidden_files(handout.files, HANDOUT_PATTERNS, instructor_files(root))
            + leaks.solution_leaks(handout.stubbed.values(), handout.text_files()))


def write_handout(handout: Handout, out: str | Path) -> tuple[Path, Path]:
    """Writes ``out/handout/`` and ``out/handout.zip``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".handout.new-", dir=out))
    try:
        for path, content in handout.files.items():
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(archive.FILE_MODE)
        replace_folder(staging, out / "handout")
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    zip_path = out / "handout.zip"
    archive.write_atomic(zip_path, handout.zip_bytes())
    return out / "handout", zip_path


def public_tests_cover(handout: Handout) -> dict[str, bool]:
    """For each TODO, whether the public tests mention it (every part of its name is in grader/tests)."""
    tests = "\n".join(text for path, text in handout.text_files().items() if path.startswith("grader/tests/"))
    return {todo: all(part in tests for part in todo.split(".") if part != "<locals>")
            for todos in handout.todos.values() for todo in todos}
