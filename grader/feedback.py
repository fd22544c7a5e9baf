"""Targeted feedback: which known mistake a wrong result looks like, and what to do about it.

The fixtures hold, next to each expected result, what the reference solution
gives with each known mistake in it (``mistake/<key>/<quantity>``, computed by
the instructor's fixture generator from mutated copies of the reference). When
a check fails, ``diagnose`` compares the student's numbers with them and with
the expected ones, and returns sentences such as::

    It is 4 times the expected one. It is exactly what a known mistake gives: did you
    sum the query losses over the tasks instead of averaging them? ...

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

``explain_error`` does the same for exceptions: a known cause for a known
error message.
"""

from __future__ import annotations

import math

import numpy as np

SKETCH_SIZE = 8
SKETCH_SEED = 20251
MATCH_RTOL = 1e-4  # correct code matches the reference to ~1e-12; mistakes differ by >= 0.1 (measured)
RATIO_RTOL = 1e-3  # "x times the expected one" when the result is this close to a multiple of it

# key -> the question a student should ask themselves (mistakes: instructor/mistakes.py)
HINTS = {
    "no_stop_gradient": "did you forget tf.stop_gradient on the inner gradients? With first_order=True (or "
                        "train=False) they must be constants for the outer tape; this is the second-order "
                        "meta-gradient.",
    "always_stop_gradient": "do you stop the inner gradients always? Stop them only when self.first_order is "
                            "True or train is False: with first_order=False and train=True the outer tape must "
                            "differentiate through them; this is the first-order meta-gradient.",
    "stop_gradient_ignores_train": "do you stop the inner gradients only when self.first_order is True? "
                                   "Also stop them when train is False: evaluation never differentiates "
                                   "through the inner loop.",
    "inner_lr_ignored": "did you use a fixed inner learning rate? Use self.inner_lrs[name], the variable of each "
                        "parameter (here every parameter has a different one).",
    "fixed_5_steps": "did you take 5 inner steps whatever num_inner_steps is? Loop self.num_inner_steps times.",
    "one_step_too_few": "did you take one inner step too few? Take exactly self.num_inner_steps steps.",
    "one_step_too_many": "did you take one inner step too many? Take exactly self.num_inner_steps steps.",
    "meta_parameters_assigned": "did you assign the adapted values to self.meta_parameters (Variable.assign)? "
                                "Then every task starts where the previous one ended. Build new dicts of "
                                "tensors instead; only the outer step changes the meta-parameters.",
    "meta_parameters_dict_changed": "did you write `parameters = self.meta_parameters` and then set "
                                    "parameters[name] = ...? That changes self.meta_parameters itself, so the "
                                    "next task starts from this task's adapted parameters. Start from "
                                    "dict(self.meta_parameters) and build a new dict every step.",
    "argmax_wrong_axis": "did you take the argmax over axis 0 (the examples)? Predictions are the argmax over "
                         "the classes, axis -1 (or use the provided accuracy()).",
    "sum_over_tasks": "did you sum the query losses over the tasks instead of averaging them? The outer loss "
                      "is the mean over tasks.",
    "query_in_inner_loop": "did you adapt on the query set? The inner loop adapts on the support set "
                           "(images_support, labels_support); the query set only measures the adapted "
                           "parameters.",
    "support_and_query_in_inner_loop": "did you adapt on the support and query sets together? The inner loop "
                                       "sees the support set only.",
    "outer_loss_on_support": "did you compute the outer loss on the support set? It is the query loss of the "
                             "adapted parameters.",
    "outer_loss_before_adaptation": "did you evaluate the query set with self.meta_parameters? Use the adapted "
                                    "parameters that inner_loop returned.",
    "query_accuracy_of_last_task": "did you return the query accuracy of the last task only? Average it over "
                                   "the tasks.",
    "head_trained_on_query": "did you train the head on the query set? Adapt it on the support set; the query "
                             "set only measures it.",
    "head_trained_on_support_and_query": "did you train the head on the support and query sets together? Adapt "
                                         "it on the support set only.",
    "features_not_frozen": "did you train the convolutional layers too? They are frozen: compute the features "
                           "once and train only the head (w4, b4).",
    "transfer_lr_ignored": "did you use TRANSFER_LR instead of the learning_rate argument?",
    "transfer_steps_ignored": "did you use TRANSFER_STEPS instead of the num_steps argument?",
    "support_and_query_batch_norm": "did you compute the support and query features in one call? Batch norm "
                                    "then mixes the statistics of both sets: call extract_features on the "
                                    "support set and on the query set separately.",
    "transfer_argmax_wrong_axis": "did you take the argmax over axis 0 (the examples)? Predictions are the "
                                  "argmax over the classes, axis -1 (or use the provided accuracy()).",
}

# (pieces that must all be in an error message, hint); the first match wins
ERROR_HINTS = (
    (("NoneType", "unsupported operand"), "A gradient is None: tape.gradient gives None for a tensor the tape "
     "did not watch. After the first inner step the parameters are plain tensors, which a tape does not watch "
     "by itself: call tape.watch(parameters) inside the tape."),
    (("NoneType", "has no attribute"), "A gradient is None: tape.gradient gives None for a tensor the tape did "
     "not watch, or one the loss does not depend on: tape.watch the parameters, and compute the loss from them "
     "inside the tape."),
    (("Incompatible shapes",), "Two tensors of different shapes were compared or combined: did you take an "
     "argmax over the wrong axis (the classes are axis -1)?"),
    (("object has no attribute 'assign'",), "Only tf.Variables have assign: the adapted parameters are tensors; "
     "build a new dict instead of assigning."),
    (("numpy() is only available when eager execution is enabled",), "Code that runs inside tf.function cannot "
     "call .numpy(): keep everything a TensorFlow operation."),
)


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


def diagnose(fixture: dict, quantity: str, actual, expected=None, start=None) -> str:
    """Sentences on a wrong result: how it relates to the expected one, and the known mistake it matches.

    Returns "" when there is nothing specific to say.
    """
    parts = []
    if expected is not None:
        c = ratio(actual, expected, start)
        if c is not None:
            what = "Its change is" if start is not None else "It is"
            parts.append(f"{what} {c:.3g}x the expected one." if abs(c) >= 1e-3 else
                         f"{what} about 0 (expected a non-zero value).")
    found = [key for key in known_mistakes(fixture, quantity, actual, start) if key in HINTS]
    if len(found) == 1:
        parts.append(f"It matches a known mistake: {HINTS[found[0]]}")
    elif 1 < len(found) <= 3:
        parts.append("It matches known mistakes: " + " Or: ".join(HINTS[key] for key in found))
    return " ".join(parts)


def explain_error(message: str) -> str:
    """A known cause of an error message, or ""."""
    for pieces, hint in ERROR_HINTS:
        if all(piece in message for piece in pieces):
            return hint
    return ""
