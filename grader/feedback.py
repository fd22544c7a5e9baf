"""Targeted feedback: which known mistake a wrong result looks like, and what to do about it.

The fixtures hold, next to each expected result, what the reference solution
gives with each known mistake in it (``mistake/<key>/<quantity>``, computed by
the instructor's fixture generator from mutated copies of the reference). When
a check fails, ``diagnose`` compares the student's numbers with them and with
the expected ones, and returns sentences such as::

    It is 4x the expected one. Looks like a known mistake: did you sum the query
    losses over the tasks instead of averaging them?

Quantities (the ``quantity`` argument): "inner/phi", "inner/accuracies",
"outer/loss", "outer/accuracies_support", "outer/accuracy_query", "grad_fo",
"grad_so", "grad_lr_fo", "grad_lr_so", "grad_eval" (dicts of parameters or
arrays) for MAML, and "outer/same_variables" (1.0 if outer_loop left the
model's tf.Variables in self.meta_parameters: assigned values and a changed
dict give the same numbers, not the same variables); "head" and
"accuracy_query" for transfer learning.

A mistake's result is stored as a *sketch*: the quantity flattened (dict keys
sorted) and, if it has more than ``SKETCH_SIZE`` numbers, projected on
``SKETCH_SIZE`` fixed random directions. A student's result matches a mistake
when its sketch is within ``MATCH_RTOL`` of the mistake's (relative to the
size of the mistake's result, or of its change from ``start`` for adapted
parameters). Different results almost surely have different sketches; equal
ones always have equal sketches.

A mistake is named only when the evidence singles it out (``diagnose``): every
informative result of the check (parameters, losses, gradients; not accuracies,
which move in coarse steps) agrees with it, and at least one of them is what
the mistake gives. Otherwise the structural findings of ``grader.diagnoses``
say what the numbers show (direction, scale, step count, starting point, which
parameters, which results).

Known causes of known error messages are ``grader.failures.explain_error``.
"""

from __future__ import annotations

import math

import numpy as np

from grader import compare, diagnoses
from grader.diagnoses import Evidence, flatten

SKETCH_SIZE = 8
SKETCH_SEED = 20251
MATCH_RTOL = 1e-4  # correct code matches the reference to ~1e-12; mistakes differ by >= 0.1 (measured)
NEVER_ALONE = diagnoses.ACCURACY_QUANTITIES | {"outer/same_variables"}  # coarse: they rule out, never name alone
DICT_QUANTITIES = ("inner/phi", "grad_fo", "grad_so", "grad_lr_fo", "grad_lr_so", "grad_eval", "head",
                   "head_one_step")

# key -> the question a student should ask themselves (mistakes: instructor/mistakes.py)
HINTS = {
    "no_stop_gradient": "did you forget tf.stop_gradient on the inner gradients? This is the second-order "
                        "meta-gradient; first_order=True (or train=False) needs them stopped.",
    "always_stop_gradient": "do you always stop the inner gradients? This is the first-order meta-gradient; stop "
                            "them only when self.first_order is True or train is False.",
    "stop_gradient_ignores_train": "do you stop the inner gradients only when self.first_order is True? Stop them "
                                   "also when train is False.",
    "parameters_stopped": "did you apply tf.stop_gradient to the parameters instead of the inner gradients? The "
                          "meta-gradient then reaches the meta-parameters only through the gradients: stop the inner "
                          "gradients, not the parameters.",
    "inner_lr_ignored": "did you use a fixed inner learning rate instead of self.inner_lrs[name]?",
    "fixed_5_steps": "did you take 5 inner steps instead of self.num_inner_steps?",
    "one_step_too_few": "did you take one inner step too few (self.num_inner_steps are needed)?",
    "one_step_too_many": "did you take one inner step too many (self.num_inner_steps are needed)?",
    "meta_parameters_assigned": "did you assign the adapted values to self.meta_parameters? Then each task starts "
                                "where the previous one ended: build new dicts of tensors instead.",
    "meta_parameters_dict_changed": "did you write `parameters = self.meta_parameters`, then parameters[name] = ...? "
                                    "That changes self.meta_parameters: start from dict(self.meta_parameters).",
    "argmax_wrong_axis": "did you take the argmax over axis 0 (examples) instead of axis -1 (classes)?",
    "sum_over_tasks": "did you sum the query losses over the tasks instead of averaging them?",
    "query_in_inner_loop": "did you adapt on the query set instead of the support set?",
    "support_and_query_in_inner_loop": "did you adapt on the support and query sets together? Adapt on the "
                                       "support set only.",
    "outer_loss_on_support": "did you compute the outer loss on the support set instead of the query set?",
    "outer_loss_before_adaptation": "did you evaluate the query set with self.meta_parameters instead of the "
                                    "adapted parameters?",
    "query_accuracy_of_last_task": "did you return the query accuracy of the last task instead of the mean over "
                                   "tasks?",
    "head_trained_on_query": "did you train the head on the query set instead of the support set?",
    "head_trained_on_support_and_query": "did you train the head on the support and query sets together? Train "
                                         "it on the support set only.",
    "features_not_frozen": "did you train the convolutional layers too? Only the head (w4, b4) is trained.",
    "transfer_lr_ignored": "did you use TRANSFER_LR instead of the learning_rate argument?",
    "transfer_steps_ignored": "did you use TRANSFER_STEPS instead of the num_steps argument?",
    "support_and_query_batch_norm": "did you compute the support and query features in one call? Batch norm then "
                                    "mixes both sets: call extract_features on each set separately.",
    "transfer_argmax_wrong_axis": "did you take the argmax over axis 0 (examples) instead of axis -1 (classes)?",
}

def sketch(value) -> np.ndarray:
    """The stored form of a result: itself if small, else its projection on fixed random directions."""
    flat = flatten(value)
    if flat.size <= SKETCH_SIZE:
        return flat
    directions = np.random.default_rng([SKETCH_SEED, flat.size]).standard_normal((SKETCH_SIZE, flat.size))
    return directions @ flat / math.sqrt(flat.size)


def _same(mine: np.ndarray, stored: np.ndarray, base) -> bool:
    """Whether two sketches are equal, relative to the size of ``stored`` (its change from ``base``)."""
    if stored.shape != mine.shape or not stored.size:
        return False
    scale = max(float(np.max(np.abs(stored - base))), 1e-300)
    return float(np.max(np.abs(mine - stored))) <= MATCH_RTOL * scale


def singled_out(evidence: Evidence, kind: str = "mistake") -> list[str]:
    """The known mistakes (or variants) the evidence singles out.

    A candidate is singled out when every result of the evidence is what it
    gives (its stored sketch, or the reference's result where it stores none,
    i.e. where it changes nothing), at least one of them is one it changes,
    and at least one is informative (not in ``NEVER_ALONE``): accuracies can rule a
    candidate out, never name it alone. Results whose shape differs from the
    reference's say nothing here (the check already reports the shape).
    """
    sketches = {}
    for quantity, value in evidence.results.items():
        try:
            expected = expected_value(evidence.fixture, quantity)
            if flatten(value).shape != flatten(expected).shape:
                continue
            start = evidence.starts.get(quantity)
            sketches[quantity] = (sketch(value), sketch(expected), sketch(start) if start is not None else 0.0)
        except (TypeError, ValueError, KeyError):
            continue
    if not any(q not in NEVER_ALONE for q in sketches):
        return []
    candidates = sorted({key.split("/")[1] for key in evidence.fixture if key.startswith(f"{kind}/")})
    found = []
    for candidate in candidates:
        changed = False
        for quantity, (mine, reference, base) in sketches.items():
            stored = evidence.fixture.get(f"{kind}/{candidate}/{quantity}")
            if not _same(mine, reference if stored is None else stored, base):
                break
            changed |= stored is not None
        else:
            if changed:
                found.append(candidate)
    return found


def _hint_sentence(found: list[str]) -> str:
    found = [key for key in found if key in HINTS]
    if not 1 <= len(found) <= 3:  # more: too common a result to say which
        return ""
    return "Looks like a known mistake: " + " Or ".join(HINTS[key] for key in found)


def evidence(fixture: dict, results: dict, start=None) -> Evidence:
    """``results`` (quantity -> what the student's code returned) as numbers; those that are not are left out.

    Adapted parameters ("inner/phi") start from the fixture's meta-parameters (or ``start``).
    """
    numbers = {}
    for quantity, value in results.items():
        try:
            numbers[quantity] = ({name: compare.as_numpy(v, name) for name, v in value.items()}
                                 if isinstance(value, dict) else compare.as_numpy(value, quantity))
            flatten(numbers[quantity])
        except (AssertionError, AttributeError, TypeError, ValueError):
            numbers.pop(quantity, None)
    starts = {}
    if "inner/phi" in numbers:
        starts["inner/phi"] = start if start is not None else {
            name: fixture[f"theta/{name}"] for name in compare.parameter_names(fixture)}
    return Evidence(fixture, numbers, starts)


def diagnose(fixture: dict, quantity: str, actual, expected=None, start=None, others: dict | None = None,
             rtol: float = compare.RTOL) -> tuple[str, str]:
    """What a wrong result's numbers say: (the diagnosis, the part of it that names a cause).

    Args:
        quantity, actual: the failing result.
        expected: the reference's result (default: the fixture's).
        start: where adapted parameters started (default: the meta-parameters).
        others: more results of the same call (quantity -> value), the rest of the evidence.

    The diagnosis is, in order: how the result scales with the reference's
    (``diagnoses.scale``), the known mistake the evidence singles out
    (``singled_out``, ``HINTS``); if none, the variants it singles out
    (``diagnoses.variant_sentence``), else the direction of the change, and for
    adapted parameters a pull towards 0 or per-parameter factors; then
    which parameters differ, and whether only the accuracies are wrong.
    """
    found = evidence(fixture, {**(others or {}), quantity: actual}, start)
    if quantity not in found.results:
        return "", ""
    mine = found.results[quantity]
    expected = expected_value(fixture, quantity) if expected is None else expected
    start = found.starts.get(quantity)
    cause = _hint_sentence(singled_out(found))
    try:  # with a known mistake named, no reason for the scale: the hint is the reason
        scale_text = diagnoses.scale(mine, expected, start, diagnoses.counts(fixture, quantity), reasons=not cause)
        direction = diagnoses.direction(mine, expected, start)
    except (TypeError, ValueError):
        scale_text = direction = ""
    if not cause:
        variants = singled_out(found, "variant")
        if 1 <= len(variants) <= 2:
            cause = " Or: ".join(diagnoses.variant_sentence(key, fixture, quantity) for key in variants)
        elif not scale_text and quantity not in diagnoses.ACCURACY_QUANTITIES:
            cause = direction
        if not cause and not scale_text and quantity == "inner/phi" and start is not None:
            cause = diagnoses.shrinks(mine, expected, start) or diagnoses.factors(mine, expected, start)
    keys = diagnoses.which_keys(mine, expected, start, rtol) if isinstance(expected, dict) else ""
    accuracies = (diagnoses.accuracies_finding(found, lambda q: expected_value(fixture, q), compare.RTOL)
                  if quantity in diagnoses.ACCURACY_QUANTITIES and not cause else "")
    return " ".join(filter(None, [scale_text, cause, keys, accuracies])), cause


def outer_results(out: dict) -> dict:
    """A probe's record of one outer_loop call as evidence (quantity -> value): its three results, and
    "outer/same_variables" (``compare.same_variables``) where the probe reports it; {} if the result is not a
    triple."""
    result = out.get("result")
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        return {}
    found = dict(zip(("outer/loss", "outer/accuracies_support", "outer/accuracy_query"), result))
    if out.get("same_variables") is not None:
        found["outer/same_variables"] = out["same_variables"]
    return found


def expected_value(fixture: dict, quantity: str):
    """The reference's result: {name: array} for a dict quantity ("grad_fo/<name>" keys), else an array."""
    if quantity in DICT_QUANTITIES:
        prefix = quantity + "/"
        return {key[len(prefix):]: value for key, value in fixture.items() if key.startswith(prefix)}
    return fixture[quantity]


def assert_expected(fixture: dict, quantity: str, actual, what: str, *, start: dict | None = None,
                    rtol: float = compare.RTOL, hint: str = "", others: dict | None = None) -> None:
    """``compare.assert_parameters_close``/``assert_close`` of ``actual`` against the fixture's expected value,
    with a diagnosis.

    Args:
        others: the other results of the same call (quantity -> value): the evidence ``diagnose`` weighs,
            e.g. the adapted parameters when the support accuracies are checked.

    Raises:
        AssertionError: the check's message, then ``hint``, then what ``diagnose`` finds.
    """
    expected = expected_value(fixture, quantity)
    try:
        if isinstance(expected, dict):
            compare.assert_parameters_close(actual, expected, start, what, rtol=rtol)
        else:
            compare.assert_close(actual, expected, what, rtol=rtol)
    except AssertionError as error:
        text, cause = diagnose(fixture, quantity, actual, start=start, others=others, rtol=rtol)
        failure = AssertionError(" ".join(filter(None, [str(error), hint, text])))
        failure.diagnosis = cause  # grader.plugin.Parts says a diagnosis repeated by several parts once
        raise failure from None
