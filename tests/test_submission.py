"""Submitting: the zip format (grader/submission.py), the report (grader/fill_report.py), the submit command.

The round trip is real and small: in a copy of the handout (the reference code,
a stamped grader/VERSION) the real command-line programs train FO-MAML for two
iterations, test it, pre-train for three steps, compare, and train MAML++ for
one iteration; ``python -m grader report`` fills the report, the test writes the
answers, ``python -m grader submit`` checks and packs, ``read_submission``
unpacks the zip, and the public grader grades the unpacked code. The same
trained runs, broken in one way each (a missing or damaged plot, weights of the
wrong shape, a bad student number, an unfilled answer, an oversized file), must
each give their own message and no zip.

The zip-reading guards (``..``, absolute paths, links, another handout
version, a folder around the files, tampering, renaming, size) use small zips
built by ``write_submission`` and then altered, since they are about the
container, not its contents.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tomllib
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import run_python

from grader import fill_report, submission
from grader.files import ROOT
from grader.results import Results
from grader.submission import SubmissionError
from instructor.release import build

VERSION = "2025.1+0123456789ab"  # the stamp of the test's handout copy
HANDOUT_FILES = (*build.STUDENT_CODE, "report_template.md")
KOREAN = "송재현"
NUMBER = "2020-12345"


# ---------------------------------------------------------------- helpers


def make_handout(target: Path) -> Path:
    """A handout-like folder: the student files (reference code), grader/ and a stamped grader/VERSION."""
    target.mkdir(parents=True)
    for name in HANDOUT_FILES:
        shutil.copyfile(ROOT / name, target / name)
    shutil.copytree(ROOT / "grader", target / "grader", ignore=shutil.ignore_patterns("__pycache__", "VERSION"))
    (target / "grader" / "VERSION").write_text(VERSION + "\n")
    return target


def answer(report: Path, extra_credit: bool = False) -> None:
    """Writes an answer in place of every [[ANSWER: ...]] (and the extra-credit ones if asked)."""
    pattern = r"\[\[ANSWER( \(extra credit\))?:.*?\]\]"
    text = report.read_text(encoding="utf-8")
    text = re.sub(pattern, lambda m: m.group(0) if m.group(1) and not extra_credit else "Answered by the test.",
                  text, flags=re.S)
    report.write_text(text, encoding="utf-8")


def submit(handout: Path, env: dict, *args: str):
    return run_python(["-m", "grader", "submit", *args], cwd=handout, env=env, timeout=900)


def zips_in(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.zip"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def env(omniglot) -> dict:
    import load_data

    return {**os.environ, load_data.DATA_DIR_ENV: str(load_data.data_dir()), "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, env) -> Path:
    """A handout copy with tiny real runs: runs/fo (FO-MAML, tested), runs/tr (pre-training, compared), runs/pp (MAML++)."""
    handout = make_handout(tmp_path_factory.mktemp("trained") / "handout")
    small = ["--val-interval", "2", "--num-val-tasks", "8", "--meta-batch-size", "4"]
    commands = [
        ["maml.py", "--log-dir", "runs/fo", "--num-iterations", "2", *small],
        ["maml.py", "--test", "--log-dir", "runs/fo", "--num-test-tasks", "8"],
        ["maml_transfer.py", "pretrain", "--log-dir", "runs/tr", "--num-epochs", "0.01", "--batch-size", "64",
         "--val-interval", "2", "--num-val-tasks", "8", "--transfer-steps", "10"],
        ["maml_transfer.py", "compare", "--maml-dir", "runs/fo", "--transfer-dir", "runs/tr",
         "--num-test-tasks", "8", "--shots", "5"],
        ["maml.py", "--log-dir", "runs/pp", "--mamlpp", "--num-iterations", "1", "--num-inner-steps", "2",
         "--val-interval", "1", "--num-val-tasks", "4", "--meta-batch-size", "4"],
    ]
    for command in commands:
        child = run_python(command, cwd=handout, env=env, timeout=900)
        assert child.returncode == 0, f"{' '.join(command)}:\n{child.stdout[-2000:]}\n{child.stderr[-3000:]}"
    return handout


@pytest.fixture(scope="module")
def filled(trained, env) -> Path:
    """``trained`` after `python -m grader report --fomaml --transfer` and the answers written."""
    child = run_python(["-m", "grader", "report", "--fomaml", "runs/fo", "--transfer", "runs/tr"],
                       cwd=trained, env=env)
    assert child.returncode == 0, child.stderr
    assert "still to write" in child.stdout and "still to generate" in child.stdout  # name block, answers
    answer(trained / "report.md")
    return trained


@pytest.fixture
def handout(filled, tmp_path) -> Path:
    """A fresh copy of the filled handout that a test may break."""
    return Path(shutil.copytree(filled, tmp_path / "handout", symlinks=True))


# ---------------------------------------------------------------- the round trip


def test_round_trip_train_report_submit_read_and_grade(handout, env, tmp_path):
    """The zip the submit command writes is accepted by read_submission and its code gets the full public score."""
    answer(handout / "report.md", extra_credit=True)
    out = tmp_path / "upload"
    child = submit(handout, env, "--name", KOREAN, "--student-number", NUMBER, "--mamlpp", "runs/fo", "runs/pp",
                   "--out", str(out))
    assert child.returncode == 0, child.stdout + child.stderr
    assert "✗" not in child.stdout and f"{KOREAN}_{NUMBER}_Assignment2.zip" in child.stdout
    for line in ("code: maml.py and maml_transfer.py import", "FO-MAML weights: re-evaluated",
                 "transfer weights: re-evaluated", "extra credit mamlpp_seed0 weights: re-evaluated",
                 "extra credit maml_seed0 weights: re-evaluated", "report.md: every part is filled in",
                 "the transfer comparison used the submitted FO-MAML weights"):
        assert f"✓ {line}" in child.stdout, line
    [zip_path] = zips_in(out)
    assert zip_path.name == f"{KOREAN}_{NUMBER}_Assignment2.zip"

    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
    assert infos and all(info.flag_bits & submission.UTF8_FLAG for info in infos)
    assert all(not info.filename.startswith(("/", "runs/")) and ".." not in info.filename for info in infos)

    unpacked = submission.read_submission(zip_path, tmp_path / "unpacked", expected_version=VERSION)
    assert (unpacked.name, unpacked.student_number, unpacked.version) == (KOREAN, NUMBER, VERSION)
    assert set(submission.REQUIRED) <= set(unpacked.files)
    assert unpacked.mamlpp_runs == ["maml_seed0", "mamlpp_seed0"]
    assert not any("checkpoints" in p or "tensorboard" in p for p in unpacked.files)
    for path in ("maml.py", "results/fomaml/weights.npz", "results/transfer/weights.npz"):
        source = {"maml.py": handout / "maml.py", "results/fomaml/weights.npz": handout / "runs/fo/weights.npz",
                  "results/transfer/weights.npz": handout / "runs/tr/weights.npz"}[path]
        assert (unpacked.root / path).read_bytes() == source.read_bytes(), path

    # the report states what the runs recorded, and the manifest what the re-evaluation found
    report = (unpacked.root / "report.md").read_text(encoding="utf-8")
    final = fill_report.read_history(handout / "runs/fo/history.csv")[-1]
    test = json.loads((handout / "runs/fo/test_results_5way_5shot.json").read_text())
    assert f"{final['val_accuracy_query']:.4f} ± {final['val_accuracy_query_ci95']:.4f}" in report
    assert f"{test['accuracy_query']:.4f} ± {test['accuracy_query_ci95']:.4f}" in report
    assert f"**Name:** {KOREAN} · **Student number:** {NUMBER}" in report
    assert "![Validation query accuracy of FO-MAML over meta-training](results/fomaml/val_accuracy.png)" in report
    assert all((unpacked.root / link).is_file() for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report))
    assert fill_report.unfilled(report, mamlpp=True) == []
    claims = unpacked.manifest["results"]
    assert claims["fomaml"]["val_accuracy_query"] == final["val_accuracy_query"]
    assert abs(claims["fomaml"]["rechecked"] - final["val_accuracy_query"]) <= 0.01

    # the public grader on the unpacked code, in a fresh handout copy (as the autograder does)
    grading = make_handout(tmp_path / "grading")
    for name in submission.CODE:
        shutil.copyfile(unpacked.root / name, grading / name)
    child = run_python(["-m", "grader", "--json", "results.json"], cwd=grading, env=env)
    results = Results.from_json((grading / "results.json").read_text(encoding="utf-8"))
    assert child.returncode == 0 and results.all_passed, child.stdout
    assert results.version == VERSION and results.max_points > 0 and results.points == results.max_points


def test_bad_student_number_unfilled_answer_and_oversized_file_write_no_zip(handout, env):
    report = handout / "report.md"
    prose = report.read_text(encoding="utf-8").replace(
        "## Collaborators and code references\n\nAnswered by the test.",
        "## Collaborators and code references\n\n[[ANSWER: who helped you]]")
    report.write_text(prose, encoding="utf-8")
    (handout / "results/transfer/sweep_5way_5shot.md").write_bytes(b"x" * (submission.MAX_TOTAL_BYTES + 1))
    child = submit(handout, env, "--name", " José  García ", "--student-number", "202012345")
    assert child.returncode == 1, child.stdout + child.stderr
    out = child.stdout
    assert "✗ name or student number: the student number '202012345' is not valid: expected four digits, " \
           "a hyphen and five digits, e.g. 2020-12345" in out
    assert "name '" not in out  # the accented name with spaces is fine
    line = next(n for n, text in enumerate(prose.splitlines(), 1) if "[[ANSWER: who helped you]]" in text)
    assert f"report.md line {line}: write: who helped you" in out
    assert "✗ size: results/transfer/sweep_5way_5shot.md is 25.0 MB, more than the limit of 10 MB per file" in out
    assert "No zip written" in out and zips_in(handout) == []
    assert "✓ FO-MAML weights: re-evaluated" in out  # the other checks still ran
    after = report.read_text(encoding="utf-8")
    assert "[[ANSWER: who helped you]]" in after and after.count("Answered by the test.") == prose.count(
        "Answered by the test.")


def test_missing_plot_damaged_plot_and_wrong_shape_weights_write_no_zip(handout, env):
    (handout / "results/transfer/val_accuracy.png").unlink()
    comparison_plot = handout / "results/transfer/comparison_val_accuracy.png"
    comparison_plot.write_bytes(comparison_plot.read_bytes()[:200])
    with np.load(handout / "results/fomaml/weights.npz") as stored:
        weights = {name: stored[name] for name in stored.files}
    weights["conv0"] = np.zeros((3, 3, 1, 32), np.float32)
    np.savez(handout / "results/fomaml/weights.npz", **weights)
    child = submit(handout, env, "--name", KOREAN, "--student-number", NUMBER)
    out = child.stdout
    assert child.returncode == 1, out + child.stderr
    assert "✗ transfer run (results/transfer/): missing val_accuracy.png" in out
    assert "✗ plot results/transfer/comparison_val_accuracy.png is not a valid image" in out
    assert re.search(r"✗ FO-MAML weights: cannot be evaluated with your code: ValueError: .*weights\.npz does "
                     r"not fit this model \(num_way=5\): conv0 has shape \(3, 3, 1, 32\), expected "
                     r"\(3, 3, 1, 64\)", out), out
    assert "No zip written" in out and zips_in(handout) == []


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name, expected", [
    (KOREAN, KOREAN),
    ("José García", "José García"),
    ("  Zoë   Saldaña ", "Zoë Saldaña"),
    ("Nguyễn Văn A", "Nguyễn Văn A"),
    ("Mary-Jane O'Brien", "Mary-Jane O'Brien"),
    (unicodedata.normalize("NFD", "José García"), "José García"),  # as macOS may type it
    ("山田 太郎", "山田 太郎"),
])
def test_names_in_any_script_make_the_file_name(name, expected):
    file_name = submission.zip_name(name, "２０２０－１２３４５")  # full-width digits are accepted
    assert file_name == f"{expected}_2020-12345_Assignment2.zip"
    assert unicodedata.is_normalized("NFC", file_name)
    assert submission.parse_zip_name(file_name) == (expected, "2020-12345")
    assert submission.parse_zip_name(unicodedata.normalize("NFD", file_name)) == (expected, "2020-12345")


@pytest.mark.parametrize("name, number, message", [
    ("", NUMBER, "the name is empty"),
    ("Hong_Gildong", NUMBER, "contains '_', which separates the parts of the file name: write a space instead"),
    ("Kim/Lee", NUMBER, "contains '/', which cannot be part of a file name"),
    (NUMBER, "Hong", "contains digits: did you swap --name and --student-number?"),
    ("Hong 🙂", NUMBER, "a name holds letters (any script)"),
    (KOREAN, "202012345", "the student number '202012345' is not valid: expected four digits, a hyphen and five"),
    (KOREAN, "2020-1234", "is not valid"),
    (KOREAN, "2020_12345", "is not valid"),
    (KOREAN, "", "is not valid"),
])
def test_bad_names_and_student_numbers_are_refused_and_write_nothing(tmp_path, name, number, message):
    with pytest.raises(SubmissionError) as error:
        submission.zip_name(name, number)
    assert message in str(error.value)
    with pytest.raises(SubmissionError, match=re.escape(message)):
        submission.write_submission(synthetic_files(), name, number, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_course_config_names_the_same_zip():
    config = tomllib.loads((ROOT / "instructor/course.toml").read_text(encoding="utf-8"))
    assert config["assignment"]["zip_name"] == submission.ZIP_NAME


# ---------------------------------------------------------------- writing and reading zips


def synthetic_files() -> dict[str, bytes]:
    """A complete layout with small contents: enough to test the container."""
    return {path: f"content of {path}\n".encode() for path in submission.REQUIRED}


@pytest.fixture
def good_zip(tmp_path) -> Path:
    return submission.write_submission(synthetic_files(), KOREAN, NUMBER, tmp_path / "made", version=VERSION)


def rezip(source: Path, target: Path, change=None, add: dict | None = None, prefix: str = "") -> Path:
    """A copy of ``source`` with entries changed (``change(info, data) -> data or None to drop``) or added."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = old.read(info)
            data = change(info, data) if change else data
            if data is not None:
                new.writestr(prefix + info.filename, data)
        for entry, data in (add or {}).items():
            new.writestr(entry, data)
    return target


def refuses(zip_path: Path, destination: Path, *messages: str, **kwargs) -> SubmissionError:
    with pytest.raises(SubmissionError) as error:
        submission.read_submission(zip_path, destination, **kwargs)
    for message in messages:
        assert message in str(error.value), str(error.value)
    assert not destination.exists()
    assert not destination.parent.exists() or leftovers(destination.parent) == []
    return error.value


def test_write_is_atomic_and_a_failed_write_keeps_the_old_zip(tmp_path, good_zip):
    before = good_zip.read_bytes()
    files = synthetic_files()
    del files["report.md"]
    with pytest.raises(SubmissionError, match="missing: report.md"):
        submission.write_submission(files, KOREAN, NUMBER, good_zip.parent, version=VERSION)
    with pytest.raises(SubmissionError, match="more than the limit of 10 MB per file"):
        submission.write_submission({**synthetic_files(), "report.md": b"x" * (submission.MAX_FILE_BYTES + 1)},
                                    KOREAN, NUMBER, good_zip.parent, version=VERSION)
    assert good_zip.read_bytes() == before and leftovers(good_zip.parent) == []
    assert [p.name for p in good_zip.parent.iterdir()] == [good_zip.name]


def test_read_checks_name_manifest_hashes_and_version(tmp_path, good_zip):
    read = submission.read_submission(good_zip, tmp_path / "ok", expected_version=VERSION)
    assert read.root == tmp_path / "ok" and read.version == VERSION
    assert (tmp_path / "ok/results/fomaml/weights.npz").read_bytes() == synthetic_files()["results/fomaml/weights.npz"]

    refuses(good_zip, tmp_path / "old", "made from handout version 2025.1+0123456789ab, but this grader grades version 2025.2",
            "Download the current handout",
            expected_version="2025.2+fedcba987654")
    refuses(good_zip, tmp_path / "build", "another build of handout 2025.1", expected_version="2025.1+fedcba987654")

    renamed = tmp_path / "renamed" / f"Kim Minsu_{NUMBER}_Assignment2.zip"
    renamed.parent.mkdir()
    shutil.copyfile(good_zip, renamed)
    refuses(renamed, tmp_path / "r", f"the file name says Kim Minsu {NUMBER} but the zip was made for {KOREAN}",
            expected_version=VERSION)
    downloaded = renamed.with_name(f"{KOREAN}_{NUMBER}_Assignment2 (1).zip")
    shutil.copyfile(good_zip, downloaded)
    refuses(downloaded, tmp_path / "d", "is not {Name}_{StudentNumber}_Assignment2.zip", expected_version=VERSION)

    def tamper(info, data):
        return b"edited by hand\n" if info.filename == "maml.py" else data

    edited = rezip(good_zip, tmp_path / "edited" / good_zip.name, tamper, add={"notes.txt": b"hi"})
    refuses(edited, tmp_path / "e", "changed after the zip was made (SHA-256 differs from SUBMISSION.json): maml.py",
            "not part of a submission: notes.txt", expected_version=VERSION)

    def drop_report(info, data):
        if info.filename == "report.md":
            return None
        if info.filename == submission.MANIFEST:  # a consistent manifest: only the layout is wrong
            manifest = json.loads(data)
            del manifest["files"]["report.md"]
            return json.dumps(manifest).encode()
        return data

    incomplete = rezip(good_zip, tmp_path / "incomplete" / good_zip.name, drop_report)
    refuses(incomplete, tmp_path / "i", "missing: report.md", expected_version=VERSION)
    handmade = rezip(good_zip, tmp_path / "handmade" / good_zip.name,
                     lambda info, data: None if info.filename == submission.MANIFEST else data)
    refuses(handmade, tmp_path / "h", "SUBMISSION.json is missing: the zip was not made by `python -m grader submit`",
            expected_version=VERSION)
    folder = rezip(good_zip, tmp_path / "folder" / good_zip.name, prefix="assignment2/")
    refuses(folder, tmp_path / "f", "every file is inside the folder 'assignment2'", expected_version=VERSION)


@pytest.mark.parametrize("entry, message", [
    ("../evil.py", "has '..', '.' or an empty part in its path"),
    ("results/../../evil.py", "has '..', '.' or an empty part in its path"),
    ("/tmp/evil.py", "has an absolute path"),
    ("C:/evil.py", "has an absolute path"),
    ("results\\..\\evil.py", "has a backslash"),
])
def test_read_refuses_paths_outside_the_destination(tmp_path, good_zip, entry, message):
    bad = rezip(good_zip, tmp_path / "bad" / good_zip.name, add={entry: b"import os\n"})
    refuses(bad, tmp_path / "dest" / "unpacked", message, expected_version=VERSION)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "dest" / "evil.py").exists()


def test_read_refuses_links_damage_and_oversized_entries(tmp_path, good_zip):
    link = zipfile.ZipInfo("results/fomaml/history.csv.link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with_link = rezip(good_zip, tmp_path / "link" / good_zip.name)
    with zipfile.ZipFile(with_link, "a") as archive:
        archive.writestr(link, "/etc/passwd")
    refuses(with_link, tmp_path / "l", "is a symbolic link", expected_version=VERSION)

    big = rezip(good_zip, tmp_path / "big" / good_zip.name,
                add={"results/transfer/comparison.md": b"0" * (submission.MAX_FILE_BYTES + 1)})
    assert big.stat().st_size < 100_000  # small on disk, large unpacked
    refuses(big, tmp_path / "b", "results/transfer/comparison.md is 10.0 MB, more than the limit of 10 MB per file",
            expected_version=VERSION)

    not_zip = tmp_path / "nz" / good_zip.name
    not_zip.parent.mkdir()
    not_zip.write_bytes(good_zip.read_bytes()[:300])
    refuses(not_zip, tmp_path / "n", "is not a readable zip file", expected_version=VERSION)


def test_check_folder_accepts_an_unpacked_submission_and_refuses_links(tmp_path, good_zip):
    root = tmp_path / "unpacked"
    with zipfile.ZipFile(good_zip) as archive:
        archive.extractall(root)
    assert submission.check_folder(root, expected_version=VERSION).name == KOREAN
    (root / "results/fomaml/extra").symlink_to("/etc")
    with pytest.raises(SubmissionError, match="links or special files are not allowed: results/fomaml/extra"):
        submission.check_folder(root, expected_version=VERSION)


# ---------------------------------------------------------------- the report


def test_report_refill_keeps_prose_and_refuses_to_overwrite_hand_edits(handout):
    report = handout / "report.md"
    text = report.read_text(encoding="utf-8")
    prose = text.replace("## Collaborators and code references\n\nAnswered by the test.",
                         "## Collaborators and code references\n\nNone. Ünïcode prose stays.")
    report.write_text(prose.replace("\n", "\r\n"), encoding="utf-8")  # saved by a Windows editor
    fill_report.fill(handout, fomaml=handout / "runs/fo")
    again = report.read_text(encoding="utf-8")
    assert again == prose  # same runs: nothing but the line endings changes

    blocks = fill_report.parse_blocks(again)
    edited = again.replace(blocks["fomaml"].body, blocks["fomaml"].body + "\nMy note inside the generated part.")
    report.write_text(edited, encoding="utf-8")
    with pytest.raises(fill_report.ReportError, match="the generated part\\(s\\) fomaml were edited by hand"):
        fill_report.fill(handout)
    assert report.read_text(encoding="utf-8") == edited
    fill_report.fill(handout, overwrite=True)
    assert report.read_text(encoding="utf-8") == prose

    report.write_text(prose.replace("<!-- END GENERATED transfer", "<!-- END GENERATED trnsfer"), encoding="utf-8")
    with pytest.raises(fill_report.ReportError, match="transfer have a BEGIN line without its END line"):
        fill_report.fill(handout)


def test_report_placeholders_and_the_extra_credit(handout):
    text = (handout / "report.md").read_text(encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith("[[GENERATED: your name"))
    assert fill_report.unfilled(text, mamlpp=False) == [
        (line, "GENERATED", "your name, student number and handout version; `python -m grader submit` writes them")]
    extra = fill_report.unfilled(text, mamlpp=True)
    assert [kind for _, kind, _ in extra] == ["GENERATED", "ANSWER"] and extra[1][2].startswith("Which setting")
    assert "Extra credit not attempted" in text

    with pytest.raises(fill_report.ReportError, match="--mamlpp needs at least two maml.py runs"):
        fill_report.fill(handout, mamlpp=[handout / "runs/pp"])
    with pytest.raises(fill_report.ReportError, match="is a MAML\\+\\+ run .*pass it with --mamlpp"):
        fill_report.fill(handout, fomaml=handout / "runs/pp")
    with pytest.raises(fill_report.ReportError, match="is a pre-training run"):
        fill_report.fill(handout, fomaml=handout / "runs/tr")
    shutil.rmtree(handout / "runs/fo/checkpoints")
    (handout / "runs/fo/weights.npz").unlink()
    with pytest.raises(fill_report.ReportError, match="has no weights.npz: its training did not finish"):
        fill_report.fill(handout, fomaml=handout / "runs/fo")

    fill_report.fill(handout, mamlpp=[handout / "runs/pp", handout / "results/fomaml"])
    text = (handout / "report.md").read_text(encoding="utf-8")
    assert "](results/mamlpp/maml_seed0/val_accuracy.png)" in text
    assert "](results/mamlpp/mamlpp_seed0/val_accuracy.png)" in text
    assert "| `mamlpp_seed0` | MAML++ (MSL+LSLR+BNRS+BNWB+DA+CA) | 0 |" in text
