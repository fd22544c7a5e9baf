"""Release command: ``python -m instructor.release`` builds the handout and the autograder bundle.

    python -m instructor.release                  # dist/handout/, dist/handout.zip, dist/autograder.zip
    python -m instructor.release --out /tmp/rel   # elsewhere
    python -m instructor.release --allow-missing  # build even if a student file is not written yet

Prints what went in (files, sizes, the TODOs each stub holds, the version) and
anything still to do (config values still "TBA", TODOs no public test covers).
Exit status 0 on success, 1 with a message naming file and line on failure
(then nothing in the output folder has changed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grader.files import ROOT, sha256

from .build import CONFIG, ReleaseError, build_handout, public_tests_cover, write_handout
from .bundle import GRADESCOPE_SETTINGS, write_bundle


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m instructor.release", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--root", type=Path, default=ROOT, help="the instructor's repository")
    p.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder")
    p.add_argument("--config", type=Path, default=None, help=f"release settings (default: ROOT/{CONFIG})")
    p.add_argument("--allow-missing", action="store_true",
                   help="build a partial handout when a student file is not in the source yet")
    return p


def summary(handout, folder: Path, zip_path: Path, bundle_path: Path) -> str:
    todos = {todo: path for path, names in handout.todos.items() for todo in names}
    lines = [f"Handout {handout.version} -> {folder}/ and {zip_path} "
             f"(top folder {handout.folder}/, sha256 {sha256(zip_path.read_bytes())[:16]})",
             "", f"  {'file':<36} {'bytes':>8}  notes"]
    for path, content in handout.files.items():
        notes = ""
        if path in handout.todos:
            notes = "TODO: " + ", ".join(handout.todos[path])
        elif path.endswith(".py") and handout.stubbed[path].solution_lines:
            notes = f"{len(handout.stubbed[path].solution_lines)} '# SOLUTION' lines removed"
        lines.append(f"  {path:<36} {len(content):>8}  {notes}")
    lines.append(f"  {len(handout.files)} files, {sum(map(len, handout.files.values()))} bytes; "
                 f"{len(todos)} TODOs; leak checks passed")
    lines.append(f"  autograder bundle: {bundle_path} (setup.sh, run_autograder, source/ = this handout)")
    settings = GRADESCOPE_SETTINGS
    lines.append(f"  Gradescope settings to choose: timeout {settings['timeout'] // 60} minutes, {settings['cpus']:g} "
                 f"vCPU, {settings['memory']}B of memory (GRADESCOPE_SETTINGS.txt in the bundle)")
    uncovered = [todo for todo, covered in public_tests_cover(handout).items() if not covered]
    if uncovered:
        lines.append(f"  TODOs no public test mentions (the autograder's hidden tests must): {', '.join(uncovered)}")
    for warning in handout.warnings:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        handout = build_handout(args.root, args.config, allow_missing=args.allow_missing)
    except ReleaseError as error:
        print(f"release failed: {error}", file=sys.stderr)
        return 1
    from instructor import late

    try:
        late_policy = late.load_policy(args.config or args.root / CONFIG)
    except late.LateConfigError as error:
        print(f"release failed: {error}", file=sys.stderr)
        return 1
    folder, zip_path = write_handout(handout, args.out)
    bundle_path = write_bundle(handout, args.out, args.root, late_policy)
    print(summary(handout, folder, zip_path, bundle_path))
    if late_policy is None:
        print("  late policy: none in the bundle ([late] deadline not set): Gradescope applies no late penalty")
    else:
        print(f"  late policy in the bundle: {late_policy.rule()}; deadline {late_policy.deadline.isoformat()} "
              f"({late_policy.timezone}), {len(late_policy.extensions)} extension(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
