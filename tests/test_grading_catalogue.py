"""The grader, mutation-tested: a catalogue of student submissions, each graded for real.

``tests/submissions/buggy/*.py`` are realistic wrong implementations, written as
students write them; each says in ``EXPECT`` which checks must lose points and
what their message must say to name the mistake, and in ``DIAGNOSED_BY`` what
names it (a known mistake's hint, a general diagnosis, or nothing yet); a test
not listed must keep full marks. ``tests/submissions/correct/*.py`` are correct
implementations written differently from the reference (parameter lists,
tf.map_fn, tf.vectorized_map, tf.while_loop, Keras losses, a separate tape for
first order, learned inner rates switched on and off, a hand-written gradient,
...): every check gives them full marks. The format, the grading and the
measured shares of right messages are ``instructor.experiments.catalogue_accuracy``.

An entry whose messages do not name its mistake yet (``DIAGNOSED_BY = "generic"``)
is an expected failure of the message test, strictly: when a diagnosis starts to
name it, the test fails until the entry says so, and the README's shares (checked
here against the declarations) follow. The training and efficiency checks are not
run here but in ``test_grading_training.py``, once, on the reference.
"""

from __future__ import annotations

import pytest

from grader.files import ROOT
from grader.results import PASSED, TODO, Results
from instructor.experiments import catalogue_accuracy as catalogue
from instructor.release import build

BUGGY = catalogue.entries("buggy")
CORRECT = catalogue.entries("correct")
DETERMINISM = "sum_over_tasks"  # graded twice


@pytest.fixture(scope="module")
def handout() -> build.Handout:
    return build.build_handout(ROOT, allow_missing=True)


@pytest.fixture(scope="module")
def graded(handout, tmp_path_factory, omniglot) -> dict[str, Results]:
    """Every catalogue entry, the fresh stubs and one entry twice, graded by the real grader."""
    return catalogue.grade(BUGGY + CORRECT, handout, lambda: tmp_path_factory.mktemp("student"),
                           twice=DETERMINISM, stubs=True)


def table(results: Results) -> str:
    return "\n".join(f"{t.points:g}/{t.max_points:g} {t.status} {t.name}: {t.message}" for t in results.tests)


def _names_the_mistake(entry: catalogue.Entry):
    if entry.diagnosed_by != "generic":
        return entry
    return pytest.param(entry, marks=pytest.mark.xfail(
        strict=True, reason=f"{entry.name}: its messages do not name the mistake yet (DIAGNOSED_BY = \"generic\")"))


# ---------------------------------------------------------------- the catalogue


def test_the_catalogue_is_large_enough_and_declares_what_names_each_mistake():
    assert len(BUGGY) >= 45 and len(CORRECT) >= 12
    assert sum(entry.unseen for entry in BUGGY) >= 20
    for entry in BUGGY:
        assert entry.expect and entry.functions, f"{entry.name} needs EXPECT and at least one function"
        assert any(text and text not in catalogue.GENERIC for key in entry.expect
                   for text in catalogue.wanted(entry.expect, key)), f"{entry.name}: no EXPECT text names the mistake"
        assert entry.diagnosed_by in catalogue.SOURCES, f"{entry.name}: DIAGNOSED_BY must be one of " \
                                                        f"{catalogue.SOURCES}, not {entry.diagnosed_by!r}"
    for entry in CORRECT:
        assert not entry.expect and not entry.diagnosed_by, f"{entry.name}: a correct submission expects no failures"


def test_the_readme_states_the_shares_of_right_messages():
    block = catalogue.readme_block(catalogue.declared_shares())
    assert block in (ROOT / "README.md").read_text(encoding="utf-8"), \
        f"the README's shares are out of date: python -m instructor.experiments.catalogue_accuracy --readme\n{block}"


@pytest.mark.parametrize("entry", BUGGY, ids=lambda e: e.name)
def test_buggy_submission_loses_points_on_the_right_checks(entry, graded):
    verdict = catalogue.verdict(entry, graded[entry.name])
    assert not verdict.wrong_points, "\n".join(verdict.wrong_points) + "\n" + table(graded[entry.name])


@pytest.mark.parametrize("entry", [_names_the_mistake(entry) for entry in BUGGY], ids=lambda e: e.name)
def test_buggy_submission_gets_a_message_that_names_the_mistake(entry, graded):
    verdict = catalogue.verdict(entry, graded[entry.name])
    assert not verdict.unnamed and not verdict.misnamed, "\n".join(verdict.unnamed + verdict.misnamed)
    assert verdict.source == entry.diagnosed_by, (
        f"{entry.name}: named by a {verdict.source} message, but DIAGNOSED_BY says {entry.diagnosed_by!r}:\n"
        f"{table(graded[entry.name])}")


@pytest.mark.parametrize("entry", CORRECT, ids=lambda e: e.name)
def test_correct_submission_written_differently_gets_full_marks(entry, graded):
    results = graded[entry.name]
    assert all(t.status == PASSED and t.points == t.max_points for t in results.tests), table(results)
    assert results.points == results.max_points > 0


def test_fresh_stubs_get_zero_with_messages_naming_the_todo(graded):
    results = graded["fresh stubs"]
    assert results.points == 0 and results.max_points > 0
    for test in results.tests:
        assert test.message, test.name
        if "submitted" in test.name:  # no results/ folder: the weights were not handed in
            assert test.message.startswith("the submission has no "), (test.name, test.message)
        else:
            assert test.status == TODO and test.message.startswith("not implemented yet: "), (test.name, test.message)
    todos = "\n".join(t.message for t in results.tests)
    for todo in ("MAML.inner_loop", "MAML.outer_loop", "transfer_learn"):
        assert f"not implemented yet: {todo} (" in todos, todo


def test_the_same_submission_gets_the_same_grade_twice(graded):
    first, second = graded[DETERMINISM], graded[f"{DETERMINISM} (again)"]
    assert [(t.name, t.points, t.status, t.message) for t in first.tests] == \
           [(t.name, t.points, t.status, t.message) for t in second.tests]
    assert 0 < first.points < first.max_points


@pytest.mark.filterwarnings("ignore::pytest.PytestUnknownMarkWarning")  # the hidden module's @points
def test_the_efficiency_verdict_reports_the_ratio_and_advises_beyond_the_bound():
    from instructor.autograder.tests import test_efficiency

    ok, message = test_efficiency.verdict(1.2, False, 0.0096, 0.008)
    assert ok and message.startswith("A training step with your outer_loop took 1.2x the reference's time")
    assert "(9.6 ms vs 8 ms per step, best of 3 calls of 5 steps, compiled; bound 4x)" in message
    ok, message = test_efficiency.verdict(41.0, True, 0.335, 0.00821)
    assert not ok and "eagerly: it could not run as a tf.function" in message and ".numpy()" in message
    assert "took 41x the reference's time (335 ms vs 8.21 ms per step" in message
    assert "took 152x the reference's time (1248 ms vs 8.21 ms" in test_efficiency.verdict(152.0, False, 1.248,
                                                                                             0.00821)[1]
