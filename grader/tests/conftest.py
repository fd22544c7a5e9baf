"""Fixtures of the public tests: the student's modules and the reference numbers.

Student modules are imported inside fixtures, not at the top of the test
files, so that a file that does not import (a syntax error, a missing file)
makes each test fail with a message saying so instead of hiding the tests.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from pathlib import Path

import pytest

from grader import checks
from grader.plugin import StudentCodeError

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def import_student_module(name: str):
    """Imports ``ROOT/<name>.py``; StudentCodeError with the reason if it cannot."""
    path = ROOT / f"{name}.py"
    if not path.is_file():
        raise StudentCodeError(f"{path.name} is missing from {ROOT}: run the grader from the handout "
                               f"folder, and keep the file name as given.")
    try:
        module = importlib.import_module(name)
    except SyntaxError as error:
        raise StudentCodeError(f"could not import {path.name}: {type(error).__name__}: {error.msg} "
                               f"(line {error.lineno}: {(error.text or '').strip()!r})") from None
    except (Exception, SystemExit) as error:  # noqa: BLE001 - any failure of student code becomes a message
        last = traceback.extract_tb(error.__traceback__)[-1]
        raise StudentCodeError(f"could not import {path.name}: {type(error).__name__}: {error} "
                               f"({Path(last.filename).name} line {last.lineno})") from None
    if Path(module.__file__).resolve() != path.resolve():
        raise StudentCodeError(f"`import {name}` found {module.__file__}, not {path}: another {name} "
                               f"shadows yours (rename or remove it).")
    return module


@pytest.fixture(scope="session")
def maml_module():
    return import_student_module("maml")


@pytest.fixture(scope="session")
def transfer_module():
    return import_student_module("maml_transfer")


@pytest.fixture(scope="session")
def maml_fixture():
    return checks.load_fixture("maml")


@pytest.fixture(scope="session")
def transfer_fixture():
    return checks.load_fixture("transfer")
