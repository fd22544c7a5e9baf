"""The similarity report (instructor/similarity.py) on real submission zips.

Submissions are written with ``grader.submission.write_submission`` from the
reference solution and from the correct catalogue (tests/submissions/correct,
pasted into the handout as tests/test_grading_catalogue.py does):

* Kim Minji hands in the reference; Park Jiwoo copies it, renames every local
  variable and argument and reorders the functions and methods (done here with
  ``ast``): the pair must rank first and be flagged;
* Choi Yuna and Jung Hoon each write their own correct solution (different
  catalogue entries for each function, the extra credit not attempted): they
  must not be flagged, with each other or with the reference;
* Lee Jiho and Han Sora hand in the handout as given (stubs only): they must not
  match each other, which shows the scaffold and docstrings are left out;
* an earlier year's copy of the reference in ``--archive`` is flagged against
  this year's copies only.
"""

from __future__ import annotations

import ast
import csv
import subprocess
import sys
from pathlib import Path

import pytest

from grader import submission
from grader.files import ROOT
from instructor import similarity
from instructor.experiments.catalogue_accuracy import CATALOGUE, paste, read_entry, student_files
from instructor.release import build

THRESHOLD = similarity.default_threshold()
REFERENCE = ("Kim Minji", "2020-12345")
COPY = ("Park Jiwoo", "2020-23456")
INDEPENDENT = (("Choi Yuna", "2020-34567"), ("Jung Hoon", "2020-45678"))
STUBS = (("Lee Jiho", "2021-54321"), ("Han Sora", "2021-11111"))
OLD_COPY = ("Oh Sejin", "2019-22222")
# each independent student's own functions: one catalogue entry per function, none from the reference
OWN = (("parameter_lists", "transfer_analytic_gradient"),
       ("separate_tape_first_order", "vectorized_map_over_tasks", "transfer_while_loop"))


@pytest.fixture(scope="module")
def handout() -> build.Handout:
    return build.build_handout(ROOT, allow_missing=True)


# ---------------------------------------------------------------- what students hand in


class _Renamer(ast.NodeTransformer):
    """Renames every argument and local variable of every function (not attributes, globals or keywords)."""

    def visit_FunctionDef(self, node):  # noqa: N802 - ast's name
        names = {a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)} - {"self"}
        names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        mapping = {name: f"my_{name[::-1]}_{i}" for i, name in enumerate(sorted(names))}
        for child in ast.walk(node):
            if isinstance(child, ast.Name) and child.id in mapping:
                child.id = mapping[child.id]
            elif isinstance(child, ast.arg) and child.arg in mapping:
                child.arg = mapping[child.arg]
        return node


def disguised(source: str) -> str:
    """``source`` with its functions' variables renamed and its functions and methods in reverse order.

    Comments are lost and the layout changes (``ast.unparse``); the copy is
    compared, never run.
    """
    tree = ast.parse(source)
    _Renamer().visit(tree)
    for body in [tree.body, *(node.body for node in tree.body if isinstance(node, ast.ClassDef))]:
        functions = [i for i, node in enumerate(body) if isinstance(node, ast.FunctionDef)]
        for i, node in zip(functions, reversed([body[i] for i in functions])):
            body[i] = node
    return ast.unparse(tree)


def independent(handout: build.Handout, entries: tuple[str, ...]) -> dict[str, str]:
    """A correct solution written without the reference: catalogue functions pasted into the handout's stubs.

    Every TODO of the assignment is written by some entry; the MAML++ extra
    credit is not attempted (its stubs stay as given).
    """
    functions = {}
    for entry in entries:
        functions.update(read_entry(CATALOGUE / "correct" / f"{entry}.py").functions)
    files = {}
    for path, stub in student_files(handout, None).items():
        todos = handout.stubbed[path].todos
        files[path] = paste(stub, {name: code for name, code in functions.items() if name in todos})
    assert set(functions) >= {"MAML.inner_loop", "MAML.outer_loop", "transfer_learn"}
    return files


def zip_files(code: dict[str, str]) -> dict[str, bytes]:
    """A complete submission around ``code``: a report and placeholder runs (as tests/test_batch_grading.py)."""
    files = {name: text.encode() for name, text in code.items()}
    files["report.md"] = b"# Report\n"
    for kind in ("fomaml", "transfer"):
        for name in submission.RUN_FILES:
            files[f"results/{kind}/{name}"] = f"placeholder {kind}/{name}\n".encode()
    return files


@pytest.fixture(scope="module")
def folders(handout, tmp_path_factory) -> tuple[Path, Path]:
    """(this year's submissions, last year's archive), as real zips."""
    current, archive = tmp_path_factory.mktemp("submissions"), tmp_path_factory.mktemp("archive")
    reference = student_files(handout, {})

    def write(code, student, folder=current):
        submission.write_submission(zip_files(code), *student, folder, version=handout.version)

    write(reference, REFERENCE)
    write({path: disguised(text) for path, text in reference.items()}, COPY)
    for student, entries in zip(INDEPENDENT, OWN):
        write(independent(handout, entries), student)
    for student in STUBS:
        write(student_files(handout, None), student)
    write(reference, OLD_COPY, archive)
    (current / "notes.txt").write_text("not a submission\n")
    (current / "Kim Minji_2020-12345_Assignment2 (1).zip").write_bytes(b"not a zip")
    return current, archive


@pytest.fixture(scope="module")
def report(folders, handout, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``python -m instructor.similarity`` run for real, with the archive and the released handout.zip."""
    current, archive = folders
    out = tmp_path_factory.mktemp("grades")
    _, handout_zip = build.write_handout(handout, tmp_path_factory.mktemp("dist"))
    before = {p: p.read_bytes() for p in current.iterdir()}
    done = subprocess.run([sys.executable, "-m", "instructor.similarity", str(current), "--out", str(out),
                           "--archive", str(archive), "--handout", str(handout_zip)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    assert {p: p.read_bytes() for p in current.iterdir()} == before, "the submissions were changed"
    return done, out


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def pair_of(row: dict) -> set[str]:
    return {row["student_a"], row["student_b"]}


# ---------------------------------------------------------------- tests


def test_a_disguised_copy_ranks_first_and_is_flagged(report):
    done, out = report
    rows = read_csv(out / similarity.PAIRS_CSV)
    assert list(rows[0]) == list(similarity.PAIR_COLUMNS)
    current = [r for r in rows if "(archive)" not in r["name_b"]]
    assert pair_of(current[0]) == {REFERENCE[1], COPY[1]}, current[:3]
    assert current[0]["flagged"] == "yes" and float(current[0]["score"]) >= THRESHOLD
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert [float(r["score"]) for r in rows] == sorted((float(r["score"]) for r in rows), reverse=True)
    assert "Park Jiwoo" in done.stdout and "FLAG" in done.stdout  # the summary table


def test_independent_solutions_and_the_handout_stubs_are_not_flagged(report):
    done, out = report
    rows = read_csv(out / similarity.PAIRS_CSV)
    flagged = [pair_of(r) for r in rows if r["flagged"] == "yes"]
    originals = {REFERENCE[1], COPY[1], OLD_COPY[1]}
    assert all(pair <= originals for pair in flagged), flagged
    scores = {frozenset(pair_of(r)): float(r["score"]) for r in rows}
    c, d = (student[1] for student in INDEPENDENT)
    for a, b in ((c, d), (c, REFERENCE[1]), (d, REFERENCE[1]), (c, COPY[1])):
        assert scores[frozenset({a, b})] < THRESHOLD, (a, b, scores[frozenset({a, b})])
    # the stubs share the whole scaffold and every docstring, and nothing else: none of it counts
    stubs = [s[1] for s in STUBS]
    assert scores[frozenset(stubs)] == 0.0
    assert all(scores[frozenset({s, other})] == 0.0 for s in stubs for other in originals - {OLD_COPY[1]})


def test_the_archive_is_compared_with_this_year_only_and_flags_go_to_their_own_file(report):
    done, out = report
    rows = read_csv(out / similarity.PAIRS_CSV)
    archived = [r for r in rows if r["name_b"].endswith(similarity.ARCHIVE_MARK)]
    assert archived and all(r["student_b"] == OLD_COPY[1] for r in archived)
    assert all(r["student_a"] != OLD_COPY[1] for r in rows)  # an archived student is never student_a
    assert len(rows) == 6 * 5 // 2 + 6  # six of this year in pairs, each once against the archive
    flags = {r["student_number"]: r for r in read_csv(out / similarity.FLAGS_CSV)}
    assert set(flags) == {REFERENCE[1], COPY[1]}
    assert list(next(iter(flags.values()))) == list(similarity.FLAG_COLUMNS)
    assert set(flags[REFERENCE[1]]["flagged_with"].split(";")) == {COPY[1], OLD_COPY[1] + " (archive)"}
    assert flags[COPY[1]]["name"] == COPY[0]
    html = (out / similarity.REPORT).read_text(encoding="utf-8")
    assert f"{COPY[1]} {COPY[0]}" in html and "highlight-red" in html  # side by side, named, highlighted
    flagged = sum(r["flagged"] == "yes" for r in rows)  # the page says what it shows and where the rest are
    assert f"{len(rows)} pairs compared, {flagged} flagged" in html and "similarity.csv" in html
    assert "not a zip" in done.stdout or "Assignment2 (1).zip" in done.stdout  # left out, with the reason


def test_threshold_comes_from_course_toml_and_bad_values_are_refused(tmp_path, folders):
    config = tmp_path / "course.toml"
    config.write_text("[similarity]\nthreshold = 1.5\n")
    with pytest.raises(similarity.SimilarityError, match="at most 1"):
        similarity.default_threshold(config)
    config.write_text("[late]\n")
    with pytest.raises(similarity.SimilarityError, match=r"no \[similarity\] threshold"):
        similarity.default_threshold(config)
    assert 0 < THRESHOLD <= 1
    assert similarity.main([str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()
