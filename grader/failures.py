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
  import that failed) -> status "error";
* any other exception -> status "error", from its real cause (``error_cause``):
  TensorFlow's wrapping of an error raised in a ``tf.function`` ("in user
  code:", "Graph execution error") taken apart into the original error, the
  op, the shapes and dtypes it names and the whole chain of the student's
  frames (the traceback's and those TensorFlow lists). The message: a hint
  chosen from the student's line, its function and the op (``HINT_RULES``;
  e.g. an argmax over axis 0 before a failed Equal, a matmul fed by the
  student's call of ``forward``, float32 meeting float64, a None gradient on
  the line that uses it), then the error, then where it was raised (the
  innermost line in maml.py / maml_transfer.py, shown) and the line that
  called it;
* ``StudentFailure`` from the sandbox: the status and message the student's
  process reported (the same rules, applied there), or why it ended;
* ``PartialCredit`` (raised by ``grader.plugin.Parts.finish``): status "failed"
  with that fraction of the test's points, "passed" with a note when the fraction is 1.
"""

from __future__ import annotations

import linecache
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader import budget
from grader.files import GRADER_DIR, ROOT, STUDENT_FILES
from grader.results import ERROR, FAILED, SKIPPED, TODO

FAILURE_STATUSES = (FAILED, ERROR, TODO, SKIPPED)  # what a failure from the worker may say
MAX_FAILURE_MESSAGE = 2000
MAX_MESSAGE_LINES = 8
MAX_MESSAGE_CHARS = 1200

# What failed, as TensorFlow says it. TensorFlow rewraps an error raised while a tf.function is traced ("in user
# code:", the frames of the code it traced, each with its line, then the original error) and one raised while a
# compiled graph runs ("Detected at node N defined at (most recent call last):" and the frames that made the
# node); an eager error ends in "[Op:Name]".
_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
_CAUSE = re.compile(r"^\s*(?P<kind>[A-Za-z_][\w.]*(?:Error|Exception)): (?P<text>.*)")
_OPS = (re.compile(r"\[Op:(?!__)(\w+)\]"), re.compile(r"\{\{node [^}]*\}\} = (\w+)\["),
        re.compile(r"of '(\w+)' Op"), re.compile(r"cannot compute (\w+) as"),
        re.compile(r"Detected at node (?:\S*/)?([A-Za-z]\w*?)(?:_\d+)? defined at"))
_SHAPE = re.compile(r"(?<![\w\]])\[-?\d*(?:,\s*-?\d+)*\]|\(\d+,(?:\s*\d+,?)*\)")  # [3], [4,5], (6, 3); not In[0]
_DTYPES = (re.compile(r"\b(?:type|dtype) (b?float\d+|u?int\d+|half|double|bool)\b"),
           re.compile(r"\b(?:a|an) (float|double|half|int32|int64|bool) tensor"))
_DTYPE_NAMES = {"double": "float64", "float": "float32", "half": "float16"}
_SHAPE_ERROR = re.compile(r"Incompatible shapes|Dimensions must be equal|size-incompatible|must be broadcastable|"
                          r"shapes must be equal|are incompatible|must have the same first dimension|"
                          r"filter depth|number of groups|must be the same shape|shape` must equal", re.IGNORECASE)


@dataclass
class Frame:
    """A line of the student's code in an error's chain of calls."""

    path: str
    line: int
    function: str  # qualified where the traceback has it ("MAML.inner_loop"), else as TensorFlow names it
    source: str  # the line of code, stripped
    before: tuple[str, ...] = ()  # the lines of its function before it, stripped

    def where(self) -> str:
        return f"{self.function} ({Path(self.path).name} line {self.line})"


@dataclass
class ErrorCause:
    """An exception from the student's code, with TensorFlow's wrapping taken apart (``error_cause``)."""

    kind: str  # type of the original error ("ValueError", "InvalidArgumentError")
    text: str  # its message, on one line, without TensorFlow's device and node decorations
    op: str  # the TensorFlow operation that failed ("Equal", "MatMul"), or ""
    shapes: list[str]  # shapes the message names, in its order ("[3]", "[6]")
    dtypes: list[str]  # dtypes it names ("float32", "float64")
    frames: list[Frame]  # the student's frames, outermost first: the traceback's, then those TensorFlow names

    def focus(self) -> list[Frame]:
        """The innermost frame in a file the student writes (else the innermost frame), then its caller there."""
        own = [f for f in self.frames if Path(f.path).name in STUDENT_FILES] or self.frames[-1:]
        return own[::-1][:2]

    def lines(self) -> list[str]:
        """The source lines of the student's own files in the chain, innermost first."""
        return [f.source for f in self.frames[::-1] if Path(f.path).name in STUDENT_FILES and f.source]

    def function_lines(self) -> list[str]:
        """The innermost frame's line in the student's own files and the lines of its function before it."""
        own = [f for f in self.frames if Path(f.path).name in STUDENT_FILES][-1:]
        return [line for frame in own for line in (frame.source, *frame.before)]


NONE_GRADIENT = ("A gradient is None: tape.gradient gives None for a tensor the tape did not watch, or one the loss "
                 "does not depend on. After the first inner step the parameters are plain tensors, which a tape does "
                 "not watch by itself: call tape.watch(parameters) inside the tape, and compute the loss from them "
                 "inside it.")


def _none_hint(cause: ErrorCause) -> str:
    if not re.search(r"NoneType|value \(None\)|None values not supported", cause.text):
        return ""
    if any(re.search(r"\.gradient\([^,]+,\s*self\.meta_parameters", line) for line in cause.function_lines()):
        return ("A gradient is None: tape.gradient(loss, self.meta_parameters) differentiates with respect to the "
                "meta-parameters, but after the first inner step the loss is computed from the adapted "
                "parameters: take the gradient with respect to the dict the loss was computed from (and watch "
                "it: tape.watch(parameters)).")
    if any("grad" in line for line in cause.lines()[:1]):
        return NONE_GRADIENT
    return ("A value this line uses is None: does a function it calls end without `return`, or does a dict hold "
            "None (a gradient of tape.gradient that the loss does not depend on)?")


def _dtype_hint(cause: ErrorCause) -> str:
    floats = sorted({d for d in cause.dtypes if "float" in d})
    integers = sorted({d for d in cause.dtypes if "int" in d})
    where = f" in {cause.op}" if cause.op else ""
    if len(floats) > 1:
        return (f"{' and '.join(floats)} tensors meet{where}: the grader runs your code in float64 (the dtype of the "
                f"parameters and images it passes; training uses float32), so a tensor made with a fixed dtype "
                f"(tf.constant(0.5), tf.zeros(shape), tf.cast(x, tf.float32)) does not fit. Make it with the dtype "
                f"of the tensors it meets: tf.cast(x, logits.dtype), tf.zeros(shape, images.dtype).")
    if floats and integers:
        return (f"An integer tensor ({', '.join(integers)}: labels, counts, argmax) meets a {floats[0]} one{where}: "
                f"cast it first, tf.cast(x, logits.dtype) (or tf.one_hot for labels).")
    return ""


def _dimensions(shape: str) -> list[int]:
    return [int(n) for n in re.findall(r"-?\d+", shape)]


def _fixed_size(shapes: list[str], line: str) -> tuple[int, int] | None:
    """(n, m) where two shapes differ in a dimension, n in one and m in the other, and n is written as a number
    on ``line`` (a size fixed in the code where the inputs have another), else None."""
    if len(shapes) < 2 or not line:
        return None
    written = {int(n) for n in re.findall(r"(?<![\w.])\d+(?![\w.])", line)}
    first, second = _dimensions(shapes[0]), _dimensions(shapes[1])
    for a, b in zip(first[::-1], second[::-1]):  # aligned from the last dimension, as broadcasting does
        if a != b and 1 not in (a, b):
            for fixed, other in ((a, b), (b, a)):
                if fixed in written and other not in written:
                    return fixed, other
    return None


def _shape_hint(cause: ErrorCause) -> str:
    if not _SHAPE_ERROR.search(cause.text):
        return ""
    shapes = " and ".join(cause.shapes[:2]) or "different shapes"
    lines = cause.lines()
    fixed = _fixed_size(cause.shapes, lines[0] if lines else "")
    if fixed:
        depth = re.search(rf"one_hot\([^()]*,\s*(?:depth\s*=\s*)?{fixed[0]}\b", lines[0])
        what = f"tf.one_hot's depth {fixed[0]}" if depth else f"the number {fixed[0]}"
        return (f"Tensors of shapes {shapes} do not fit: {what} is written on this line, where the inputs have "
                f"{fixed[1]}. The checks use other sizes than the assignment's 5-way 5-shot tasks (other numbers of "
                f"classes, examples and steps): take sizes from the arguments and settings (self.num_way, "
                f"self.num_inner_steps, the shapes of the inputs), not fixed numbers.")
    via_forward = next((line for line in lines[1:] if "forward(" in line), "")
    called = (f" They come from your call `{via_forward}`: forward takes images (examples, 28, 28, 1) and a dict "
              f"with init_parameters' keys and shapes." if via_forward else "")
    if cause.op in ("Equal", "NotEqual", "ArgMax") or any("argmax" in line for line in lines[:1]):
        if any(re.search(r"argmax\(.*axis\s*=\s*0", line) for line in cause.function_lines()):
            return (f"Predictions and labels of shapes {shapes} were compared: did you take the argmax over axis 0 "
                    f"(examples) instead of axis -1 (classes)? Over axis 0 it gives one index per class, not one "
                    f"per example; the logits are (examples, num_way).")
        return (f"Tensors of shapes {shapes} were compared: did you take an argmax over the wrong axis (the classes "
                f"are axis -1 of the logits, (examples, num_way)), or compare the predictions of one set with the "
                f"labels of another (support vs query)?")
    if cause.op in ("MatMul", "BatchMatMulV2"):
        return (f"tf.matmul multiplies (m, k) by (k, n), here {shapes}: check which tensor goes first, and whether "
                f"one has the wrong layout or comes from another layer.{called}")
    if cause.op == "Conv2D":
        return (f"tf.nn.conv2d got {' and '.join(cause.shapes[:2]) or 'an input and a filter that do not fit'}: "
                f"images are (examples, 28, 28, 1), channels last, and a filter "
                f"conv{{i}} is (3, 3, channels in, channels out).{called}")
    if "SoftmaxCrossEntropy" in cause.op or re.search(r"labels.*logits|logits.*labels", cause.text):
        return (f"The logits and labels have different numbers of examples ({shapes}): the logits of one set with "
                f"the labels of another (support vs query)?")
    if any("reduce_" in line for line in lines[:1]):
        return (f"Tensors of shapes {shapes} were combined{' in ' + cause.op if cause.op else ''}: is a reduction "
                f"on this line over the wrong axis, or missing keepdims=True?{called}")
    return (f"Tensors of shapes {shapes} were combined{' in ' + cause.op if cause.op else ''}: they must have "
            f"equal shapes, or shapes that broadcast (each trailing dimension equal, or 1).{called}")


def _index_hint(cause: ErrorCause) -> str:
    """A class index (a label) at or beyond the number of columns of the logits or one-hot vectors."""
    found = re.search(r"indices\[[\d,]+\] = (\d+) is not in \[0, (\d+)\)", cause.text)
    if not found:
        return ""
    index, size = int(found[1]), int(found[2])
    return (f"A label {index} met something with {size} classes (an index must be below {size}): the logits (and "
            f"the head's w4 and b4, or a one-hot depth) need one column per class, num_way of them. The checks "
            f"use other numbers of classes than the assignment's 5: is {size} written as a number where num_way "
            f"(or self.num_way) belongs?")


def _text_hint(pieces: tuple[str, ...], hint: str) -> Callable[[ErrorCause], str]:
    """A hint for an error TensorFlow raises for one reason only, recognised by its message."""
    return lambda cause: hint if all(piece in cause.text for piece in pieces) else ""


# Each takes an ErrorCause and returns a hint or ""; the first hint wins.
HINT_RULES: tuple[Callable[[ErrorCause], str], ...] = (
    _none_hint,
    _dtype_hint,
    _shape_hint,
    _index_hint,
    _text_hint(("Random ops require a seed",), "No random numbers here: results must depend on the inputs only "
               "(the transfer head starts at zero; the grader runs TensorFlow in deterministic mode, which refuses "
               "unseeded random operations)."),
    _text_hint(("object has no attribute 'assign'",), "Only tf.Variables have assign: the adapted parameters are "
               "tensors; build a new dict instead of assigning."),
    _text_hint(("numpy() is only available when eager execution is enabled",), "Code that runs inside tf.function "
               "cannot call .numpy(): keep everything a TensorFlow operation."),
    _text_hint(("is out of scope and cannot be used here",), "A tensor made inside tf.function outlived the call: do "
               "you keep tensors on self, or change a dict the model keeps (`parameters = self.meta_parameters`, then "
               "`parameters[name] = ...`)? Build new dicts instead."),
    _text_hint(("as a Python `bool` is not allowed",), "A Python `if`, `while`, `and` or `or` on a tensor's value "
               "inside tf.function: decide with Python values (train, self.first_order, the number of steps), or "
               "compute both cases and pick with tf.where."),
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


def _clean(text: str) -> str:
    """TensorFlow's message on one line, without the device, node and op decorations."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    text = re.sub(r"'\{\{node [^}]*\}\} = (\w+)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)]*)\)'", r"\1(\2)", text)
    text = re.sub(r"\s*\[\[\{\{node [^}]*\}\}\]\]", "", text)
    text = re.sub(r"\s*\[Op:\w+\]( name:\s*\S*)?", "", text)
    return " ".join(text.split())


def _is_students(path: Path) -> bool:
    """Whether ``path`` is one of the handout's files outside grader/ (the student's and the provided ones)."""
    try:
        path = path.resolve()
        path.relative_to(ROOT)
    except (ValueError, OSError):
        return False
    return GRADER_DIR not in path.parents


def _before(path: str, line: int, most: int = 40) -> tuple[str, ...]:
    """The lines of the function around ``path``:``line`` before it, nearest first (up to its ``def``)."""
    lines = []
    for number in range(line - 1, max(line - most, 0), -1):
        text = linecache.getline(path, number).strip()
        lines.append(text)
        if text.startswith(("def ", "async def ")):
            break
    return tuple(lines)


def _traceback_frames(tb) -> list[Frame]:
    frames = []
    for frame, line in traceback.walk_tb(tb):
        code = frame.f_code
        if _is_students(Path(code.co_filename)):
            frames.append(Frame(code.co_filename, line, getattr(code, "co_qualname", code.co_name),
                                linecache.getline(code.co_filename, line).strip(), _before(code.co_filename, line)))
    return frames


def error_cause(error: BaseException) -> ErrorCause:
    """What ``error`` says, with the original error, op, shapes and the student's lines taken out of TensorFlow's
    wrapping (the whole chain: the traceback's frames, then those of the traced or compiled code)."""
    message = str(error)
    kind, text = type(error).__name__, message
    frames = _traceback_frames(error.__traceback__)
    lines = message.splitlines()
    found = [(i, match) for i, line in enumerate(lines) if (match := _FRAME.match(line))]
    if found and ("in user code:" in message or "(most recent call last)" in message):
        for i, match in found:
            after = lines[i + 1].strip() if i + 1 < len(lines) and not _FRAME.match(lines[i + 1]) else ""
            if _is_students(Path(match["path"])):
                source = linecache.getline(match["path"], int(match["line"])).strip() or after.rstrip(" *")
                frames.append(Frame(match["path"], int(match["line"]), match["function"], source,
                                    _before(match["path"], int(match["line"]))))
        start = found[-1][0] + 1
        start += bool(start < len(lines) and lines[start].strip())  # the last frame's line of code
        rest = [line.strip() for line in lines[start:] if line.strip()]
        original = next((match for line in rest if (match := _CAUSE.match(line))), None)
        if original:
            kind, text = original["kind"].rpartition(".")[2], original["text"]
        elif rest:
            text = " ".join(rest)
    seen, chain = set(), []
    for frame in frames:
        if (frame.path, frame.line) not in seen:
            seen.add((frame.path, frame.line))
            chain.append(frame)
    op = next((match[1] for pattern in _OPS if (match := pattern.search(message))), "")
    dtypes = [_DTYPE_NAMES.get(name, name) for pattern in _DTYPES for name in pattern.findall(text)]
    return ErrorCause(kind, _clean(text), op, _SHAPE.findall(_clean(text)), dtypes, chain)


def explain_error(error: BaseException | ErrorCause) -> str:
    """A likely cause of an error, from the student's line and the op that failed (``HINT_RULES``), or ""."""
    cause = error if isinstance(error, ErrorCause) else error_cause(error)
    return next((hint for rule in HINT_RULES if (hint := rule(cause))), "")


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


def describe_failure(error: BaseException) -> tuple[str, str]:
    """(status, message) for an exception raised while running a check (see the module docstring)."""
    if isinstance(error, StudentFailure):
        return error.status, error.message
    if isinstance(error, SandboxError):
        return ERROR, shorten(f"the grader could not run your code, a problem of the grader (please tell "
                              f"the course staff): {error}")
    if isinstance(error, (StudentCodeError, budget.BudgetSpent)):
        return ERROR, shorten(str(error))
    if isinstance(error, AssertionError):
        return FAILED, shorten(str(error)) or "a check failed (no details)"
    cause = error_cause(error)
    focus = cause.focus()
    if isinstance(error, NotImplementedError):
        return TODO, f"not implemented yet: {focus[0].where() if focus else error}"
    hint = explain_error(cause)
    lines = [hint] if hint else []
    lines.append(f"{cause.kind}{f' in {cause.op}' if cause.op else ''}: {cause.text}"[:MAX_MESSAGE_CHARS // 2])
    for prefix, frame in zip(("raised in", "called from"), focus):  # as Python shows a traceback: the line below
        lines += [f"({prefix} {frame.where()})", *([f"    {frame.source}"] if frame.source else [])]
    return ERROR, shorten("\n".join(lines))
