"""Known mistakes, as mutations of the reference solution (instructor only, never shipped).

Each ``Mistake`` edits the text of a reference solution block (between
``# BEGIN SOLUTION`` and ``# END SOLUTION`` in ``maml.py`` or
``maml_transfer.py``) the way a student typically gets it wrong. The fixture
generator (``python -m instructor.make_fixtures``) loads every mutated file as
a module, computes what it gives on each fixture, and stores those numbers
next to the expected ones (``mistake/<key>/<quantity>``). The grader then
recognises a student's wrong number as a known mistake and says so
(``grader/feedback.py`` holds the student-facing hint for every key).

An edit is (function, old, new): ``old`` must occur exactly ``count`` times in
that function's solution block (``""`` replaces the whole block), so a change of
the reference that makes a mutation meaningless stops the generator with a
message instead of silently producing the reference's numbers again.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from grader.files import ROOT
from instructor.release.markers import stub_source


class MutationError(ValueError):
    """A mutation no longer applies to the reference source."""


@dataclass(frozen=True)
class Mistake:
    """A known mistake: edits of the reference solution.

    Attributes:
        key: identifier, also the key of its hint in ``grader.feedback.HINTS``.
        file: the student file it mutates, "maml.py" or "maml_transfer.py".
        edits: (function, old, new) or (function, old, new, count).
    """

    key: str
    file: str
    edits: tuple[tuple, ...]


_WRONG_AXIS = ("tf.reduce_mean(tf.cast(tf.equal(tf.argmax({logits}, axis=0, output_type=tf.int32), {labels}), "
               "tf.float32))")

_FINE_TUNE_EVERYTHING = """\
    images_support, labels_support, images_query, labels_query = task
    num_features = frozen[f"b{maml.NUM_CONV_LAYERS - 1}"].shape[0]
    dtype = frozen[f"b{maml.NUM_CONV_LAYERS - 1}"].dtype
    parameters = {**feature_parameters(frozen),
                  HEAD_WEIGHT: tf.zeros((num_features, num_way), dtype), HEAD_BIAS: tf.zeros((num_way,), dtype)}
    for _ in tf.range(num_steps):
        with tf.GradientTape() as tape:
            tape.watch(parameters)
            loss = cross_entropy(maml.forward(images_support, parameters), labels_support)
        gradients = tape.gradient(loss, parameters)
        parameters = {name: value - learning_rate * gradients[name] for name, value in parameters.items()}
    head = {HEAD_WEIGHT: parameters[HEAD_WEIGHT], HEAD_BIAS: parameters[HEAD_BIAS]}
    return accuracy(maml.forward(images_query, parameters), labels_query), head
"""

_FOLDER = tempfile.TemporaryDirectory(prefix="mistakes-")  # the mutated files; removed at exit
INNER, OUTER, TRANSFER = "MAML.inner_loop", "MAML.outer_loop", "transfer_learn"

MISTAKES: tuple[Mistake, ...] = (
    # ---- MAML.inner_loop
    Mistake("no_stop_gradient", "maml.py", (
        (INNER, "if self.first_order or not train:", "if False:"),)),
    Mistake("always_stop_gradient", "maml.py", (
        (INNER, "if self.first_order or not train:", "if True:"),)),
    Mistake("stop_gradient_ignores_train", "maml.py", (
        (INNER, "if self.first_order or not train:", "if self.first_order:"),)),
    Mistake("parameters_stopped", "maml.py", (
        (INNER, "gradients = {name: tf.stop_gradient(g) for name, g in gradients.items()}",
         "parameters = {name: tf.stop_gradient(value) for name, value in parameters.items()}"),)),
    Mistake("inner_lr_ignored", "maml.py", (
        (INNER, "value - self.inner_lrs[name] * gradients[name]", "value - 0.4 * gradients[name]"),)),
    Mistake("fixed_5_steps", "maml.py", (
        (INNER, "range(self.num_inner_steps)", "range(5)"),)),
    Mistake("one_step_too_few", "maml.py", (
        (INNER, "range(self.num_inner_steps)", "range(self.num_inner_steps - 1)"),)),
    Mistake("one_step_too_many", "maml.py", (
        (INNER, "range(self.num_inner_steps)", "range(self.num_inner_steps + 1)"),)),
    Mistake("meta_parameters_assigned", "maml.py", (
        (INNER, """\
            parameters = {
                name: value - self.inner_lrs[name] * gradients[name]
                for name, value in parameters.items()
            }
""", """\
            for name, value in parameters.items():
                self.meta_parameters[name].assign(value - self.inner_lrs[name] * gradients[name])
            parameters = dict(self.meta_parameters)
"""),)),
    Mistake("meta_parameters_dict_changed", "maml.py", (
        (INNER, "parameters = dict(self.meta_parameters)", "parameters = self.meta_parameters"),
        (INNER, """\
            parameters = {
                name: value - self.inner_lrs[name] * gradients[name]
                for name, value in parameters.items()
            }
""", """\
            for name in list(parameters):
                parameters[name] = parameters[name] - self.inner_lrs[name] * gradients[name]
"""),)),
    Mistake("argmax_wrong_axis", "maml.py", (
        (INNER, "accuracy(logits, labels)", _WRONG_AXIS.format(logits="logits", labels="labels")),
        (INNER, "accuracy(forward(images, parameters), labels)",
         _WRONG_AXIS.format(logits="forward(images, parameters)", labels="labels")),
        (OUTER, "accuracy(logits, labels_query)", _WRONG_AXIS.format(logits="logits", labels="labels_query")),
    )),
    # ---- MAML.outer_loop
    Mistake("sum_over_tasks", "maml.py", (
        (OUTER, "tf.reduce_mean(tf.stack(outer_losses))", "tf.reduce_sum(tf.stack(outer_losses))"),)),
    Mistake("query_in_inner_loop", "maml.py", (
        (OUTER, "self.inner_loop(images_support, labels_support, train)",
         "self.inner_loop(images_query, labels_query, train)"),)),
    Mistake("support_and_query_in_inner_loop", "maml.py", (
        (OUTER, "self.inner_loop(images_support, labels_support, train)",
         "self.inner_loop(tf.concat([images_support, images_query], 0), "
         "tf.concat([labels_support, labels_query], 0), train)"),)),
    Mistake("outer_loss_on_support", "maml.py", (
        (OUTER, "outer_losses.append(cross_entropy(logits, labels_query))",
         "outer_losses.append(cross_entropy(forward(images_support, parameters), labels_support))"),)),
    Mistake("outer_loss_before_adaptation", "maml.py", (
        (OUTER, "logits = forward(images_query, parameters)",
         "logits = forward(images_query, self.meta_parameters)"),)),
    Mistake("query_accuracy_of_last_task", "maml.py", (
        (OUTER, "tf.reduce_mean(tf.stack(accuracies_query)),", "accuracies_query[-1],"),)),
    # ---- transfer_learn
    Mistake("head_trained_on_query", "maml_transfer.py", (
        (TRANSFER, "cross_entropy(head_logits(features_support, head), labels_support)",
         "cross_entropy(head_logits(extract_features(images_query, frozen), head), labels_query)"),)),
    Mistake("head_trained_on_support_and_query", "maml_transfer.py", (
        (TRANSFER, "cross_entropy(head_logits(features_support, head), labels_support)",
         "cross_entropy(head_logits(tf.concat([features_support, extract_features(images_query, frozen)], 0), "
         "head), tf.concat([labels_support, labels_query], 0))"),)),
    Mistake("features_not_frozen", "maml_transfer.py", ((TRANSFER, "", _FINE_TUNE_EVERYTHING),)),
    Mistake("transfer_lr_ignored", "maml_transfer.py", (
        (TRANSFER, "value - learning_rate * gradients[name]", "value - TRANSFER_LR * gradients[name]"),)),
    Mistake("transfer_steps_ignored", "maml_transfer.py", (
        (TRANSFER, "tf.range(num_steps)", "tf.range(TRANSFER_STEPS)"),)),
    Mistake("support_and_query_batch_norm", "maml_transfer.py", (
        (TRANSFER, "features_support = extract_features(images_support, frozen)",
         "num_support = tf.shape(labels_support)[0]\n"
         "    features_all = extract_features(tf.concat([images_support, images_query], 0), frozen)\n"
         "    features_support = features_all[:num_support]"),
        (TRANSFER, "features_query = extract_features(images_query, frozen)",
         "features_query = features_all[num_support:]"),
    )),
    Mistake("transfer_argmax_wrong_axis", "maml_transfer.py", (
        (TRANSFER, "accuracy(head_logits(features_query, head), labels_query)",
         _WRONG_AXIS.format(logits="head_logits(features_query, head)", labels="labels_query")),)),
)

# Structural variants of the reference (``grader.diagnoses.VARIANTS`` says what each shows): stored as
# ``variant/<key>/<quantity>`` next to the mistakes, with sentences about the numbers instead of hints.
# The variants that change an input (step count, inner learning rates) are ``make_fixtures.input_variants``.
_SOFTMAX_INNER = (INNER, "loss = cross_entropy(logits, labels)", "loss = cross_entropy(tf.nn.softmax(logits), labels)")
_SOFTMAX_OUTER = (OUTER, "cross_entropy(logits, labels_query)", "cross_entropy(tf.nn.softmax(logits), labels_query)")
_KERAS = "tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy({labels}, {logits}))"  # from_logits=False
_KERAS_INNER = (INNER, "loss = cross_entropy(logits, labels)",
                "loss = " + _KERAS.format(labels="labels", logits="logits"))
_KERAS_OUTER = (OUTER, "cross_entropy(logits, labels_query)", _KERAS.format(labels="labels_query", logits="logits"))
VARIANTS: tuple[Mistake, ...] = (
    Mistake("restart_from_theta", "maml.py", (
        (INNER, "for _ in range(self.num_inner_steps):\n",
         "for _ in range(self.num_inner_steps):\n            parameters = dict(self.meta_parameters)\n"),)),
    Mistake("update_from_theta", "maml.py", (
        (INNER, "for name, value in parameters.items()", "for name, value in self.meta_parameters.items()"),)),
    Mistake("probabilities_inner", "maml.py", (_SOFTMAX_INNER,)),
    Mistake("probabilities_outer", "maml.py", (_SOFTMAX_OUTER,)),
    Mistake("probabilities_both", "maml.py", (_SOFTMAX_INNER, _SOFTMAX_OUTER)),
    Mistake("keras_probabilities_inner", "maml.py", (_KERAS_INNER,)),
    Mistake("keras_probabilities_outer", "maml.py", (_KERAS_OUTER,)),
    Mistake("keras_probabilities_both", "maml.py", (_KERAS_INNER, _KERAS_OUTER)),
)


def by_file(file: str) -> list[Mistake]:
    return [mistake for mistake in MISTAKES if mistake.file == file]


def mutated_source(mistake: Mistake, source: str) -> str:
    """``source`` (the reference file, markers and all) with the mistake's edits applied.

    Raises:
        MutationError: an edit's function has no solution block, or its ``old``
            text does not occur exactly ``count`` times there.
    """
    for edit in mistake.edits:
        function, old, new, count = (*edit, 1) if len(edit) == 3 else edit
        blocks = [b for b in stub_source(source, mistake.file).blocks if b.function == function]
        if len(blocks) != 1:
            raise MutationError(f"{mistake.key}: {mistake.file} has {len(blocks)} solution blocks in {function}")
        lines = source.splitlines(keepends=True)
        block = blocks[0]
        text = "".join(block.solution)
        if old == "":
            text = textwrap.indent(textwrap.dedent(new), block.indent)
        else:
            found = text.count(old)
            if found != count:
                raise MutationError(f"{mistake.key}: expected {count} occurrence(s) of {old!r} in the solution "
                                    f"of {function} ({mistake.file}), found {found}: update instructor/mistakes.py")
            text = text.replace(old, new)
        source = "".join(lines[:block.begin]) + text + "".join(lines[block.end - 1:])
    return source


def load_mutant(mistake: Mistake, root: Path = ROOT):
    """The reference module with the mistake in it, imported from a temporary file.

    A real file (not ``exec`` of a string), so that ``tf.function`` can read the
    source of the mutated functions as it does for a student's file.
    """
    source = mutated_source(mistake, (root / mistake.file).read_text(encoding="utf-8"))
    name = f"{Path(mistake.file).stem}__{mistake.key}"
    path = Path(_FOLDER.name) / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
