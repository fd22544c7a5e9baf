"""The workers' compiled-file cache: TensorFlow compiled once per machine, by the grader, never by student code.

A worker runs with ``-B -X pycache_prefix=CACHE``: it writes no compiled file,
and reads compiled files only from ``CACHE``, never from a ``__pycache__``
folder beside a source (so a compiled file planted in the worker's copy of
``grader/`` is never read). With an empty prefix every worker start compiles
TensorFlow's Python modules again: 13-15 s instead of 5 s per start on the
2-core reference machine (measured: ``python -I -B -X pycache_prefix=EMPTY -c
"import tensorflow"``), most of a short grading's CPU time.

``cache()`` returns a folder only the grader's user can write (checked, with
every folder above it), warmed once by a trusted process that imports the
installed packages the student's code uses (``WARM_IMPORTS``; no student code,
no grader test). In the student's filesystem view it is bound read-only
(``grader.mounts``). Python checks each compiled file against its source's
size and time, so a package upgraded later is compiled in memory, never
misread. A worker that runs as the grader's own user without the view
(``GRADER_USER=never``, or a grader that is not root where the system gives it
no user namespace) could write here, but it could as well write the
``__pycache__`` folders the grader's own processes read: that set-up is
trusted with the code it grades either way. ``GRADER_BYTECODE_CACHE`` names the folder (the autograder's
``setup.sh`` warms one in ``/opt/autograder`` when the image is built);
by default ``~/.cache/maml-grader/bytecode``.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

WARM_IMPORTS = ("tensorflow", "numpy", "tqdm", "matplotlib.pyplot")
WARM_SECONDS = 900  # the longest a warm-up may take (~15 s on 2 cores)


def warm_marker() -> str:
    """The marker of a cache warmed by this Python and these installed packages. One cache may serve several
    environments (a course venv, a handout's venv, a CI checkout at another path): the compiled files are kept
    by source path, so a marker left by another environment must not stop this one's warm-up. A package
    upgraded in place changes its source's time, and the cache is warmed again."""
    sources = [importlib.util.find_spec(name.partition(".")[0]) for name in WARM_IMPORTS]
    key = [sys.prefix, sys.executable] + [f"{spec.origin}:{os.stat(spec.origin).st_mtime_ns}"
                                          for spec in sources if spec and spec.origin]
    return f".warm-{sys.implementation.cache_tag}-{hashlib.sha256(chr(0).join(key).encode()).hexdigest()[:16]}"


def default_folder() -> Path:
    configured = os.environ.get("GRADER_BYTECODE_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "maml-grader" / "bytecode"


def _only_ours(folder: Path) -> bool:
    """Whether no other user can change ``folder`` or replace it: it and every folder above it belong to
    this user or root and are not writable by others (a sticky folder such as /tmp may be, above ours)."""
    me = os.geteuid()
    mode = folder.lstat()
    if stat.S_ISLNK(mode.st_mode) or mode.st_uid != me or mode.st_mode & 0o022:
        return False
    for parent in folder.parents:
        mode = parent.stat()
        if mode.st_uid not in (me, 0) or (mode.st_mode & 0o022 and not mode.st_mode & stat.S_ISVTX):
            return False
    return True


def warm(folder: Path, marker: Path) -> None:
    """Compiles ``WARM_IMPORTS`` and what they import into ``folder`` (once: ``marker`` says it was done)."""
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two graders starting at once: one compiles, the other waits
        if marker.exists():
            return
        code = "; ".join(f"import {name}" for name in WARM_IMPORTS)
        done = subprocess.run([sys.executable, "-I", "-X", f"pycache_prefix={folder}", "-c", code],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=WARM_SECONDS,
                              env={**os.environ, "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "3"},
                              umask=0o022, check=False)  # readable by the uid the student's code runs as
        if done.returncode == 0:
            marker.touch()


def cache(folder: Path | None = None) -> Path | None:
    """The warmed cache folder, or None where it cannot be kept safe (then workers compile at every start)."""
    folder = Path(os.path.abspath(folder or default_folder()))
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True)
            folder.chmod(0o755)
        if not _only_ours(folder):
            return None
        marker = folder / warm_marker()
        if not marker.exists():
            warm(folder, marker)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return folder


if __name__ == "__main__":  # setup.sh: python -m grader.bytecode
    made = cache()
    print(f"compiled-file cache: {made or 'not made (see grader/bytecode.py)'}")
    sys.exit(0 if made else 1)
