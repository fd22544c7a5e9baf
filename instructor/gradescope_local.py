"""Runs the autograder bundle on one submission in a folder laid out like Gradescope's ``/autograder``.

    python -m instructor.gradescope_local Kim_2020-12345_Assignment2.zip
    python -m instructor.gradescope_local SUBMISSION --bundle dist/autograder.zip --root /tmp/ag --keep
    python -m instructor.gradescope_local SUBMISSION --setup -- --public-only

Recreates Gradescope's layout in ``--root`` (default: a temporary folder that
stands for ``/autograder``): the bundle unpacked into ``source/`` with
``setup.sh`` and ``run_autograder`` beside it (permission bits restored, as
``unzip`` does), the submission in ``submission/`` (a zip is unpacked, as
Gradescope does with uploaded zips; ``--keep-zip`` puts the zip itself there)
and an empty ``results/``. With ``--setup`` it first runs ``setup.sh``
(installing nothing when ``--python`` names a ready interpreter, which is the
default: this one). Then it runs ``run_autograder`` with ``AUTOGRADER_ROOT``
pointing at the folder and prints the score and the results file. Arguments
after ``--`` go to ``run_autograder`` (and on to ``python -m grader.gradescope``).

What ``run_autograder`` prints is saved in ``results/stdout``, as Gradescope
keeps it. On a terminal it is also shown as it comes, under a line with the
time spent so far (grading takes minutes); otherwise its end is printed
once grading is over.

Exit status: 0 when a valid results file was written, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

from grader import submission as submission_format
from grader.files import ROOT


def unpack_bundle(bundle: Path, root: Path) -> None:
    """Unpacks the bundle like Gradescope: setup.sh and run_autograder at the top, the rest under source/."""
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        for required in ("setup.sh", "run_autograder"):
            if required not in names:
                raise SystemExit(f"{bundle} has no {required} at its top: not an autograder bundle")
        archive.extractall(root)
        for info in archive.infolist():
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                (root / info.filename).chmod(mode)


def place_submission(submission: Path, folder: Path, keep_zip: bool) -> None:
    """Puts the submission where Gradescope would: a zip unpacked (or kept), a folder copied, a file copied."""
    folder.mkdir(parents=True, exist_ok=True)
    if submission.is_dir():
        shutil.copytree(submission, folder, dirs_exist_ok=True)
    elif submission.suffix.lower() == ".zip" and not keep_zip:
        try:
            with zipfile.ZipFile(submission) as archive:
                sizes = {info.filename: info.file_size for info in archive.infolist() if not info.is_dir()}
                if submission_format.size_problems(sizes):  # a zip bomb: the grader refuses it, with the sizes
                    raise OSError("too large to unpack")
                archive.extractall(folder)  # zipfile writes no more than each entry's stated size
        except (zipfile.BadZipFile, OSError):  # Gradescope would keep a file it cannot unpack
            shutil.rmtree(folder)
            folder.mkdir()
            shutil.copy(submission, folder / submission.name)
    else:
        shutil.copy(submission, folder / submission.name)


def run_logged(command: list[str], log_path: Path, *, cwd: Path, env: dict[str, str], timeout: float | None = None,
               show: bool = False) -> int:
    """Runs ``command`` with its output (stdout and stderr) saved in ``log_path``; returns its exit status.

    With ``show``, every line is also written to this process's stdout as it
    comes, under a line on stderr with the time spent so far.

    Raises:
        subprocess.TimeoutExpired: the command ran longer than ``timeout`` seconds (it is killed, with
            everything it started, as on Ctrl-C).
    """
    from tqdm import tqdm

    started = time.monotonic()
    lines: queue.Queue = queue.Queue()
    with open(log_path, "w", encoding="utf-8") as log, \
            subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, errors="replace", start_new_session=True) as child, \
            tqdm(desc="grading", bar_format="{desc}: {elapsed} so far", file=sys.stderr, disable=not show,
                 leave=False) as clock:
        def read() -> None:
            try:
                for line in child.stdout:
                    lines.put(line)
            except (OSError, ValueError):  # the pipe was closed: the command was stopped
                pass
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            while True:
                try:
                    line = lines.get(timeout=1.0)
                except queue.Empty:
                    line = ""
                if line is None:
                    break
                if line:
                    log.write(line)
                    log.flush()
                    if show:
                        clock.write(line.rstrip("\n"), file=sys.stdout)
                clock.refresh()
                if timeout is not None and time.monotonic() - started > timeout:
                    raise subprocess.TimeoutExpired(command, timeout)
        except BaseException:  # a time-out, Ctrl-C: nothing of the run goes on
            with contextlib.suppress(OSError):
                os.killpg(child.pid, signal.SIGKILL)
            raise
        return child.wait()


def run(submission: Path, bundle: Path, root: Path, *, python: str, setup: bool = False, keep_zip: bool = False,
        arguments: list[str] | None = None, env: dict[str, str] | None = None,
        timeout: float | None = None, show: bool = False) -> dict:
    """Grades ``submission`` with ``bundle`` in a Gradescope layout at ``root``; returns results.json.

    ``show``: stream run_autograder's output to the terminal as it comes (it is
    saved in results/stdout either way).
    """
    for sub in ("source", "submission", "results"):
        if (root / sub).exists():
            shutil.rmtree(root / sub)
    root.mkdir(parents=True, exist_ok=True)
    unpack_bundle(bundle, root)
    place_submission(submission, root / "submission", keep_zip)
    (root / "results").mkdir()
    environment = {**os.environ, "AUTOGRADER_ROOT": str(root), "PYTHON": python, "PYTHONUNBUFFERED": "1",
                   **(env or {})}
    if setup:
        subprocess.run([str(root / "setup.sh")], env=environment, check=True, timeout=timeout)
    run_logged([str(root / "run_autograder"), *(arguments or [])], root / "results" / "stdout",  # as Gradescope
               cwd=root, env=environment, timeout=timeout, show=show)
    return json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m instructor.gradescope_local", description=__doc__.split("\n\n")[0])
    p.add_argument("submission", type=Path, help="a submission zip, a folder, or a single file")
    p.add_argument("--bundle", type=Path, default=ROOT / "dist" / "autograder.zip",
                   help="the autograder bundle (python -m instructor.release writes dist/autograder.zip)")
    p.add_argument("--root", type=Path, default=None, help="the folder standing for /autograder (default: temporary)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--keep-zip", action="store_true", help="put the zip itself in submission/, unpacked by nobody")
    p.add_argument("--setup", action="store_true", help="run setup.sh first")
    p.add_argument("--python", default=sys.executable, help="the interpreter run_autograder uses (PYTHON)")
    args = p.parse_args(argv)
    if not args.bundle.is_file():
        print(f"error: no bundle at {args.bundle}: run `python -m instructor.release` first", file=sys.stderr)
        return 1
    root = (args.root or Path(tempfile.mkdtemp(prefix="autograder-"))).resolve()
    show = sys.stderr.isatty() and sys.stdout.isatty()  # a terminal: the log as it comes; else its end, after
    try:
        results = run(args.submission.resolve(), args.bundle.resolve(), root, python=args.python,
                      setup=args.setup, keep_zip=args.keep_zip, arguments=passed, show=show)
        log = (root / "results" / "stdout").read_text(encoding="utf-8")
    except (OSError, ValueError, subprocess.SubprocessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if args.root is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if not show:
        print(log[-4000:])
    print(json.dumps(results, indent=2, ensure_ascii=False)[:20000])
    extra = results.get("extra_data") if isinstance(results.get("extra_data"), dict) else {}
    score = f"score {results.get('score')}" + (f"/{extra['max_score']:g}" if "max_score" in extra else "")
    if extra.get("max_extra_credit"):
        score += f" (extra credit {extra.get('extra_credit', 0):g}/{extra['max_extra_credit']:g} included)"
    print(f"\n{score}" + (f" (layout kept in {root})" if root.exists() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
