"""Shared fixtures: the real Omniglot data set, loaded once per test session.

The data come from $OMNIGLOT_MIRROR (CI: ../shared/omniglot) or the official
location, and are cached in $OMNIGLOT_DATA_DIR (default data/omniglot/).
"""

import os
import sys
from pathlib import Path

import pytest

from grader.files import ROOT

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The files that take longest (real gradings and training: 3-11 min each on 2 cores, 2026-11-27), in the order
# they start. pytest.ini runs two files at a time (-n 2 --dist loadfile --no-loadscope-reorder): the first two go
# to one process each, the next two follow them, and the short files fill in around them, instead of a long
# file starting last and running alone.
SLOWEST_FIRST = ("test_grading_catalogue.py", "test_grading_training.py", "test_release.py", "test_unfeedable.py",
                 "test_submission.py", "test_training.py", "test_mamlpp.py", "test_notebook.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the others keep their order


@pytest.fixture(scope="session")
def omniglot():
    import load_data

    return load_data.load_omniglot(progress=False)


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The local Omniglot mirror folder; tests that need the raw zips use it."""
    folder = os.environ.get("OMNIGLOT_MIRROR", "")
    if not folder or "://" in folder or not Path(folder).is_dir():
        pytest.fail("set OMNIGLOT_MIRROR to a local folder holding the two Omniglot zips "
                    "(CI uses ../shared/omniglot)")
    return Path(folder)


def run_python(args, cwd=ROOT, timeout=1500, **kwargs):
    """Runs ``python ARGS`` in a real subprocess and returns the CompletedProcess."""
    import subprocess

    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def handout():
    """The handout built from this repository (reference solutions in ``stubbed[...].solved``)."""
    from instructor.release import build

    return build.build_handout(ROOT, allow_missing=True)


@pytest.fixture(scope="module")
def autograder_zip(handout, tmp_path_factory) -> Path:
    """The autograder bundle with this repository's hidden tests."""
    from instructor.release import bundle

    return bundle.write_bundle(handout, tmp_path_factory.mktemp("dist"), ROOT)
