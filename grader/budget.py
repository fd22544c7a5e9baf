"""The time budget of one grading: the platform's timeout, shared out between the checks.

A grading platform stops the autograder at its timeout (Gradescope: 10 minutes
by default, 40 at most) and a stopped autograder gives the student 0 and no
results. So the grader plans within it: ``python -m grader.gradescope
--timeout T`` sets the deadline (``GRADER_DEADLINE``, seconds since the epoch,
for every process of the grading), keeping ``RESERVE_SECONDS`` to write
results.json, and

* a check that would start after the deadline is not run: it scores 0 with
  "not run: the time budget of N s was spent (slowest checks: ...)"
  (``BudgetSpent``, raised by the plugin);
* every call into the student's code ends by the deadline, and takes at most
  a sixteenth of the budget, at least a minute (``call_limit``; ``grader.sandbox``);
* long student work (training) gets a share of what is left (``share``), so the
  checks after it still run.

Without ``GRADER_DEADLINE`` (a student's local ``python -m grader``) nothing is
planned: only the per-call limits apply.
"""

from __future__ import annotations

import os
import time

DEADLINE_ENV = "GRADER_DEADLINE"
BUDGET_ENV = "GRADER_BUDGET"  # the whole budget in seconds, for messages
DEFAULT_TIMEOUT = 600.0  # Gradescope's default autograder timeout
MAX_TIMEOUT = 2400.0  # the most Gradescope allows (40 minutes)
RESERVE_SECONDS = 30.0  # after the deadline: stop the workers, write results.json, leave
MIN_CHECK_SECONDS = 10.0  # a check is not started with less time left
MIN_CALL_SECONDS = 60.0  # the reference's slowest call takes ~20 s at 0.5 vCPU (tracing): room for 3x slower code
CALL_FRACTION = 16  # one call takes at most this fraction of the budget: an endless loop in outer_loop, which
# about ten checks call, then leaves time for the checks that do not (measured: at 1/8, 1146 s of 1200)
# Shares of the student's long work in the time left (the rest is kept for the grader's own measurements
# with the reference, ``REFERENCE_SHARE``): training FO-MAML and MAML++, heads of the transfer check, timing.
SHARES = {"fomaml_training": 4.0, "mamlpp_training": 4.0, "transfer_heads": 1.5, "timing": 1.0}
REFERENCE_SHARE = 3.0
_pending: list[str] = []  # the student's work still to come in this grading (``plan``)


class BudgetSpent(Exception):
    """A check was not run because the time budget was spent; the message says so."""


def start(timeout: float, started: float | None = None) -> float:
    """Sets the deadline of this grading (and of the processes it starts); returns it (epoch seconds).

    Raises:
        ValueError: a timeout the platform does not allow.
    """
    if not 60 <= timeout <= MAX_TIMEOUT:
        raise ValueError(f"the platform timeout must be between 60 s and {MAX_TIMEOUT:g} s (Gradescope allows 40 "
                         f"minutes at most), not {timeout:g} s")
    started = time.time() if started is None else started
    deadline = started + timeout - RESERVE_SECONDS
    os.environ[DEADLINE_ENV] = repr(deadline)
    os.environ[BUDGET_ENV] = repr(timeout - RESERVE_SECONDS)
    return deadline


def deadline() -> float | None:
    text = os.environ.get(DEADLINE_ENV)
    try:
        return float(text) if text else None
    except ValueError:
        return None


def left() -> float:
    """Seconds until the deadline (infinite without one)."""
    end = deadline()
    return float("inf") if end is None else end - time.time()


def total() -> float:
    try:
        return float(os.environ.get(BUDGET_ENV, "nan"))
    except ValueError:
        return float("nan")


def plan(names: list[str]) -> None:
    """The student's long work this grading will run, in order (``share`` splits the time among them)."""
    _pending[:] = list(names)


def share(name: str) -> float:
    """Seconds the student's work ``name`` may take: its share (``SHARES``) of the time left.

    The work still to come after it (``plan``) and the grader's own measurements
    with the reference (``REFERENCE_SHARE``) split the rest by their shares;
    calling ``share`` marks ``name`` as started.
    """
    others = [n for n in _pending if n != name]
    _pending[:] = others
    time_left = left()
    if time_left == float("inf"):
        return float("inf")
    weight = SHARES.get(name, 1.0)
    return max(time_left * weight / (weight + REFERENCE_SHARE + sum(SHARES.get(n, 1.0) for n in others)), 0.0)


def call_limit(default: float) -> float:
    """The longest one call into the student's code may take: ``default``, or ``1 / CALL_FRACTION`` of the
    budget when that is shorter (at least ``MIN_CALL_SECONDS``), so that one endless loop leaves time for the
    other checks."""
    budget = total()
    if budget != budget:  # no budget: a local run
        return default
    return min(default, max(budget / CALL_FRACTION, MIN_CALL_SECONDS))


def spent_message(slowest: list[tuple[str, float]]) -> str:
    names = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in slowest[:3])
    return (f"not run: the time budget of {total():.0f} s was spent"
            + (f" (slowest checks: {names})" if names else "")
            + ". The platform's timeout is set by the course staff; fix the slow checks first.")
