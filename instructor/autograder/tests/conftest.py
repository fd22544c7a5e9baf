"""Fixtures of the hidden tests: their reference numbers, and the submission's folder.

As in the public tests, the reference numbers are loaded when the tests are
collected, before any student code runs, and never leave this process; the
student's code runs in the sandbox (``student`` fixture of ``grader.plugin``)
and gets only the inputs (``grader.checks.inputs``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"


def _load(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES_DIR / f"{name}.npz") as stored:
        return {key: stored[key] for key in stored.files}


FIXTURES = {name: _load(name) for name in ("maml_hidden", "transfer_hidden", "mamlpp_hidden")}


@pytest.fixture(scope="session")
def maml_hidden():
    return FIXTURES["maml_hidden"]


@pytest.fixture(scope="session")
def transfer_hidden():
    return FIXTURES["transfer_hidden"]


@pytest.fixture(scope="session")
def submission(pytestconfig) -> Path:
    """The submission's folder: the student's code files and its results/ (runs of the assessment)."""
    from grader import plugin

    return Path(pytestconfig.getoption("grader_student_dir") or plugin.ROOT)
