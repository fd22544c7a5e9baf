"""Your report (report.md): its generated parts are filled from your runs' own records.

    python -m grader report --fomaml runs/<FO-MAML run> --transfer runs/<pre-training run>
    python -m grader report --mamlpp runs/<plain MAML run> runs/<MAML++ run>   # extra credit
    python -m grader report                                                 # refresh from results/

What it does, in the handout folder:

1. copies the records of each run given (``hparams.json``, ``history.csv``,
   ``val_accuracy.png``, ``weights.npz``, test results, the transfer
   comparison) into ``results/<kind>/``, the layout of the submission zip, so
   the report's image links work here and in the zip alike;
2. creates ``report.md`` from ``report_template.md`` if it does not exist yet;
3. rewrites the *generated* parts of ``report.md`` (between
   ``<!-- BEGIN GENERATED key ... -->`` and ``<!-- END GENERATED key ... -->``)
   from ``results/``: hyper-parameter tables, final accuracies with 95 %
   confidence intervals, test results, plot paths. Everything else in the
   report is the student's and is never changed. Each END line records a
   digest of what was generated, so a generated part that was edited by hand
   is noticed and not overwritten (``--overwrite`` discards such edits).

Placeholders: ``[[ANSWER: ...]]`` is text the student writes (``[[ANSWER (extra
credit): ...]]`` only when MAML++ runs are included), ``[[GENERATED: ...]]`` a
part no run has filled yet. ``python -m grader submit`` refuses a report that
still holds one (``unfilled``).

Every file is written atomically; nothing here imports TensorFlow or the
student's code.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import load_data
import settings  # the handout's settings.py (no TensorFlow): the MAML++ settings' names
from grader import submission
from grader.files import ROOT, sha256
from load_data import atomic_output

REPORT = submission.REPORT
TEMPLATE = "report_template.md"
RESULTS = "results"
BLOCKS = ("student", "fomaml", "transfer", "mamlpp")
RUN_FILES = submission.RUN_FILES
OPTIONAL_FILES = {  # kind -> glob patterns copied when present
    "fomaml": ("test_results_*way_*shot.json",),
    "transfer": ("test_results_*way_*shot.json", "comparison.json", "comparison.md",
                 "comparison_val_accuracy.png", "sweep_*way_*shot.json", "sweep_*way_*shot.md"),
    "mamlpp": ("test_results_*way_*shot.json",),
}

_BLOCK = re.compile(r"^<!-- BEGIN GENERATED (?P<key>[a-z]+)\b[^\n]*?-->\n(?P<body>.*?)\n?"
                    r"^<!-- END GENERATED (?P=key)(?: digest=(?P<digest>[0-9a-f]+))? -->$", re.M | re.S)
_BEGIN = re.compile(r"^<!-- BEGIN GENERATED (?P<key>[a-z]+)\b", re.M)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
PLACEHOLDER = re.compile(r"\[\[(?P<kind>ANSWER(?P<extra> \(extra credit\))?|GENERATED):\s*(?P<prompt>.*?)\]\]", re.S)


class ReportError(ValueError):
    """The report or a run cannot be used; the message says what to do."""


# ---------------------------------------------------------------- run records


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of a history.csv (maml.py or maml_transfer.py pretrain) as dicts of floats."""
    with open(path, newline="", encoding="utf-8") as f:
        return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(f)]


def read_hparams(path: Path) -> dict:
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or not isinstance(record.get("hparams"), dict):
        raise ValueError("no 'hparams' object")
    return record


def techniques(hp: dict) -> list[str]:
    """MAML++ techniques (MSL, LSLR, ...) switched on in a maml.py run's hyper-parameters."""
    return settings.mamlpp_techniques(hp)


def _check_run(kind: str, run: Path) -> None:
    """ReportError unless ``run`` is a finished run folder of the right program."""
    program = "python maml_transfer.py pretrain" if kind == "transfer" else "python maml.py"
    if not run.is_dir():
        raise ReportError(f"{run} is not a folder: pass the run folder (--log-dir) of `{program}`.")
    missing = [name for name in RUN_FILES if not (run / name).is_file()]
    if missing == ["weights.npz"]:
        raise ReportError(f"{run} has no weights.npz: its training did not finish. Continue it with "
                          f"`{program} --log-dir {run} --resume` (plus its settings), then run this again.")
    if missing:
        raise ReportError(f"{run} lacks {', '.join(missing)}: is it a run folder of `{program}`?")
    try:
        hp = read_hparams(run / "hparams.json")["hparams"]
        if not read_history(run / "history.csv"):
            raise ValueError("no rows")
    except (ValueError, KeyError, OSError) as error:
        raise ReportError(f"{run}: cannot read its hparams.json or history.csv ({error}).") from None
    is_transfer = "transfer_steps" in hp
    if (kind == "transfer") != is_transfer:
        what = "a pre-training run (maml_transfer.py pretrain)" if is_transfer else "a maml.py run"
        raise ReportError(f"{run} is {what}; --{kind} needs a run folder of `{program}`.")
    if kind == "fomaml" and techniques(hp):
        raise ReportError(f"{run} is a MAML++ run ({'+'.join(techniques(hp))}): pass it with --mamlpp; "
                          f"--fomaml needs your plain FO-MAML run.")


def _run_files(kind: str, run: Path) -> list[Path]:
    found = [run / name for name in RUN_FILES]
    for pattern in OPTIONAL_FILES[kind]:
        found += sorted(p for p in run.glob(pattern) if p.is_file())
    return found


def mamlpp_run_names(runs: list[Path]) -> list[str]:
    """results/mamlpp/ folder names: maml_seed0, mamlpp_seed0, ... (unique)."""
    names = []
    for run in runs:
        hp = read_hparams(run / "hparams.json")["hparams"]
        base = f"{'mamlpp' if techniques(hp) else 'maml'}_seed{hp.get('seed', 0)}"
        name, number = base, 2
        while name in names:
            name, number = f"{base}_{number}", number + 1
        names.append(name)
    return names


def copy_runs(root: Path, kind: str, runs: list[Path]) -> Path:
    """Copies the records of ``runs`` into ``root/results/<kind>/`` (replacing it whole, atomically)."""
    for run in runs:
        _check_run(kind, run)
    if kind == "mamlpp":
        plus = [bool(techniques(read_hparams(run / "hparams.json")["hparams"])) for run in runs]
        if len(runs) < 2 or all(plus) or not any(plus):
            raise ReportError("--mamlpp needs at least two maml.py runs in the same setting: plain MAML "
                              "(no MAML++ flag) and MAML++ (e.g. --mamlpp), for the two stability plots.")
        targets = dict(zip(mamlpp_run_names(runs), runs))
    else:
        if len(runs) != 1:
            raise ReportError(f"--{kind} takes one run folder.")
        targets = {"": runs[0]}
    results = root / RESULTS
    results.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{kind}.new-", dir=results))
    try:
        for name, run in targets.items():
            folder = staging / name if name else staging
            folder.mkdir(parents=True, exist_ok=True)
            for source in _run_files(kind, run):
                shutil.copyfile(source, folder / source.name)
        load_data.replace_folder(staging, results / kind)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return results / kind


# ---------------------------------------------------------------- rendering


def _accuracy(mean: float, ci: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.4f} ± {ci:.4f}" if math.isfinite(ci) else f"{mean:.4f}"


def _value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _flag(key: str) -> str:
    return f"`--{key.replace('_', '-')}`"


def _test_results(folder: Path) -> list[dict]:
    found = []
    for path in sorted(folder.glob("test_results_*way_*shot.json")):
        try:
            found.append({**json.loads(path.read_text(encoding="utf-8")), "file": path.name})
        except ValueError:
            continue
    return sorted(found, key=lambda r: -int(r.get("num_support", 0)))


def final_row(folder: Path) -> dict[str, float]:
    """The last validation of a run: the accuracy of its final weights."""
    return read_history(folder / "history.csv")[-1]


def _maml_hparam_rows(hp: dict) -> list[list[str]]:
    mamlpp = bool(techniques(hp))
    skip = set() if mamlpp else {*settings.MAMLPP_TECHNIQUES, *settings.MAMLPP_SETTINGS}
    return [[_flag(key), _value(value)] for key, value in hp.items() if key not in skip]


def _method(hp: dict) -> str:
    if techniques(hp):
        return f"MAML++ ({'+'.join(techniques(hp))})"
    return "FO-MAML" if hp.get("first_order", True) else "MAML (second order)"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def render_student(name: str | None, student_number: str | None, version: str | None) -> str | None:
    if not name or not student_number:
        return None
    return f"**Name:** {name} · **Student number:** {student_number} · **Handout version:** `{version}`"


def render_fomaml(root: Path) -> str | None:
    folder = root / RESULTS / "fomaml"
    if not (folder / "hparams.json").is_file():
        return None
    hp = read_hparams(folder / "hparams.json")["hparams"]
    last = final_row(folder)
    lines = [f"Run `{RESULTS}/fomaml/`: {_method(hp)}, {hp['num_way']}-way {hp['num_support']}-shot, "
             f"{hp['num_query']} queries per class, {hp['num_inner_steps']} inner steps; "
             f"{int(last['iteration'])} of {hp['num_iterations']} meta-training iterations "
             f"({_minutes(last['seconds'])}).", "",
             f"![Validation query accuracy of {_method(hp)} over meta-training]({RESULTS}/fomaml/val_accuracy.png)", ""]
    rows = [[f"validation, final weights (iteration {int(last['iteration'])})",
             _accuracy(last["val_accuracy_query"], last["val_accuracy_query_ci95"]), str(hp["num_val_tasks"])]]
    tests = _test_results(folder)
    for test in tests:
        rows.append([f"test, {test['num_way']}-way {test['num_support']}-shot",
                     _accuracy(test["accuracy_query"], test["accuracy_query_ci95"]), str(test["num_tasks"])])
    if not tests:
        rows.append(["test", "not measured yet: `python maml.py --test --log-dir <your run>`, then "
                             "`python -m grader report --fomaml <your run>`", ""])
    lines += _table(["query accuracy after adaptation", "mean ± 95 % CI", "tasks"], rows)
    lines += ["", f"Hyper-parameters (`{RESULTS}/fomaml/hparams.json`):", ""]
    lines += _table(["hyper-parameter", "value"], _maml_hparam_rows(hp))
    return "\n".join(lines)


PRETRAIN_KEYS = ("batch_size", "learning_rate", "num_epochs", "seed")
ADAPT_KEYS = ("transfer_steps", "transfer_lr")
VALIDATION_KEYS = ("num_way", "num_support", "num_query", "num_val_tasks", "val_interval")


def render_transfer(root: Path) -> str | None:
    folder = root / RESULTS / "transfer"
    if not (folder / "hparams.json").is_file():
        return None
    record = read_hparams(folder / "hparams.json")
    hp = record["hparams"]
    last = final_row(folder)
    lines = [f"Run `{RESULTS}/transfer/`: the conv-4 pre-trained as a {hp['num_classes']}-way classifier, "
             f"{int(last['iteration'])} steps ({last.get('epoch', float('nan')):g} epochs, "
             f"{_minutes(last['seconds'])}); for each task a new {hp['num_way']}-way head trained "
             f"{hp['transfer_steps']} steps with learning rate {hp['transfer_lr']:g} on the frozen features.", "",
             f"![Validation transfer accuracy over pre-training]({RESULTS}/transfer/val_accuracy.png)", "",
             "Pre-training:", ""]
    pre = [["classes (all train characters)", _value(hp.get("num_classes", ""))]]
    pre += [[_flag(k), _value(hp[k])] for k in PRETRAIN_KEYS if k in hp]
    if "steps_per_epoch" in record:
        pre.append(["steps per epoch", _value(record["steps_per_epoch"])])
    lines += _table(["hyper-parameter", "value"], pre)
    for title, keys in (("Adaptation of the new head (per task, on the support set only):", ADAPT_KEYS),
                        ("Validation tasks during pre-training:", VALIDATION_KEYS)):
        lines += ["", title, ""]
        lines += _table(["hyper-parameter", "value"], [[_flag(k), _value(hp[k])] for k in keys if k in hp])
    rows = [[f"validation, final weights (step {int(last['iteration'])})",
             _accuracy(last["val_accuracy_query"], last["val_accuracy_query_ci95"]), str(hp["num_val_tasks"])]]
    for test in _test_results(folder):
        rows.append([f"test, {test['num_way']}-way {test['num_support']}-shot",
                     _accuracy(test["accuracy_query"], test["accuracy_query_ci95"]), str(test["num_tasks"])])
    lines += [""] + _table(["query accuracy after adaptation", "mean ± 95 % CI", "tasks"], rows)
    comparison_path = folder / "comparison.json"
    lines += ["", "Comparison with FO-MAML on the same test tasks:", ""]
    if comparison_path.is_file():
        comparison = json.loads(comparison_path.read_text(encoding="utf-8"))
        results = comparison["results"]
        header = ["method"] + [f"{r['num_way']}-way {r['num_support']}-shot ({r['num_tasks']} tasks)"
                               for r in results]
        rows = [[comparison["methods"][key]] + [_accuracy(r[f"{key}_accuracy"], r[f"{key}_ci95"]) for r in results]
                for key in ("maml", "transfer")]
        rows.append(["difference FO-MAML − transfer (paired)"]
                    + [f"{r['difference_accuracy']:+.4f} ± {r['difference_ci95']:.4f}" for r in results])
        lines += _table(header, rows)
        if (folder / "comparison_val_accuracy.png").is_file():
            lines += ["", f"![Validation accuracy of FO-MAML and transfer over training time]"
                          f"({RESULTS}/transfer/comparison_val_accuracy.png)"]
    else:
        lines.append("not measured yet: `python maml_transfer.py compare --maml-dir <FO-MAML run> "
                     "--transfer-dir <this run>`, then `python -m grader report --transfer <this run>`.")
    return "\n".join(lines)


def stability(history: list[dict[str, float]]) -> dict[str, float]:
    """Final and best validation accuracy and the worst drop (largest fall below the best so far)."""
    accuracies = [r["val_accuracy_query"] for r in history]
    best_so_far, worst = -math.inf, 0.0
    for accuracy in accuracies:
        best_so_far = max(best_so_far, accuracy)
        worst = max(worst, best_so_far - accuracy)
    return {"final": accuracies[-1], "best": max(accuracies), "worst_drop": worst}


def render_mamlpp(root: Path) -> str:
    folder = root / RESULTS / "mamlpp"
    runs = sorted(p for p in folder.iterdir() if (p / "hparams.json").is_file()) if folder.is_dir() else []
    if not runs:
        return ("Extra credit not attempted: no MAML++ runs are included (to include them: "
                "`python -m grader report --mamlpp <plain MAML run> <MAML++ run>`).")
    hps = {run.name: read_hparams(run / "hparams.json")["hparams"] for run in runs}
    lines = ["Validation query accuracy after adaptation of each run (`results/mamlpp/`); the worst drop is the "
             "largest fall below the best accuracy reached earlier in the same run.", ""]
    rows = []
    for run in runs:
        history = read_history(run / "history.csv")
        numbers = stability(history)
        rows.append([f"`{run.name}`", _method(hps[run.name]), str(int(hps[run.name]["seed"])),
                     _accuracy(history[-1]["val_accuracy_query"], history[-1]["val_accuracy_query_ci95"]),
                     f"{numbers['best']:.4f}", f"{numbers['worst_drop']:.4f}",
                     f"{int(history[-1]['iteration'])} of {hps[run.name]['num_iterations']}"])
    lines += _table(["run", "method", "seed", "final (mean ± 95 % CI)", "best", "worst drop", "iterations"], rows)
    for run in runs:
        lines += ["", f"![{_method(hps[run.name])}, seed {hps[run.name]['seed']}]({RESULTS}/mamlpp/{run.name}/val_accuracy.png)"]
    keys = list(dict.fromkeys(key for hp in hps.values() for key in hp))
    lines += ["", "Hyper-parameters:", ""]
    lines += _table(["hyper-parameter", *(f"`{name}`" for name in hps)],
                    [[_flag(key), *(_value(hp.get(key, "")) for hp in hps.values())] for key in keys])
    return "\n".join(lines)


# ---------------------------------------------------------------- the report file


def digest(text: str) -> str:
    return sha256(text.encode("utf-8"))[:12]


@dataclass
class Block:
    key: str
    body: str
    digest: str | None
    span: tuple[int, int]

    @property
    def edited(self) -> bool:
        """Changed by hand since it was generated (or, never generated, no longer the placeholder)."""
        if self.digest is None:
            return not PLACEHOLDER.search(self.body) and bool(self.body.strip())
        return digest(self.body) != self.digest


def parse_blocks(text: str, name: str = REPORT) -> dict[str, Block]:
    """The generated parts of a report, by key; ReportError if their marker lines are broken."""
    blocks = {}
    for match in _BLOCK.finditer(text):
        key = match.group("key")
        if key in blocks:
            raise ReportError(f"{name} has the generated part {key!r} twice: keep one BEGIN/END pair.")
        blocks[key] = Block(key, match.group("body"), match.group("digest"), match.span())
    begun = [m.group("key") for m in _BEGIN.finditer(text)]
    broken = sorted(set(begun) - set(blocks)) or sorted({k for k in begun if begun.count(k) > 1})
    if broken:
        raise ReportError(f"{name}: the generated part(s) {', '.join(broken)} have a BEGIN line without its "
                          f"END line (or with text changed in it): copy those lines back from {TEMPLATE}.")
    return blocks


def read_report(path: Path) -> str:
    return path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")


def render_all(root: Path, student: str | None = None) -> dict[str, str | None]:
    """What each generated part should hold now (None: leave as it is)."""
    return {"student": student, "fomaml": render_fomaml(root), "transfer": render_transfer(root),
            "mamlpp": render_mamlpp(root)}


def update_report(text: str, parts: dict[str, str | None], overwrite: bool = False, name: str = REPORT) -> str:
    """``text`` with its generated parts replaced by ``parts`` (None: a part keeps its content).

    A part with no content yet and no new content keeps its placeholder. Raises
    ReportError if a generated part is missing or was edited by hand (unless ``overwrite``).
    """
    blocks = parse_blocks(text, name)
    missing = [key for key in BLOCKS if key not in blocks]
    if missing:
        raise ReportError(f"{name} lacks the generated part(s) {', '.join(missing)} (the lines "
                          f"'<!-- BEGIN GENERATED {missing[0]} ...' and '<!-- END GENERATED {missing[0]} -->' "
                          f"were removed): copy them back from {TEMPLATE} to where they belong.")
    edited = [key for key, block in blocks.items() if parts.get(key) is not None and block.edited]
    if edited and not overwrite:
        raise ReportError(f"{name}: the generated part(s) {', '.join(edited)} were edited by hand; the command "
                          f"would overwrite those edits. Move your text outside the BEGIN/END GENERATED lines "
                          f"(or pass --overwrite to discard the edits), then run it again.")
    for key in sorted(blocks, key=lambda k: -blocks[k].span[0]):  # from the end: spans stay valid
        if parts.get(key) is None:
            continue
        block = blocks[key]
        begin_line = text[block.span[0]:text.index("\n", block.span[0])]
        body = parts[key].strip("\n")
        replacement = f"{begin_line}\n{body}\n<!-- END GENERATED {key} digest={digest(body)} -->"
        text = text[:block.span[0]] + replacement + text[block.span[1]:]
    return text


def unfilled(text: str, mamlpp: bool) -> list[tuple[int, str, str]]:
    """Placeholders still in the report: (line, kind, prompt). HTML comments do not count.

    ``[[ANSWER (extra credit): ...]]`` counts only when ``mamlpp`` (MAML++ runs are included).
    """
    visible = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text)
    found = []
    for match in PLACEHOLDER.finditer(visible):
        if match.group("extra") and not mamlpp:
            continue
        line = visible.count("\n", 0, match.start()) + 1
        prompt = " ".join(match.group("prompt").split())
        found.append((line, match.group("kind").split(" ")[0], prompt))
    return found


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
        tmp.chmod(0o644)


def fill(root: Path = ROOT, fomaml: Path | None = None, transfer: Path | None = None,
         mamlpp: list[Path] | None = None, student: str | None = None, overwrite: bool = False) -> Path:
    """Copies the runs given into results/, then rewrites report.md's generated parts.

    Returns the report's path. Raises ReportError (nothing is changed by a
    failed check of the report; runs already copied stay copied).
    """
    root = Path(root)
    report = root / REPORT
    if report.is_file():
        text = read_report(report)
    elif (root / TEMPLATE).is_file():
        text = read_report(root / TEMPLATE)
    else:
        raise ReportError(f"neither {REPORT} nor {TEMPLATE} is in {root}: run this in the handout folder.")
    update_report(text, {}, name=REPORT)  # the markers are intact, before anything is copied
    for kind, runs in (("fomaml", [fomaml] if fomaml else []), ("transfer", [transfer] if transfer else []),
                       ("mamlpp", list(mamlpp or []))):
        if runs:
            copy_runs(root, kind, [Path(run) for run in runs])
    try:
        parts = render_all(root, student)
    except (ValueError, KeyError, OSError) as error:
        raise ReportError(f"cannot read the records in {root / RESULTS} ({type(error).__name__}: {error}): "
                          f"copy the runs again with --fomaml/--transfer/--mamlpp.") from None
    new = update_report(text, parts, overwrite, REPORT)
    if not report.is_file() or read_report(report) != new:
        write_text_atomic(report, new)
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader report",
                                description="Fill the generated parts of report.md from your runs' records.")
    add_run_arguments(p)
    p.add_argument("--overwrite", action="store_true",
                   help="discard hand edits inside the generated parts (text outside them is never touched)")
    return p


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fomaml", type=Path, metavar="RUN", help="your FO-MAML run folder (python maml.py --log-dir)")
    p.add_argument("--transfer", type=Path, metavar="RUN",
                   help="your pre-training run folder (python maml_transfer.py pretrain --log-dir)")
    p.add_argument("--mamlpp", type=Path, nargs="+", metavar="RUN",
                   help="extra credit: your plain MAML and MAML++ run folders (two or more)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a console that cannot show a name prints "?", not a crash
        sys.stdout.reconfigure(errors="replace")
    try:
        report = fill(ROOT, args.fomaml, args.transfer, args.mamlpp, overwrite=args.overwrite)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = read_report(report)
    todo = unfilled(text, mamlpp=(ROOT / RESULTS / "mamlpp").is_dir())
    print(f"Updated the generated parts of {report} from {ROOT / RESULTS}.")
    for line, kind, prompt in todo:
        short = prompt if len(prompt) <= 70 else prompt[:67] + "..."
        print(f"  {REPORT}:{line}: still to {'write' if kind == 'ANSWER' else 'generate'}: {short}")
    if not todo:
        print("No placeholders left. Check it with `python -m grader submit --name NAME --student-number ID`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
