"""Local grader: ``python -m grader`` runs the public tests and prints a table.

Run it from the handout folder (the one holding maml.py)::

    python -m grader                 # all public tests
    python -m grader -k inner_loop   # only the tests whose name matches
    python -m grader -v              # also show pytest's own output
    python -m grader version         # the handout version
    python -m grader report ...      # fill report.md from your runs (grader/fill_report.py)
    python -m grader submit ...      # check everything, then write the submission zip (grader/submit.py)

Exit status: 0 when every test passed, 1 when some did not, 2 when the tests
could not run at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader import runner, version
from grader.files import ROOT
from grader.results import format_table


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader", description=__doc__.split("\n\n")[0])
    p.add_argument("command", nargs="?", default="test", choices=["test", "version"],
                   help="test: run the public tests (default); version: print the handout version; "
                        "report, submit: see `python -m grader report --help`, `python -m grader submit --help`")
    p.add_argument("-k", dest="keyword", default=None, help="only tests whose name matches this pytest -k expression")
    p.add_argument("-v", "--verbose", action="store_true", help="stream pytest's output (tracebacks included)")
    p.add_argument("--json", default=None, help="also write the results as JSON to this file")
    return p


SUBCOMMANDS = {"report": "grader.fill_report", "submit": "grader.submit"}  # each has its own options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:])
    args = parser().parse_args(argv)
    if args.command == "version":
        print(version.current())
        return 0
    if not (ROOT / "maml.py").is_file():
        print(f"error: no maml.py in {ROOT}: run the grader from the handout folder.", file=sys.stderr)
        return 2
    print(f"Running the public tests of handout {version.current()} on the code in {ROOT} ...",
          flush=True)
    extra = ["-k", args.keyword] if args.keyword else []
    results, output = runner.run_tests(extra=extra, verbose=args.verbose)
    print()
    print(format_table(results))
    if args.json:
        results.write(Path(args.json))
    if results.problems and not results.tests:
        return 2
    if results.all_passed:
        print("\nAll public tests passed. The hidden tests of the autograder check more "
              "(e.g. that training reaches the target accuracy).")
        return 0
    print("\nFix the first failing test first: later ones often fail for the same reason. "
          "`python -m grader -v` shows full tracebacks.")
    return 1


if __name__ == "__main__":
    sys.exit(main())
