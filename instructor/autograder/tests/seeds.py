"""Seeds the hidden checks draw: unknown to the student's code, and the same at every grading of the same code.

The training check starts the student's training from an initialisation the
student's code cannot know in advance (weights embedded in ``maml.py`` must not
be reachable from it), and the transfer check adapts heads on validation tasks
it cannot know either. A fresh random seed at every grading did that, but then
two gradings of one submission trained from different starting points and
could give different scores. Here a seed is

    HMAC-SHA256(key, purpose + the digest of the student's files)  (31 bits)

so it changes with every change of the code (no submission can be written for
a known seed) and is the same when the same code is graded again, locally or on
Gradescope with the same key.

The key: ``GRADER_SEED_KEY`` if set, else the file ``KEY_FILE`` (made on first
use, 32 random bytes, mode 0600; never committed: ``.gitignore``). The release
tool makes it before it builds the bundle (``instructor.release.bundle``), so
the bundle grades with the instructor's key. Student code cannot read it where
it cannot read the hidden tests (the filesystem view; Gradescope's root-only
``source/``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

KEY_ENV = "GRADER_SEED_KEY"
# instructor/grading-seed.key: outside the folders the tamper check watches (grader.runner.WATCHED), because
# a grading may be the first use and make it, and that must not read as the grader's files changing.
KEY_FILE = Path(__file__).resolve().parents[2] / "grading-seed.key"


def key(path: Path = KEY_FILE) -> bytes:
    """The course's seed key (see the module docstring); made once, atomically, if there is none."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return configured.encode()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    descriptor, temporary = tempfile.mkstemp(prefix=".seed-key-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        try:
            os.link(temporary, path)  # fails if another grading made one first: then that one is the key
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    return path.read_bytes()


def seed(purpose: str, code_digest: str) -> int:
    """A seed for ``purpose`` (e.g. "fomaml_training") and the student's code (``Sandbox.code_digest``)."""
    mac = hmac.new(key(), f"{purpose}\0{code_digest}".encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:4], "big") >> 1  # 31 bits: what `python maml.py --seed` and numpy accept
