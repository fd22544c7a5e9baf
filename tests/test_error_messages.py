"""Errors of student code, explained from their real cause (``grader.failures``), as the student sees them.

A student's ``maml.py`` (the solution with a bug pasted into ``inner_loop``,
and a few functions as students write them) runs in the real sandbox; each
call raises a real TensorFlow error, eagerly, while a ``tf.function`` is traced
(TensorFlow rewraps it: "in user code:") or while a compiled graph runs ("Graph
execution error"). The message must name the student's file and line, show
that line, name the op and the shapes or dtypes of the cause, and give the
hint that the line and the op call for (not the first hint whose words appear
in TensorFlow's text).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import probes_isolation as probes
import pytest

from grader import compare
from grader import probes as grader_probes
from grader.failures import StudentFailure
from grader.files import ROOT
from grader.sandbox import Limits, Sandbox

QUICK = replace(Limits(), call_seconds=60.0, total_seconds=300.0, startup_seconds=60.0, max_starts=2)
ACCURACY = "accuracies.append(accuracy(logits, labels))"
WRONG_AXIS = ("accuracies.append(tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, axis=0, output_type=tf.int32), "
              "labels), tf.float32)))")
STUDENT_FUNCTIONS = '''

def scaled(images):
    half = tf.constant(0.5, tf.float32)
    return tf.constant(images) * half


@tf.function
def scaled_compiled(images):
    half = tf.constant(0.5, tf.float32)
    return images * half


@tf.function
def head_logits(features, w):
    return tf.matmul(features, tf.transpose(w))


def query_logits(images, num_way):
    parameters = init_parameters(num_way, dtype=tf.float64)
    parameters["w4"] = tf.transpose(parameters["w4"])
    return forward(tf.constant(images), parameters)


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.int32)])
def my_accuracy(logits, labels):
    predictions = tf.argmax(logits, axis=0, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32))


def unwatched_step(images, labels, num_way):
    parameters = {name: tf.identity(value) for name, value in init_parameters(num_way, dtype=tf.float64).items()}
    with tf.GradientTape() as tape:
        loss = cross_entropy(forward(tf.constant(images), parameters), tf.constant(labels))
    gradients = tape.gradient(loss, parameters)
    return {name: value - 0.4 * gradients[name] for name, value in parameters.items()}


@tf.function
def not_written_yet(images):
    raise NotImplementedError("TODO")


def five_way_loss(logits, labels):
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=tf.one_hot(labels, 5), logits=logits))


class StepsOnTheta:
    def __init__(self, num_way):
        self.meta_parameters = {name: tf.Variable(value)
                                for name, value in init_parameters(num_way, dtype=tf.float64).items()}

    def adapt(self, images, labels):
        parameters = dict(self.meta_parameters)
        for _ in range(2):
            with tf.GradientTape() as tape:
                loss = cross_entropy(forward(images, parameters), labels)
            gradients = tape.gradient(loss, self.meta_parameters)
            parameters = {name: value - 0.4 * gradients[name] for name, value in parameters.items()}
        return parameters


def steps_on_theta(images, labels, num_way):
    return StepsOnTheta(num_way).adapt(tf.constant(images), tf.constant(labels))


def five_class_head(features, labels):
    w4 = tf.zeros((features.shape[1], 5), tf.float64)
    return cross_entropy(tf.matmul(tf.constant(features), w4), tf.constant(labels))


def with_bias(features):
    return tf.constant(features) + tf.zeros((1, 64), tf.float64)


def support_loss(images, labels, num_way):
    parameters = init_parameters(num_way, dtype=tf.float64)
    logits = forward(tf.constant(images), parameters)
    return cross_entropy(logits, tf.constant(labels))
'''


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """The sandbox on a maml.py with the bugs above; the file's text, to find each line's number."""
    source = (ROOT / "maml.py").read_text(encoding="utf-8")
    assert ACCURACY in source, "the solution's inner_loop changed: update ACCURACY"
    source = source.replace(ACCURACY, WRONG_AXIS, 1) + STUDENT_FUNCTIONS  # the first is MAML.inner_loop's
    folder = tmp_path_factory.mktemp("student")
    (folder / "maml.py").write_text(source, encoding="utf-8")
    with Sandbox(folder, limits=QUICK) as sandbox:
        yield sandbox, source.splitlines()


def failure(sandbox: Sandbox, probe, **args) -> str:
    with pytest.raises(StudentFailure) as caught:
        sandbox.call(probe, args)
    assert caught.value.status == "error", caught.value.message
    return caught.value.message


def line_of(lines: list[str], text: str, after: str = "") -> int:
    """The number of the line of the student's file that holds ``text`` (after the line holding ``after``)."""
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i + 1 for i, line in enumerate(lines) if i >= start and text in line)


def assert_names_line(message: str, function: str, line: int, source: str) -> None:
    assert f"(raised in {function} (maml.py line {line}))\n    {source}" in message, message


def images(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).uniform(0.0, 1.0, (n, 28, 28, 1))


def test_wrong_argmax_axis_eagerly_in_the_todo(student):
    sandbox, lines = student
    message = failure(sandbox, grader_probes.inner_loop, inputs=compare.inputs(compare.load_fixture("maml")))
    assert_names_line(message, "MAML.inner_loop", line_of(lines, WRONG_AXIS), WRONG_AXIS)
    assert "InvalidArgumentError in Equal: Incompatible shapes: [3] vs. [6]" in message, message
    assert "did you take the argmax over axis 0 (examples) instead of axis -1 (classes)?" in message, message


def test_wrong_argmax_axis_in_a_compiled_graph(student):
    """Shapes unknown while tracing: the error comes from the running graph, which names where the node was made."""
    sandbox, lines = student
    message = failure(sandbox, probes.run, function="my_accuracy", logits=np.zeros((6, 3), np.float32),
                      labels=np.arange(6, dtype=np.int32) % 3)
    source = "return tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32))"
    assert_names_line(message, "my_accuracy", line_of(lines, source, after="def my_accuracy"), source)
    assert "in Equal: Incompatible shapes: [3] vs. [6]" in message, message
    assert "did you take the argmax over axis 0" in message, message
    assert "Graph execution error" not in message and "{{node" not in message, message


@pytest.mark.parametrize("function", ["scaled", "scaled_compiled"])
def test_mixed_dtypes_eagerly_and_while_tracing(student, function):
    sandbox, lines = student
    message = failure(sandbox, probes.run, function=function, images=images())
    source = "return tf.constant(images) * half" if function == "scaled" else "return images * half"
    assert_names_line(message, function, line_of(lines, source, after=f"def {function}("), source)
    assert "Mul:" in message and "float32 and float64 tensors meet in Mul" in message, message
    assert "in user code" not in message, message  # TensorFlow's wrapping is taken apart, not shown
    if function == "scaled_compiled":
        assert message.splitlines()[1].startswith("TypeError in Mul: Input 'y' of 'Mul' Op has type float32"), message


def test_matmul_shapes_on_the_students_line(student):
    sandbox, lines = student
    message = failure(sandbox, probes.run, function="head_logits", features=np.ones((6, 4)), w=np.ones((4, 3)))
    source = "return tf.matmul(features, tf.transpose(w))"
    assert_names_line(message, "head_logits", line_of(lines, source), source)
    assert "tf.matmul multiplies (m, k) by (k, n), here [6,4] and [3,4]" in message, message
    assert "argmax" not in message, message  # a shape mismatch is not always an argmax over the wrong axis


def test_matmul_inside_forward_points_at_the_call(student):
    """The op fails in provided code (forward); the message shows the student's call that fed it."""
    sandbox, lines = student
    message = failure(sandbox, probes.run, function="query_logits", images=images(), num_way=3)
    call = "return forward(tf.constant(images), parameters)"
    assert f"(called from query_logits (maml.py line {line_of(lines, call, after='def query_logits')}))\n    {call}" \
           in message, message
    assert "(raised in forward (maml.py line" in message and "in MatMul" in message, message
    assert f"They come from your call `{call}`" in message, message


def test_none_gradient_names_the_tape(student):
    sandbox, lines = student
    message = failure(sandbox, probes.run, function="unwatched_step", images=images(),
                      labels=np.arange(6, dtype=np.int32) % 3, num_way=3)
    assert message.startswith("A gradient is None: tape.gradient gives None"), message
    source = "return {name: value - 0.4 * gradients[name] for name, value in parameters.items()}"
    assert f"maml.py line {line_of(lines, source, after='def unwatched_step')}))\n    {source}" in message, message


def test_labels_of_another_set(student):
    """Logits of 6 examples against 4 labels: the hint is about the sets, not about an argmax."""
    sandbox, lines = student
    message = failure(sandbox, probes.run, function="support_loss", images=images(),
                      labels=np.arange(4, dtype=np.int32) % 3, num_way=3)
    assert "different numbers of examples" in message and "support vs query" in message, message
    source = "return cross_entropy(logits, tf.constant(labels))"
    assert f"(called from support_loss (maml.py line {line_of(lines, source, after='def support_loss')}))" \
           in message, message


@pytest.mark.parametrize("function, arguments, written, actual", [
    ("five_way_loss", {"logits": np.zeros((6, 3)), "labels": np.arange(6, dtype=np.int32) % 3}, "tf.one_hot's depth 5",
     3),
    ("with_bias", {"features": np.ones((6, 32))}, "the number 64", 32),
])
def test_a_size_written_as_a_number_is_named_where_the_inputs_differ(student, function, arguments, written, actual):
    """Shapes that differ in one dimension, one of its sizes a number on the student's line: that number is the
    cause (the checks use other task sizes than the assignment's), whatever op TensorFlow names."""
    sandbox, lines = student
    message = failure(sandbox, probes.run, function=function, **arguments)
    assert f"{written} is written on this line, where the inputs have {actual}" in message, message
    assert "self.num_way" in message and "argmax" not in message and "keepdims" not in message, message
    assert f"maml.py line {line_of(lines, 'return', after=f'def {function}')}" in message, message


def test_a_gradient_taken_with_respect_to_the_meta_parameters_is_named(student):
    """The second step's loss comes from adapted tensors, so its gradient w.r.t. the variables is None."""
    sandbox, lines = student
    message = failure(sandbox, probes.run, function="steps_on_theta", images=images(),
                      labels=np.arange(6, dtype=np.int32) % 3, num_way=3)
    assert "tape.gradient(loss, self.meta_parameters) differentiates with respect to the meta-parameters" \
        in message, message


def test_a_label_beyond_the_classes_of_the_logits_names_the_number_of_classes(student):
    """6 classes' labels against logits of 5 columns: TensorFlow says "indices[k] = 5 is not in [0, 5)"."""
    sandbox, lines = student
    message = failure(sandbox, probes.run, function="five_class_head", features=np.ones((12, 4)),
                      labels=np.arange(12, dtype=np.int32) % 6)
    assert "A label 5 met something with 5 classes" in message and "num_way" in message, message
    assert "(called from five_class_head (maml.py line" in message, message


def test_a_todo_inside_a_compiled_function_is_not_implemented_yet(student):
    sandbox, lines = student
    with pytest.raises(StudentFailure) as caught:
        sandbox.call(probes.run, {"function": "not_written_yet", "images": images()})
    line = line_of(lines, 'raise NotImplementedError("TODO")', after="def not_written_yet")
    expected = f"not implemented yet: not_written_yet (maml.py line {line})"
    assert (caught.value.status, caught.value.message) == ("todo", expected)
