"""Re-evaluates submitted weights with the student's code: the child process of ``python -m grader submit``.

    python -m grader.recheck --json OUT KIND=RUN_FOLDER [KIND=RUN_FOLDER ...]

KIND is ``fomaml``, ``mamlpp`` (a ``maml.py`` run) or ``transfer`` (a
``maml_transfer.py pretrain`` run). For each run it loads ``weights.npz`` into
the model its ``hparams.json`` describes and measures the query accuracy after
adaptation on the same fixed validation tasks the training program validated
on (``training.VAL_SEED``, the run's N, K, Q and number of tasks), so the result
can be compared with the last row of its ``history.csv``.

It imports ``maml`` and ``maml_transfer`` from the handout folder (the code
being submitted), so it runs in its own process: whatever that code does
(an exception, ``sys.exit``, a crash), the parent reads only the JSON written
here: {"imports": {module: error or null}, "runs": {KIND=RUN: {"accuracy",
"ci95", "num_tasks"} or {"error"}}}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from grader.files import ROOT

MODULES = ("maml", "maml_transfer")


def describe(error: BaseException) -> str:
    """One line: the exception and the innermost line of the student's code it came from."""
    if isinstance(error, SystemExit) and isinstance(error.code, str):
        return error.code.strip().splitlines()[0] if error.code.strip() else "SystemExit"
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename)
        if path.parent == ROOT:
            where = f" ({path.name} line {frame.lineno})"
            break
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, NotImplementedError):
        return f"not implemented yet{where}: {text}"
    return f"{type(error).__name__}: {text}{where}"


def evaluate(kind: str, folder: Path, modules: dict) -> dict:
    import numpy as np

    maml, transfer = modules["maml"], modules.get("maml_transfer")
    import load_data
    import training
    from scaffold import mean_and_ci95

    hp = json.loads((folder / "hparams.json").read_text(encoding="utf-8"))["hparams"]
    data = load_data.load_omniglot(progress=False)
    sampler = load_data.TaskSampler(data, "val", hp["num_way"], hp["num_support"], hp["num_query"],
                                    seed=training.VAL_SEED)
    tasks = [sampler.task(i) for i in range(hp["num_val_tasks"])]
    if kind == "transfer":
        if transfer is None:
            raise RuntimeError("maml_transfer.py does not import")
        frozen = transfer.load_features(folder / "weights.npz")
        _, query = transfer.TransferEvaluator(hp["num_way"], hp["transfer_steps"], hp["transfer_lr"])(frozen, tasks)
    else:
        model = maml.build_maml(hp)
        model.load_weights(folder / "weights.npz")
        _, query = model.evaluate(tasks, chunk_size=hp["meta_batch_size"])
    mean, ci = mean_and_ci95(np.asarray(query))
    return {"accuracy": mean, "ci95": ci, "num_tasks": len(tasks)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, required=True, help="where the results go")
    p.add_argument("runs", nargs="*", help="KIND=RUN_FOLDER")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))
    out = {"imports": {}, "runs": {}}
    modules = {}
    for name in MODULES:
        try:
            modules[name] = __import__(name)
            out["imports"][name] = None
        except (Exception, SystemExit) as error:  # noqa: BLE001 - any failure of student code is a result
            out["imports"][name] = describe(error)
    if "maml" in modules:
        try:
            import training

            training.configure_threads(1, 0)
        except Exception:  # noqa: BLE001 - threads are an optimisation
            pass
    for spec in args.runs:
        kind, _, folder = spec.partition("=")
        if "maml" not in modules:
            out["runs"][spec] = {"error": "not evaluated: maml.py does not import"}
            continue
        try:
            out["runs"][spec] = evaluate(kind, Path(folder), modules)
        except (Exception, SystemExit) as error:  # noqa: BLE001
            out["runs"][spec] = {"error": describe(error)}
    from load_data import atomic_output

    with atomic_output(args.json) as tmp:
        tmp.write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
