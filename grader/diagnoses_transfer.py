"""Structural diagnoses of ``transfer_learn``: what its calls show about the code, for mistakes nobody listed.

``grader.probes.transfer_learn`` calls the student's ``transfer_learn`` on one
support set with each query set of a transfer fixture, once more with the same
inputs, with other query labels, and with ``num_steps`` 1 and 0. From those
calls (``runs``) and the reference's results this module says, in sentences a
student can act on:

* whether the head is repeatable at all (``repeatable``): the control for the
  next finding, which blames an input only for a change beyond what two
  identical calls differ by (``NOISE_FACTOR`` times);
* whether the head depends on the query set (``query_dependence``): on its
  labels (trained on the query set), or only on its images (support features
  computed in one batch with the query images);
* which head entries never moved from zero, whether it starts at zero, and how
  its first step (num_steps=1, the fixture's ``head_one_step``) compares with
  the reference's (``head_findings``, ``first_step``): not moving, the opposite
  direction, c times the size (c the number of support examples: a sum; 1/N:
  a softmax of probabilities; else the learning rate), or a right first step
  followed by wrong ones (steps, momentum, features that change);
* with a right head, what the query accuracies on the several query sets say
  about how they are computed (``accuracy_findings``): 0 or 1 (one example),
  the same on every query set (not the query set's), not a whole number of
  query examples, right only where every class has as many examples (a mean of
  per-class accuracies), one minus the expected (an error rate).
"""

from __future__ import annotations

import numpy as np

from grader import compare, diagnoses

HEAD_KEYS = ("b4", "w4")
STEP_RTOL = 1e-4  # the first step "is right" to this (float32 against float64)
NOISE_FACTOR = 10  # a head "changes" with an input when it moves this many times more than between identical calls
LABELS = ("the adapted head changes when the query labels change: it is trained on the query set (alone or with "
          "the support set); adapt on the support set only (query labels are for measuring accuracy).")
IMAGES = ("the adapted head changes with the query images (not with their labels): the support features depend on "
          "the query images, e.g. one extract_features call on both sets (batch norm then mixes their statistics); "
          "call it on each set separately.")
NOT_REPEATABLE = ("Two calls with the same inputs give different heads. No random numbers here: start the head at "
                  "zero, and keep no state between calls.")
NOT_REPEATABLE_CLAUSE = NOT_REPEATABLE[0].lower() + NOT_REPEATABLE[1:]  # the same, after a colon in a message


def head(result) -> dict[str, np.ndarray] | None:
    """The head of a ``transfer_learn`` result (accuracy, head) as arrays, or None if it is not one."""
    try:
        accuracy_query, found = result
        return {name: compare.as_numpy(found[name], name) for name in HEAD_KEYS}
    except (AssertionError, KeyError, TypeError, ValueError):
        return None


def difference(a: dict | None, b: dict | None) -> float:
    """max |a - b| over the head's entries relative to max |b| (infinity if one is missing or shapes differ)."""
    if a is None or b is None or any(a[k].shape != b[k].shape for k in HEAD_KEYS):
        return float("inf")
    return compare.relative_error(diagnoses.flatten(a), diagnoses.flatten(b), diagnoses.flatten(b))


def noise(runs: dict) -> float:
    """How much two calls with the same inputs differ (``difference``; 0 when repeatable)."""
    return difference(head(runs["again"]), head(runs["results"][0]))


def repeatable(runs: dict, rtol: float = 0.0) -> bool:
    """Whether two calls with the same inputs gave the same head (to ``rtol``, relative)."""
    return noise(runs) <= rtol


def _changes(runs: dict, result) -> bool:
    """Whether ``result``'s head differs from the first call's by more than two identical calls differ."""
    return difference(head(result), head(runs["results"][0])) > NOISE_FACTOR * noise(runs)


def label_dependence(runs: dict) -> str:
    """LABELS when the head changes with the query labels beyond the noise of repeated calls, else ""."""
    return LABELS if _changes(runs, runs["relabelled"]) else ""


def query_dependence(runs: dict) -> str:
    """How the head depends on the query set, beyond the noise of repeated calls ("" if it does not)."""
    if label_dependence(runs):
        return LABELS
    if any(_changes(runs, result) for result in runs["results"][1:]):
        return IMAGES
    return ""


def _capital(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def step_reason(c: float, fixture: dict) -> str:
    """Why the first step may be c > 0 times the reference's."""
    num_way, num_support = int(fixture["num_way"]), np.shape(fixture["labels_support"])[1]
    if abs(c * num_way - 1) <= diagnoses.RATIO_RTOL:
        return (f"That is 1/{num_way}, {num_way} the number of classes: what a softmax of probabilities gives at "
                f"the zero start (a softmax or a loss computed twice, e.g. a cross-entropy from logits given "
                f"probabilities)?")
    return diagnoses.scale_reason(c, {num_support: "support examples"} if num_support >= 2 else {}) or (
        f"Is the step size the learning_rate argument ({float(fixture['learning_rate']):g}), and the loss the "
        f"mean cross-entropy of the support examples?")


def first_step(fixture: dict, one: dict) -> str:
    """What the head after num_steps=1 says next to the reference's: direction, size, or that it is right."""
    mine = diagnoses.flatten(one)
    reference = diagnoses.flatten({k: fixture[f"head_one_step/{k}"] for k in HEAD_KEYS})
    if mine.shape != reference.shape:
        return ""
    if not np.any(mine):
        return ("With num_steps=1 the head stays at zero: is the gradient step applied (head = head - "
                "learning_rate * gradient), and does the loop run num_steps times (tf.range(num_steps))?")
    if compare.relative_error(mine, reference, reference) <= STEP_RTOL:
        return (f"The first step is right, later ones are not: does each step start from the previous head, are "
                f"there num_steps={int(fixture['num_steps'])} of them, is each a plain gradient step, and do the "
                f"features stay the same (frozen, computed once)?")
    c = diagnoses.ratio(mine, reference)
    if c is not None and c < 0:
        return (f"The first step moves the head in the opposite direction from the reference's ({c:.3g}x): step "
                f"against the gradient (head - learning_rate * gradient).")
    if c is not None:
        return f"The first step points the right way but is {c:.3g}x the reference's. {step_reason(c, fixture)}"
    return ("Even the first step differs from the reference's (not a multiple of it): is it a gradient of the "
            "mean cross-entropy of head_logits(support features, head) and the support labels?")


def head_findings(fixture: dict, runs: dict) -> str:
    """What the student's heads say, when the head differs from the reference's ("" if nothing in particular).

    In order: not repeatable; depends on the query set; keys still at zero; not starting at zero; else what
    the first step says (``first_step``), unless the query set already explains the difference.
    """
    found = _capital(query_dependence(runs))
    if not repeatable(runs):
        return " ".join(filter(None, [NOT_REPEATABLE, found]))
    mine = head(runs["results"][0])
    if mine is not None:
        still = [k for k in HEAD_KEYS if not np.any(mine[k]) and np.any(fixture[f"head/{k}"])]
        if still:
            return " ".join(filter(None, [found, f"head[{still[0]!r}] is still all zeros after num_steps steps: "
                                                 f"does your update leave it out (or is its gradient None)?"]))
    zero = head(runs["zero_steps"])
    if zero is not None and any(np.any(zero[k]) for k in HEAD_KEYS):
        return " ".join(filter(None, [found, "With num_steps=0 the head is not all zeros: start w4 and b4 at "
                                             "zero."]))
    one = head(runs["one_step"])
    if found or one is None:
        return found
    return first_step(fixture, one)


def accuracy_findings(fixture: dict, accuracies: np.ndarray) -> str:
    """What query accuracies that differ from the reference's say, given a right head (``accuracies``: one per
    query set, the fixture's tasks)."""
    expected = np.asarray(fixture["accuracy_query"], np.float64)
    accuracies = np.asarray(accuracies, np.float64)
    if accuracies.shape != expected.shape:
        return ""
    labels = np.asarray(fixture["labels_query"])
    sizes = labels.shape[1]
    close = np.abs(accuracies - expected) <= 1e-4 * np.maximum(np.abs(expected), 1e-3)
    shown = ", ".join(f"{a:.4g}" for a in accuracies)
    lead = (f"The head is right, so the accuracy is computed wrongly (yours {shown}; expected "
            f"{', '.join(f'{e:.4g}' for e in expected)} on the {len(expected)} query sets): ")
    whole = np.abs(accuracies * sizes - np.round(accuracies * sizes)) <= 1e-3
    balanced = np.array([len(set(np.bincount(row, minlength=int(fixture["num_way"])))) == 1 for row in labels])
    if np.all(np.isin(accuracies, (0.0, 1.0))):
        return lead + "each is 0 or 1, the accuracy of one example: average over all the query examples."
    if np.allclose(accuracies, 1.0 - expected, atol=1e-4):
        return lead + "each is 1 minus the expected one: that is the error rate."
    if np.all(accuracies == accuracies[0]) and len(set(expected)) > 1:
        return lead + ("it is the same on every query set: is it measured on the query set (its features and "
                       "labels), not on the support set?")
    untrained = np.mean(labels == 0, axis=1)  # zero logits: argmax picks class 0 for every example
    if np.allclose(accuracies, untrained, atol=1e-4) and not np.allclose(expected, untrained, atol=1e-4):
        return lead + ("each is the accuracy of the head before any step (all zeros, so every example is "
                       "predicted as class 0): measure the query accuracy with the head after the num_steps "
                       "steps.")
    if np.all(close[balanced]) and not np.all(close[~balanced]):
        return lead + ("right only on the query sets where every class has as many examples: average over the "
                       "examples, not a mean of per-class accuracies.")
    if not np.all(whole):
        return lead + (f"they are not a whole number of correct predictions out of the {sizes} query examples "
                       f"(k/{sizes}): average the 0/1 correctness of argmax over the classes (axis -1) against the "
                       f"labels over the query examples, not probabilities or per-class means.")
    return lead + ("argmax over the classes (axis -1) of head_logits(extract_features(images_query), head), "
                   "compared with labels_query, averaged over the query examples.")
