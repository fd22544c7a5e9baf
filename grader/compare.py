"""What the public tests compare with, and how.

Fixtures (``grader/fixtures/*.npz``) are tiny and were computed by the
instructor's reference solution on real Omniglot drawings (a few 28x28 images
stored as uint8, exact), with a small conv-4 network (4 filters) and float64
throughout, so a correct implementation matches to ~1e-12 and the tolerances
below leave a wide margin. They are regenerated with
``python -m instructor.make_fixtures`` (not part of the handout).

The autograder runs these tests on each fixture and then on its *twin*
(``fixture_versions``): the same shapes and settings, other tasks and
parameters, and the reference's results on them, which the handout does not
hold. A check earns its points when it passes on both, so code that computes
what it should scores as in your own run, and answers copied from these files
score nothing.

Fixture keys, ``maml.npz``:
    num_way, num_inner_steps                    int scalars
    images_support (T, N*K, 28, 28) uint8, labels_support (T, N*K) int32,
    images_query (T, N*Q, 28, 28) uint8, labels_query (T, N*Q) int32
    theta/<name>     float64, the meta-parameters (keys of maml.init_parameters)
    inner_lr/<name>  float64 scalar, a different inner learning rate per parameter
    inner/phi/<name>, inner/accuracies          inner_loop on task 0 (first order, train=True)
    outer/loss, outer/accuracies_support, outer/accuracy_query   outer_loop on all T tasks
    grad_fo/<name>, grad_so/<name>              d outer/loss / d theta, first and second order
    mistake/<key>/<quantity>, variant/<key>/<quantity>   sketches of what known mistakes and structural
                                                variants give (``grader.feedback``, ``grader.diagnoses``)

``transfer.npz`` (part 2):
    num_way, num_steps, learning_rate           transfer_learn's arguments
    images_support, labels_support, images_query, labels_query   T = 3 tasks: one support set (repeated),
                                                three query sets of 50 drawings (the last with classes of
                                                unequal size)
    frozen/<name>    float64 holding float32 values: conv0..3 and b0..3 of a 16-filter conv-4 pre-trained
                     on Omniglot's training characters (pretrained_by: how)
    head/w4, head/b4                            the head adapted on the support set (reference, float64)
    accuracy_query   (T,) its query accuracy on each query set
    head_one_step/w4, head_one_step/b4          the head after one step (num_steps=1)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TWINS_ENV = "GRADER_FIXTURE_TWINS"  # the autograder's folder of the fixtures' twins (set by grader.runner)
FIXTURE, TWIN = "fixture", "twin"  # the versions of a public fixture (``fixture_versions``)
RTOL = 1e-6  # relative to the size of the expected change; float64 round-off is ~1e-12
ATOL_ACCURACY = 1e-6
# What a probe in the sandbox may see of a fixture: its inputs, never the expected results.
TASK_KEYS = ("images_support", "labels_support", "images_query", "labels_query")  # a fixture's tasks
INPUT_KEYS = ("num_way", "num_inner_steps", "num_steps", "learning_rate", *TASK_KEYS)
INPUT_PREFIXES = ("theta/", "inner_lr/", "frozen/")


def twin_name(name: str) -> str:
    """The file name (without .npz) of the twin of the public fixture ``name``, among the hidden fixtures."""
    return f"{name}_twin_hidden"


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as stored:
        return {key: stored[key] for key in stored.files}


def load_fixture(name: str) -> dict[str, np.ndarray]:
    """All arrays of ``grader/fixtures/<name>.npz``."""
    return _arrays(FIXTURES / f"{name}.npz")


def fixture_versions(name: str) -> dict[str, dict[str, np.ndarray]]:
    """What the public tests of fixture ``name`` run on: {FIXTURE: its arrays} in a student's own run, and
    {FIXTURE: ..., TWIN: its twin's arrays} when the autograder grades (``TWINS_ENV`` names the twins' folder)."""
    versions = {FIXTURE: load_fixture(name)}
    twins = os.environ.get(TWINS_ENV)
    if twins:
        versions[TWIN] = _arrays(Path(twins) / f"{twin_name(name)}.npz")
    return versions


def inputs(fixture: dict) -> dict[str, np.ndarray]:
    """The inputs of a fixture (``INPUT_KEYS``, ``INPUT_PREFIXES``): what is sent to the student's process."""
    return {key: value for key, value in fixture.items()
            if key in INPUT_KEYS or key.startswith(INPUT_PREFIXES)}


def parameter_names(fixture: dict, prefix: str = "theta/") -> list[str]:
    return [key[len(prefix):] for key in fixture if key.startswith(prefix)]


def tasks_from_fixture(fixture: dict, dtype=np.float64) -> list[tuple[np.ndarray, ...]]:
    """The fixture's tasks as (images_support, labels_support, images_query, labels_query)."""
    def images(stored):
        return (stored.astype(dtype) / 255.0)[..., None]

    return [(images(fixture["images_support"][t]), fixture["labels_support"][t].astype(np.int32),
             images(fixture["images_query"][t]), fixture["labels_query"][t].astype(np.int32))
            for t in range(len(fixture["images_support"]))]


def maml_from_fixture(maml_module, fixture: dict, first_order: bool = True, **options):
    """A ``maml_module.MAML`` in float64 whose meta-parameters and inner lrs are the fixture's.

    The constructor is the module's own; only ``init_parameters`` is replaced
    while it runs, so everything the constructor builds fits these parameters.
    ``options`` are more constructor arguments, e.g. ``learn_inner_lrs=True``.
    """
    import tensorflow as tf

    theta = {name: fixture[f"theta/{name}"] for name in parameter_names(fixture)}

    def fixture_parameters(num_way, *args, dtype=tf.float64, **kwargs):
        return {name: tf.constant(value, dtype) for name, value in theta.items()}

    original = maml_module.init_parameters
    maml_module.init_parameters = fixture_parameters
    try:
        model = maml_module.MAML(int(fixture["num_way"]), num_inner_steps=int(fixture["num_inner_steps"]),
                                 first_order=first_order, dtype=tf.float64, **options)
    finally:
        maml_module.init_parameters = original
    for name, variable in model.inner_lrs.items():
        variable.assign(fixture[f"inner_lr/{name}"])
    return model


def same_variables(model, built: dict) -> float:
    """1.0 if ``model.meta_parameters`` still holds the tf.Variables it was built with (``built``, a copy of
    the dict taken before a call), else 0.0: the evidence that tells "the values were assigned" (the same
    variables, changed) from "the model's dict was changed" (tensors in place of the variables)."""
    current = getattr(model, "meta_parameters", None)
    return float(isinstance(current, dict) and sorted(current) == sorted(built)
                 and all(current[name] is variable for name, variable in built.items()))


def as_numpy(value, what: str) -> np.ndarray:
    """``value`` as a numpy array, or an AssertionError saying what it was instead."""
    if value is None:
        raise AssertionError(f"{what} is None")
    kind = getattr(value, "type_name", type(value).__name__)  # wire.Opaque: what the student's code returned
    try:
        return np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"{what} is not a tensor of numbers ({kind}: {error})") from None


def relative_error(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray | float) -> float:
    """max |actual - expected| divided by max |scale| (the size of what was computed)."""
    scale = float(np.max(np.abs(scale))) if np.size(scale) else 0.0
    return float(np.max(np.abs(actual - expected))) / max(scale, 1e-300) if np.size(expected) else 0.0


def assert_shape(value, shape: tuple, what: str) -> np.ndarray:
    array = as_numpy(value, what)
    if array.shape != tuple(shape):
        raise AssertionError(f"{what} has shape {array.shape}, expected {tuple(shape)}")
    return array


def assert_close(value, expected: np.ndarray, what: str, scale=None, rtol: float = RTOL,
                 hint: str = "") -> None:
    """AssertionError with the size of the difference unless ``value`` matches ``expected``.

    Args:
        scale: what the error is relative to (default: ``expected``), e.g. the
            expected *change* of a parameter, so a missing update cannot hide
            inside a large parameter.
    """
    actual = assert_shape(value, np.shape(expected), what)
    if not np.all(np.isfinite(actual)):
        raise AssertionError(f"{what} contains NaN or infinity")
    error = relative_error(actual, expected, expected if scale is None else scale)
    if error > rtol:
        raise AssertionError(f"{what} differs from the reference: relative error {error:.3g} "
                             f"(tolerance {rtol:g}).{' ' + hint if hint else ''}")


def assert_parameters_close(actual: dict, expected: dict, start: dict, what: str, rtol: float = RTOL) -> None:
    """Compares dicts of parameters; errors are relative to each parameter's expected change."""
    if not isinstance(actual, dict):
        raise AssertionError(f"{what} should be a dict of tensors, got {type(actual).__name__}")
    missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    if missing or extra:
        raise AssertionError(f"{what} has the wrong keys: missing {missing}, unexpected {extra}")
    for name in expected:
        change = expected[name] - start[name] if start is not None else expected[name]
        got = assert_shape(actual[name], expected[name].shape, f"{what} {name!r}")
        moved = float(np.max(np.abs(got - start[name]))) if start is not None else None
        hint = ""
        if moved == 0.0 and np.max(np.abs(change)) > 0:
            hint = "It did not change at all."
        elif moved is not None:
            ratio = float(np.linalg.norm(got - start[name]) / max(np.linalg.norm(change), 1e-300))
            hint = f"Its change is {ratio:.3g} times the expected one."
        assert_close(got, expected[name], f"{what} {name!r}", scale=change, rtol=rtol, hint=hint)
