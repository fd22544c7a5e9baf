"""The grader's catalogue of student submissions, and how often its messages name the real mistake.

``tests/submissions/buggy/*.py`` are realistic wrong implementations, written as
students write them, ``tests/submissions/correct/*.py`` correct ones written
differently from the reference. A catalogue file holds the functions a student
completes (``class MAML:`` with ``inner_loop``/``outer_loop``, ``class
MAMLPlusPlus:`` with its methods, or ``transfer_learn``) and, if buggy:

    EXPECT = {check name prefix: text or tuple of texts, ...}
        the checks that must lose points (every other check keeps full marks),
        each with the text(s) one of which its message must hold to NAME THE
        MISTAKE ("" for a check whose message may say anything: another check
        names it);
    DIAGNOSED_BY = "hint" | "structural" | "generic"
        what names it: a hint written for a known mistake (a text of
        ``grader.feedback.HINTS``, one per mistake of ``instructor/mistakes.py``),
        a general sentence (a structural diagnosis such as "points the opposite
        way", the check's own description of shapes or changed variables, the
        cause of an error), or nothing yet (only "differs from the reference");
        ``tests/test_grading_catalogue.py`` checks it against a real grading;
    UNSEEN = True
        written after the hints (issue 12): no hint or known mistake was written
        with it in view, so it measures the grader on mistakes nobody listed.

Each entry is pasted into the handout at its TODOs (the functions it does not
define keep the reference solution) and graded by the real grader
(``grader.runner``: the public and hidden tests of the part it changes, the
student's code in the sandbox). An entry of ``maml.py`` and one of
``maml_transfer.py`` share a run (their tests are separate parts); two runs go
at a time.

Usage (from the repository root):
    python -m instructor.experiments.catalogue_accuracy            # the shares, from the declarations
    python -m instructor.experiments.catalogue_accuracy --readme   # ... written into README.md
    python -m instructor.experiments.catalogue_accuracy --grade    # grade every entry: measured verdicts
    python -m instructor.experiments.catalogue_accuracy --grade --only NAME ... --messages  # a few, with messages
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grader import runner
from grader.files import ROOT
from grader.results import PASSED, Results
from instructor.autograder import TESTS as HIDDEN

CATALOGUE = ROOT / "tests" / "submissions"
STUDENT_FILES = ("maml.py", "maml_transfer.py")
SOURCES = ("hint", "structural", "generic")
TESTS_OF = {  # part -> the graded tests of that part (no training, no efficiency)
    "maml.py": [runner.PUBLIC_TESTS / "test_maml.py", HIDDEN / "test_fomaml_hidden.py"],
    "maml_transfer.py": [runner.PUBLIC_TESTS / "test_transfer.py", HIDDEN / "test_transfer_hidden.py"],
    "MAMLPlusPlus": [runner.PUBLIC_TESTS / "test_mamlpp.py", HIDDEN / "test_mamlpp_hidden.py"],
}
NOT_RUN = {  # part -> tests its entries skip: the graph test where it does not matter, MAML++ training
    "maml.py": ["test_training_step_runs_as_a_graph"],
    "maml_transfer.py": [],
    "MAMLPlusPlus": ["test_mamlpp_training_reaches_the_target", "test_mamlpp_submitted_weights"],
}
ALL_TESTS = [runner.PUBLIC_TESTS, HIDDEN]
JOBS = 2  # graded at once: the machine has 2 cores
GENERIC = ("differs from the reference",)  # EXPECT texts that may be in a message but never name a mistake
README_BEGIN = "<!-- catalogue-accuracy: python -m instructor.experiments.catalogue_accuracy --readme -->"
README_END = "<!-- /catalogue-accuracy -->"


# ---------------------------------------------------------------- entries


@dataclass
class Entry:
    """One catalogue file.

    Attributes:
        path: the file.
        functions: qualified name ("MAML.inner_loop", "transfer_learn") -> its source, dedented.
        expect: EXPECT (empty for a correct entry).
        diagnosed_by: DIAGNOSED_BY ("" for a correct entry).
        unseen: UNSEEN (written after the hints).
    """

    path: Path
    functions: dict[str, str]
    expect: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    diagnosed_by: str = ""
    unseen: bool = False

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def buggy(self) -> bool:
        return self.path.parent.name == "buggy"


def definitions(source: str) -> dict[str, ast.FunctionDef]:
    """Qualified name -> definition of every top-level function and method of a module."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            found.update({f"{node.name}.{item.name}": item for item in node.body if isinstance(item, ast.FunctionDef)})
    return found


def read_entry(path: Path) -> Entry:
    """A catalogue file's functions and declarations."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    declared = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            declared[node.targets[0].id] = ast.literal_eval(node.value)
    functions = {name: textwrap.dedent("".join(lines[node.lineno - 1:node.end_lineno]))
                 for name, node in definitions(source).items()}
    return Entry(path, functions, declared.get("EXPECT", {}), declared.get("DIAGNOSED_BY", ""),
                 bool(declared.get("UNSEEN", False)))


def entries(kind: str) -> list[Entry]:
    """The catalogue's "buggy" or "correct" entries, by name."""
    return [read_entry(path) for path in sorted((CATALOGUE / kind).glob("*.py"))]


def paste(source: str, functions: dict[str, str]) -> str:
    """``source`` with each named function replaced by the given code, at the same indentation."""
    lines = source.splitlines(keepends=True)
    found = definitions(source)
    for name, node in sorted(((n, found[n]) for n in functions), key=lambda item: -item[1].lineno):
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        code = textwrap.indent(functions[name], " " * node.col_offset)
        lines[first:node.end_lineno] = [code if code.endswith("\n") else code + "\n"]
    return "".join(lines)


def student_files(handout, functions: dict[str, str] | None) -> dict[str, str]:
    """maml.py and maml_transfer.py as the student hands them in (None: the fresh stubs).

    Args:
        handout: ``instructor.release.build.build_handout``'s result.
        functions: an entry's functions.
    """
    if functions is None:
        return {path: handout.files[path].decode("utf-8") for path in STUDENT_FILES}
    files = {}
    for path in STUDENT_FILES:
        mine = {name: code for name, code in functions.items() if name in handout.stubbed[path].todos}
        files[path] = paste(handout.stubbed[path].solved, mine)
    unknown = set(functions) - {t for path in STUDENT_FILES for t in handout.stubbed[path].todos}
    if unknown:
        raise ValueError(f"the catalogue defines functions that are not TODOs: {sorted(unknown)}")
    return files


def part_of(files: dict[str, str], functions: dict[str, str], handout) -> str:
    """The one part a catalogue entry changes: a student file, or "MAMLPlusPlus" (the extra credit)."""
    touched = [path for path in STUDENT_FILES if files[path] != handout.stubbed[path].solved]
    if len(touched) != 1:
        raise ValueError(f"a catalogue entry must change exactly one file, not {touched}")
    if all(name.startswith("MAMLPlusPlus.") for name in functions):
        return "MAMLPlusPlus"
    if any(name.startswith("MAMLPlusPlus.") for name in functions):
        raise ValueError("MAML++ entries change MAML++ only")
    return touched[0]


# ---------------------------------------------------------------- grading


def grade(catalogue: list[Entry], handout, folder: Callable[[], Path], *, twice: str = "",
          stubs: bool = False) -> dict[str, Results]:
    """Every entry graded by the real grader: name -> the results of its own part's tests.

    An entry of maml.py and one of maml_transfer.py are graded together in one run.
    ``NOT_RUN`` tests are skipped, but the public graph test runs for correct entries
    and for buggy ones that name it.

    Args:
        catalogue: the entries.
        handout: ``instructor.release.build.build_handout``'s result.
        folder: makes a new empty folder for one run's student files.
        twice: an entry graded a second time, as "<name> (again)".
        stubs: also grade the fresh stubs, as "fresh stubs" (every test).
    """
    planned = {}  # name -> (part, files, tests it skips)
    for entry in catalogue:
        files = student_files(handout, entry.functions)
        part = part_of(files, entry.functions, handout)
        graph = not entry.buggy or any(key.startswith("train_step") for key in entry.expect)
        planned[entry.name] = (part, files, [] if graph and part == "maml.py" else NOT_RUN[part])
    by_part = {part: [name for name, plan in planned.items() if plan[0] == part] for part in TESTS_OF}
    maml_names, transfer_names = by_part["maml.py"], by_part["maml_transfer.py"]
    pad = max(len(maml_names), len(transfer_names))
    jobs = [tuple(n for n in pair if n) for pair in zip(maml_names + [None] * (pad - len(maml_names)),
                                                         transfer_names + [None] * (pad - len(transfer_names)))]
    jobs += [(name,) for name in by_part["MAMLPlusPlus"]]
    if stubs:
        jobs.append(("fresh stubs",))
    if twice:
        jobs.append(next(job for job in jobs if twice in job))

    def run(job: tuple[str, ...]) -> tuple[tuple[str, ...], Results]:
        tests, skipped = [], []
        if job == ("fresh stubs",):
            files, tests = student_files(handout, None), ALL_TESTS
        else:
            files = {path: handout.stubbed[path].solved for path in STUDENT_FILES}
            for name in job:
                part, changed, skips = planned[name]
                files.update({path: changed[path] for path in STUDENT_FILES
                              if changed[path] != handout.stubbed[path].solved})
                tests += TESTS_OF[part]
                skipped += skips
        where = folder()
        for path, text in files.items():
            (where / path).write_text(text, encoding="utf-8")
        select = ["-k", " and ".join(f"not {test}" for test in skipped)] if skipped else []
        results, output = runner.run_tests(tests, select, student_dir=where)
        if not results.tests or results.problems:
            raise RuntimeError(f"{job}: {results.problems}\n{output[-3000:]}")
        return job, results

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        graded = list(pool.map(run, jobs))
    found = {}
    for job, results in graded:
        if job == ("fresh stubs",):
            found["fresh stubs"] = results
            continue
        for name in job:
            prefixes = tuple(str(t.relative_to(ROOT)) for t in TESTS_OF[planned[name][0]])
            mine = Results([t for t in results.tests if t.id.startswith(prefixes)], results.problems, results.version)
            found[name if name not in found else f"{name} (again)"] = mine
    return found


# ---------------------------------------------------------------- verdicts


def hint_texts() -> list[str]:
    """The hints written for known mistakes (``grader.feedback.HINTS``): what "hint" means in DIAGNOSED_BY."""
    from grader import feedback

    return list(feedback.HINTS.values())


def named_mistakes() -> list[str]:
    """Every sentence that names one particular mistake: the hints, and the diagnoses' variants (a restart
    from the meta-parameters, a squared learning rate, ...). A message holding one its entry does not want
    names a wrong mistake."""
    from grader import diagnoses

    return hint_texts() + list(getattr(diagnoses, "VARIANTS", {}).values())


def wanted(expect: dict, check: str) -> tuple[str, ...]:
    """The texts one of which the message of ``check`` (an EXPECT key) must hold."""
    texts = expect[check]
    return texts if isinstance(texts, tuple) else (texts,)


@dataclass
class Verdict:
    """What a grading did to a buggy entry.

    Attributes:
        wrong_points: checks that lost points but should not, or kept them but should not.
        unnamed: EXPECT checks whose message holds none of their texts.
        misnamed: messages that name another mistake (a sentence of ``named_mistakes`` that holds
            none of the entry's EXPECT texts) and not the entry's.
        source: what names the mistake, one of ``SOURCES`` (measured).
    """

    wrong_points: list[str]
    unnamed: list[str]
    misnamed: list[str]
    source: str


def verdict(entry: Entry, results: Results) -> Verdict:
    """Whether a buggy entry lost points on the right checks, and what named its mistake.

    The mistake is named when every EXPECT check with texts (other than "" and
    ``GENERIC``) has one of them in its message, at least one check has such
    texts, and no message names another mistake without naming this one; by a
    hint when a text found is part of a hint (``hint_texts``), else structurally.
    """
    hints = hint_texts()
    mine = [t for key in entry.expect for t in wanted(entry.expect, key) if t and t not in GENERIC]
    others = [s for s in named_mistakes() if not any(text in s for text in mine)]
    wrong, unnamed, misnamed, found = [], [], [], []
    for test in results.tests:
        keys = [key for key in entry.expect if test.name.startswith(key)]
        if len(keys) > 1:
            raise ValueError(f"{entry.name}: EXPECT keys {keys} all match {test.name!r}")
        if keys and test.points == test.max_points:
            wrong.append(f"{test.name!r} kept its points")
        elif not keys and (test.points < test.max_points or test.status != PASSED):
            wrong.append(f"{test.name!r} should keep full marks: {test.points:g}/{test.max_points:g} {test.status} "
                         f"{test.message}")
        texts = [t for t in wanted(entry.expect, keys[0]) if t and t not in GENERIC] if keys else []
        matched = [t for t in texts if t in test.message]
        if texts and not matched:
            unnamed.append(f"{test.name!r} says {test.message!r}; expected one of {tuple(texts)!r}")
        found += matched
        if not matched:  # a message that names the mistake may offer another beside it ("... Or ...")
            misnamed += [f"{test.name!r} names another mistake: {s!r}" for s in others if s in test.message]
    graded = {key for key in entry.expect if any(t.name.startswith(key) for t in results.tests)}
    wrong += [f"EXPECT names no graded test: {key!r}" for key in set(entry.expect) - graded]
    if unnamed or misnamed or not found:
        source = "generic"
    elif any(text in hint for text in found for hint in hints):
        source = "hint"
    else:
        source = "structural"
    return Verdict(wrong, unnamed, misnamed, source)


def shares(catalogue: list[Entry], source_of: Callable[[Entry], str]) -> str:
    """A markdown table: how many buggy entries are named by a hint, structurally, or not at all."""
    rows = {"known mistakes (a hint or a diagnosis was written with each in view)":
            [e for e in catalogue if e.buggy and not e.unseen],
            "mistakes in no list (`UNSEEN`)": [e for e in catalogue if e.buggy and e.unseen]}
    rows["all"] = [e for e in catalogue if e.buggy]
    lines = ["| buggy entries | named by a hint | named by a structural diagnosis | not named (generic or wrong) |",
             "|---|---|---|---|"]
    for label, group in rows.items():
        counts = [sum(source_of(e) == source for e in group) for source in SOURCES]
        cells = [f"{n} ({n / len(group):.0%})" if group else "0" for n in counts]
        lines.append(f"| {label}: {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def declared_shares() -> str:
    """``shares`` from the entries' DIAGNOSED_BY (which the catalogue test checks against a grading)."""
    return shares(entries("buggy"), lambda entry: entry.diagnosed_by)


def readme_block(table: str) -> str:
    return f"{README_BEGIN}\n{table}\n{README_END}"


def write_readme(path: Path, table: str) -> None:
    """Replaces the README's block between ``README_BEGIN`` and ``README_END`` (atomically)."""
    from load_data import atomic_output

    text = path.read_text(encoding="utf-8")
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no block {README_BEGIN} ... {README_END}: add one where the table goes")
    with atomic_output(path) as temporary:
        Path(temporary).write_text(text[:start] + readme_block(table) + text[end + len(README_END):],
                                   encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", action="store_true", help="write the declared shares into README.md")
    parser.add_argument("--grade", action="store_true",
                        help="grade every buggy entry for real (minutes) and print the measured verdicts")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="with --grade: these entries only (file stems)")
    parser.add_argument("--messages", action="store_true", help="with --grade: print every failed check's message")
    args = parser.parse_args(argv)
    if args.grade:
        from instructor.release import build

        catalogue = [e for e in entries("buggy") if not args.only or e.name in args.only]
        if args.only and len(catalogue) < len(args.only):
            parser.error(f"no buggy entry named {sorted(set(args.only) - {e.name for e in catalogue})}")
        with tempfile.TemporaryDirectory(prefix="catalogue-") as top:
            count = iter(range(10 ** 6))

            def folder() -> Path:
                path = Path(top) / f"student{next(count)}"
                path.mkdir()
                return path

            results = grade(catalogue, build.build_handout(ROOT, allow_missing=True), folder)
        verdicts = {entry.name: verdict(entry, results[entry.name]) for entry in catalogue}
        for entry in catalogue:
            v = verdicts[entry.name]
            mark = "" if v.source == entry.diagnosed_by and not v.wrong_points else "  <- differs from DIAGNOSED_BY"
            print(f"{entry.name}: {v.source} (declared {entry.diagnosed_by or '-'}){mark}")
            for line in v.wrong_points + v.unnamed + v.misnamed:
                print(f"    {line}")
            if args.messages:
                for test in results[entry.name].tests:
                    if test.points < test.max_points:
                        print(f"    [{test.points:g}/{test.max_points:g}] {test.name}: {test.message}")
        print(shares(catalogue, lambda entry: verdicts[entry.name].source))
        return
    table = declared_shares()
    print(table)
    if args.readme:
        write_readme(ROOT / "README.md", table)


if __name__ == "__main__":
    main(sys.argv[1:])
