"""What the course-operations commands share: the course settings file and the columns of their tables.

Every command that runs the course (``instructor.lms``, ``instructor.late``,
``instructor.similarity``, ``instructor.rubric``, ``instructor.gradebook``)
reads its policy from ``instructor/course.toml`` and takes ``--config FILE``
to read another one instead, as ``python -m instructor.release --config``
does: e.g. a copy holding this term's deadline and extensions, kept out of
the repository.
"""

from __future__ import annotations

import argparse
import unicodedata
from pathlib import Path

from grader.files import ROOT

COURSE_FILE = "instructor/course.toml"  # in a repository (the release reads it in the root it releases)
COURSE_TOML = ROOT / COURSE_FILE


def add_config_argument(parser: argparse.ArgumentParser, reads: str) -> None:
    """Adds ``--config FILE`` (default ``instructor/course.toml``); ``reads`` names what the command takes from it."""
    parser.add_argument("--config", type=Path, default=COURSE_TOML,
                        help=f"the course settings: {reads} (default: instructor/course.toml)")


def width(text: str) -> int:
    """Terminal columns ``text`` takes: Hangul, CJK and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text)


def cell(text: object, columns: int) -> str:
    """``text`` cut to ``columns`` terminal columns and padded on the right to exactly that many."""
    text = str(text)
    while width(text) > columns:
        text = text[:-1]
    return text + " " * (columns - width(text))
