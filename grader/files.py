"""Where the handout's files are, and their digests: one definition for every grader module.

``ROOT`` is the handout folder: the instructor's source tree, a student's
handout, the autograder bundle's ``source/``, or, inside the process running
the student's code, its copy of the handout (``grader.sandbox``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRADER_DIR = ROOT / "grader"
STUDENT_FILES = ("maml.py", "maml_transfer.py")  # what a student writes and submits


def sha256(data: bytes) -> str:
    """SHA-256 of ``data``, in hex."""
    return hashlib.sha256(data).hexdigest()


def file_digests(*paths: str | os.PathLike, root: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of every file under ``paths`` (files or folders; missing ones are skipped), ``__pycache__`` aside.

    Returns:
        {path relative to ``root``, POSIX: hex digest}, sorted by path.
    """
    root = Path(root)
    digests = {}
    for top in map(Path, paths):
        found = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for path in found:
            if path.is_file() and "__pycache__" not in path.parts:
                digests[path.relative_to(root).as_posix()] = sha256(path.read_bytes())
    return dict(sorted(digests.items()))
