"""Fixtures of the public tests: the reference numbers.

The student's code runs in a separate process: tests call probes
(``grader/probes.py``) through the ``student`` fixture of ``grader.plugin`` and
compare what comes back with the reference numbers here. The reference
numbers are loaded when the tests are collected, before any student code
runs, and never leave this process; the probes get ``compare.inputs(...)``.
"""

from __future__ import annotations

import os

import pytest

from grader import compare

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
FIXTURES = {name: compare.load_fixture(name) for name in ("maml", "transfer")}


@pytest.fixture(scope="session")
def maml_fixture():
    return FIXTURES["maml"]


@pytest.fixture(scope="session")
def transfer_fixture():
    return FIXTURES["transfer"]
