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
arrays) for MAML; "head" and "accuracy_query" for transfer learning.

A mistake's result is stored as a *sketch*: the quantity flattened (dict keys
sorted) and, if it has more than ``SKETCH_SIZE`` numbers, projected on
``SKETCH_SIZE`` fixed random directions. A student's result matches a mistake
when its sketch is within ``MATCH_RTOL`` of the mistake's (relative to the
size of the mistake's result, or of its change from ``start`` for adapted
parameters). Different results almost surely have different sketches; equal
ones always have equal sketches.

Known causes of known error messages are ``grader.failures.explain_error``.
"""

from __future__ import annotations

import math

import numpy as np

from grader import compare

SKETCH_SIZE = 8
SKETCH_SEED = 20251
MATCH_RTOL = 1e-4  # correct code matches the reference to ~1e-12; mistakes differ by >= 0.1 (measured)
RATIO_RTOL = 1e-3  # "x times the expected one" when the result is this close to a multiple of it
DICT_QUANTITIES = ("inner/phi", "grad_fo", "grad_so", "grad_lr_fo", "grad_lr_so", "grad_eval", "head")

# key -> the question a student should ask themselves (mistakes: instructor/mistakes.py)
HINTS = {
    "no_stop_gradient": "did you forget tf.stop_gradient on the inner gradients? This is the second-order "
                        "meta-gradient; first_order=True (or train=False) needs them stopped.",
    "always_stop_gradient": "do you always stop the inner gradients? This is the first-order meta-gradient; stop "
                            "them only when self.first_order is True or train is False.",
    "stop_gradient_ignores_train": "do you stop the inner gradients only when self.first_order is True? Stop them "
                                   "also when train is False.",
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

def flatten(value) -> np.ndarray:
    """A dict of arrays (keys sorted) or an array, as one float64 vector."""
    if isinstance(value, dict):
        return np.concatenate([np.ravel(np.asarray(value[key], np.float64)) for key in sorted(value)]) \
            if value else np.zeros(0)
    return np.ravel(np.asarray(value, np.float64))


def sketch(value) -> np.ndarray:
    """The stored form of a result: itself if small, else its projection on fixed random directions."""
    flat = flatten(value)
    if flat.size <= SKETCH_SIZE:
        return flat
    directions = np.random.default_rng([SKETCH_SEED, flat.size]).standard_normal((SKETCH_SIZE, flat.size))
    return directions @ flat / math.sqrt(flat.size)


def known_mistakes(fixture: dict, quantity: str, actual, start=None) -> list[str]:
    """Keys of the known mistakes whose result on this fixture equals ``actual``.

    Args:
        fixture: a fixture with ``mistake/<key>/<quantity>`` sketches.
        quantity: which result (see the module docstring).
        actual: the student's result: a dict of arrays or an array.
        start: for adapted parameters, the parameters they started from
            (differences are then relative to the change).
    """
    try:
        mine = sketch(actual)
    except (TypeError, ValueError):
        return []
    base = sketch(start) if start is not None else 0.0
    found = []
    suffix = f"/{quantity}"
    for key, stored in fixture.items():
        if not (key.startswith("mistake/") and key.endswith(suffix)) or stored.shape != mine.shape or not stored.size:
            continue
        scale = max(float(np.max(np.abs(stored - base))), 1e-300)
        if float(np.max(np.abs(mine - stored))) <= MATCH_RTOL * scale:
            found.append(key[len("mistake/"):-len(suffix)])
    return found


def ratio(actual, expected, start=None) -> float | None:
    """c when ``actual`` is c times ``expected`` (changes from ``start``, if given) with c not 1, else None."""
    try:
        a, e = flatten(actual), flatten(expected)
        if start is not None:
            s = flatten(start)
            a, e = a - s, e - s
    except (TypeError, ValueError):
        return None
    if a.shape != e.shape or not np.all(np.isfinite(a)) or not np.any(e):
        return None
    c = float(a @ e / (e @ e))
    if abs(c - 1.0) <= RATIO_RTOL or np.linalg.norm(a - c * e) > RATIO_RTOL * np.linalg.norm(a):
        return None
    return c


def _simple(c: float) -> bool:
    """Whether c is a whole number or one over a whole number (what summing or a wrong count gives)."""
    return any(abs(x - round(x)) <= 1e-6 * abs(x) and round(x) >= 2 for x in (abs(c), 1 / abs(c)))


def ratio_sentence(actual, expected, start=None) -> str:
    """"It is 4x the expected one." when ``actual`` is a multiple of ``expected``, else ""."""
    c = ratio(actual, expected, start)
    if c is None:
        return ""
    if abs(c) < 1e-3:
        return "It is about 0."
    if flatten(expected).size == 1 and not _simple(c):  # a lone number is a multiple of anything
        return ""
    return f"It is {c:.3g}x the expected one."


def mistake_sentence(fixture: dict, quantity: str, actual, start=None) -> str:
    """"Looks like a known mistake: did you ...?" when ``actual`` is what a known mistake gives, else ""."""
    found = [key for key in known_mistakes(fixture, quantity, actual, start) if key in HINTS]
    if not 1 <= len(found) <= 3:  # more: too common a result to say which
        return ""
    return "Looks like a known mistake: " + " Or ".join(HINTS[key] for key in found)


def diagnose(fixture: dict, quantity: str, actual, expected=None, start=None) -> str:
    """How a wrong result relates to the expected one and which known mistake gives it ("" if nothing)."""
    ratio_text = ratio_sentence(actual, expected, start) if expected is not None else ""
    return " ".join(filter(None, [ratio_text, mistake_sentence(fixture, quantity, actual, start)]))


def expected_value(fixture: dict, quantity: str):
    """The reference's result: {name: array} for a dict quantity ("grad_fo/<name>" keys), else an array."""
    if quantity in DICT_QUANTITIES:
        prefix = quantity + "/"
        return {key[len(prefix):]: value for key, value in fixture.items() if key.startswith(prefix)}
    return fixture[quantity]


def assert_expected(fixture: dict, quantity: str, actual, what: str, *, start: dict | None = None,
                    rtol: float = compare.RTOL, hint: str = "") -> None:
    """``compare.assert_parameters_close``/``assert_close`` of ``actual`` against the fixture's expected value,
    with a diagnosis.

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
        try:
            mine = ({name: compare.as_numpy(value, name) for name, value in actual.items()}
                    if isinstance(actual, dict) else compare.as_numpy(actual, what))
        except AssertionError:
            mine = None
        ratio_text = ratio_sentence(mine, expected) if mine is not None and start is None else ""
        mistake = mistake_sentence(fixture, quantity, mine, start) if mine is not None else ""
        failure = AssertionError(" ".join(filter(None, [str(error), hint, ratio_text, mistake])))
        failure.diagnosis = mistake  # grader.plugin.Parts says a diagnosis repeated by several parts once
        raise failure from None
