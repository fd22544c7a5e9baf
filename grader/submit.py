"""Checks your submission, then packs it: ``python -m grader submit --name NAME --student-number ID``.

    python -m grader submit --name 홍길동 --student-number 2020-12345 \\
        --fomaml runs/<FO-MAML run> --transfer runs/<pre-training run> [--mamlpp RUN RUN ...]

Run it in the handout folder. The run options copy the runs' records into
``results/`` and refresh the report's generated parts first, exactly as
``python -m grader report`` does; without them the runs already in
``results/`` are used. Then it checks, and prints a checklist (✓ passed,
✗ must be fixed, ! worth a look but does not block):

* the name and student number (``grader.submission``);
* the code files exist and import (in a child process);
* each run's records (hparams.json, history.csv, weights.npz, val_accuracy.png)
  are there and readable, the FO-MAML test results and the transfer
  comparison too, and every plot is a valid PNG image;
* the weights load into the model your code builds and, re-evaluated on the
  run's fixed validation tasks, give the final validation accuracy the report
  states, within ``ACCURACY_TOLERANCE``;
* the transfer comparison was made with the FO-MAML weights submitted;
* report.md has no unfilled ``[[ANSWER: ...]]`` or ``[[GENERATED: ...]]``;
* the total size is within ``grader.submission.MAX_TOTAL_BYTES``.

Only when every check passes is ``{Name}_{StudentNumber}_Assignment2.zip``
written (atomically, into ``--out``, default: the current folder). Exit status:
0 written, 1 not written (the checklist says why), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import settings  # the handout's settings.py (no TensorFlow)
from grader import fill_report, submission, version
from grader.files import ROOT
from grader.fill_report import RESULTS, ReportError

# |re-evaluated - reported| final validation accuracy allowed: the same code on the same tasks gives the
# same number up to float rounding (a few predictions out of thousands on another machine or thread count);
# other weights than the final ones, or other code, differ by far more.
ACCURACY_TOLERANCE = 0.01
RECHECK_TIMEOUT = 1200  # seconds for importing the code and re-evaluating every run
# The assignment's settings (README): a run that differs gets a "!" line, not a failure.
ASSIGNMENT_SETTINGS = {key: getattr(settings.ASSIGNMENT, key) for key in (
    "num_way", "num_support", "num_query", "num_inner_steps", "inner_lr", "outer_lr", "first_order", "meta_batch_size",
    "num_iterations")}
PASS, FAIL, WARN = "pass", "fail", "warn"


@dataclass
class Check:
    """One line of the checklist."""

    status: str  # PASS, FAIL or WARN
    what: str
    fix: str = ""


def _marks() -> dict[str, str]:
    marks = {PASS: "✓", FAIL: "✗", WARN: "!"}
    try:
        "".join(marks.values()).encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        marks = {PASS: "ok", FAIL: "XX", WARN: "!!"}
    return marks


def format_checklist(checks: list[Check]) -> str:
    marks = _marks()
    lines = []
    for check in checks:
        lines.append(f"  {marks[check.status]} {check.what}")
        if check.fix:
            lines += [f"      {line}" for line in check.fix.splitlines()]
    return "\n".join(lines)


# ---------------------------------------------------------------- what goes in


def collect_files(root: Path) -> tuple[dict[str, Path], list[str]]:
    """(zip path -> file) of the code, report and results/ that belong in a submission; other files in results/."""
    files = {name: root / name for name in (*submission.CODE, submission.REPORT) if (root / name).is_file()}
    skipped = []
    results = root / RESULTS
    if results.is_dir():
        for path in sorted(results.rglob("*")):
            relative = path.relative_to(root).as_posix()
            if not path.is_file() or any(part.startswith(".") for part in relative.split("/")):
                continue  # .DS_Store, an interrupted copy's staging folder
            if relative in submission.REQUIRED or submission.is_optional(relative):
                files[relative] = path
            else:
                skipped.append(relative)
    return files, skipped


def _runs(root: Path) -> dict[str, Path]:
    """Run folders in results/: "fomaml", "transfer", "mamlpp/<run>" -> folder."""
    runs = {kind: root / RESULTS / kind for kind in ("fomaml", "transfer")}
    mamlpp = root / RESULTS / "mamlpp"
    if mamlpp.is_dir():
        runs.update({f"mamlpp/{p.name}": p for p in sorted(mamlpp.iterdir()) if p.is_dir()})
    return runs


def _is_png(path: Path) -> str | None:
    """None if ``path`` is a valid PNG image, else why not."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            kind, size = image.format, image.size
            image.verify()
    except Exception as error:  # noqa: BLE001 - any failure to decode means "not a valid image"
        return f"not a valid image ({type(error).__name__}: {error})"
    if kind != "PNG":
        return f"a {kind} image, not PNG"
    if min(size) < 50:
        return f"only {size[0]}x{size[1]} pixels"
    return None


# ---------------------------------------------------------------- checks


def _program(kind: str) -> str:
    return "python maml_transfer.py pretrain" if kind == "transfer" else "python maml.py"


def _title(kind: str) -> str:
    """How the checklist names a run: FO-MAML, transfer, MAML++ mamlpp_seed0."""
    return {"fomaml": "FO-MAML", "transfer": "transfer"}.get(kind, kind.replace("mamlpp/", "extra credit "))


def _option(kind: str) -> str:
    return "--mamlpp" if kind.startswith("mamlpp") else f"--{kind}"


def check_records(root: Path, kind: str, folder: Path) -> tuple[list[Check], dict | None]:
    """Checks of one run's records; (checks, {"hp", "final"}) or (checks, None) if unusable."""
    label = f"{_title(kind)} run ({folder.relative_to(root).as_posix()}/)"
    missing = [name for name in fill_report.RUN_FILES if not (folder / name).is_file()]
    if missing:
        if not folder.is_dir():
            fix = (f"Pass your run folder: python -m grader submit ... {_option(kind)} runs/<your run> "
                   f"(the --log-dir of `{_program(kind)}`).")
            return [Check(FAIL, f"{label}: no results", fix)], None
        return [Check(FAIL, f"{label}: missing {', '.join(missing)}",
                      f"Finish the run with `{_program(kind)}` (weights.npz is written at the end), then pass "
                      f"it again with {_option(kind)}.")], None
    try:
        hp = fill_report.read_hparams(folder / "hparams.json")["hparams"]
        history = fill_report.read_history(folder / "history.csv")
        final = history[-1]
        claimed = float(final["val_accuracy_query"])
    except (ValueError, KeyError, IndexError, OSError) as error:
        return [Check(FAIL, f"{label}: hparams.json or history.csv cannot be read ({type(error).__name__}: {error})",
                      f"Copy the run again: {_option(kind)} runs/<your run>.")], None
    checks = []
    if kind == "fomaml" and not list(folder.glob("test_results_*way_*shot.json")):
        checks.append(Check(FAIL, f"{label}: no test results",
                            "Run `python maml.py --test --log-dir <your run>`, then pass the run again with --fomaml."))
    if kind == "transfer" and not (folder / "comparison.json").is_file():
        checks.append(Check(FAIL, f"{label}: no comparison with FO-MAML",
                            "Run `python maml_transfer.py compare --maml-dir <FO-MAML run> --transfer-dir <this run>`, "
                            "then pass the run again with --transfer."))
    if kind == "fomaml":
        differ = {k: (hp.get(k), v) for k, v in ASSIGNMENT_SETTINGS.items() if hp.get(k) != v}
        if differ:
            checks.append(Check(WARN, f"{label}: not the assignment's settings: "
                                      + ", ".join(f"{k} = {a!r} (assignment: {b!r})" for k, (a, b) in differ.items()),
                                "Fine if intended: say why in the report."))
    if not checks or all(c.status == WARN for c in checks):
        step = "step" if kind == "transfer" else "iteration"
        checks.insert(0, Check(PASS, f"{label}: records complete, final validation accuracy "
                                     f"{claimed:.4f} at {step} {int(final['iteration'])}"))
    return checks, {"hp": hp, "final": final}


def check_plots(root: Path) -> list[Check]:
    plots = sorted((root / RESULTS).rglob("*.png")) if (root / RESULTS).is_dir() else []
    bad = [(p, why) for p in plots if (why := _is_png(p))]
    if bad:
        return [Check(FAIL, f"plot {p.relative_to(root).as_posix()} is {why}",
                      "Copy the run again (the training program redraws val_accuracy.png at every validation; "
                      "`python maml_transfer.py compare` draws the comparison).") for p, why in bad]
    return [Check(PASS, f"plots are valid PNG images ({len(plots)})")] if plots else []


def check_comparison(root: Path) -> list[Check]:
    """The comparison's FO-MAML accuracy equals the FO-MAML run's own test result on the same tasks."""
    path = root / RESULTS / "transfer" / "comparison.json"
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["results"]
        tests = [json.loads(p.read_text(encoding="utf-8"))
                 for p in (root / RESULTS / "fomaml").glob("test_results_*way_*shot.json")]
        pairs = [(row, test) for row in rows for test in tests
                 if all(row[k] == test[k] for k in ("num_way", "num_support", "num_query", "num_tasks"))]
    except (ValueError, KeyError, TypeError, OSError) as error:
        return [Check(FAIL, f"results/transfer/comparison.json cannot be read ({error})",
                      "Run `python maml_transfer.py compare ...` again, then pass the run again with --transfer.")]
    wrong = [(row, test) for row, test in pairs
             if abs(row["maml_accuracy"] - test["accuracy_query"]) > ACCURACY_TOLERANCE]
    if wrong:
        row, test = wrong[0]
        return [Check(FAIL, f"the comparison's FO-MAML accuracy ({row['maml_accuracy']:.4f}, "
                            f"{row['num_support']}-shot) is not the submitted FO-MAML run's test accuracy "
                            f"({test['accuracy_query']:.4f}) on the same tasks: it was made with other weights",
                      "Run `python maml_transfer.py compare --maml-dir <the FO-MAML run you submit> "
                      "--transfer-dir <your pre-training run>`, then pass both runs again.")]
    if pairs:
        return [Check(PASS, "the transfer comparison used the submitted FO-MAML weights")]
    return [Check(WARN, "the transfer comparison could not be cross-checked with the FO-MAML test results "
                        "(different tasks or numbers of tasks)",
                  "Use the defaults of `python maml.py --test` and `python maml_transfer.py compare` (600 tasks).")]


def recheck(root: Path, runs: dict[str, Path]) -> dict:
    """Runs ``grader.recheck`` in a child process on ``runs``; its JSON (or {"crash": why})."""
    with tempfile.TemporaryDirectory(prefix="grader-recheck-") as tmp:
        out = Path(tmp) / "recheck.json"
        command = [sys.executable, "-m", "grader.recheck", "--json", str(out),
                   *(f"{kind.split('/')[0]}={folder}" for kind, folder in runs.items())]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
        try:
            child = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                                   timeout=RECHECK_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"crash": f"importing your code and evaluating the weights took more than {RECHECK_TIMEOUT} s"}
        if not out.is_file():
            tail = "\n".join((child.stdout + child.stderr).strip().splitlines()[-8:])
            return {"crash": f"the check crashed (exit code {child.returncode}):\n{tail}"}
        found = json.loads(out.read_text(encoding="utf-8"))
    found["runs"] = {kind: found["runs"].get(f"{kind.split('/')[0]}={folder}", {"error": "not evaluated"})
                     for kind, folder in runs.items()}
    return found


def check_code(root: Path, usable: dict[str, dict], runs: dict[str, Path]) -> tuple[list[Check], dict]:
    """Imports the code and re-evaluates the weights of the usable runs; (checks, claims for the manifest)."""
    checks, claims = [], {}
    missing = [name for name in submission.CODE if not (root / name).is_file()]
    if missing:
        return [Check(FAIL, f"code: {', '.join(missing)} missing from {root}",
                      "Run this command in your handout folder, next to maml.py and maml_transfer.py.")], claims
    found = recheck(root, {kind: runs[kind] for kind in usable})
    if "crash" in found:
        return [Check(FAIL, "code: could not be checked", found["crash"])], claims
    broken = {name: why for name, why in found["imports"].items() if why}
    if broken:
        checks += [Check(FAIL, f"code: {name}.py does not import: {why}",
                         "Fix it, then check with `python -m grader`.") for name, why in broken.items()]
    else:
        checks.append(Check(PASS, "code: maml.py and maml_transfer.py import"))
    for kind, record in usable.items():
        claimed = float(record["final"]["val_accuracy_query"])
        claims[kind] = {"val_accuracy_query": claimed, "val_accuracy_query_ci95": record["final"]["val_accuracy_query_ci95"],
                        "iteration": int(record["final"]["iteration"]), "num_val_tasks": record["hp"]["num_val_tasks"]}
        result = found["runs"][kind]
        if "error" in result:
            checks.append(Check(FAIL, f"{_title(kind)} weights: cannot be evaluated with your code: {result['error']}",
                                f"The weights must fit the model your submitted code builds from the run's "
                                f"hparams.json: copy the right run again ({_option(kind)} runs/<your run>) or fix "
                                f"the code, and check it with `python -m grader`."))
            continue
        measured = float(result["accuracy"])
        claims[kind]["rechecked"] = measured
        text = (f"{_title(kind)} weights: re-evaluated on the {result['num_tasks']} fixed validation tasks "
                f"{measured:.4f}, report {claimed:.4f}")
        if math.isfinite(measured) and abs(measured - claimed) <= ACCURACY_TOLERANCE:
            checks.append(Check(PASS, text))
        else:
            checks.append(Check(FAIL, f"{text}: they differ by more than {ACCURACY_TOLERANCE}",
                                "weights.npz is not the final weights of this run, or the code changed since "
                                "training: submit the weights the run wrote at its end with the code that "
                                "trained them (train again if you changed the code)."))
    return checks, claims


def check_report(root: Path, mamlpp: bool) -> list[Check]:
    path = root / submission.REPORT
    if not path.is_file():
        return [Check(FAIL, "report.md is missing", "Create it with `python -m grader report --fomaml RUN --transfer RUN`.")]
    todo = fill_report.unfilled(fill_report.read_report(path), mamlpp)
    if not todo:
        return [Check(PASS, "report.md: every part is filled in")]
    lines = []
    for line, kind, prompt in todo:
        short = prompt if len(prompt) <= 90 else prompt[:87] + "..."
        lines.append(f"report.md line {line}: {'write' if kind == 'ANSWER' else 'generate'}: {short}")
    return [Check(FAIL, f"report.md: {len(todo)} part(s) still to fill",
                  "\n".join(lines) + "\nReplace each [[ANSWER: ...]] with your text; [[GENERATED: ...]] parts are "
                  "filled by passing the runs (--fomaml, --transfer, --mamlpp).")]


def run_checks(root: Path, name: str, student_number: str, fomaml: Path | None = None,
               transfer: Path | None = None, mamlpp: list[Path] | None = None,
               overwrite: bool = False) -> tuple[list[Check], dict[str, Path], dict, str | None]:
    """Every check; (checks, files to pack, claims for the manifest, zip file name or None)."""
    checks: list[Check] = []
    zip_name = None
    try:
        zip_name = submission.zip_name(name, student_number)
        name, student_number = submission.parse_zip_name(zip_name)
        checks.append(Check(PASS, f"name and student number: {zip_name}"))
    except submission.SubmissionError as error:
        checks.append(Check(FAIL, "name or student number: " + "; ".join(error.problems),
                            f"Example: --name 홍길동 --student-number {submission.STUDENT_NUMBER_EXAMPLE} "
                            f"({submission.STUDENT_NUMBER_MEANING})."))
    student = fill_report.render_student(name, student_number, version.current()) if zip_name else None
    try:
        fill_report.fill(root, fomaml, transfer, mamlpp, student=student, overwrite=overwrite)
    except ReportError as error:
        checks.append(Check(FAIL, f"report and results: {error}"))

    runs = _runs(root)
    usable = {}
    for kind, folder in runs.items():
        run_checks_, record = check_records(root, kind, folder)
        checks += run_checks_
        if record is not None:
            usable[kind] = record
    checks += check_plots(root)
    checks += check_comparison(root)
    code_checks, claims = check_code(root, usable, runs)
    checks += code_checks
    has_mamlpp = any(kind.startswith("mamlpp/") for kind in runs)
    checks += check_report(root, has_mamlpp)

    files, skipped = collect_files(root)
    if skipped:
        checks.append(Check(WARN, f"not part of a submission, left out: {', '.join(skipped)}"))
    sizes = {path: source.stat().st_size for path, source in files.items()}
    problems = submission.size_problems(sizes)
    if problems:
        checks.append(Check(FAIL, "size: " + " ".join(problems)))
    else:
        checks.append(Check(PASS, f"size: {sum(sizes.values()) / 2**20:.1f} MB in {len(files)} files "
                                  f"(limit {submission.MAX_TOTAL_BYTES // 2**20} MB)"))
    return checks, files, claims, zip_name


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader submit",
                                description="Check your submission and write {Name}_{StudentNumber}_Assignment2.zip.")
    p.add_argument("--name", required=True, help="your name, in any script (e.g. 홍길동, \"José García\")")
    p.add_argument("--student-number", required=True,
                   help=f"{submission.STUDENT_NUMBER_MEANING}, e.g. {submission.STUDENT_NUMBER_EXAMPLE}")
    fill_report.add_run_arguments(p)
    p.add_argument("--out", type=Path, default=Path("."), help="folder the zip is written to")
    p.add_argument("--overwrite", action="store_true", help="discard hand edits inside the report's generated parts")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a console that cannot show a name prints "?", not a crash
        sys.stdout.reconfigure(errors="replace")
    print(f"Checking your submission in {ROOT} (handout {version.current()}); the weights are re-evaluated "
          f"with your code, which takes a minute ...", flush=True)
    checks, files, claims, zip_name = run_checks(ROOT, args.name, args.student_number, args.fomaml,
                                                 args.transfer, args.mamlpp, args.overwrite)
    print(format_checklist(checks))
    if any(check.status == FAIL for check in checks):
        print(f"\nNo zip written: fix the {sum(c.status == FAIL for c in checks)} item(s) marked "
              f"{_marks()[FAIL]} and run the command again.")
        return 1
    try:
        path = submission.write_submission(files, args.name, args.student_number, args.out, results=claims)
    except submission.SubmissionError as error:
        print(f"\nNo zip written: {error}")
        return 1
    print(f"\nWrote {path} ({path.stat().st_size / 2**20:.1f} MB). Upload this file as it is (do not rename "
          f"or re-zip it). Checked with `python -m grader submit`; the autograder runs more tests.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
