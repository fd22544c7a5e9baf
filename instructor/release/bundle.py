"""The autograder bundle (``dist/autograder.zip``), built from the same handout.

Gradescope's layout: ``setup.sh`` and ``run_autograder`` at the top of the zip,
everything else under ``source/`` (unpacked to ``/autograder/source``). Here
``source/`` is the handout itself, so the bundle grades with exactly the
public tests, fixtures and ``grader/VERSION`` the students got;
``run_autograder`` copies the student's files over the stubs and runs
``python -m grader.gradescope``, which always writes
``/autograder/results/results.json``.

This is the minimal path; hidden tests, isolation and batch grading are the
autograder's (see the README). ``AUTOGRADER_ROOT`` and ``PYTHON`` override
``/autograder`` and ``python3``, so the bundle can be run in a folder that
recreates Gradescope's layout.
"""

from __future__ import annotations

from pathlib import Path

from . import archive
from .build import Handout

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope setup, built by `python -m instructor.release` (handout {version}).
set -euo pipefail
PYTHON="${{PYTHON:-python3}}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
cd "${{AUTOGRADER_ROOT:-/autograder}}/source"
"$PYTHON" -m pip install --no-cache-dir -r requirements.txt
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope entry point, built by `python -m instructor.release` (handout {version}).
# Grades $AUTOGRADER_ROOT/submission and writes $AUTOGRADER_ROOT/results/results.json.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
cd "$ROOT/source"
export TF_CPP_MIN_LOG_LEVEL=2
exec "${{PYTHON:-python3}}" -m grader.gradescope --submission "$ROOT/submission" \\
    --results "$ROOT/results/results.json"
"""

EXECUTABLES = frozenset({"setup.sh", "run_autograder"})


def bundle_files(handout: Handout) -> dict[str, bytes]:
    """Path -> content of every file of the bundle."""
    files = {f"source/{path}": content for path, content in handout.files.items()}
    files["setup.sh"] = SETUP_SH.format(version=handout.version).encode()
    files["run_autograder"] = RUN_AUTOGRADER.format(version=handout.version).encode()
    return files


def write_bundle(handout: Handout, out: str | Path) -> Path:
    """Writes ``out/autograder.zip`` atomically; returns its path."""
    path = Path(out) / "autograder.zip"
    archive.write_atomic(path, archive.zip_bytes(bundle_files(handout), executables=EXECUTABLES))
    return path
