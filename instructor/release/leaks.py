"""Leak checks: nothing of the solutions and nothing instructor-only reaches the handout.

Two checks, both run by every release (``build.build_handout``) and by the tests:

* ``solution_leaks``: token streams, not lines. Every file of the handout that
  is text (code, README, ini) is cut into tokens (identifiers, numbers, single
  punctuation characters; whitespace, line breaks and ``#`` ignored, so a
  re-wrapped or commented-out copy still matches). A solution leaks when a
  whole solution line of at least ``MIN_LINE_TOKENS`` tokens, or any
  ``WINDOW`` consecutive tokens of a solution block, appear in the handout,
  unless the same tokens also appear in the *public* part of the sources (the
  lines outside the markers, found here by a plain line scan independent of the
  stubber, plus PROMPT blocks): shared idioms such as
  ``with tf.GradientTape() as tape:`` and hints the instructor wrote in a
  docstring on purpose are not leaks, a copy of a solution line in the README
  or a solution block the stubber missed is.
* ``forbidden_files``: the handout holds only the student layout (paths are
  checked against ``build.HANDOUT_PATTERNS``), no copy of any instructor-only
  file (hidden tests, fixture generator), no marker text, and no ``.npz`` but
  the small public fixtures (an array as large as a trained layer is refused).
"""

from __future__ import annotations

import fnmatch
import io
import re
import zipfile
from collections.abc import Iterable, Mapping

import numpy as np

from .markers import BLOCK_MARKERS, SOLUTION_LINE, StubbedFile

MIN_LINE_TOKENS = 6
WINDOW = 10
MAX_FIXTURE_ARRAY = 20_000  # float elements; a 64x64x3x3 conv kernel has 36 864 (uint8 drawings do not count)

_TOKEN = re.compile(r"\w+|[^\w\s#]")


def tokens(text: str) -> list[tuple[str, int]]:
    """(token, 1-based line) pairs of ``text``."""
    out, line, last = [], 1, 0
    for match in _TOKEN.finditer(text):
        line += text.count("\n", last, match.start())
        last = match.start()
        out.append((match.group(), line))
    return out


def public_text(source: str) -> str:
    """The lines of a source outside solution blocks and ``# SOLUTION`` lines (plain scan)."""
    keep, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == "# BEGIN SOLUTION":
            inside = True
        elif stripped == "# END SOLUTION":
            inside = False
        elif not inside and not line.rstrip().endswith(SOLUTION_LINE):
            keep.append(line)
    return "\n".join(keep)


class _Index:
    """Where each n-token sequence occurs in a set of texts, built per n on demand."""

    def __init__(self, texts: Mapping[str, str]):
        self.streams = {path: tokens(text) for path, text in texts.items()}
        self.by_length: dict[int, dict[tuple[str, ...], tuple[str, int]]] = {}

    def find(self, sequence: tuple[str, ...]) -> tuple[str, int] | None:
        n = len(sequence)
        if n not in self.by_length:
            index: dict[tuple[str, ...], tuple[str, int]] = {}
            for path, stream in self.streams.items():
                words = [t for t, _ in stream]
                for i in range(len(words) - n + 1):
                    index.setdefault(tuple(words[i:i + n]), (path, stream[i][1]))
            self.by_length[n] = index
        return self.by_length[n].get(sequence)


def solution_leaks(stubbed: Iterable[StubbedFile], handout_texts: Mapping[str, str]) -> list[str]:
    """Messages, one per leaked solution line or window (empty: no leak).

    Args:
        stubbed: the stubbed source files (their ``source`` and ``blocks``).
        handout_texts: every text file of the handout, path -> content.
    """
    stubbed = list(stubbed)
    handout = _Index(handout_texts)
    public = _Index({f.path: public_text(f.source) for f in stubbed})
    leaks: list[str] = []
    seen: set[tuple[str, int]] = set()  # one message per leaked handout line

    def check(sequence: tuple[str, ...], origin: str) -> None:
        where = handout.find(sequence)
        if where and where not in seen and public.find(sequence) is None:
            seen.add(where)
            leaks.append(f"{where[0]}:{where[1]}: holds solution code from {origin}: {' '.join(sequence)!r}")

    for f in stubbed:
        for block in f.blocks:
            stream = tokens("".join(block.solution))
            words = tuple(t for t, _ in stream)
            for i in range(len(words) - WINDOW + 1):
                check(words[i:i + WINDOW], f"{f.path}:{block.begin + stream[i][1]} ({block.function})")
            for offset, line in enumerate(block.solution, start=1):  # longer lines: the windows cover them
                line_words = tuple(t for t, _ in tokens(line))
                if MIN_LINE_TOKENS <= len(line_words) < WINDOW:
                    check(line_words, f"{f.path}:{block.begin + offset} ({block.function})")
        for number, line in f.solution_lines:
            line_words = tuple(t for t, _ in tokens(line.split(SOLUTION_LINE)[0]))
            for i in range(0, max(1, len(line_words) - WINDOW + 1)):
                if len(line_words) >= MIN_LINE_TOKENS:
                    check(line_words[i:i + WINDOW], f"{f.path}:{number} (a '# SOLUTION' line)")
    return leaks


def in_layout(path: str, pattern: str) -> bool:
    """``fnmatch`` per path segment: "grader/*.py" matches "grader/a.py", not "grader/x/a.py"."""
    parts, pattern_parts = path.split("/"), pattern.split("/")
    return len(parts) == len(pattern_parts) and all(
        fnmatch.fnmatchcase(part, p) for part, p in zip(parts, pattern_parts))


def forbidden_files(handout: Mapping[str, bytes], patterns: Iterable[str],
                    instructor_files: Mapping[str, bytes]) -> list[str]:
    """Messages, one per file that must not be in the handout (empty: none).

    Args:
        handout: path -> content of every handout file.
        patterns: ``fnmatch`` patterns of the paths a handout may hold.
        instructor_files: path -> content of the instructor-only files
            (``instructor/``, ``tests/``): no handout file may equal one.
    """
    patterns = list(patterns)
    secret = {content: path for path, content in instructor_files.items() if content.strip()}
    problems = []
    for path, content in sorted(handout.items()):
        if not any(in_layout(path, pattern) for pattern in patterns):
            problems.append(f"{path}: not part of the student layout")
        if content in secret:
            problems.append(f"{path}: is a copy of the instructor-only file {secret[content]}")
        if path.endswith(".npz"):
            problems.extend(_weights_in(path, content))
        elif any(marker.encode() in content for marker in BLOCK_MARKERS):
            problems.append(f"{path}: contains solution marker text")
    return problems


def _weights_in(path: str, content: bytes) -> list[str]:
    try:
        with np.load(io.BytesIO(content)) as arrays:
            # weights are floating point; Omniglot drawings are stored as uint8 and are public data
            sizes = {name: arrays[name].size for name in arrays.files if arrays[name].dtype.kind == "f"}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        return [f"{path}: not a readable .npz ({error})"]
    return [f"{path}: array {name!r} has {size} elements, as large as trained weights; "
            f"public fixtures must stay tiny" for name, size in sizes.items() if size > MAX_FIXTURE_ARRAY]
