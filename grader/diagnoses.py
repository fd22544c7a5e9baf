"""Structural diagnoses: what the numbers of a wrong result say about the code that computed them.

When a check fails, the grader holds *evidence*: the student's results on a
fixture (adapted parameters, losses, gradients, accuracies; ``Evidence``), the
reference's results and where an update started (the meta-parameters). The
functions here turn it into *findings*, sentences a student can act on, that
hold for mistakes nobody listed, because they describe the numbers, not a line
of code:

* direction: the change (or gradient) points away from the reference's
  (``direction``);
* scale: it is exactly c times the reference's, c a count of the fixture or
  a simple factor (``scale``), or each parameter's change by its own factor
  (``factors``); the difference pulls the parameters towards 0 (``shrinks``);
* which parameters: some keys unchanged, only some keys wrong (``which_keys``);
* which results: the parameters or the loss are right, so only the accuracies
  are computed wrongly, or they are not, and the accuracies follow from them
  (``accuracies_finding``);
* step count, starting point, update size and loss, from *variants*: the
  reference's results with one property changed (k inner steps instead of
  ``num_inner_steps``, each step restarting from the meta-parameters, the
  inner learning rate scaled, squared or missing, the cross-entropy of
  probabilities), stored in the fixtures as ``variant/<key>/<quantity>``
  sketches by ``instructor/make_fixtures.py`` and matched as known mistakes
  are (``grader.feedback``), with the sentences of ``variant_sentence``.

The sentences, exactly (``{...}`` filled in; cite them from here):

    DIRECTION   "Its change from the meta-parameters points the opposite way from the reference's
                (cosine {cos}): is a sign flipped (+ instead of - in the update, or a negated loss or
                gradient)?"   (for parameters; for a gradient "It points the opposite way ...")
    SCALE       "It is {c}x the expected one." then, by c: -1 "exactly the reference's with the
                opposite sign: is a sign flipped?"; a count of the fixture "{c} is the number of
                {what}: a sum over the {what} where a mean is meant?"; 1/count "1/{n}, {n} the number
                of {what}: divided by it once too often (a mean of a mean)?"; 2 "twice the
                reference's: is a loss, a probability, a gradient or the learning rate used twice?";
                1/2 "half the reference's: is something divided by 2, or only one of two terms kept?"
    SHRINK      "Your adapted parameters differ from the reference's in the direction of minus the
                meta-parameters themselves (cosine {cos}): something pulls the parameters towards 0, such
                as an L2 penalty or weight decay in the inner loop. ..."   (``shrinks``)
    PER_PARAMETER  "Each parameter's change points about the reference's way, but its size is off by a
                factor that differs between parameters ({name} {f}x, ...): each parameter's step is
                self.inner_lrs[name] times its own gradient. ..."   (``factors``)
    UNCHANGED   "{keys} did not change at all: does your update leave them out?"
    ONLY_SOME   "Only {keys} differ from the reference; the others are right."
    RIGHT_PARAMETERS   "The adapted parameters are right, so the difference is in how the accuracies
                       are computed: ..."   (and "The outer loss is right, ..." for outer_loop)
    WRONG_PARAMETERS   "The adapted parameters differ from the reference's too, and the accuracies follow
                       from them: fix them first."   (or "The outer loss differs ...")
    variants    see ``VARIANTS`` (one sentence per variant key).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ACCURACY_QUANTITIES = frozenset({"inner/accuracies", "outer/accuracies_support", "outer/accuracy_query",
                                 "accuracy_query"})  # coarse (steps of 1/n): they never name a mistake alone
OPPOSITE_COSINE = -0.5  # a change this far from the reference's "points the opposite way"
SHRINK_COSINE = -0.5  # adapted parameters whose difference from the reference's is this far against theta
SAME_WAY_COSINE = 0.7  # each parameter's change at least this close to the reference's: "points about its way"
FACTOR_SPREAD = 1.25  # the largest over the smallest per-parameter factor that "differs between parameters"
RATIO_RTOL = 1e-3  # "c times the reference's" when this close to it (float32 results are checked too)

_CALCULATION = ("from the logits of the right parameters and inputs, argmax over the classes (axis -1), "
                "compared with the labels, averaged over the examples (and over the tasks for outer_loop); "
                "one support accuracy before each inner step and one after the last")

# variant key -> what the numbers show (make_fixtures computes each variant; see the module docstring)
VARIANTS = {
    "restart_from_theta": "Each inner step starts again from self.meta_parameters: your result is what one "
                          "step from the meta-parameters gives. Build the parameters dict once, before the "
                          "loop, and let each step update the previous step's parameters.",
    "update_from_theta": "Each inner step's update is subtracted from self.meta_parameters instead of from the "
                         "previous step's parameters, so every step starts again from the meta-parameters: "
                         "phi_{s+1} = phi_s - lr * gradient(phi_s).",
    "inner_lr_squared": "Your inner update is what the learning rate squared gives (lr * lr * gradient): is "
                        "self.inner_lrs[name] applied twice?",
    "inner_lr_one": "Your inner update is what a learning rate of 1 gives: is self.inner_lrs[name] missing "
                    "from the update?",
    "probabilities_inner": "It is what the cross-entropy of softmax probabilities in the inner loop gives: "
                           "cross_entropy takes logits (it applies the softmax itself); pass forward(...)'s "
                           "output to it directly.",
    "probabilities_outer": "It is what the cross-entropy of softmax probabilities in the outer loss gives: "
                           "cross_entropy takes logits (it applies the softmax itself); pass forward(...)'s "
                           "output to it directly.",
    "probabilities_both": "It is what the cross-entropy of softmax probabilities gives, in the inner loop and "
                          "the outer loss: cross_entropy takes logits (it applies the softmax itself); pass "
                          "forward(...)'s output to it directly.",
    **{f"keras_probabilities_{where}": (f"It is what Keras's sparse categorical cross-entropy with its default "
                                        f"from_logits=False gives {said}: it takes forward(...)'s logits for "
                                        f"probabilities. Use cross_entropy(logits, labels) (or pass "
                                        f"from_logits=True).")
       for where, said in (("inner", "in the inner loop"), ("outer", "in the outer loss"),
                           ("both", "in the inner loop and the outer loss"))},
}
STEP_VARIANT = "steps_"  # steps_<k>: the reference with k inner steps instead of num_inner_steps
SCALE_VARIANT = "inner_lr_x"  # inner_lr_x<c>: the reference with every inner learning rate times c


@dataclass
class Evidence:
    """A check's results on one fixture, as numbers.

    Attributes:
        fixture: the fixture (inputs, the reference's results, mistakes' and variants' sketches).
        results: quantity -> the student's result, a float64 array or {name: array} ("inner/phi",
            "outer/loss", "grad_fo", ...: ``grader.feedback``'s names); results that are no numbers
            are left out.
        starts: quantity -> where it started (adapted parameters: the meta-parameters), for changes.
    """

    fixture: dict
    results: dict = field(default_factory=dict)
    starts: dict = field(default_factory=dict)

    def informative(self) -> list[str]:
        """The quantities that can tell mistakes apart (not the accuracies)."""
        return [q for q in self.results if q not in ACCURACY_QUANTITIES]


def flatten(value) -> np.ndarray:
    """A dict of arrays (keys sorted) or an array, as one float64 vector."""
    if isinstance(value, dict):
        return np.concatenate([np.ravel(np.asarray(value[key], np.float64)) for key in sorted(value)]) \
            if value else np.zeros(0)
    return np.ravel(np.asarray(value, np.float64))


def counts(fixture: dict, quantity: str) -> dict[int, str]:
    """The counts of a fixture a sum instead of a mean would multiply ``quantity`` by: n -> what n counts."""
    tasks, support = np.shape(fixture["labels_support"])[:2]
    query = np.shape(fixture["labels_query"])[1]
    if quantity.startswith("inner/"):
        return {support: "support examples"}
    if not quantity.startswith(("outer/", "grad_")):
        return {}
    found = {query * tasks: "query examples of all the tasks", tasks: "tasks"}
    found[query] = "query examples of a task"  # wins where two counts are equal: the likelier slip
    return {n: what for n, what in found.items() if n >= 2}


def _whole(x: float) -> int | None:
    n = round(x)
    return n if n >= 2 and abs(x - n) <= RATIO_RTOL * x else None


def scale_reason(c: float, named_counts: dict[int, str]) -> str:
    """Why a result may be exactly c times the reference's ("" if c says nothing in particular)."""
    if abs(c + 1) <= RATIO_RTOL:
        return "It is exactly the reference's with the opposite sign: is a sign flipped?"
    if c < 0:
        return ""
    n, inverse = _whole(c), _whole(1 / c) if c else None
    if n in named_counts:
        what = named_counts[n]
        return f"{n} is the number of {what}: a sum over the {what} where a mean is meant?"
    if inverse in named_counts:
        what = named_counts[inverse]
        return f"That is 1/{inverse}, {inverse} the number of {what}: divided by it once too often (a mean of a mean)?"
    if n == 2:
        return "Twice the reference's: is a loss, a probability, a gradient or the learning rate used twice?"
    if inverse == 2:
        return "Half the reference's: is something divided by 2, or only one of two terms kept?"
    return ""


def ratio(actual: np.ndarray, expected: np.ndarray) -> float | None:
    """c when ``actual`` is c times ``expected`` (all of it, to RATIO_RTOL), else None."""
    if actual.shape != expected.shape or not np.all(np.isfinite(actual)) or not np.any(expected):
        return None
    c = float(actual @ expected / (expected @ expected))
    if abs(c - 1) <= RATIO_RTOL or np.linalg.norm(actual - c * expected) > RATIO_RTOL * np.linalg.norm(actual):
        return None
    return c


def scale(actual, expected, start=None, named_counts: dict[int, str] | None = None, reasons: bool = True) -> str:
    """"It is 4x the expected one. <why>" when ``actual`` (its change from ``start``) is a multiple of
    ``expected``'s; a lone number only when c is a count or a simple factor (it is a multiple of anything).

    Args:
        named_counts: the fixture's counts (``counts``), for the reason.
        reasons: False: the ratio only (a hint already says why).
    """
    a, e = flatten(actual), flatten(expected)
    if start is not None:
        a, e = a - flatten(start), e - flatten(start)
    c = ratio(a, e)
    if c is None:
        return ""
    if abs(c) < 1e-3:
        return "It is about 0."
    reason = scale_reason(c, named_counts or {})
    if e.size == 1 and not (reason or _whole(abs(c)) or _whole(1 / abs(c))):
        return ""
    return " ".join(filter(None, [f"It is {c:.3g}x the expected one.", reason if reasons else ""]))


def direction(actual, expected, start=None) -> str:
    """The sentence DIRECTION when the change from ``start`` (or the value) points away from the reference's."""
    a, e = flatten(actual), flatten(expected)
    if start is not None:
        a, e = a - flatten(start), e - flatten(start)
    if a.size < 2 or a.shape != e.shape or not np.all(np.isfinite(a)) or not np.any(a) or not np.any(e):
        return ""
    cosine = float(a @ e / (np.linalg.norm(a) * np.linalg.norm(e)))
    if cosine > OPPOSITE_COSINE or abs(cosine + 1) <= RATIO_RTOL:  # exactly -1: scale says it
        return ""
    what = "Its change from the meta-parameters points" if start is not None else "It points"
    return (f"{what} the opposite way from the reference's (cosine {cosine:.2f}): is a sign flipped (+ instead "
            f"of - in the update, or a negated loss or gradient)?")


def which_keys(actual: dict, expected: dict, start: dict | None, rtol: float) -> str:
    """UNCHANGED (keys left at their start while the reference changes them) or ONLY_SOME (a few keys wrong)."""
    if not isinstance(actual, dict) or sorted(actual) != sorted(expected):
        return ""
    wrong, unchanged = [], []
    for name in sorted(expected):
        a, e = np.asarray(actual[name], np.float64), np.asarray(expected[name], np.float64)
        if a.shape != e.shape:
            return ""
        s = np.asarray(start[name], np.float64) if start is not None else 0.0
        size = float(np.max(np.abs(e - s))) if e.size else 0.0
        if size and float(np.max(np.abs(a - e))) > rtol * size:
            wrong.append(name)
            if start is not None and np.array_equal(a, s):
                unchanged.append(name)
    if unchanged and len(unchanged) < len(expected):
        return f"{_names(unchanged)} did not change at all: does your update leave them out?"
    if wrong and len(wrong) <= len(expected) // 2:
        return f"Only {_names(wrong)} differ from the reference; the others are right."
    return ""


def shrinks(actual: dict, expected: dict, start: dict) -> str:
    """SHRINK: the adapted parameters' difference from the reference's points against the meta-parameters
    themselves, as a term that pulls the parameters towards 0 (an L2 penalty, weight decay) makes it: each step
    then subtracts lr * lambda * phi besides the reference's step."""
    a, e, s = flatten(actual), flatten(expected), flatten(start)
    if a.shape != e.shape or e.shape != s.shape or not np.all(np.isfinite(a)):
        return ""
    difference = a - e
    if not np.any(difference) or not np.any(s):
        return ""
    cosine = float(difference @ s / (np.linalg.norm(difference) * np.linalg.norm(s)))
    if cosine > SHRINK_COSINE:
        return ""
    return (f"Your adapted parameters differ from the reference's in the direction of minus the meta-parameters "
            f"themselves (cosine {cosine:.2f}): something pulls the parameters towards 0, such as an L2 penalty "
            f"or weight decay in the inner loop. The inner loss is the support cross-entropy alone.")


def factors(actual: dict, expected: dict, start: dict) -> str:
    """PER_PARAMETER: every parameter's change points about the reference's way (``SAME_WAY_COSINE``) but its
    size is off by a factor that differs between parameters (``FACTOR_SPREAD``), as a step size that is not
    each parameter's own inner learning rate, or clipped or normalised gradients, make it."""
    if not all(isinstance(x, dict) for x in (actual, expected, start)) or sorted(actual) != sorted(expected):
        return ""
    found = {}
    for name in sorted(expected):
        a = np.ravel(np.asarray(actual[name], np.float64) - np.asarray(start[name], np.float64))
        e = np.ravel(np.asarray(expected[name], np.float64) - np.asarray(start[name], np.float64))
        if a.shape != e.shape or not np.all(np.isfinite(a)):
            return ""
        if not np.any(e):
            continue
        if not np.any(a) or float(a @ e) / (np.linalg.norm(a) * np.linalg.norm(e)) < SAME_WAY_COSINE:
            return ""
        found[name] = float(np.linalg.norm(a) / np.linalg.norm(e))
    if len(found) < 2 or max(found.values()) < FACTOR_SPREAD * min(found.values()):
        return ""
    ordered = sorted(found, key=found.get)
    shown = ordered if len(ordered) <= 4 else [*ordered[:2], *ordered[-2:]]
    listed = ", ".join(f"{name!r} {found[name]:.2f}x" for name in shown)
    return (f"Each parameter's change points about the reference's way, but its size is off by a factor that "
            f"differs between parameters ({listed}{', ...' if len(shown) < len(ordered) else ''}): each "
            f"parameter's step is self.inner_lrs[name] times its own gradient. One learning rate for all "
            f"parameters, clipped or normalised gradients, or another number of steps change the size of "
            f"each parameter's step differently.")


def _names(keys: list[str]) -> str:
    return ", ".join(repr(key) for key in keys)


def accuracies_finding(evidence: Evidence, expected_of, rtol: float) -> str:
    """For wrong accuracies: RIGHT_PARAMETERS when the evidence's adapted parameters (or outer loss) equal the
    reference's, WRONG_PARAMETERS when they do not (the accuracies follow from them), else ""."""
    for quantity, what, are, them in (("inner/phi", "adapted parameters", "are", "them"),
                                      ("outer/loss", "outer loss", "is", "it")):
        if quantity not in evidence.results:
            continue
        mine, expected = flatten(evidence.results[quantity]), flatten(expected_of(quantity))
        start = evidence.starts.get(quantity)
        size = np.max(np.abs(expected - (flatten(start) if start is not None else 0.0)))
        if mine.shape != expected.shape:
            return ""
        if float(np.max(np.abs(mine - expected))) <= rtol * size:
            return f"The {what} {are} right, so the difference is in how the accuracies are computed: {_CALCULATION}."
        differ = "differ" if are == "are" else "differs"
        return (f"The {what} {differ} from the reference's too, and the accuracies follow from {them}: "
                f"fix {them} first.")
    return ""


def variant_sentence(key: str, fixture: dict, quantity: str) -> str:
    """The sentence of a variant ``key`` (``VARIANTS``, ``steps_<k>``, ``inner_lr_x<c>``)."""
    if key in VARIANTS:
        return VARIANTS[key]
    if key.startswith(STEP_VARIANT):
        k, n = int(key[len(STEP_VARIANT):]), int(fixture["num_inner_steps"])
        if k == 0:
            return ("It equals what the meta-parameters give without adaptation (0 inner steps): are the "
                    "adapted parameters used?")
        steps = "1 inner step" if k == 1 else f"{k} inner steps"
        return f"It equals what {steps} give, not num_inner_steps={n}: check the range of your inner loop."
    if key.startswith(SCALE_VARIANT):
        c = float(key[len(SCALE_VARIANT):])
        if c == -1:
            return ("Your inner update moves the parameters the opposite way (it is what the negated learning "
                    "rate gives): is a sign flipped (+ instead of -, or a negated loss or gradient)?")
        reason = scale_reason(c, counts(fixture, "inner/phi"))
        return (f"Your inner update is {c:.3g}x the reference's (your adapted parameters are what {c:.3g}x the inner "
                f"learning rates give). {reason}").strip()
    return ""


def variant_keys(fixture: dict) -> list[str]:
    """The variants stored in a fixture (``variant/<key>/<quantity>``)."""
    return sorted({key.split("/")[1] for key in fixture if key.startswith("variant/")})


def scale_variant(c: float) -> str:
    """The key of the variant whose inner learning rates are c times the fixture's: "inner_lr_x2"."""
    return f"{SCALE_VARIANT}{c:g}"
