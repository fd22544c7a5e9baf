"""Grading seeds (``instructor/autograder/tests/seeds.py``): secret, yet the same for the same code.

seed(purpose, code) = HMAC-SHA256(key, purpose | sha256 of the student's files): a
deterministic function of the key and the code, so a regrade of the same code
trains from the same initialisation; any change of the code or the key gives an
unrelated seed, so no submission can be written for a known one.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor

from grader.files import ROOT
from grader.sandbox import Sandbox
from instructor.autograder.tests import seeds


def _digest(folder, files: dict[str, str]) -> str:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    with Sandbox(folder) as sandbox:  # no call: the worker never starts, the digest is taken when files are copied
        return sandbox.code_digest


def test_the_same_code_gets_the_same_seed_and_any_change_another(tmp_path, monkeypatch):
    monkeypatch.setenv(seeds.KEY_ENV, "course key")
    code = {"maml.py": "def inner_loop(): ...\n", "maml_transfer.py": "def transfer_learn(): ...\n"}
    first, again = _digest(tmp_path / "a", code), _digest(tmp_path / "b", code)
    changed = _digest(tmp_path / "c", {**code, "maml.py": "def inner_loop(): ... \n"})  # one space more
    other_file = _digest(tmp_path / "d", {**code, "notes.txt": "not code the grader runs"})
    assert first == again == other_file != changed
    assert seeds.seed("fomaml_training", first) == seeds.seed("fomaml_training", again)
    drawn = {seeds.seed("fomaml_training", first), seeds.seed("fomaml_training", changed),
             seeds.seed("transfer_heads", first)}
    assert len(drawn) == 3 and all(0 <= s < 2 ** 31 for s in drawn)
    monkeypatch.setenv(seeds.KEY_ENV, "another course's key")
    assert seeds.seed("fomaml_training", first) not in drawn


def test_the_key_is_made_once_private_and_kept(tmp_path, monkeypatch):
    """Made on first use (0600), by exactly one of several graders starting at once, then reused."""
    monkeypatch.delenv(seeds.KEY_ENV, raising=False)
    path = tmp_path / "seed.key"
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: seeds.key(path), range(16)))
    assert len(keys) == 1 and len(next(iter(keys))) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert seeds.key(path) in keys and not [p for p in tmp_path.iterdir() if p != path]  # no temporary left


def test_the_bundle_grades_with_the_instructors_key(monkeypatch):
    """The release puts the course's key in the bundle, so Gradescope and a local regrade draw the same seeds."""
    from instructor.release import build, bundle

    monkeypatch.delenv(seeds.KEY_ENV, raising=False)
    files = bundle.bundle_files(build.build_handout(ROOT, allow_missing=True), ROOT)
    assert files[f"source/{bundle.SEED_KEY}"] == seeds.key() == (ROOT / bundle.SEED_KEY).read_bytes()
    assert os.path.relpath(seeds.KEY_FILE, ROOT) == bundle.SEED_KEY
    assert "instructor/grading-seed.key" in (ROOT / ".gitignore").read_text().splitlines()


def test_making_the_key_during_a_grading_does_not_read_as_tampering():
    """A fresh clone has no key: the first grading makes it, and the tamper check must not see that as the
    grader's files changing (every check would score 0). So the key lies outside what it watches."""
    from grader import runner

    watched = [ROOT / top for top in runner.WATCHED]
    assert not [top for top in watched if seeds.KEY_FILE == top or top in seeds.KEY_FILE.parents]

