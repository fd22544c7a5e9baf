"""Grading inside a grading platform's container: time, CPU, memory and score per container shape.

A separate program, not a test: it prints figures for the README. It grades
real submission zips through the autograder bundle exactly as Gradescope runs
it (``instructor.gradescope_local``: setup layout, ``run_autograder``,
``python -m grader.gradescope``), each inside ``gradescope-box`` (a cgroup with
a CPU quota and a memory limit, as the platform's container has), and prints
one table: wall seconds, CPU seconds, peak resident memory, OOM kills, score,
and which checks cost what.

    python -m instructor.benchmark_grading                        # the three shapes, four submissions
    python -m instructor.benchmark_grading --shapes 0.5:768M:600 --submissions reference
    python -m instructor.benchmark_grading --work /tmp/bench --keep   # reuse the submissions next time

Shapes are ``CPUS:MEMORY:TIMEOUT`` (timeout in seconds: the platform's
autograder timeout, passed to ``run_autograder``). Submissions (built once in
``--work``, as a student builds them: the handout's reference code, real short
runs of ``maml.py`` and ``maml_transfer.py``, ``grader.submission.write_submission``):

* ``reference``: the solved handout with its runs;
* ``slow3x``: the same, with an ``outer_loop`` that computes the objective three
  times (correct, about 3x slower);
* ``hang``: an ``outer_loop`` that never returns;
* ``memory``: an ``outer_loop`` that allocates memory without bound.

Needs root and cgroup v1 (``../shared/tools/gradescope-box``, or ``--box``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader import submission
from grader.files import ROOT
from grader.sandbox import SCAFFOLD_FILES

DEFAULT_BOX = ROOT.parent / "shared" / "tools" / "gradescope-box"
DEFAULT_SHAPES = ("0.5:768M:600", "1:2G:1200", "2:4G:600")  # Gradescope's default, the documented one, a larger
RUNS = {  # results/<run> of a submission -> the student's command (shortened assignment settings, as in CI)
    "fomaml": ["maml.py", "--num-iterations", "20", "--val-interval", "20", "--num-val-tasks", "10"],
    "transfer": ["maml_transfer.py", "pretrain", "--num-epochs", "2", "--val-interval", "1000",
                 "--num-val-tasks", "10"],
    "mamlpp/mamlpp_seed0": ["maml.py", "--mamlpp", "--num-iterations", "40", "--val-interval", "20",
                            "--num-val-tasks", "10"],
}
OUTER_LOOP_BODY = "        outer_losses, accuracies_support, accuracies_query = [], [], []\n"
OUTER_LOSS = "            tf.reduce_mean(tf.stack(outer_losses)),\n"
VARIANTS = {  # name -> code put at the start of the reference's outer_loop body
    "reference": "",
    "slow3x": (  # the objective twice more, on the support set in other orders (so the graph optimiser cannot
                 # merge the copies), added to the outer loss times 0: the same numbers, ~3x the work
        "        slow = 0.0\n"
        "        for shift in (1, 2):\n"
        "            for images_support, labels_support, images_query, labels_query in task_batch:\n"
        "                extra, _ = self.inner_loop(tf.roll(images_support, shift, axis=0),\n"
        "                                           tf.roll(labels_support, shift, axis=0), train)\n"
        "                slow += cross_entropy(forward(images_query, extra), labels_query)\n"),
    "hang": "        while True:\n            pass\n",
    "memory": ("        import numpy\n        hoard = []\n        while True:\n"
               "            hoard.append(numpy.ones(2**20))\n"),
}
BOX_LINE = re.compile(r"gradescope-box: .*wall (?P<wall>[\d.]+) s, cpu (?P<cpu>[\d.]+|unknown)( s)?, peak resident "
                      r"memory (?P<peak>\d+) MiB.*oom kills (?P<ooms>\d+), exit (?P<exit>\d+)")


def _run(command: list[str], cwd: Path, env: dict) -> None:
    child = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{child.stdout[-2000:]}{child.stderr[-3000:]}")


def documented_shape() -> str:
    """The container the bundle's instructions name (``bundle.GRADESCOPE_SETTINGS``), as CPUS:MEMORY:TIMEOUT."""
    from instructor.release.bundle import GRADESCOPE_SETTINGS as settings

    return f"{settings['cpus']:g}:{settings['memory']}:{settings['timeout']}"


def run_files(folder: Path) -> dict[str, bytes]:
    """The files of a submission that ``folder``'s results/ provides (the runs' records), and a report."""
    files: dict[str, bytes] = {"report.md": b"# Report\n\nWritten by the benchmark.\n"}
    for path in sorted((folder / "results").rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and (relative in submission.REQUIRED
                               or any(pattern.fullmatch(relative) for pattern in submission.OPTIONAL)):
            files[relative] = path.read_bytes()
    return files


def make_submissions(work: Path, names: list[str]) -> dict[str, Path]:
    """Builds the submission zips for this handout's version (the runs are made once and reused)."""
    from instructor.release import build

    zips = {name: work / name / "Kim Minji_2020-12345_Assignment2.zip" for name in names}
    handout = build.build_handout(ROOT, allow_missing=True)
    solved = {name: handout.stubbed[name].solved for name in submission.CODE}
    runs = work / "runs"
    if not (runs / "done").is_file():
        import load_data

        shutil.rmtree(runs, ignore_errors=True)
        runs.mkdir(parents=True)
        provided = {name: handout.files[name].decode() for name in SCAFFOLD_FILES}  # what maml.py imports
        for name, text in {**solved, **provided}.items():
            (runs / name).write_text(text, encoding="utf-8")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", load_data.DATA_DIR_ENV: str(load_data.data_dir())}
        for kind, command in RUNS.items():
            print(f"training the submission's {kind} run: python {' '.join(command)}", flush=True)
            _run([sys.executable, *command, "--log-dir", str(runs / "results" / kind)], runs, env)
        (runs / "done").write_text("")
    files = run_files(runs)
    for name, path in zips.items():
        code = dict(solved)
        if OUTER_LOOP_BODY not in code["maml.py"] or OUTER_LOSS not in code["maml.py"]:
            raise SystemExit("the reference's outer_loop changed: update OUTER_LOOP_BODY in this benchmark")
        code["maml.py"] = code["maml.py"].replace(OUTER_LOOP_BODY, VARIANTS[name] + OUTER_LOOP_BODY, 1)
        if name == "slow3x":
            code["maml.py"] = code["maml.py"].replace(OUTER_LOSS, OUTER_LOSS[:-2] + " + 0.0 * slow,\n", 1)
        path.parent.mkdir(parents=True, exist_ok=True)
        submission.write_submission({**files, **{k: v.encode() for k, v in code.items()}}, "Kim Minji",
                                    "2020-12345", path.parent, version=handout.version)
    return zips


def grade_in_box(box: Path, shape: str, zip_path: Path, bundle: Path, work: Path,
                 arguments: tuple[str, ...] = ()) -> dict:
    """Grades one zip with ``gradescope_local`` inside the container shape; returns the measurements.

    Args:
        shape: "CPUS:MEMORY:TIMEOUT", e.g. "0.5:768M:600".
        arguments: more arguments for run_autograder (e.g. "-k", EXPRESSION).

    Returns:
        shape, wall, cpu, peak (MiB), ooms, exit (None where the box printed no figures), score, max,
        checks (seconds per check), notes (the reason of the score), results (results.json), box (its line).
    """
    import load_data

    cpus, memory, timeout = shape.split(":")
    root = Path(tempfile.mkdtemp(prefix="bench-autograder-", dir=work))
    load_data.load_omniglot(progress=False, scaled=False)  # what setup.sh prepares before any grading
    env = {**os.environ, load_data.DATA_DIR_ENV: str(load_data.data_dir().resolve())}
    command = [str(box), "--cpus", cpus, "--memory", memory, "--timeout", str(int(timeout) + 60), "--",
               sys.executable, "-m", "instructor.gradescope_local", str(zip_path), "--bundle", str(bundle),
               "--root", str(root), "--", "--timeout", timeout, *arguments]
    started = time.monotonic()
    child = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    row = {"shape": shape, "wall": time.monotonic() - started, "cpu": None, "peak": None, "ooms": None,
           "exit": None, "score": None, "max": None, "checks": {}, "notes": "", "results": None,
           "box": next((line for line in (child.stdout + child.stderr).splitlines()
                        if line.startswith("gradescope-box:")), "")}
    match = BOX_LINE.search(child.stdout + child.stderr)
    if match:
        row.update(wall=float(match["wall"]), cpu=None if match["cpu"] == "unknown" else float(match["cpu"]),
                   peak=int(match["peak"]), ooms=int(match["ooms"]), exit=int(match["exit"]))
    results_path = root / "results" / "results.json"
    if results_path.is_file():
        results = json.loads(results_path.read_text(encoding="utf-8"))
        row["score"] = results.get("score")
        extra = results.get("extra_data", {})
        row["max"] = f"{extra.get('max_score', '?'):g}+{extra.get('max_extra_credit', 0):g}" \
            if isinstance(extra.get("max_score"), (int, float)) else "?"
        row["checks"] = extra.get("seconds", {})
        row["notes"] = extra.get("reason", "")
        row["results"] = results
    (work / "logs").mkdir(exist_ok=True)
    log = work / "logs" / f"{zip_path.parent.name}_{shape.replace(':', '_')}.log"
    log.write_text(child.stdout + child.stderr + ((root / "results" / "stdout").read_text(encoding="utf-8")
                                                   if (root / "results" / "stdout").is_file() else ""))
    shutil.rmtree(root, ignore_errors=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m instructor.benchmark_grading", description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="+", default=list(DEFAULT_SHAPES), help="CPUS:MEMORY:TIMEOUT_SECONDS")
    p.add_argument("--submissions", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--bundle", type=Path, default=None, help="default: built from this repository")
    p.add_argument("--box", type=Path, default=DEFAULT_BOX, help="the gradescope-box tool")
    p.add_argument("--work", type=Path, default=None, help="folder for submissions and logs (default: temporary)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    if not args.box.is_file():
        print(f"error: {args.box} not found (--box)", file=sys.stderr)
        return 1
    work = (args.work or Path(tempfile.mkdtemp(prefix="benchmark-grading-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    bundle = args.bundle
    if bundle is None:
        from instructor.release import build
        from instructor.release import bundle as bundles

        bundle = bundles.write_bundle(build.build_handout(ROOT, allow_missing=True), work / "dist", ROOT)
    zips = make_submissions(work, args.submissions)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; work folder {work}", flush=True)
    rows = []
    for shape in args.shapes:
        for name in args.submissions:
            row = {"submission": name, **grade_in_box(args.box, shape, zips[name], bundle.resolve(), work)}
            rows.append(row)
            print_row(row)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([{k: v for k, v in r.items() if k != "results"} for r in rows], indent=2))
    return 0


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_row(row: dict) -> None:
    slowest = sorted(row["checks"].items(), key=lambda item: -item[1])[:4]
    print(f"{row['shape']:<14} {row['submission']:<10} wall {_fmt(row['wall'], '.0f')} s, cpu {_fmt(row['cpu'], '.0f')} s, "
          f"peak {_fmt(row['peak'], 'd')} MiB, ooms {_fmt(row['ooms'], 'd')}, score {_fmt(row['score'], 'g')}"
          f"/{row['max']}; slowest: " + ", ".join(f"{n} {s:.0f} s" for n, s in slowest), flush=True)


def print_table(rows: list[dict]) -> None:
    print("\n| shape (cpus:memory:timeout) | submission | wall s | CPU s | peak MiB | OOM kills | score | slowest checks |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for row in rows:
        slowest = sorted(row["checks"].items(), key=lambda item: -item[1])[:3]
        print(f"| {row['shape']} | {row['submission']} | {_fmt(row['wall'], '.0f')} | {_fmt(row['cpu'], '.0f')} | "
              f"{_fmt(row['peak'], 'd')} | {_fmt(row['ooms'], 'd')} | {_fmt(row['score'], 'g')}/{row['max']} | "
              + "; ".join(f"{n} {s:.0f} s" for n, s in slowest) + " |")


if __name__ == "__main__":
    sys.exit(main())
