"""Grades one Gradescope submission: ``python -m grader.gradescope`` (the bundle's run_autograder).

    python -m grader.gradescope --submission /autograder/submission --results /autograder/results/results.json

Copies the student's code files from the submission folder (found at any depth)
over this copy's stubs, runs the same tests as ``python -m grader`` and writes
``results.json`` in Gradescope's schema. Whatever goes wrong, a valid results
file with a score and a reason is written. A submission that carries a
``grader/VERSION`` from another handout scores 0 with a message saying so.

This is the minimal bundle path; hidden tests, isolation and batch grading
belong to the autograder (see the README).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from grader import runner, version
from grader.report import Results, to_gradescope

STUDENT_FILES = ("maml.py", "maml_transfer.py")


def _find(submission: Path, name: str) -> Path | None:
    """The shallowest file called ``name`` in the submission (ignoring macOS metadata)."""
    found = [p for p in submission.rglob(name) if p.is_file() and "__MACOSX" not in p.parts]
    return min(found, key=lambda p: (len(p.parts), str(p))) if found else None


def grade(submission: Path) -> dict:
    """Gradescope results for the submission folder."""
    stamp = _find(submission, "VERSION")
    if stamp is not None and stamp.parent.name == "grader":
        try:
            version.check(stamp.read_text(encoding="utf-8"))
        except version.VersionMismatch as error:
            return to_gradescope(Results(), f"Not graded: {error}")
    notes = []
    for name in STUDENT_FILES:
        source = _find(submission, name)
        target = runner.ROOT / name
        if source is None:
            target.unlink(missing_ok=True)  # its tests then say the file is missing
            notes.append(f"{name} is not in the submission.")
        else:
            shutil.copyfile(source, target)
    if not (runner.ROOT / "maml.py").is_file():
        return to_gradescope(Results(), "Not graded: " + " ".join(notes))
    results, _ = runner.run_tests()
    return to_gradescope(results, " ".join(notes))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--submission", type=Path, default=Path("/autograder/submission"))
    p.add_argument("--results", type=Path, default=Path("/autograder/results/results.json"))
    args = p.parse_args(argv)
    try:
        results = grade(args.submission)
    except Exception as error:  # noqa: BLE001 - the last-ditch results file below
        results = to_gradescope(Results(), f"The autograder failed ({type(error).__name__}: {error}); "
                                           f"please tell the course staff.")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(results["output"] or f"score {results['score']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
