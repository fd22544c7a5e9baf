"""The handout's notebook (assignment2.ipynb), run by a real Jupyter kernel the way a student runs it.

The real handout.zip lies alone in an empty folder, as after an upload to Colab. nbclient executes
the notebook's cells in order in a real IPython kernel there: the first cell unpacks the zip, the
install cell keeps the installed TensorFlow, Omniglot comes from this repository's cache, and the
local grader runs on the fresh stubs (its tests fail and the notebook goes on). Then the reference
solutions go into the stubs, as the student completes the TODOs, and the remaining cells train,
test, pre-train, compare and fill the report; the test writes the report's answers (the student's
part) before the submit cell packs the zip and the last cell names it.

The assignment's long settings are shortened papermill-style: a cell inserted after the one
tagged "parameters" overrides them, as ``papermill -p`` would; students see and edit the same
cell.
"""

from __future__ import annotations

import os
import re
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grader.files import ROOT
from test_release import paste_solutions

NOTEBOOK = ROOT / "assignment2.ipynb"
SHORT = {"NAME": "Notebook Test", "STUDENT_NUMBER": "2024-12345", "NUM_ITERATIONS": 2,
         "MAML_FLAGS": "--num-val-tasks 8 --meta-batch-size 4", "PRETRAIN_EPOCHS": 0.01,
         "PRETRAIN_FLAGS": "--num-val-tasks 8 --transfer-steps 10 --batch-size 64", "NUM_TEST_TASKS": 8}


def text_of(cell) -> str:
    """Everything a code cell printed (streams and text results)."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_notebook_is_clean_and_has_a_parameters_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "clear the outputs"
    parameters = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1
    for name in SHORT:
        assert re.search(rf"^{name} = ", parameters[0].source, re.M), name


def test_requirements_pin_one_tensorflow_version_over_one_base():
    versions = set()
    for name in ("requirements.txt", "requirements-gpu.txt"):
        lines = (ROOT / name).read_text().splitlines()
        assert "-r requirements-base.txt" in lines, name
        versions.update(re.findall(r"^tensorflow[\w\[\]-]*==([\w.]+)", "\n".join(lines), re.M))
    assert len(versions) == 1, versions
    assert "tensorflow" not in (ROOT / "requirements-base.txt").read_text().replace("tensorboard", "")


@pytest.mark.timeout(1800)
def test_notebook_runs_from_handout_zip_to_submission_zip(handout, omniglot, tmp_path):
    import load_data

    (tmp_path / "handout.zip").write_bytes(handout.zip_bytes())
    folder = tmp_path / handout.folder
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    overrides = "\n".join(f"{key} = {value!r}" for key, value in SHORT.items())
    notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(overrides, metadata={"tags": ["injected-parameters"]}))
    cells = {cell.get("id"): cell for cell in notebook.cells}
    env = {**os.environ, load_data.DATA_DIR_ENV: str(load_data.data_dir()), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel(env=env):
        for index, cell in enumerate(notebook.cells):
            if cell.get("id") == "train":  # the student has completed the TODOs
                paste_solutions(handout, folder)
            if cell.get("id") == "submit":  # the student has written the report's answers
                report = folder / "report.md"
                report.write_text(re.sub(r"\[\[ANSWER:.*?\]\]", "Answered by the test.",
                                         report.read_text(encoding="utf-8"), flags=re.S), encoding="utf-8")
            client.execute_cell(cell, index)

    assert f"Unpacked handout.zip into {folder}" in text_of(cells["handout"])
    assert "keeping it" in text_of(cells["install"]) and "requirements-base.txt" in text_of(cells["install"])
    assert "Omniglot ready" in text_of(cells["data"])
    assert "not implemented yet" in text_of(cells["grader"])  # failed on the stubs, and the notebook went on
    run = folder / "runs" / "fomaml"
    assert (run / "weights.npz").is_file() and (run / "history.csv").is_file()
    assert any("image/png" in output.get("data", {}) for output in cells["train"].outputs)  # the plot shown
    assert list(run.glob("test_results_*.json"))
    assert (folder / "runs" / "transfer" / "comparison.json").is_file()
    zips = list(folder.glob("*_Assignment2.zip"))
    assert [z.name for z in zips] == ["Notebook Test_2024-12345_Assignment2.zip"]
    with zipfile.ZipFile(zips[0]) as submission:
        assert {"maml.py", "maml_transfer.py", "report.md", "SUBMISSION.json"} <= set(submission.namelist())
    assert f"Your submission: {zips[0]}" in text_of(cells["download"])
