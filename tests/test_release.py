"""The release tool (instructor/release) and the handout's local grader (grader/).

Guards of the release, each a test: marker semantics and errors, leak checks
(and that they catch real leaks), the student layout, byte-reproducible zips,
the version stamp, stubs that import and run up to the first TODO, the local
grader on fresh stubs (every TODO reported, no crash), the round trip (the
handout with the solutions pasted back passes every public test), and
fixtures that are current with the reference.

One handout is built per module and unpacked from the real zip; every run of
the grader or the scaffold is a real subprocess in a temporary copy of it.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader import version as grader_version
from grader.files import ROOT
from grader.results import PASSED, TODO, Results
from instructor.release import archive, build, bundle, config, leaks, markers
from instructor.release.markers import MarkerError, stub_source

HAS_TRANSFER = (ROOT / "maml_transfer.py").is_file()  # part 2 may not have landed yet
BASE_TODOS = ["MAML.inner_loop", "MAML.outer_loop"] + (["transfer_learn"] if HAS_TRANSFER else [])


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def handout() -> build.Handout:
    return build.build_handout(ROOT, allow_missing=True)


@pytest.fixture(scope="module")
def released(handout, tmp_path_factory) -> tuple[Path, Path]:
    return build.write_handout(handout, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def unpacked(released, handout, tmp_path_factory) -> Path:
    """The handout as a student gets it: unpacked from handout.zip."""
    target = tmp_path_factory.mktemp("student")
    with zipfile.ZipFile(released[1]) as archive_file:
        archive_file.extractall(target)
    return target / handout.folder


@pytest.fixture
def student_copy(unpacked, tmp_path) -> Path:
    """A fresh copy of the unpacked handout that a test may change."""
    return Path(shutil.copytree(unpacked, tmp_path / "handout"))


@pytest.fixture(scope="module")
def data_env(omniglot) -> dict:
    """Environment for subprocesses: the preprocessed Omniglot cache of this repository."""
    import load_data

    return {**os.environ, load_data.DATA_DIR_ENV: str(load_data.data_dir()), "TF_CPP_MIN_LOG_LEVEL": "2"}


def run(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_grader(folder: Path, env: dict | None = None, *extra: str) -> tuple[subprocess.CompletedProcess, Results]:
    """``python -m grader`` in ``folder``, and the results it wrote."""
    results = folder / "results.json"
    child = run(["-m", "grader", "--json", str(results), *extra], folder, env)
    assert results.is_file(), f"the grader wrote no results:\n{child.stdout}\n{child.stderr}"
    return child, Results.from_json(results.read_text(encoding="utf-8"))


def paste_solutions(handout: build.Handout, folder: Path, only: tuple[str, ...] | None = None) -> None:
    """Writes the stubbed files with their solutions back in (all, or only the files ``only``)."""
    for path, stubbed in handout.stubbed.items():
        if stubbed.blocks and (only is None or path in only):
            (folder / path).write_text(stubbed.solved, encoding="utf-8")


def stub(text: str, path: str = "x.py") -> markers.StubbedFile:
    return stub_source(textwrap.dedent(text), path)


# ---------------------------------------------------------------- markers


def test_solution_block_becomes_todo_and_raise_naming_the_method():
    result = stub('''\
        class Model:
            def step(self, x):
                """Docstring."""
                y = 2
                if x:
                    # BEGIN SOLUTION
                    y = x * 3
                    # END SOLUTION
                return y


        def outer():
            def inner():
                # BEGIN SOLUTION
                return 1
                # END SOLUTION
            return inner
        ''')
    assert result.todos == ["Model.step", "outer.<locals>.inner"]
    assert result.handout == textwrap.dedent('''\
        class Model:
            def step(self, x):
                """Docstring."""
                y = 2
                if x:
                    # TODO: Complete Model.step as its docstring describes, then delete this raise.
                    raise NotImplementedError("Model.step is not implemented yet: complete the TODO in x.py")
                return y


        def outer():
            def inner():
                # TODO: Complete outer.<locals>.inner as its docstring describes, then delete this raise.
                raise NotImplementedError("outer.<locals>.inner is not implemented yet: complete the TODO in x.py")
            return inner
        ''')
    namespace: dict = {}
    exec(compile(result.handout, "x.py", "exec"), namespace)  # the stub imports ...
    with pytest.raises(NotImplementedError, match="Model.step"):  # ... and raises where the TODO is
        namespace["Model"]().step(1)
    assert namespace["Model"]().step(0) == 2  # the code around the TODO still runs


def test_prompt_block_is_uncommented_starter_code_and_solution_lines_are_removed():
    result = stub('''\
        import math
        import secrets  # SOLUTION


        def area(r):
            # BEGIN PROMPT
            # half = r / 2
            #
            # for _ in range(1):
            #     pass  # TODO: compute the area
            # END PROMPT
            # BEGIN SOLUTION
            return math.pi * r ** 2
            # END SOLUTION
        ''')
    assert result.handout == textwrap.dedent('''\
        import math


        def area(r):
            half = r / 2

            for _ in range(1):
                pass  # TODO: compute the area
            raise NotImplementedError("area is not implemented yet: complete the TODO in x.py")
        ''')
    assert result.solution_lines == [(2, "import secrets  # SOLUTION\n")]
    assert "secrets" in result.solved and "PROMPT" not in result.solved and "half" not in result.solved


def test_marker_text_inside_strings_is_not_a_marker():
    source = 's = """\n# BEGIN SOLUTION\n"""\nt = "x  # SOLUTION"\n'
    assert stub(source).handout == source


@pytest.mark.parametrize("source, line, message", [
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n", 2, "never closed"),
    ("def f():\n    return 1\n    # END SOLUTION\n", 3, "without a matching"),
    ("def f():\n    # BEGIN SOLUTION\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", 3, "nested"),
    ("def f():\n    # BEGIN PROMPT\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", 3, "inside the PROMPT"),
    ("def f():\n    # BEGIN PROMPT\n    # x = 1\n    # END PROMPT\n    return 1\n", 2, "not followed"),
    ("def f():\n    #BEGIN SOLUTION\n    return 1\n", 2, "malformed marker"),
    ("def f():\n    # end solution\n", 2, "malformed marker"),
    ("def f():\n    return 1  # solution\n", 2, "malformed marker"),
    ("def f():\n    # BEGIN SOLUTION\n    return 1\n  # END SOLUTION\n", 4, "indented"),
    ("x = 1\n# BEGIN SOLUTION\ny = 2\n# END SOLUTION\n", 2, "inside a function body"),
    ("def f():\n    # BEGIN PROMPT\n    # return 0\n    # END PROMPT\n    # BEGIN SOLUTION\n    return 1\n"
     "    # END SOLUTION\n", 2, "would never run"),
    ("def f():\n    if True:\n        x = 1  # SOLUTION\n    return 2\n", 4, "does not compile"),
])
def test_bad_markers_are_errors_naming_file_and_line(source, line, message):
    with pytest.raises(MarkerError, match=message) as error:
        stub_source(source, "bad.py")
    assert str(error.value).startswith(f"bad.py:{line}:")


def test_real_sources_stub_cleanly_and_solutions_round_trip(handout):
    """Stubbing touches nothing but comments and the solution blocks: source and solved parse alike."""
    assert set(BASE_TODOS) <= {todo for todos in handout.todos.values() for todo in todos}
    for path, stubbed in handout.stubbed.items():
        compile(stubbed.handout, path, "exec")
        assert ast.dump(ast.parse(stubbed.solved)) == ast.dump(ast.parse(stubbed.source)), path


# ---------------------------------------------------------------- leaks and layout


def test_handout_layout_readme_and_requirements(handout, released):
    folder, zip_path = released
    with zipfile.ZipFile(zip_path) as archive_file:
        names = archive_file.namelist()
    assert names == sorted(f"{handout.folder}/{path}" for path in handout.files)
    expected_top = {"maml.py", "maml_transfer.py", "load_data.py", "settings.py", "runs.py", "scaffold.py",
                    "training.py", "report_template.md", "requirements.txt", "README.md", "grader"} - (
        {"maml_transfer.py"} if not HAS_TRANSFER else set())
    expected_top |= {"requirements-base.txt", "requirements-gpu.txt", build.NOTEBOOK}  # GPU install, Colab
    assert {p.split("/")[0] for p in handout.files} == expected_top
    assert {p.name for p in folder.iterdir()} == expected_top
    assert not any(p.startswith(("instructor/", "tests/")) or "__pycache__" in p for p in handout.files)
    assert handout.files["requirements.txt"] == (ROOT / "requirements.txt").read_bytes()
    for plain in ("requirements-base.txt", "requirements-gpu.txt", build.NOTEBOOK):  # as they are
        assert handout.files[plain] == (ROOT / plain).read_bytes()
    edited = {**handout.files, build.NOTEBOOK: b"{}"}  # fixing the notebook keeps the version
    assert build.version_digest(edited) == build.version_digest(handout.files)
    for provided in ("load_data.py", "settings.py", "runs.py", "scaffold.py", "training.py"):  # nothing to stub
        assert handout.files[provided] == (ROOT / provided).read_bytes()
    readme = handout.files["README.md"].decode()
    settings = config.load_config(ROOT / build.CONFIG)
    assert "{{" not in readme and "}}" not in readme
    for key in ("schedule.deadline", "schedule.late_policy", "assignment.zip_name"):
        assert settings.values[key] in readme
    for problem, points in [("FO-MAML implementation", "20"), ("FO-MAML assessment", "10"),
                            ("Transfer learning implementation", "10"),
                            ("Transfer learning assessment", "10"), ("Extra credit: MAML++", "+10")]:
        assert any(problem in line and f"| {points} |" in line for line in readme.splitlines()), problem
    assert "python -m grader" in readme and handout.version in readme


def test_release_passes_its_leak_checks(handout):
    assert build.check_handout(handout, ROOT) == []
    for path, content in handout.files.items():
        for marker in markers.BLOCK_MARKERS:
            assert marker.encode() not in content, path


def test_leak_checks_catch_solutions_hidden_files_and_weights(handout):
    """Each planted leak is reported, by file."""
    block = handout.stubbed["maml.py"].blocks[0]
    public = " ".join(t for t, _ in leaks.tokens(leaks.public_text(handout.stubbed["maml.py"].source)))
    solution_line = next(line for line in block.solution if len(leaks.tokens(line)) >= leaks.MIN_LINE_TOKENS
                         and " ".join(t for t, _ in leaks.tokens(line)) not in public)
    rewrapped = " ".join("".join(block.solution[:6]).split())  # on one line, as prose
    files = dict(handout.files)
    files["README.md"] += f"\nHint: {solution_line.strip()}\n".encode()
    files["maml.py"] += f"\n# {rewrapped}\n".encode()
    files["grader/tests/test_hidden.py"] = (ROOT / "instructor/make_fixtures.py").read_bytes()
    files["grader/hidden/test_secret.py"] = b"x = 1\n"
    files["grader/fixtures/weights.npz"] = archive.npz_bytes({"conv1": np.zeros((3, 3, 64, 64))})
    text = {p: c.decode() for p, c in files.items() if not p.endswith(".npz")}
    found = leaks.solution_leaks(handout.stubbed.values(), text)
    assert any(f.startswith("README.md:") for f in found), found
    assert any(f.startswith("maml.py:") for f in found), found
    problems = leaks.forbidden_files(files, build.HANDOUT_PATTERNS, build.instructor_files(ROOT))
    assert any("test_hidden.py: is a copy of the instructor-only file instructor/make_fixtures.py" in p
               for p in problems), problems
    assert any(p.startswith("grader/hidden/test_secret.py: not part of the student layout") for p in problems)
    assert any("weights.npz" in p and "'conv1'" in p for p in problems), problems


def test_a_solution_the_stubber_missed_is_a_leak(handout):
    texts = handout.text_files()
    texts["maml.py"] = handout.stubbed["maml.py"].solved  # as if the markers had been ignored
    found = leaks.solution_leaks(handout.stubbed.values(), texts)
    assert len(found) >= len(handout.stubbed["maml.py"].blocks)
    assert all(f.startswith("maml.py:") for f in found)


def test_build_errors_name_the_problem(tmp_path):
    """Missing files, bad markers and unknown placeholders stop the release before it writes."""
    repo = tmp_path / "repo"
    for path in [*build.STUDENT_CODE, *build.PLAIN_FILES, build.CONFIG, build.README_TEMPLATE]:
        if (ROOT / path).is_file():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / path, repo / path)
    shutil.copytree(ROOT / "grader", repo / "grader", ignore=shutil.ignore_patterns("__pycache__", "VERSION"))
    (repo / "report_template.md").unlink()
    with pytest.raises(build.ReleaseError, match="report_template.md"):
        build.build_handout(repo)
    (repo / "report_template.md").write_text("# report\n")
    (repo / "maml.py").write_text((ROOT / "maml.py").read_text().replace("# END SOLUTION", "#END SOLUTION", 1))
    out = tmp_path / "dist"
    child = run(["-m", "instructor.release", "--root", str(repo), "--out", str(out), "--allow-missing"], ROOT)
    assert child.returncode == 1 and "malformed marker '#END SOLUTION'" in child.stderr, child.stderr
    assert child.stderr.startswith("release failed: maml.py:")
    assert not out.exists()  # nothing written
    shutil.copy(ROOT / "maml.py", repo / "maml.py")
    (repo / build.README_TEMPLATE).write_text("Due {{ schedule.deadline }}\nBy {{ schedule.dedline }}\n")
    with pytest.raises(build.ReleaseError, match=r"README.md:2: placeholder \{\{ schedule.dedline \}\}"):
        build.build_handout(repo, allow_missing=True)


# ---------------------------------------------------------------- reproducibility and version


def test_two_builds_give_byte_identical_zips(handout, released, tmp_path):
    again = build.build_handout(ROOT, allow_missing=True)
    _, zip_path = build.write_handout(again, tmp_path / "dist")
    assert zip_path.read_bytes() == released[1].read_bytes()
    build.write_handout(again, tmp_path / "dist")  # writing over an earlier release works
    assert zip_path.read_bytes() == released[1].read_bytes()
    with zipfile.ZipFile(zip_path) as archive_file:
        for info in archive_file.infolist():
            assert info.date_time == archive.FIXED_DATE
            assert (info.external_attr >> 16) & 0o777 == archive.FILE_MODE


def test_version_stamp(handout, unpacked):
    settings = config.load_config(ROOT / build.CONFIG)
    assert handout.version == f"{settings.version}+{build.version_digest(handout.files)}"
    assert (unpacked / "grader" / "VERSION").read_text().strip() == handout.version
    child = run(["-m", "grader", "version"], unpacked)
    assert child.stdout.strip() == handout.version
    files = dict(handout.files)
    files["README.md"] += b"typo fixed\n"
    assert build.version_digest(files) == build.version_digest(handout.files)  # prose is not graded
    files["maml.py"] += b"\n"
    assert build.version_digest(files) != build.version_digest(handout.files)
    grader_version.check(handout.version, handout.version)
    with pytest.raises(grader_version.VersionMismatch, match="another build of handout"):
        grader_version.check(f"{settings.version}+000000000000", handout.version)
    with pytest.raises(grader_version.VersionMismatch, match="handout version 2019.1.*Download the current"):
        grader_version.check("2019.1+abc", handout.version)


# ---------------------------------------------------------------- the handout at work


def test_stubs_import_and_the_scaffold_runs_up_to_the_first_todo(student_copy, data_env):
    modules = "maml, load_data" + (", maml_transfer" if HAS_TRANSFER else "")
    child = run(["-c", f"import {modules}"], student_copy, data_env)
    assert child.returncode == 0, child.stderr
    log_dir = student_copy / "runs" / "stub"
    child = run(["maml.py", "--num-iterations", "1", "--num-val-tasks", "2", "--log-dir", str(log_dir)],
                student_copy, data_env)
    last_line = child.stderr.strip().splitlines()[-1]
    assert child.returncode != 0
    assert last_line.startswith("NotImplementedError: MAML.") and "complete the TODO in maml.py" in last_line
    assert (log_dir / "hparams.json").is_file()  # data loaded, model built, run folder written
    if HAS_TRANSFER:  # part 2's pre-training validates transfer (its TODO) before the first step
        log_dir = student_copy / "runs" / "transfer_stub"
        child = run(["maml_transfer.py", "pretrain", "--num-epochs", "0.01", "--num-val-tasks", "2",
                     "--log-dir", str(log_dir)], student_copy, data_env)
        assert child.returncode != 0
        assert child.stderr.strip().splitlines()[-1].startswith("NotImplementedError: transfer_learn is not")
        assert (log_dir / "hparams.json").is_file()


def test_local_grader_on_fresh_stubs_reports_every_todo(student_copy):
    child, results = run_grader(student_copy)
    assert child.returncode == 1, child.stdout + child.stderr
    assert "Traceback" not in child.stdout + child.stderr
    assert results.tests and not results.problems
    assert results.points == 0 and results.max_points > 0
    missing_file = "maml_transfer.py is missing"
    for test in results.tests:
        assert test.status == TODO or missing_file in test.message, (test.name, test.status, test.message)
        assert test.name in child.stdout and test.message.splitlines()[0][:40] in child.stdout
    reported = "\n".join(t.message for t in results.tests)
    for todo in BASE_TODOS:
        assert f"not implemented yet: {todo} (" in reported, todo


def test_round_trip_handout_with_solutions_passes_every_public_test(handout, student_copy):
    paste_solutions(handout, student_copy)
    child, results = run_grader(student_copy)
    failed = [(t.name, t.message) for t in results.tests if t.status != PASSED]
    if not HAS_TRANSFER:  # part 2 not written yet: its tests can only report the missing file
        failed = [f for f in failed if "maml_transfer.py is missing" not in f[1]]
    assert not failed and not results.problems, child.stdout
    assert child.returncode == (0 if HAS_TRANSFER else 1)
    if HAS_TRANSFER:
        assert results.points == results.max_points


def test_local_grader_explains_wrong_results_and_broken_code(handout, student_copy):
    """A wrong outer loss fails exactly the checks that see it; a syntax error fails all, by name."""
    paste_solutions(handout, student_copy)
    maml_py = student_copy / "maml.py"
    solved = maml_py.read_text()
    maml_py.write_text(solved + textwrap.dedent("""

        _reference_outer_loop = MAML.outer_loop


        def _summed_over_tasks(self, task_batch, train):  # a classic mistake: sum instead of mean
            loss, accuracies_support, accuracy_query = _reference_outer_loop(self, task_batch, train)
            return loss * len(task_batch), accuracies_support, accuracy_query


        MAML.outer_loop = _summed_over_tasks
        """))
    child, results = run_grader(student_copy, None, "-k", "inner_loop or outer_loop")
    status = {t.name: t for t in results.tests}
    assert all(t.status == PASSED for name, t in status.items() if name.startswith("inner_loop")), child.stdout
    loss = status["outer_loop: outer loss and accuracies match the reference"]
    assert loss.status == "failed" and "the outer loss differs from the reference" in loss.message
    assert "Traceback" not in child.stdout

    assert "class MAML(MetaLearner):" in solved
    maml_py.write_text(solved.replace("class MAML(MetaLearner):", "class MAML(:", 1))
    child, results = run_grader(student_copy, None, "-k", "inner_loop")
    assert results.tests and all(t.status == "error" for t in results.tests)
    assert all(t.message.startswith("could not import maml.py: SyntaxError") for t in results.tests)
    assert "Traceback" not in child.stdout


def test_fixtures_are_current_with_the_reference(omniglot):
    """The stored fixtures are what the reference computes now (else: python -m instructor.make_fixtures)."""
    from instructor import make_fixtures

    problems = [p for name, fresh in make_fixtures.all_fixtures().items()
                for p in make_fixtures.differences(name, fresh)]
    assert not problems, "\n".join(problems)


def test_the_stored_pretrained_features_are_what_the_transfer_training_check_assumes(omniglot):
    """reference_hidden.npz's conv-4 features (regenerated runs differ by ~1e-2: float32 training): the
    reference's transfer on the pre-trained ones is well above the check's target, on the untrained ones
    well below it, so the target tells a working transfer_learn from a broken one."""
    import json

    from instructor import make_fixtures
    from instructor.autograder.tests import reference
    from instructor.autograder.tests.test_training import TRANSFER_TARGET

    stored = make_fixtures.load("reference_hidden")
    facts = json.loads(str(stored["facts"]))
    hp = facts["assignment"]
    tasks = {"split": "val", "seed": facts["val_seed"], "num_way": hp["num_way"], "num_support": hp["num_support"],
             "num_query": hp["num_query"], "count": hp["num_val_tasks"]}

    def accuracy(steps: int) -> float:
        prefix = f"pretrained_{steps}/"
        frozen = {key[len(prefix):]: value for key, value in stored.items() if key.startswith(prefix)}
        assert sorted(frozen) == sorted(facts["feature_keys"])
        return reference.transfer_accuracy(frozen, tasks, facts["transfer_steps"], facts["transfer_lr"])["mean"]

    trained, untrained = accuracy(reference.PRETRAIN_STEPS), accuracy(0)
    assert trained >= TRANSFER_TARGET + 0.05 and untrained <= TRANSFER_TARGET - 0.05, (trained, untrained)


def test_release_command_prints_a_summary(tmp_path):
    out = tmp_path / "dist"
    args = ["-m", "instructor.release", "--out", str(out)] + ([] if HAS_TRANSFER else ["--allow-missing"])
    child = run(args, ROOT)
    assert child.returncode == 0, child.stderr
    assert (out / "handout.zip").is_file() and (out / "handout" / "maml.py").is_file()
    assert (out / "autograder.zip").is_file()
    assert "TODO: MAML.inner_loop, MAML.outer_loop" in child.stdout and "leak checks passed" in child.stdout
    stamped = (out / "handout" / "grader" / "VERSION").read_text().strip()
    assert stamped in child.stdout.splitlines()[0]


def test_autograder_bundle_grades_submissions_in_a_gradescope_layout(handout, tmp_path):
    """dist/autograder.zip, unpacked as Gradescope does, grades with the handout's tests and version."""
    zip_path = bundle.write_bundle(handout, tmp_path / "dist")
    root = tmp_path / "autograder"  # stands for /autograder
    with zipfile.ZipFile(zip_path) as archive_file:
        archive_file.extractall(root)
        for info in archive_file.infolist():  # as unzip does: restore the permission bits
            (root / info.filename).chmod((info.external_attr >> 16) & 0o777)
    assert sorted(p.name for p in root.iterdir()) == ["GRADESCOPE_SETTINGS.txt", "run_autograder", "setup.sh", "source"]
    assert os.access(root / "run_autograder", os.X_OK) and os.access(root / "setup.sh", os.X_OK)
    settings = bundle.GRADESCOPE_SETTINGS  # the instructions name the settings run_autograder plans for
    instructions = (root / "GRADESCOPE_SETTINGS.txt").read_text(encoding="utf-8")
    assert f"Autograder timeout:  {settings['timeout'] // 60} minutes" in instructions
    assert f"{settings['cpus']:g} vCPU, {settings['memory']}B of memory" in instructions
    assert f'GRADER_PLATFORM_TIMEOUT:-{settings["timeout"]}' in (root / "run_autograder").read_text()
    assert (root / "source/grader/VERSION").read_text().strip() == handout.version  # same as the handout
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PYTHON": sys.executable}
    results_path = root / "results" / "results.json"

    def grade(files: dict[str, str]) -> dict:
        shutil.rmtree(root / "submission", ignore_errors=True)
        for path, text in files.items():
            (root / "submission" / path).parent.mkdir(parents=True, exist_ok=True)
            (root / "submission" / path).write_text(text, encoding="utf-8")
        results_path.unlink(missing_ok=True)
        child = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True,
                               timeout=900)
        assert child.returncode == 0, child.stderr
        return json.loads(results_path.read_text(encoding="utf-8"))

    other = grade({"Kim_2020-12345/grader/VERSION": "2019.1+abc\n", "Kim_2020-12345/maml.py": ""})
    assert other["score"] == 0 and "handout version 2019.1" in other["output"]
    empty = grade({"notes.txt": "no code"})
    assert empty["score"] == 0 and "maml.py is not in the submission" in empty["output"]

    solved = {f"Kim_2020-12345/{p}": handout.stubbed[p].solved
              for p in ("maml.py", "maml_transfer.py") if p in handout.stubbed}
    full = grade(solved)
    extra = full["extra_data"]  # the public MAML++ checks: max_score 0, their points on top of the total
    assert full["tests"] and all(t["score"] == t["max_score"] > 0 or t["max_score"] == 0 < t["score"]
                                 for t in full["tests"]), full
    assert extra["extra_credit"] == extra["max_extra_credit"] > 0, extra
    assert full["score"] == sum(t["max_score"] for t in full["tests"]) + extra["max_extra_credit"]
    assert {t["visibility"] for t in full["tests"]} == {"visible"}
