"""The autograder bundle (``dist/autograder.zip``), built from the same handout.

Gradescope's layout (gradescope-autograders.readthedocs.io, "Autograder
Specifications"): ``setup.sh`` and ``run_autograder`` at the top of the zip,
everything else under ``source/`` (unpacked to ``/autograder/source``). Here
``source/`` is the handout itself, so the bundle grades with exactly the
public tests, fixtures and ``grader/VERSION`` the students got, plus the
hidden tests (``AUTOGRADER_FILES``: ``instructor/autograder/``, with their
fixtures and probe modules, at the same paths as in the instructor's tree) and
the solved student files in ``instructor/autograder/reference/`` (the hidden
tests measure trained weights with them, in the grader's reference worker only, never the
student's).

``setup.sh`` (run once, as root, with internet, when Gradescope builds the
image) installs Python and the pinned requirements into ``/opt/autograder``,
readable by every user so the student's code can run as an unprivileged one,
and downloads and preprocesses Omniglot there (``load_data`` verifies the
zips); the bundle does not carry the data. ``run_autograder`` makes
``source/`` private to root and runs ``python -m grader.gradescope``, which
always writes ``/autograder/results/results.json``.

``AUTOGRADER_ROOT``, ``AUTOGRADER_OPT``, ``PYTHON`` and ``OMNIGLOT_DATA_DIR``
override ``/autograder``, ``/opt/autograder``, the installed interpreter and
the data folder, so the bundle can be run in a folder that recreates
Gradescope's layout (``python -m instructor.gradescope_local``).
"""

from __future__ import annotations

import json
from pathlib import Path

from grader.late import POLICY_FILE, Policy

from instructor.autograder.tests import seeds

from . import archive
from .build import Handout

PYTHON_VERSION = "3.11"  # the version the requirements are tested with (requirements.txt)
UV_VERSION = "0.13.9"
# Instructor-only files the autograder needs (hidden tests, their fixtures and probes), as glob patterns.
AUTOGRADER_FILES = ("instructor/__init__.py", "instructor/autograder/**/*")
# The solved student files, for the hidden tests' trusted measurements in the reference worker (never the
# student's worker): instructor/autograder/tests/reference.py imports them from here.
REFERENCE_DIR = "instructor/autograder/reference"
REFERENCE_FILES = ("maml.py", "maml_transfer.py")
SEED_KEY = seeds.KEY_FILE.relative_to(seeds.KEY_FILE.parents[1]).as_posix()  # instructor/grading-seed.key

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope setup, built by `python -m instructor.release` (handout {version}).
# Runs once, as root and with internet access, when Gradescope builds the autograder image.
set -euo pipefail
umask 022  # everything installed here must be readable by the unprivileged user the student's code runs as
AUTOGRADER="${{AUTOGRADER_ROOT:-/autograder}}"
OPT="${{AUTOGRADER_OPT:-/opt/autograder}}"
export OMNIGLOT_DATA_DIR="${{OMNIGLOT_DATA_DIR:-$OPT/omniglot}}"
mkdir -p "$OPT"

# 1. Python {python_version} and the pinned requirements. Gradescope's base images are Ubuntu releases whose
#    python3 may be older (or newer) than the version the requirements are tested with, so uv installs a
#    standalone CPython {python_version} and a virtual environment in $OPT -- not under /root, which other users
#    cannot read. Set PYTHON to use an interpreter that already has the requirements (local runs).
if [ -z "${{PYTHON:-}}" ]; then
    if ! command -v curl >/dev/null; then
        apt-get update && apt-get install -y --no-install-recommends curl ca-certificates
    fi
    curl -LsSf https://astral.sh/uv/{uv_version}/install.sh | env UV_UNMANAGED_INSTALL="$OPT/uv" sh
    export UV_PYTHON_INSTALL_DIR="$OPT/python" UV_CACHE_DIR="$OPT/uv-cache"
    "$OPT/uv/uv" python install {python_version}
    "$OPT/uv/uv" venv --python {python_version} "$OPT/venv"
    "$OPT/uv/uv" pip install --python "$OPT/venv/bin/python" -r "$AUTOGRADER/source/requirements.txt"
    rm -rf "$OPT/uv-cache"
    PYTHON="$OPT/venv/bin/python"
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
"$PYTHON" -c 'import numpy, tensorflow, pytest'

# 2. Omniglot: downloaded from the official release (or $OMNIGLOT_MIRROR), verified and preprocessed once,
#    here, so grading needs no network. Readable by every user (the student's code trains on it).
cd "$AUTOGRADER/source"
"$PYTHON" -c 'import load_data; load_data.load_omniglot(progress=False)'
chmod -R a+rX "$OMNIGLOT_DATA_DIR"

# 3. TensorFlow compiled once, here, for the processes that run the student's code (grader/bytecode.py): they
#    read compiled files only from this folder, so each one starts in ~5 s instead of ~14 s of CPU.
GRADER_BYTECODE_CACHE="$OPT/bytecode" "$PYTHON" -m grader.bytecode
echo "autograder ready: $("$PYTHON" --version), data in $OMNIGLOT_DATA_DIR"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope entry point, built by `python -m instructor.release` (handout {version}).
# Grades $AUTOGRADER_ROOT/submission and always writes $AUTOGRADER_ROOT/results/results.json.
# Arguments are passed on to `python -m grader.gradescope` (e.g. --public-only, -k EXPRESSION).
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
OPT="${{AUTOGRADER_OPT:-/opt/autograder}}"
PYTHON="${{PYTHON:-$OPT/venv/bin/python}}"
export OMNIGLOT_DATA_DIR="${{OMNIGLOT_DATA_DIR:-$OPT/omniglot}}"
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONDONTWRITEBYTECODE=1
# TensorFlow compiled by setup.sh (grader/bytecode.py); without it (a local run) the grader's user's cache is used
if [ -d "$OPT/bytecode" ]; then export GRADER_BYTECODE_CACHE="$OPT/bytecode"; fi
# hidden tests' results reach students after the due date; a course that shows them at once writes visible here
export GRADER_HIDDEN_VISIBILITY="${{GRADER_HIDDEN_VISIBILITY:-after_due_date}}"
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"
chmod -R go-rwx "$ROOT/source"  # the hidden tests and expected values: root only, never the student's code
cd "$ROOT/source"
# The "Autograder timeout" chosen in Gradescope's Autograder Settings, in seconds: grading plans within it
# (a check that would not finish in time scores 0 with that reason, instead of Gradescope stopping everything).
TIMEOUT="${{GRADER_PLATFORM_TIMEOUT:-{timeout}}}"
"$PYTHON" -m grader.gradescope --submission "$ROOT/submission" --results "$RESULTS" --timeout "$TIMEOUT" "$@"
status=$?
if [ ! -s "$RESULTS" ]; then  # the grader could not even start: still a valid results file
    printf '{{"score": 0, "tests": [], "output": "The autograder could not start (exit status %s); please tell the course staff."}}\n' "$status" > "$RESULTS"
fi
exit 0
"""

# The Gradescope "Autograder Settings" this bundle is measured for (README, "Grading inside Gradescope's
# limits"): instructor/benchmark_grading.py grades the reference and a 3x slower correct submission fully in
# this shape, with 40 % headroom in time and 25 % in memory; run_autograder plans within this timeout.
GRADESCOPE_SETTINGS = {"cpus": 1.0, "memory": "2G", "timeout": 1200}
SETTINGS_TXT = """\
Gradescope settings for this autograder (handout {version})
===========================================================

In the assignment's "Configure Autograder" page:

  Autograder timeout:  {minutes} minutes ({timeout} s)
  CPU / memory:        {cpus:g} vCPU, {memory}B of memory, or more

run_autograder plans the grading within {timeout} s: every check runs, and one that would not fit
scores 0 with that reason instead of Gradescope stopping the whole run. If you choose another
timeout (40 minutes at most), set GRADER_PLATFORM_TIMEOUT to the same number of seconds in
run_autograder. With Gradescope's defaults (0.5 vCPU, 768 MB, 10 minutes) two training checks do
not fit and say so instead of running, for every student alike: FO-MAML's (in the 40 points)
needs about 900 MB, the extra credit's MAML++ about 1.3 GB. The measurements behind these
numbers: README of the assignment's source, "Grading inside Gradescope's limits"
(python -m instructor.benchmark_grading).

Set the assignment's autograder points to 40: the MAML++ extra credit (8 points) comes on top.
"""

EXECUTABLES = frozenset({"setup.sh", "run_autograder"})


def autograder_files(root: str | Path) -> dict[str, bytes]:
    """The instructor-only files of ``AUTOGRADER_FILES`` in the repository at ``root`` (path -> content)."""
    root = Path(root)
    found = {}
    for pattern in AUTOGRADER_FILES:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def bundle_files(handout: Handout, root: str | Path | None = None, late_policy: Policy | None = None) -> dict[str, bytes]:
    """Path -> content of every file of the bundle (with the hidden tests of ``root``, when given).

    ``late_policy`` (``course.toml``'s ``[late]``, read by ``instructor.late.load_policy``) goes in as
    ``source/`` + ``grader.late.POLICY_FILE``, JSON: the autograder applies it inside Gradescope.
    """
    files = {f"source/{path}": content for path, content in handout.files.items()}
    if late_policy is not None:
        files[f"source/{POLICY_FILE}"] = (json.dumps(late_policy.to_json(), indent=2, sort_keys=True) + "\n").encode()
    if root is not None:
        files.update({f"source/{path}": content for path, content in autograder_files(root).items()})
        # the course's seed key (made now if there is none): the same code gets the same grading seeds here
        # as in a local regrade (instructor/autograder/tests/seeds.py)
        key_file = Path(root) / SEED_KEY
        files[f"source/{SEED_KEY}"] = seeds.key(key_file)
        files.update({f"source/{REFERENCE_DIR}/{name}": handout.stubbed[name].solved.encode("utf-8")
                      for name in REFERENCE_FILES if name in handout.stubbed})
    settings = {"version": handout.version, "python_version": PYTHON_VERSION, "uv_version": UV_VERSION,
                "timeout": GRADESCOPE_SETTINGS["timeout"]}
    files["setup.sh"] = SETUP_SH.format(**settings).encode()
    files["GRADESCOPE_SETTINGS.txt"] = SETTINGS_TXT.format(
        version=handout.version, minutes=GRADESCOPE_SETTINGS["timeout"] // 60, **GRADESCOPE_SETTINGS).encode()
    files["run_autograder"] = RUN_AUTOGRADER.format(**settings).encode()
    return files


def write_bundle(handout: Handout, out: str | Path, root: str | Path | None = None,
                 late_policy: Policy | None = None) -> Path:
    """Writes ``out/autograder.zip`` atomically; returns its path.

    Args:
        root: the instructor's repository, whose hidden tests go in (None: public tests only).
        late_policy: the late rule the autograder applies inside Gradescope (None: no penalty).
    """
    path = Path(out) / "autograder.zip"
    archive.write_atomic(path, archive.zip_bytes(bundle_files(handout, root, late_policy), executables=EXECUTABLES))
    return path
