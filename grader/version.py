"""The assignment version this handout (or autograder bundle) was built as.

The release tool writes ``grader/VERSION``: ``RELEASE+DIGEST``, where RELEASE is
the instructor's version name (``instructor/course.toml``) and DIGEST the
first 12 hex digits of a SHA-256 over the graded material (every ``.py`` file,
the public fixtures, ``requirements.txt``). The handout and the autograder
bundle of one release carry the same string, so a grader can refuse a
submission made from another handout with a clear message (``check``).

In the instructor's source, where no release has stamped it yet, the version
is ``UNRELEASED``.
"""

from __future__ import annotations

from pathlib import Path

VERSION_FILE = Path(__file__).resolve().with_name("VERSION")
UNRELEASED = "unreleased"


class VersionMismatch(ValueError):
    """A submission was made from another handout than the one being graded."""


def current() -> str:
    """This copy's version (``UNRELEASED`` in the instructor's source)."""
    try:
        return VERSION_FILE.read_text(encoding="utf-8").strip() or UNRELEASED
    except FileNotFoundError:
        return UNRELEASED


def check(found: str, expected: str | None = None) -> None:
    """Raises VersionMismatch unless ``found`` is the expected version.

    Args:
        found: the version a submission says it was made from.
        expected: the version being graded (default: this copy's).
    """
    expected = current() if expected is None else expected
    found = found.strip()
    if found == expected:
        return
    release, _, digest = expected.partition("+")
    found_release, _, found_digest = found.partition("+")
    if found_release == release:
        raise VersionMismatch(
            f"this submission was made from another build of handout {release} (code {found_digest or '?'}, "
            f"expected {digest or '?'}): the handout was updated after you downloaded it. Download the "
            f"current handout, copy your solutions into it, check with `python -m grader`, and submit again.")
    raise VersionMismatch(
        f"this submission was made from handout version {found or '(none)'}, but this grader grades "
        f"version {expected}. Download the current handout, copy your solutions into it, check with "
        f"`python -m grader`, and submit again.")
