"""Generates the grader's fixtures from the reference solution, and the numbers of known mistakes.

    python -m instructor.make_fixtures          # (re)write every fixture
    python -m instructor.make_fixtures --check  # exit 1 if one differs from what the reference computes now

Two kinds of fixture, built the same way:

* public, ``grader/fixtures/*.npz`` (in the handout; ``grader/compare.py``
  documents the keys): ``maml.npz`` and ``transfer.npz``, and ``mamlpp.npz``
  for the extra credit (``mamlpp_fixture``);
* hidden, ``instructor/autograder/fixtures/*.npz`` (only in the autograder
  bundle): ``maml_hidden.npz`` and ``transfer_hidden.npz``, other tasks and
  shapes than the public ones, so code fitted to the public numbers fails them,
  and ``mamlpp_hidden.npz`` (the extra credit's, with other schedule settings
  too); and each public fixture's twin, ``<name>_twin_hidden.npz``
  (``compare.twin_name``): the same shapes and settings with other tasks and
  parameters, on which the autograder also runs the public tests, so that
  answers copied from the handout's fixtures score nothing
  (``compare.fixture_versions``).

Each holds inputs (real Omniglot validation tasks stored as uint8, exact;
small conv-4 parameters with non-zero biases; a different inner learning rate
per parameter), the reference's results on them, computed in float64 so a
correct implementation matches to round-off (~1e-12), and the results of every
known mistake of ``instructor/mistakes.py`` (``mistake/<key>/<quantity>``,
stored only where the mistake gives a number that differs from the
reference's), and of the structural variants (``variant/<key>/<quantity>``: the
reference with k inner steps, scaled, squared or missing inner learning rates,
each step restarting from the meta-parameters, a loss of probabilities;
``input_variants`` and ``mistakes.VARIANTS``). ``grader/feedback.py`` compares a
student's wrong numbers with them to name the mistake or say what the numbers
show (``grader/diagnoses.py``).

The public maml fixture: 3-way 2-shot tasks with 2 queries per class, 2 tasks,
2 inner steps, 4 filters. The hidden one: 5-way 1-shot with 1 query per class
(so N*K = N and an argmax over the wrong axis gives a number instead of an
error), 4 tasks (summing over tasks gives 4x), 3 inner steps, 8 filters, and
also the meta-gradient of the inner learning rates and of evaluation
(``train=False``). Transfer fixtures (``TransferSetting``) run ``transfer_learn``
on a conv-4 really pre-trained on Omniglot's training characters (so the
reference's query accuracies sit well above chance, 0.70-0.78), with one support
set and three query sets of 50-60 drawings, one with classes of unequal size,
every accuracy checked; the pre-trained features are stored and reused
(``pretrained_frozen``; ``--pretrain`` trains them again).

Files are written byte-reproducibly: regenerating unchanged fixtures changes
nothing in git.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from grader import compare, diagnoses, feedback
from grader.files import ROOT
from instructor import mistakes
from instructor.release.archive import npz_bytes, write_atomic

HIDDEN_FIXTURES = ROOT / "instructor" / "autograder" / "fixtures"
COMPARE_RTOL = 1e-9  # regenerated vs stored: float64 on another machine differs by round-off only
DISTINCT = 1e-6  # a mistake's number is stored when it differs from the reference's by more (relative)


@dataclass(frozen=True)
class MamlSetting:
    """The inputs of a maml fixture: which tasks, which network, which inner loop."""

    seed: int  # task stream of the validation split, and the initialisation
    num_way: int
    num_support: int
    num_query: int
    num_tasks: int
    num_inner_steps: int
    num_filters: int
    first_lr: float  # inner lr of the first parameter; each next one gets lr_step more
    lr_step: float
    extended: bool  # also the meta-gradients of the inner lrs and of evaluation (train=False)


PUBLIC_MAML = MamlSetting(seed=5, num_way=3, num_support=2, num_query=2, num_tasks=2, num_inner_steps=2,
                          num_filters=4, first_lr=0.3, lr_step=0.04, extended=False)
PUBLIC_MAML_TWIN = dataclasses.replace(PUBLIC_MAML, seed=11)  # other tasks and parameters, same shapes
HIDDEN_MAML = MamlSetting(seed=29, num_way=5, num_support=1, num_query=1, num_tasks=4, num_inner_steps=3,
                          num_filters=8, first_lr=0.45, lr_step=-0.03, extended=True)


@dataclass(frozen=True)
class TransferSetting:
    """The inputs of a transfer fixture: pre-trained features, one support set, several query sets, the head's steps.

    The support set is task ``task`` of the validation stream ``seed``; query set j takes ``query_counts[j][l]``
    of the other drawings of label l (all sets the same size, so they stack as tasks that share the support set).
    """

    seed: int  # validation task stream and pre-training
    task: int
    num_way: int
    num_support: int
    query_counts: tuple[tuple[int, ...], ...]  # per query set, per label; unequal counts tell "mean over classes"
    num_filters: int
    pretrain_steps: int  # minibatches of the reference's pre-training (reference.pretrained_features)
    num_steps: int  # fewer than TRANSFER_STEPS, so that the argument is checked
    learning_rate: float


PUBLIC_TRANSFER = TransferSetting(seed=5, task=0, num_way=5, num_support=5,
                                  query_counts=((10,) * 5, (10,) * 5, (6, 8, 10, 12, 14)),
                                  num_filters=16, pretrain_steps=600, num_steps=8, learning_rate=1.0)
PUBLIC_TRANSFER_TWIN = dataclasses.replace(PUBLIC_TRANSFER, task=1)  # another support set and its query sets
HIDDEN_TRANSFER = TransferSetting(seed=29, task=0, num_way=6, num_support=4,
                                  query_counts=((10,) * 6, (14, 4, 12, 8, 16, 6), (10,) * 6),
                                  num_filters=12, pretrain_steps=600, num_steps=6, learning_rate=0.8)


@dataclass(frozen=True)
class MamlppSetting:
    """The MAML++ fixture's settings beyond its maml fixture's tasks and theta (``mamlpp_fixture``)."""

    seed: int  # initial values of the per-step variables and the batch-norm input
    msl_iterations: int
    da_iterations: int
    cosine_iterations: int
    min_outer_lr: float
    iteration: int  # the outer iteration outer_loop is computed at (the multi-step loss is on before msl_iterations)
    schedule_iterations: tuple[int, ...]  # where the schedules are read: around each switch, and past the end


PUBLIC_MAMLPP = MamlppSetting(seed=3, msl_iterations=6, da_iterations=3, cosine_iterations=12, min_outer_lr=2e-4,
                              iteration=2, schedule_iterations=(0, 2, 3, 5, 6, 15))
PUBLIC_MAMLPP_TWIN = dataclasses.replace(PUBLIC_MAMLPP, seed=13)  # on the maml twin, other per-step values
HIDDEN_MAMLPP = MamlppSetting(seed=7, msl_iterations=10, da_iterations=4, cosine_iterations=20, min_outer_lr=1e-4,
                              iteration=3, schedule_iterations=(0, 3, 9, 10, 25))


def _uint8(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28, 1) float32 in {k/255} -> (n, 28, 28) uint8, checked to be exact."""
    stored = np.rint(images[..., 0] * 255.0).astype(np.uint8)
    if not np.array_equal(stored.astype(np.float32) / np.float32(255.0), images[..., 0]):
        raise ValueError("the Omniglot images are not multiples of 1/255; the uint8 fixture would not be exact")
    return stored


# ------------------------------------------------------------------ inputs


def maml_inputs(setting: MamlSetting) -> dict[str, np.ndarray]:
    """Tasks, meta-parameters and inner learning rates of a maml fixture."""
    import tensorflow as tf

    import load_data
    import maml

    data = load_data.load_omniglot(progress=False)
    sampler = load_data.TaskSampler(data, "val", setting.num_way, setting.num_support, setting.num_query,
                                    seed=setting.seed)
    tasks = [sampler.task(i) for i in range(setting.num_tasks)]
    fixture: dict[str, np.ndarray] = {
        "num_way": np.array(setting.num_way), "num_inner_steps": np.array(setting.num_inner_steps),
        "images_support": np.stack([_uint8(t.images_support) for t in tasks]),
        "labels_support": np.stack([t.labels_support for t in tasks]).astype(np.int32),
        "images_query": np.stack([_uint8(t.images_query) for t in tasks]),
        "labels_query": np.stack([t.labels_query for t in tasks]).astype(np.int32),
    }
    theta = maml.init_parameters(setting.num_way, num_filters=setting.num_filters, seed=setting.seed,
                                 dtype=tf.float64)
    rng = np.random.default_rng(setting.seed)
    for i, (name, value) in enumerate(theta.items()):
        value = value.numpy()
        if name.startswith("b"):  # zero biases would hide a bias that is never updated
            value = rng.normal(0.0, 0.1, value.shape)
        fixture[f"theta/{name}"] = value
        fixture[f"inner_lr/{name}"] = np.array(setting.first_lr + setting.lr_step * i)
    return fixture


def pretrained_by(setting: TransferSetting) -> np.ndarray:
    """What a transfer fixture's frozen features are: the pre-training's settings, stored beside them."""
    return np.array(json.dumps({"seed": setting.seed, "num_filters": setting.num_filters,
                                "steps": setting.pretrain_steps}, sort_keys=True))


def pretrained_frozen(name: str, setting: TransferSetting, pretrain: bool) -> dict[str, np.ndarray]:
    """The frozen features of a transfer fixture, float32 values as float64.

    Pre-training in float32 is not bit-reproducible (another thread schedule ends up ~1e-2 away), so the
    stored fixture's features are reused when they were pre-trained with these settings and ``pretrain`` is
    False: then --check and a regeneration compute the reference's results on the same inputs. Otherwise
    ``reference.pretrained_features`` pre-trains them now (~15 s on 2 cores).
    """
    if not pretrain and fixture_path(name).is_file():
        stored = load(name)
        if "pretrained_by" in stored and str(stored["pretrained_by"]) == str(pretrained_by(setting)):
            return {key: value for key, value in stored.items() if key.startswith("frozen/")}
    from instructor.autograder.tests import reference

    features = reference.pretrained_features(setting.pretrain_steps, seed=setting.seed,
                                             num_filters=setting.num_filters)
    return {f"frozen/{key}": value.astype(np.float64) for key, value in features.items()}


def transfer_inputs(name: str, setting: TransferSetting, pretrain: bool = False) -> dict[str, np.ndarray]:
    """A support set, query sets drawn from the rest of its characters' drawings, pre-trained frozen features.

    Stored as tasks (T = number of query sets) that share the support set, so ``compare.tasks_from_fixture``
    gives one (support, query set j) task per query set.
    """
    import load_data

    counts = np.array(setting.query_counts)
    if len(set(counts.sum(axis=1))) != 1 or counts.shape[1] != setting.num_way:
        raise ValueError(f"query sets must have {setting.num_way} counts each and the same size: {counts}")
    sampler = load_data.TaskSampler(load_data.load_omniglot(progress=False), "val", setting.num_way,
                                    setting.num_support, load_data.NUM_DRAWINGS - setting.num_support,
                                    seed=setting.seed)
    task = sampler.task(setting.task)
    images, labels = [], []
    for j, per_label in enumerate(counts):
        rng = np.random.default_rng([setting.seed, setting.task, j])
        chosen = np.concatenate([rng.choice(np.flatnonzero(task.labels_query == label), count, replace=False)
                                 for label, count in enumerate(per_label)])
        chosen = rng.permutation(chosen)
        images.append(_uint8(task.images_query[chosen]))
        labels.append(task.labels_query[chosen].astype(np.int32))
    sets = len(counts)
    fixture = {"num_way": np.array(setting.num_way), "num_steps": np.array(setting.num_steps),
               "learning_rate": np.array(setting.learning_rate),
               "images_support": np.repeat(_uint8(task.images_support)[None], sets, axis=0),
               "labels_support": np.repeat(task.labels_support.astype(np.int32)[None], sets, axis=0),
               "images_query": np.stack(images), "labels_query": np.stack(labels),
               "pretrained_by": pretrained_by(setting)}
    return {**fixture, **pretrained_frozen(name, setting, pretrain)}


# ------------------------------------------------------------------ results


def _tensors(fixture: dict) -> list[tuple]:
    import tensorflow as tf

    return [tuple(tf.constant(part) for part in task) for task in compare.tasks_from_fixture(fixture)]


def maml_results(module, fixture: dict, extended: bool) -> dict[str, Callable[[], dict]]:
    """What ``module``'s MAML computes on the fixture, as groups of results computed on demand.

    Each group is a function returning {key: array, or None for a gradient that does not exist}:
        inner         inner/phi/<name>, inner/accuracies: inner_loop on task 0 (first order, train=True)
        first_order   outer/loss, outer/accuracies_support, outer/accuracy_query: outer_loop on all
                      tasks (first order, train=True); grad_fo/<name>: d outer/loss / d theta;
                      outer/same_variables: 1.0 if the model still holds its tf.Variables afterwards
        second_order  grad_so/<name>: the same with first_order=False
      extended, also:
        grad_lr_fo/<name>, grad_lr_so/<name> (in first_order, second_order): d outer/loss / d inner_lrs[name]
        evaluation    grad_eval/<name>: d outer loss / d theta of outer_loop(train=False) with
                      first_order=False (inner gradients stopped in evaluation: equal to grad_fo)
    """
    import tensorflow as tf

    tasks = _tensors(fixture)

    def inner():
        model = compare.maml_from_fixture(module, fixture, first_order=True)
        phi, accuracies = model.inner_loop(tasks[0][0], tasks[0][1], train=True)
        return {**{f"inner/phi/{name}": value.numpy() for name, value in phi.items()},
                "inner/accuracies": np.asarray(accuracies, np.float64)}

    def gradients(first_order: bool, train: bool, prefix: str, lr_prefix: str | None):
        model = compare.maml_from_fixture(module, fixture, first_order=first_order)
        variables = {f"{prefix}/{name}": v for name, v in model.meta_parameters.items()}
        if lr_prefix:
            variables.update({f"{lr_prefix}/{name}": v for name, v in model.inner_lrs.items()})
        built = dict(model.meta_parameters)
        with tf.GradientTape() as tape:
            tape.watch(list(variables.values()))
            outputs = model.outer_loop(tasks, train=train)
        found = tape.gradient(outputs[0], variables)
        return outputs, {key: None if g is None else g.numpy() for key, g in found.items()}, \
            compare.same_variables(model, built)

    def first_order():
        (loss, accuracies_support, accuracy_query), found, same = gradients(
            True, True, "grad_fo", "grad_lr_fo" if extended else None)
        return {"outer/loss": np.array(float(loss)),
                "outer/accuracies_support": np.asarray(accuracies_support, np.float64),
                "outer/accuracy_query": np.array(float(accuracy_query)),
                "outer/same_variables": np.array(same), **found}

    groups = {"inner": inner, "first_order": first_order,
              "second_order": lambda: gradients(False, True, "grad_so", "grad_lr_so" if extended else None)[1]}
    if extended:
        groups["evaluation"] = lambda: gradients(False, False, "grad_eval", None)[1]
    return groups


def transfer_results(module, fixture: dict) -> dict[str, Callable[[], dict]]:
    """``transfer_learn`` of ``module`` on the fixture's tasks, in float64, as groups of results computed on demand.

    Groups:
        head      head/w4, head/b4: the head adapted on the support set (with query set 0);
                  accuracy_query: (T,) its query accuracy on each query set
        one_step  head_one_step/w4, head_one_step/b4: the head after one step (num_steps=1), which shows the
                  step's direction and size apart from what later steps do
    """
    import tensorflow as tf

    names = compare.parameter_names(fixture, "frozen/")
    tasks = _tensors(fixture)

    def run(task, num_steps):
        frozen = {name: tf.constant(fixture[f"frozen/{name}"]) for name in names}
        return module.transfer_learn(frozen, list(task), int(fixture["num_way"]), num_steps=num_steps,
                                     learning_rate=float(fixture["learning_rate"]))

    def head():
        results = [run(task, int(fixture["num_steps"])) for task in tasks]
        return {**{f"head/{name}": value.numpy() for name, value in results[0][1].items()},
                "accuracy_query": np.array([float(accuracy) for accuracy, _ in results])}

    def one_step():
        return {f"head_one_step/{name}": value.numpy() for name, value in run(tasks[0], 1)[1].items()}

    return {"head": head, "one_step": one_step}


def quantities(results: dict) -> dict[str, dict]:
    """Results grouped by quantity (``grader.feedback``'s names): "grad_fo/w4" -> quantity "grad_fo"."""
    grouped: dict[str, dict] = {}
    for key, value in results.items():
        quantity = next((q for q in feedback.DICT_QUANTITIES if key.startswith(q + "/")), key)
        grouped.setdefault(quantity, {})[key] = value
    return grouped


def _start(quantity: str, fixture: dict) -> dict | None:
    """What a quantity's difference is measured against, as the checks do: phi's change from theta."""
    if quantity == "inner/phi":
        return {f"inner/phi/{name}": fixture[f"theta/{name}"] for name in compare.parameter_names(fixture)}
    return None


def mistake_results(fixture: dict, file: str, groups_of: Callable) -> tuple[dict[str, np.ndarray], dict]:
    """Sketches (``grader.feedback.sketch``) of every mistake's results that differ from the fixture's.

    Args:
        fixture: inputs and the reference's results.
        file: "maml.py" or "maml_transfer.py".
        groups_of: module -> groups of results (``maml_results`` or ``transfer_results``).

    Returns:
        ({"mistake/<key>/<quantity>": sketch}, {key: {quantity: relative difference, or why there is none}}).
    """
    return result_sketches(fixture, "mistake", ((mistake.key, groups_of(mistakes.load_mutant(mistake)))
                                                for mistake in mistakes.by_file(file)))


def result_sketches(fixture: dict, kind: str, sources) -> tuple[dict[str, np.ndarray], dict]:
    """``mistake_results`` of any sources of results: ``kind`` "mistake" or "variant", ``sources`` (key, groups)."""
    stored, table = {}, {}
    for key, groups in sources:
        row = table[key] = {}
        for group, compute in groups.items():
            try:
                results = compute()
            except Exception as error:  # noqa: BLE001 - a mistake that raises has no numbers here
                row[group] = type(error).__name__
                continue
            for quantity, values in quantities(results).items():
                if any(value is None for value in values.values()):
                    row[quantity] = "None"
                elif any(np.shape(value) != np.shape(fixture[key]) for key, value in values.items()):
                    row[quantity] = "shape"
                else:
                    expected = {key: fixture[key] for key in values}
                    start = _start(quantity, fixture)
                    scale = feedback.flatten(expected) - (feedback.flatten(start) if start else 0.0)
                    row[quantity] = compare.relative_error(feedback.flatten(values), feedback.flatten(expected),
                                                           scale)
                    if row[quantity] > DISTINCT:
                        stored[f"{kind}/{key}/{quantity}"] = feedback.sketch(values)
    return stored, table


def input_variants(fixture: dict) -> dict[str, dict]:
    """The structural variants that change an input of a maml fixture: key -> the changed fixture.

    ``steps_<k>``: k inner steps (0 to num_inner_steps + 1) instead of num_inner_steps;
    ``inner_lr_x<c>``: every inner learning rate times c (a flipped sign, doubled, halved, summed over
    the support examples); ``inner_lr_squared``, ``inner_lr_one``: the rate squared, or 1 (missing).
    What each shows: ``grader.diagnoses``; the variants that change the code: ``mistakes.VARIANTS``.
    """
    steps = int(fixture["num_inner_steps"])
    support = int(np.shape(fixture["labels_support"])[1])
    rates = {key: value for key, value in fixture.items() if key.startswith("inner_lr/")}
    found = {f"{diagnoses.STEP_VARIANT}{k}": {**fixture, "num_inner_steps": np.array(k)}
             for k in range(steps + 2) if k != steps}
    for c in (-1.0, 2.0, 0.5, float(support)):
        found[diagnoses.scale_variant(c)] = {**fixture, **{key: c * value for key, value in rates.items()}}
    found["inner_lr_squared"] = {**fixture, **{key: value * value for key, value in rates.items()}}
    found["inner_lr_one"] = {**fixture, **{key: np.ones_like(value) for key, value in rates.items()}}
    return found


def variant_results(fixture: dict, extended: bool) -> tuple[dict[str, np.ndarray], dict]:
    """Sketches of the structural variants' results on a maml fixture (``variant/<key>/<quantity>``)."""
    import maml

    sources = [(key, maml_results(maml, changed, extended)) for key, changed in input_variants(fixture).items()]
    sources += [(variant.key, maml_results(mistakes.load_mutant(variant), fixture, extended))
                for variant in mistakes.VARIANTS]
    return result_sketches(fixture, "variant", sources)


# ------------------------------------------------------------------ fixtures


def maml_fixture(setting: MamlSetting = PUBLIC_MAML) -> tuple[dict[str, np.ndarray], dict]:
    """A maml fixture (inputs, reference results, mistakes) and the mistakes' differences."""
    import maml

    fixture = maml_inputs(setting)
    for compute in maml_results(maml, fixture, setting.extended).values():
        fixture.update(compute())
    stored, table = mistake_results(fixture, "maml.py", lambda module: maml_results(module, fixture, setting.extended))
    variants, variant_table = variant_results(fixture, setting.extended)
    return {**fixture, **stored, **variants}, {**table, **{f"variant {k}": row for k, row in variant_table.items()}}


def transfer_fixture(name: str, setting: TransferSetting, pretrain: bool = False
                     ) -> tuple[dict[str, np.ndarray], dict]:
    """``transfer_learn`` on pre-trained features (``transfer_inputs``): reference in float64 (the tests run
    float32 on the same float32 features), and the known mistakes."""
    import maml_transfer

    fixture = transfer_inputs(name, setting, pretrain)
    for compute in transfer_results(maml_transfer, fixture).values():
        fixture.update(compute())
    stored, table = mistake_results(fixture, "maml_transfer.py", lambda module: transfer_results(module, fixture))
    return {**fixture, **stored}, table


def mamlpp_fixture(source: dict[str, np.ndarray], setting: MamlppSetting) -> dict[str, np.ndarray]:
    """An extra-credit fixture: MAMLPlusPlus on the tasks and theta of a maml fixture, every technique on.

    Inputs beyond the maml fixture's are ``mamlpp/<...>``: the schedules' settings and the iterations
    they are read at, the iteration the outer loop is computed at, an input for batch_norm_step, and
    random initial values for every per-step variable (learning rates, BN weights and running
    statistics), so that one used in the wrong place shows. Results: see
    ``grader.probes_mamlpp.mamlpp_results`` (the checks' probe, run here on the reference).
    """
    import maml
    from grader import probes_mamlpp

    fixture = {key: value for key, value in compare.inputs(source).items() if key in source}
    fixture.update({"mamlpp/msl_iterations": np.array(setting.msl_iterations),
                    "mamlpp/da_iterations": np.array(setting.da_iterations),
                    "mamlpp/cosine_iterations": np.array(setting.cosine_iterations),
                    "mamlpp/min_outer_lr": np.array(setting.min_outer_lr),
                    "mamlpp/iteration": np.array(setting.iteration),
                    "mamlpp/schedule_iterations": np.array(setting.schedule_iterations)})
    rng = np.random.default_rng(setting.seed)
    filters = fixture["theta/b0"].shape[0]
    fixture["mamlpp/bn_input"] = rng.normal(0.0, 1.0, (4, 7, 7, filters))
    model = probes_mamlpp.mamlpp_model(maml, fixture, **probes_mamlpp.MAMLPP_TECHNIQUES)
    for name in model.inner_lrs:
        fixture[f"mamlpp/lr/{name}"] = np.array(rng.uniform(0.2, 0.5))
    for name, variable in {**model.bn_weights, **model.bn_stats}.items():
        kind = re.match(r"[a-z]+", name).group()  # gamma, beta, mean, variance
        value = {"gamma": rng.normal(1.0, 0.1, variable.shape), "beta": rng.normal(0.0, 0.1, variable.shape),
                 "mean": rng.normal(0.0, 0.1, variable.shape),
                 "variance": rng.uniform(0.5, 1.5, variable.shape)}[kind]
        fixture[f"mamlpp/bn/{name}"] = value
    for group, results in probes_mamlpp.mamlpp_results(maml, fixture).items():
        if "failure" in results:
            raise RuntimeError(f"the reference MAMLPlusPlus failed in {group}: {results['failure']['message']}")
        fixture.update({key: np.asarray(value) for key, value in results.items()})
    return fixture


def reference_fixture() -> dict[str, np.ndarray]:
    """What the hidden tests need of the reference before student code runs (``reference.facts``), and the
    conv-4 features the transfer training check adapts heads on: untrained, and after
    ``reference.PRETRAIN_STEPS`` minibatches of the reference's pre-training (15 s on 2 cores, once, here,
    instead of in every grading)."""
    from instructor.autograder.tests import reference

    fixture = {"facts": np.array(json.dumps(reference.facts(), sort_keys=True))}
    for steps in (0, reference.PRETRAIN_STEPS):
        fixture.update({f"pretrained_{steps}/{name}": value
                        for name, value in reference.pretrained_features(steps).items()})
    return fixture


def fixture_path(name: str) -> Path:
    return (HIDDEN_FIXTURES if name.endswith("_hidden") else compare.FIXTURES) / f"{name}.npz"


def all_fixtures(tables: dict | None = None, pretrain: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Every fixture, name -> arrays; part 2's only once maml_transfer.py exists.

    Args:
        tables: if given, filled with name -> the mistakes' differences (for the summary).
        pretrain: pre-train the transfer fixtures' features again (``pretrained_frozen``).
    """
    tables = {} if tables is None else tables
    fixtures = {}
    maml_twin, transfer_twin, mamlpp_twin = (compare.twin_name(name) for name in ("maml", "transfer", "mamlpp"))
    for name, setting in (("maml", PUBLIC_MAML), (maml_twin, PUBLIC_MAML_TWIN), ("maml_hidden", HIDDEN_MAML)):
        fixtures[name], tables[name] = maml_fixture(setting)
    if (ROOT / "maml_transfer.py").is_file():
        for name, setting in (("transfer", PUBLIC_TRANSFER), (transfer_twin, PUBLIC_TRANSFER_TWIN),
                              ("transfer_hidden", HIDDEN_TRANSFER)):
            fixtures[name], tables[name] = transfer_fixture(name, setting, pretrain)
    else:
        print(f"transfer fixtures skipped: {ROOT / 'maml_transfer.py'} does not exist yet")
    for name, source, setting in (("mamlpp", "maml", PUBLIC_MAMLPP), (mamlpp_twin, maml_twin, PUBLIC_MAMLPP_TWIN),
                                  ("mamlpp_hidden", "maml_hidden", HIDDEN_MAMLPP)):
        fixtures[name] = mamlpp_fixture(fixtures[source], setting)
    if (ROOT / "maml_transfer.py").is_file():
        fixtures["reference_hidden"] = reference_fixture()
    return fixtures


def load(name: str) -> dict[str, np.ndarray]:
    with np.load(fixture_path(name)) as stored:
        return {key: stored[key] for key in stored.files}


def differences(name: str, fresh: dict[str, np.ndarray]) -> list[str]:
    """How the stored fixture ``name`` differs from ``fresh`` (empty: it is current)."""
    path = fixture_path(name)
    if not path.is_file():
        return [f"{path} is missing"]
    stored = load(name)
    problems = []
    if sorted(stored) != sorted(fresh):
        problems.append(f"{name}: keys differ: only stored {sorted(set(stored) - set(fresh))}, "
                        f"only fresh {sorted(set(fresh) - set(stored))}")
    for key in sorted(set(stored) & set(fresh)):
        a, b = stored[key], fresh[key]
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"{name}/{key}: stored {a.dtype}{a.shape}, fresh {b.dtype}{b.shape}")
        elif key.startswith("pretrained_"):
            # 200 float32 Adam steps: another thread schedule ends up to ~0.04 away, so these are checked for
            # what they are for instead (tests/test_release.py: the reference's transfer accuracy on them)
            continue
        elif a.dtype.kind in "USO":
            if not np.array_equal(a, b):
                problems.append(f"{name}/{key}: stored {a}, fresh {b}")
        elif compare.relative_error(a.astype(np.float64), b.astype(np.float64), b) > COMPARE_RTOL:
            problems.append(f"{name}/{key}: max difference {np.max(np.abs(a - b)):.3g}")
    return problems


def summary(tables: dict[str, dict]) -> str:
    """Per fixture and mistake: the results it changes and by how much (relative), i.e. the margins."""
    lines = []
    for name, table in tables.items():
        smallest = min((v for row in table.values() for v in row.values()
                        if isinstance(v, float) and v > DISTINCT), default=float("nan"))
        lines.append(f"{name}: mistakes vs reference, relative difference of each result it changes "
                     f"(smallest {smallest:.2g}; checks' tolerance 1e-6)")
        for key, row in table.items():
            changed = [f"{q} {v:.2g}" for q, v in row.items() if isinstance(v, float) and v > DISTINCT]
            other = [f"{q} {v}" for q, v in row.items() if not isinstance(v, float)]
            lines.append(f"  {key:<34} " + ", ".join(changed + other))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the stored fixtures, write nothing")
    p.add_argument("--summary", action="store_true", help="print how far each mistake is from the reference")
    p.add_argument("--pretrain", action="store_true",
                   help="pre-train the transfer fixtures' features again instead of reusing the stored ones")
    args = p.parse_args(argv)
    status = 0
    tables: dict = {}
    for name, fresh in all_fixtures(tables, args.pretrain).items():
        path = fixture_path(name)
        if args.check:
            problems = differences(name, fresh)
            print(f"{path}: " + ("current" if not problems else "STALE\n  " + "\n  ".join(problems)))
            status |= bool(problems)
        else:
            content = npz_bytes(fresh)
            write_atomic(path, content)
            print(f"wrote {path} ({len(content) / 1024:.1f} KiB, {len(fresh)} arrays)")
    if args.summary:
        print(summary(tables))
    return status


if __name__ == "__main__":
    sys.exit(main())
