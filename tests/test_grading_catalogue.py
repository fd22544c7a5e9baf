"""The grader, mutation-tested: a catalogue of student submissions, each graded for real.

``tests/submissions/buggy/*.py`` are realistic wrong implementations, written as
students write them; each says in ``EXPECT`` which checks must lose points and
what their message must say (a text, or a tuple of texts one of which it must
hold; "" for any message); a test not listed must keep full marks.
``tests/submissions/correct/*.py`` are correct implementations written
differently from the reference (parameter lists, tf.map_fn, tf.vectorized_map,
a separate tape for first order, learned inner rates switched on and off, a
hand-written gradient, tf.while_loop): every check gives them full marks. An
entry that defines ``class MAMLPlusPlus:`` methods is graded on the extra
credit's fixture checks.

A submission holds the functions a student completes (``class MAML:`` with
``inner_loop``/``outer_loop``, or ``transfer_learn``); they are pasted into the
handout at their TODOs, and the functions it does not define keep the
reference solution. Each is graded by the real grader (``grader.runner``: a
pytest child with the public and hidden tests of the parts it touches, the
student's code in the sandbox), two at a time, all in one module fixture. The
training and efficiency checks are not run here but in
``test_grading_training.py``, once, on the reference.
"""

from __future__ import annotations

import ast
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader import runner
from grader.files import ROOT
from grader.results import PASSED, TODO, Results
from instructor.autograder import TESTS as HIDDEN
from instructor.release import build

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
BUGGY = sorted((SUBMISSIONS / "buggy").glob("*.py"))
CORRECT = sorted((SUBMISSIONS / "correct").glob("*.py"))
STUDENT_FILES = ("maml.py", "maml_transfer.py")
TESTS_OF = {  # part -> the graded tests of that part (no training, no efficiency)
    "maml.py": [runner.PUBLIC_TESTS / "test_maml.py", HIDDEN / "test_fomaml_hidden.py"],
    "maml_transfer.py": [runner.PUBLIC_TESTS / "test_transfer.py", HIDDEN / "test_transfer_hidden.py"],
    "MAMLPlusPlus": [HIDDEN / "test_mamlpp_hidden.py"],
}
NOT_RUN = {  # part -> tests its entries skip: the graph test where it does not matter, MAML++ training
    "maml.py": ["test_training_step_runs_as_a_graph"],
    "maml_transfer.py": [],
    "MAMLPlusPlus": ["test_mamlpp_training_reaches_the_target", "test_mamlpp_submitted_weights"],
}
ALL_TESTS = [runner.PUBLIC_TESTS, HIDDEN]
JOBS = 2  # graded at once: the machine has 2 cores
DETERMINISM = "sum_over_tasks"  # graded twice


# ---------------------------------------------------------------- submissions


def _definitions(source: str) -> dict[str, ast.FunctionDef]:
    """Qualified name -> definition of every top-level function and method of a module."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            found.update({f"{node.name}.{item.name}": item for item in node.body if isinstance(item, ast.FunctionDef)})
    return found


def read_submission(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(EXPECT, {qualified name: function source, dedented}) of a catalogue file."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines(keepends=True)
    expect = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["EXPECT"]:
            expect = ast.literal_eval(node.value)
    functions = {name: textwrap.dedent("".join(lines[node.lineno - 1:node.end_lineno]))
                 for name, node in _definitions(source).items()}
    return expect, functions


def paste(source: str, functions: dict[str, str]) -> str:
    """``source`` with each named function replaced by the given code, at the same indentation."""
    lines = source.splitlines(keepends=True)
    definitions = _definitions(source)
    for name, node in sorted(((n, definitions[n]) for n in functions), key=lambda item: -item[1].lineno):
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        code = textwrap.indent(functions[name], " " * node.col_offset)
        lines[first:node.end_lineno] = [code if code.endswith("\n") else code + "\n"]
    return "".join(lines)


def student_files(handout: build.Handout, functions: dict[str, str] | None) -> dict[str, str]:
    """maml.py and maml_transfer.py as the student hands them in (None: the fresh stubs)."""
    if functions is None:
        return {path: handout.files[path].decode("utf-8") for path in STUDENT_FILES}
    files = {}
    for path in STUDENT_FILES:
        solved = handout.stubbed[path].solved
        mine = {name: code for name, code in functions.items() if name in handout.stubbed[path].todos}
        files[path] = paste(solved, mine)
    unknown = set(functions) - {t for path in STUDENT_FILES for t in handout.stubbed[path].todos}
    assert not unknown, f"the catalogue defines functions that are not TODOs: {sorted(unknown)}"
    return files


# ---------------------------------------------------------------- grading


@pytest.fixture(scope="module")
def handout() -> build.Handout:
    return build.build_handout(ROOT, allow_missing=True)


def part_of(files: dict[str, str], functions: dict[str, str], handout: build.Handout) -> str:
    """The one part a catalogue entry changes: a student file, or "MAMLPlusPlus" (the extra credit)."""
    touched = [path for path in STUDENT_FILES if files[path] != handout.stubbed[path].solved]
    assert len(touched) == 1, f"a catalogue entry must change exactly one file, not {touched}"
    if all(name.startswith("MAMLPlusPlus.") for name in functions):
        return "MAMLPlusPlus"
    assert not any(name.startswith("MAMLPlusPlus.") for name in functions), "MAML++ entries change MAML++ only"
    return touched[0]


@pytest.fixture(scope="module")
def graded(handout, tmp_path_factory, omniglot) -> dict[str, Results]:
    """Every catalogue entry (and the fresh stubs, and one entry twice) graded by the real grader.

    An entry that changes maml.py and one that changes maml_transfer.py are
    graded together in one run (their tests are separate parts); each gets the
    results of its own part's tests. ``NOT_RUN`` tests are skipped, but the
    public graph test runs for correct entries and for buggy ones that name it.
    """
    entries = {}  # name -> (part, files, tests it skips)
    for path in BUGGY + CORRECT:
        expect, functions = read_submission(path)
        files = student_files(handout, functions)
        part = part_of(files, functions, handout)
        wants_graph = path in CORRECT or any(key.startswith("train_step") for key in expect)
        entries[path.stem] = (part, files, [] if wants_graph and part == "maml.py" else NOT_RUN[part])
    by_part = {part: [name for name, entry in entries.items() if entry[0] == part] for part in TESTS_OF}
    maml_names, transfer_names = by_part["maml.py"], by_part["maml_transfer.py"]
    jobs = [tuple(n for n in (m, t) if n) for m, t in
            zip(maml_names, transfer_names + [None] * (len(maml_names) - len(transfer_names)))]
    assert len(transfer_names) <= len(maml_names)
    jobs += [(name,) for name in by_part["MAMLPlusPlus"]]
    jobs += [("fresh stubs",), next(job for job in jobs if DETERMINISM in job)]  # the same run twice

    def grade(job: tuple[str, ...]) -> tuple[tuple[str, ...], Results]:
        folder = tmp_path_factory.mktemp("student")
        tests, skipped = [], []
        if job == ("fresh stubs",):
            files, tests = student_files(handout, None), ALL_TESTS
        else:
            files = {path: handout.stubbed[path].solved for path in STUDENT_FILES}
            for name in job:
                part, changed, skips = entries[name]
                files.update({path: changed[path] for path in STUDENT_FILES
                              if changed[path] != handout.stubbed[path].solved})
                tests += TESTS_OF[part]
                skipped += skips
        for path, text in files.items():
            (folder / path).write_text(text, encoding="utf-8")
        select = ["-k", " and ".join(f"not {test}" for test in skipped)] if skipped else []
        results, output = runner.run_tests(tests, select, student_dir=folder)
        assert results.tests and not results.problems, f"{job}: {results.problems}\n{output[-3000:]}"
        return job, results

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        graded_jobs = list(pool.map(grade, jobs))
    found = {}
    for job, results in graded_jobs:
        if job == ("fresh stubs",):
            found["fresh stubs"] = results
            continue
        for name in job:
            prefixes = tuple(str(t.relative_to(ROOT)) for t in TESTS_OF[entries[name][0]])
            mine = Results([t for t in results.tests if t.id.startswith(prefixes)], results.problems, results.version)
            found[name if name not in found else f"{name} (again)"] = mine
    return found


def table(results: Results) -> str:
    return "\n".join(f"{t.points:g}/{t.max_points:g} {t.status} {t.name}: {t.message}" for t in results.tests)


# ---------------------------------------------------------------- the catalogue


def test_the_catalogue_is_large_enough():
    assert len(BUGGY) >= 15 and len(CORRECT) >= 5
    for path in BUGGY:
        expect, functions = read_submission(path)
        assert expect and functions, f"{path.name} needs EXPECT and at least one function"
    for path in CORRECT:
        assert not read_submission(path)[0], f"{path.name}: a correct submission expects no failures"


@pytest.mark.parametrize("path", BUGGY, ids=lambda p: p.stem)
def test_buggy_submission_loses_points_on_the_right_checks_with_the_right_message(path, graded):
    expect, _ = read_submission(path)
    results = graded[path.stem]
    for test in results.tests:
        matching = [key for key in expect if test.name.startswith(key)]
        assert len(matching) <= 1, f"{path.name}: {matching} all match {test.name!r}"
        if matching:
            wanted = expect[matching[0]]
            wanted = wanted if isinstance(wanted, tuple) else (wanted,)
            assert test.points < test.max_points, f"{path.name}: {test.name!r} kept its points\n{table(results)}"
            assert any(text in test.message for text in wanted), (f"{path.name}: {test.name!r} says\n{test.message}"
                                                                  f"\nexpected it to say one of {wanted!r}")
        else:
            assert test.status == PASSED and test.points == test.max_points, \
                f"{path.name}: {test.name!r} should keep full marks\n{table(results)}"
    named = {key for key in expect if any(t.name.startswith(key) for t in results.tests)}
    assert named == set(expect), f"{path.name}: EXPECT names no graded test: {set(expect) - named}"


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_written_differently_gets_full_marks(path, graded):
    results = graded[path.stem]
    assert all(t.status == PASSED and t.points == t.max_points for t in results.tests), table(results)
    assert results.points == results.max_points > 0


def test_fresh_stubs_get_zero_with_messages_naming_the_todo(graded):
    results = graded["fresh stubs"]
    assert results.points == 0 and results.max_points > 0
    for test in results.tests:
        assert test.message, test.name
        if "submitted" in test.name:  # no results/ folder: the weights were not handed in
            assert test.message.startswith("the submission has no "), (test.name, test.message)
        else:
            assert test.status == TODO and test.message.startswith("not implemented yet: "), (test.name, test.message)
    todos = "\n".join(t.message for t in results.tests)
    for todo in ("MAML.inner_loop", "MAML.outer_loop", "transfer_learn"):
        assert f"not implemented yet: {todo} (" in todos, todo


def test_the_same_submission_gets_the_same_grade_twice(graded):
    first, second = graded[DETERMINISM], graded[f"{DETERMINISM} (again)"]
    assert [(t.name, t.points, t.status, t.message) for t in first.tests] == \
           [(t.name, t.points, t.status, t.message) for t in second.tests]
    assert 0 < first.points < first.max_points


@pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")  # the hidden module's @points
def test_the_efficiency_verdict_reports_the_ratio_and_advises_beyond_the_bound():
    from instructor.autograder.tests import test_efficiency

    ok, message = test_efficiency.verdict(1.2, False, 0.0096, 0.008)
    assert ok and message.startswith("A training step with your outer_loop took 1.2x the reference's time")
    assert "(9.6 ms vs 8 ms, best of 15, compiled; bound 4x)" in message
    ok, message = test_efficiency.verdict(41.0, True, 0.335, 0.00821)
    assert not ok and "eagerly: it could not run as a tf.function" in message and ".numpy()" in message
