"""Fixtures of the public tests: the reference numbers.

The student's code runs in a separate process: tests call probes
(``grader/probes.py``) through the ``student`` fixture of ``grader.plugin`` and
compare what comes back with the reference numbers here. The reference
numbers are loaded when the tests are collected, before any student code
runs, and never leave this process; the probes get ``compare.inputs(...)``.
When the autograder grades, each fixture below is parametrized over the
fixture and its twin (``compare.fixture_versions``): every test runs on both,
and the plugin counts the two runs as one check (``grader.plugin.check_id``).
"""

from __future__ import annotations

import os

import pytest

from grader import compare

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
VERSIONS = {name: compare.fixture_versions(name) for name in ("maml", "transfer", "mamlpp")}


def _on_versions(name: str) -> dict:
    """``pytest.fixture`` arguments: none for one version, a parameter per version when graded."""
    versions = VERSIONS[name]
    return {"params": list(versions), "ids": list(versions)} if len(versions) > 1 else {}


@pytest.fixture(scope="session", **_on_versions("maml"))
def maml_fixture(request):
    return VERSIONS["maml"][getattr(request, "param", compare.FIXTURE)]


@pytest.fixture(scope="session", **_on_versions("transfer"))
def transfer_fixture(request):
    return VERSIONS["transfer"][getattr(request, "param", compare.FIXTURE)]


@pytest.fixture(scope="session", **_on_versions("mamlpp"))
def mamlpp_fixture(request):
    return VERSIONS["mamlpp"][getattr(request, "param", compare.FIXTURE)]
