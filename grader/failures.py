"""What can go wrong in a check, and how it is said to the student.

The failure types and their one-paragraph descriptions, shared by the grader's
test process (``grader.plugin``) and the process running the student's code
(``grader.worker``, through ``grader.sandbox``). This module imports neither
pytest nor the sandbox, so the student's process loads only what it needs and
the grader's layers have no circle: results <- failures <- sandbox <- plugin.

Failures become one short message, never a traceback wall
(``describe_failure``):

* ``NotImplementedError`` -> status "todo": "not implemented yet: MAML.inner_loop
  (maml.py line 251)", from the frame that raised it;
* ``AssertionError`` (the comparisons' own messages) -> status "failed";
* ``StudentCodeError`` (the grader's message is the whole story, e.g. an
  import that failed) and any other exception -> status "error", naming the
  exception and the innermost line of the student's code it came from, after
  a known cause of that error if there is one (``explain_error``);
* ``StudentFailure`` from the sandbox: the status and message the student's
  process reported (the same rules, applied there), or why it ended;
* ``PartialCredit`` (raised by ``grader.plugin.Parts.finish``): status "failed"
  with that fraction of the test's points, "passed" with a note when the fraction is 1.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from grader import budget
from grader.files import GRADER_DIR, ROOT
from grader.results import ERROR, FAILED, SKIPPED, TODO

FAILURE_STATUSES = (FAILED, ERROR, TODO, SKIPPED)  # what a failure from the worker may say
MAX_FAILURE_MESSAGE = 2000
MAX_MESSAGE_LINES = 8
MAX_MESSAGE_CHARS = 1200

# (pieces that must all be in an error message, hint); the first match wins
ERROR_HINTS = (
    (("NoneType", "unsupported operand"), "A gradient is None: tape.gradient gives None for a tensor the tape "
     "did not watch. After the first inner step the parameters are plain tensors, which a tape does not watch "
     "by itself: call tape.watch(parameters) inside the tape."),
    (("Attempt to convert a value (None)",), "A gradient is None: tape.gradient gives None for a tensor the tape "
     "did not watch. After the first inner step the parameters are plain tensors, which a tape does not watch "
     "by itself: call tape.watch(parameters) inside the tape."),
    (("NoneType", "has no attribute"), "A gradient is None: tape.gradient gives None for a tensor the tape did "
     "not watch, or one the loss does not depend on: tape.watch the parameters, and compute the loss from them "
     "inside the tape."),
    (("Incompatible shapes",), "Two tensors of different shapes were compared or combined: did you take an "
     "argmax over the wrong axis (the classes are axis -1)?"),
    (("Random ops require a seed",), "No random numbers here: results must depend on the inputs only (the "
     "transfer head starts at zero; the grader runs TensorFlow in deterministic mode, which refuses unseeded "
     "random operations)."),
    (("object has no attribute 'assign'",), "Only tf.Variables have assign: the adapted parameters are tensors; "
     "build a new dict instead of assigning."),
    (("numpy() is only available when eager execution is enabled",), "Code that runs inside tf.function cannot "
     "call .numpy(): keep everything a TensorFlow operation."),
    (("is out of scope and cannot be used here",), "A tensor made inside tf.function outlived the call: do you "
     "keep tensors on self, or change a dict the model keeps (`parameters = self.meta_parameters`, then "
     "`parameters[name] = ...`)? Build new dicts instead."),
)


class StudentCodeError(Exception):
    """Raised by grader code with a complete, student-facing message."""


class StudentFailure(Exception):
    """The student's code failed a probe; ``status`` and ``message`` are what the table shows."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status if status in FAILURE_STATUSES else ERROR
        self.message = str(message)[:MAX_FAILURE_MESSAGE].strip() or "failed, and no reason came back from the " \
                                                                     "process running your code"


class StudentTimeout(StudentFailure):
    """A call into the student's code did not finish within its limit (the worker was stopped)."""


class SandboxError(RuntimeError):
    """The grader could not run the sandbox at all (a problem of the grader, not the student)."""


class PartialCredit(AssertionError):
    """A test earned ``fraction`` (0..1) of its points; the message says what was missing."""

    def __init__(self, fraction: float, message: str):
        super().__init__(message)
        self.fraction = min(max(float(fraction), 0.0), 1.0)


def explain_error(message: str) -> str:
    """A known cause of an error message, or ""."""
    for pieces, hint in ERROR_HINTS:
        if all(piece in message for piece in pieces):
            return hint
    return ""


def shorten(text: str) -> str:
    """At most ``MAX_MESSAGE_LINES`` lines and ``MAX_MESSAGE_CHARS`` characters, up to pytest's "assert ..." line."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    lines = lines[:next((i for i, line in enumerate(lines) if line.startswith("assert ")), len(lines))]
    short = "\n".join(lines[:MAX_MESSAGE_LINES])
    if len(short) > MAX_MESSAGE_CHARS:
        short = short[:MAX_MESSAGE_CHARS] + " ..."
    elif len(lines) > MAX_MESSAGE_LINES:
        short += "\n..."
    return short


def _student_frames(tb) -> list[tuple]:
    """Frames of the traceback in the student's files (the handout, minus grader/)."""
    frames = []
    for frame, line in traceback.walk_tb(tb):
        path = Path(frame.f_code.co_filename)
        try:
            path.resolve().relative_to(ROOT)
        except ValueError:
            continue
        if GRADER_DIR in path.resolve().parents:
            continue
        frames.append((frame, line))
    return frames


def _where(frame, line: int) -> str:
    code = frame.f_code
    name = getattr(code, "co_qualname", code.co_name)
    return f"{name} ({Path(code.co_filename).name} line {line})"


def describe_failure(error: BaseException) -> tuple[str, str]:
    """(status, message) for an exception raised while running a check (see the module docstring)."""
    if isinstance(error, StudentFailure):
        return error.status, error.message
    if isinstance(error, SandboxError):
        return ERROR, shorten(f"the grader could not run your code, a problem of the grader (please tell "
                              f"the course staff): {error}")
    frames = _student_frames(error.__traceback__)
    if isinstance(error, NotImplementedError):
        if frames:
            return TODO, f"not implemented yet: {_where(*frames[-1])}"
        return TODO, f"not implemented yet: {error}"
    if isinstance(error, (StudentCodeError, budget.BudgetSpent)):
        return ERROR, shorten(str(error))
    if isinstance(error, AssertionError):
        return FAILED, shorten(str(error)) or "a check failed (no details)"
    detail = shorten(f"{type(error).__name__}: {error}")
    hint = explain_error(str(error))
    if hint:
        detail = f"{hint}\n{detail}"
    if frames:
        return ERROR, f"{detail}\n(raised in {_where(*frames[-1])})"
    return ERROR, detail
