"""The autograder's hidden tests and their fixtures: instructor only, never in the handout.

    tests/      graded tests (pytest, ``@points``) the students never see; they run with the
                public ones: ``grader.runner.run_tests([PUBLIC_TESTS, TESTS], student_dir=...)``
    fixtures/   their reference numbers, and the twins of the public fixtures, on which the public tests
                also run when graded (``grader.compare.fixture_versions``); from ``python -m instructor.make_fixtures``

The release puts this folder into the autograder bundle at the same path under ``source/``
(with the solved reference beside it, ``reference/``, for the trusted
measurements of ``tests/reference.py``); the handout's leak checks refuse any
copy of it. Points, checks and messages: README, "Grading: checks, points and
feedback".
"""

from pathlib import Path

HIDDEN = Path(__file__).resolve().parent
TESTS = HIDDEN / "tests"
FIXTURES = HIDDEN / "fixtures"
