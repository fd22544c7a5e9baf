"""The files of a run folder that people and the grader read: ``history.csv``.

Provided; you do not need to change anything here. ``python maml.py`` and
``python maml_transfer.py pretrain`` write one row per validation; the report's
plots and the submit checklist read them back. No TensorFlow here.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import load_data

HISTORY = "history.csv"


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of a ``history.csv`` as dicts of floats (iteration as int); [] if there is none."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "iteration" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)]


def write_history(path: Path, rows: list[dict[str, float]], fields: Sequence[str]) -> None:
    """Writes ``history.csv`` atomically (read it back with ``read_history``)."""
    with load_data.atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
