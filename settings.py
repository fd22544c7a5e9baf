"""The settings of both training programs, each defined once: default, allowed range and help.

Provided; you do not need to change anything here. Every hyper-parameter of
``python maml.py`` (``MAMLSettings``) and of ``python maml_transfer.py pretrain``
(``PretrainSettings``) is one field of a frozen dataclass. From these fields
come the command-line flags (``add_arguments``), the ``hparams.json`` record of
a run (``dataclasses.asdict``), the check that ``--resume`` continues the same
run (``changed``), the hint that resumes an interrupted run (``cli_flags``),
the run folder's default name, the keyword arguments of the models
(``model_arguments``), the submit checklist's assignment settings and the
ranges the grader accepts from a submitted run (``allowed_ranges``).

This module imports neither TensorFlow nor numpy: the grader reads it without
loading a framework.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

# hparams key -> the paper's name of the MAML++ technique it switches on (the extra credit)
MAMLPP_TECHNIQUES = {
    "multi_step_loss": "MSL",
    "per_step_inner_lrs": "LSLR",
    "per_step_bn_stats": "BNRS",
    "per_step_bn_weights": "BNWB",
    "derivative_annealing": "DA",
    "cosine_outer_lr": "CA",
}
MAMLPP_SETTINGS = ("msl_iterations", "da_iterations", "min_outer_lr")
MAMLPP_GROUP = "extra credit: MAML++ (Antoniou et al., ICLR 2019); all off = plain MAML"
_TYPES = {"int": int, "float": float, "bool": bool}


def setting(default: Any, help: str, *, allowed: tuple[float, float] | None = None,
            model: bool = False) -> Any:
    """A dataclass field with its help text.

    Args:
        default: the assignment's value.
        help: the flag's help text.
        allowed: (low, high), the values the grader accepts from a submitted run.
        model: the field is a keyword argument of ``maml.MAML`` (``model_arguments``).
    """
    return field(default=default, metadata={"help": help, "allowed": allowed, "model": model})


@dataclass(frozen=True)
class MAMLSettings:
    """Hyper-parameters of ``python maml.py``, in the order ``hparams.json`` records them."""

    num_way: int = setting(5, "N, classes per task", model=True)
    num_support: int = setting(5, "K, support examples per class")
    num_query: int = setting(15, "Q, query examples per class")
    num_inner_steps: int = setting(5, "inner-loop gradient steps", allowed=(0, 20), model=True)
    inner_lr: float = setting(0.4, "inner-loop learning rate", allowed=(1e-6, 10.0), model=True)
    learn_inner_lrs: bool = setting(False, "meta-learn per-parameter inner lrs", allowed=(0, 1), model=True)
    outer_lr: float = setting(1e-3, "Adam learning rate of the outer step", model=True)
    first_order: bool = setting(True, "first-order MAML", allowed=(0, 1), model=True)
    meta_batch_size: int = setting(8, "tasks per outer step")
    num_iterations: int = setting(1000, "outer steps")
    val_interval: int = setting(20, "validate every this many steps")
    num_val_tasks: int = setting(100, "fixed validation tasks")
    seed: int = setting(0, "seed of initialisation and training tasks", model=True)
    augment_rotations: bool = setting(False, "add 90/180/270-degree rotations of train characters as new classes")
    # extra credit: MAML++ (MAMLPP_TECHNIQUES, then MAMLPP_SETTINGS)
    multi_step_loss: bool = setting(
        False, "MSL: query loss after every inner step, importance annealed to the last step", allowed=(0, 1))
    per_step_inner_lrs: bool = setting(
        False, "LSLR: learn one inner lr per parameter tensor and inner step", allowed=(0, 1))
    per_step_bn_stats: bool = setting(
        False, "BNRS: track running BN statistics per inner step (saved; not used to normalise)", allowed=(0, 1))
    per_step_bn_weights: bool = setting(
        False, "BNWB: meta-learned BN scale and shift per inner step", allowed=(0, 1))
    derivative_annealing: bool = setting(
        False, "DA: first order before --da-iterations, second order after (implies --second-order)",
        allowed=(0, 1))
    cosine_outer_lr: bool = setting(
        False, "CA: outer lr from --outer-lr down to --min-outer-lr over --num-iterations (cosine)",
        allowed=(0, 1))
    msl_iterations: int = setting(
        100, "MSL: iterations of annealing; after them only the last step's loss", allowed=(1, 100000))
    da_iterations: int = setting(200, "DA: first-order iterations", allowed=(0, 100000))
    min_outer_lr: float = setting(1e-5, "CA: final outer lr", allowed=(0.0, 1.0))


@dataclass(frozen=True)
class PretrainSettings:
    """Hyper-parameters of ``python maml_transfer.py pretrain``, in ``hparams.json``'s order."""

    batch_size: int = setting(128, "images per minibatch")
    learning_rate: float = setting(1e-3, "Adam learning rate")
    num_epochs: float = setting(10, "passes over the 22000 train drawings (fractions allowed)")
    val_interval: int = setting(100, "validate every this many steps")
    num_val_tasks: int = setting(100, "fixed validation tasks")
    num_way: int = setting(5, "N of the validation tasks")
    num_support: int = setting(5, "K of the validation tasks")
    num_query: int = setting(15, "Q of the validation tasks")
    transfer_steps: int = setting(100, "gradient steps on the new head", allowed=(1, 1000))
    transfer_lr: float = setting(0.03, "learning rate of the head", allowed=(1e-6, 10.0))
    seed: int = setting(0, "seed of initialisation and minibatch order")


Settings = MAMLSettings | PretrainSettings
ASSIGNMENT = MAMLSettings()  # the assignment's settings: every default


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, settings: type[Settings], names: list[str] | None = None,
                  defaults: Settings | None = None) -> None:
    """Adds one flag per field of ``settings`` (or per name in ``names``) to ``parser``.

    Booleans off by default become ``--name`` switches; ``first_order`` becomes the pair
    ``--first-order`` / ``--second-order``.
    """
    defaults = defaults or settings()
    for f in dataclasses.fields(settings):
        if names is not None and f.name not in names:
            continue
        default, help = getattr(defaults, f.name), f.metadata["help"]
        if f.name == "first_order":
            order = parser.add_mutually_exclusive_group()
            order.add_argument("--first-order", dest="first_order", action="store_true", default=default,
                               help=help)
            order.add_argument("--second-order", dest="first_order", action="store_false",
                               help="full MAML, differentiating through the inner loop")
        elif _TYPES[f.type] is bool:
            parser.add_argument(_flag(f.name), action="store_true", default=default, help=help)
        else:
            parser.add_argument(_flag(f.name), type=_TYPES[f.type], default=default, help=help)


def from_args(settings: type[Settings], args: argparse.Namespace) -> Settings:
    """The settings object of parsed command-line arguments."""
    return settings(**{f.name: getattr(args, f.name) for f in dataclasses.fields(settings)})


def record(values: Settings) -> dict:
    """The ``hparams`` record of a run (``hparams.json``), key order as the fields'."""
    return dataclasses.asdict(values)


def changed(stored: dict, now: dict, may_change: str) -> dict[str, tuple[Any, Any]]:
    """Settings that differ between a stored run and this one: key -> (stored, now).

    ``may_change`` (the run's length) may differ: ``--resume`` can extend a run.
    """
    return {k: (stored.get(k), v) for k, v in now.items() if k != may_change and stored.get(k) != v}


def cli_flags(values: Settings) -> list[str]:
    """Command-line flags that reproduce ``values``: those that differ from the defaults."""
    flags = []
    for f in dataclasses.fields(values):
        value = getattr(values, f.name)
        if value == f.default:
            continue
        if f.name == "first_order":
            flags.append("--first-order" if value else "--second-order")
        elif isinstance(value, bool):
            flags.append(_flag(f.name))
        else:
            flags.append(f"{_flag(f.name)} {value}")
    return flags


def allowed_ranges(settings: type[Settings], names: Sequence[str]) -> dict[str, tuple[type, float, float]]:
    """name -> (type, low, high): the values of each setting that the grader accepts from a submitted run."""
    by_name = {f.name: f for f in dataclasses.fields(settings)}
    return {name: (_TYPES[by_name[name].type], *by_name[name].metadata["allowed"]) for name in names}


# ------------------------------------------------------------------- maml.py


def model_arguments(hp: dict) -> dict:
    """The keyword arguments of ``maml.MAML`` in a hyper-parameter record."""
    return {f.name: hp[f.name] for f in dataclasses.fields(MAMLSettings) if f.metadata["model"]}


def mamlpp_techniques(hp: dict) -> list[str]:
    """Names (MSL, LSLR, ...) of the MAML++ techniques that ``hp`` switches on."""
    return [short for key, short in MAMLPP_TECHNIQUES.items() if hp.get(key)]


def mamlpp_arguments(hp: dict) -> dict:
    """The keyword arguments of ``maml.MAMLPlusPlus`` beyond MAML's (the cosine runs the whole run)."""
    return {**{key: hp[key] for key in (*MAMLPP_TECHNIQUES, *MAMLPP_SETTINGS)},
            "cosine_iterations": hp["num_iterations"]}


def check_mamlpp(hp: dict) -> None:
    """Raises ValueError, saying what to change, for settings MAML++ cannot run with.

    Args:
        hp: MAMLPlusPlus's arguments by name (the hparams keys), with
            ``cosine_iterations`` for the length of the cosine schedule.
    """
    problems = []
    if hp["multi_step_loss"] and hp["num_inner_steps"] < 1:
        problems.append("the multi-step loss needs num_inner_steps >= 1")
    if hp["multi_step_loss"] and hp["msl_iterations"] < 1:
        problems.append(f"msl_iterations must be >= 1, got {hp['msl_iterations']}")
    if hp["per_step_inner_lrs"] and hp["learn_inner_lrs"]:
        problems.append("per_step_inner_lrs already learns the inner learning rates "
                        "(one per parameter and step): drop learn_inner_lrs")
    if hp["derivative_annealing"] and hp["first_order"]:
        problems.append("derivative annealing ends in second order: set first_order=False (--second-order)")
    if hp["derivative_annealing"] and hp["da_iterations"] < 0:
        problems.append(f"da_iterations must be >= 0, got {hp['da_iterations']}")
    if hp["cosine_outer_lr"] and hp["cosine_iterations"] < 1:
        problems.append(f"the cosine schedule needs >= 1 iteration, got {hp['cosine_iterations']}")
    if hp["cosine_outer_lr"] and not 0 <= hp["min_outer_lr"] <= hp["outer_lr"]:
        problems.append(f"min_outer_lr must be in [0, outer_lr={hp['outer_lr']}], got {hp['min_outer_lr']}")
    if problems:
        raise ValueError("MAML++ settings: " + "; ".join(problems) + ".")


def add_maml_arguments(parser: argparse.ArgumentParser, mamlpp: bool = False) -> None:
    """The flags of ``MAMLSettings`` without MAML++'s, or (``mamlpp``) MAML++'s and ``--mamlpp`` in their group."""
    extra = (*MAMLPP_TECHNIQUES, *MAMLPP_SETTINGS)
    if mamlpp:
        parser = parser.add_argument_group(MAMLPP_GROUP)
        parser.add_argument("--mamlpp", action="store_true", help="switch on all six techniques below")
    add_arguments(parser, MAMLSettings, [f.name for f in dataclasses.fields(MAMLSettings)
                                         if (f.name in extra) == mamlpp])


def finish_maml_args(args: argparse.Namespace) -> MAMLSettings:
    """The settings of parsed ``maml.py`` flags: expands --mamlpp, DA implies second order; checks MAML++.

    Raises:
        SystemExit: the MAML++ settings cannot run together (the message says why).
    """
    if args.mamlpp:
        for key in MAMLPP_TECHNIQUES:
            setattr(args, key, True)
    if args.derivative_annealing:
        args.first_order = False
    values = from_args(MAMLSettings, args)
    if mamlpp_techniques(record(values)):
        try:
            check_mamlpp({**record(values), "cosine_iterations": values.num_iterations})
        except ValueError as error:
            raise SystemExit(str(error)) from None
    return values


def default_log_dir(values: MAMLSettings) -> str:
    """The run folder of ``python maml.py`` without --log-dir: runs/<algorithm>_<setting>."""
    order = "fomaml" if values.first_order else "maml"
    if mamlpp_techniques(record(values)):  # extra credit
        order = "mamlpp"
    return (f"runs/{order}_{values.num_way}way_{values.num_support}shot_{values.num_inner_steps}steps"
            f"_lr{values.inner_lr:g}{'_learnlr' if values.learn_inner_lrs else ''}_seed{values.seed}")


def default_pretrain_dir(values: PretrainSettings) -> str:
    """The run folder of ``python maml_transfer.py pretrain`` without --log-dir."""
    return (f"runs/transfer_bs{values.batch_size}_lr{values.learning_rate:g}_ep{values.num_epochs:g}"
            f"_seed{values.seed}")
