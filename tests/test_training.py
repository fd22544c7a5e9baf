"""The training program, run for real on Omniglot as a student would run it (subprocesses).

The headline test: the reference FO-MAML with the assignment's settings reaches 80 %
post-adaptation validation query accuracy within 1000 iterations on this CPU.
"""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import load_data
import maml
from runs import read_history
from training import VAL_SEED
from conftest import ROOT, run_python


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("fomaml")
    result = run_python(["maml.py", "--log-dir", str(log_dir), "--num-iterations", "1000",
                         "--val-interval", "10", "--stop-at-accuracy", "0.8"])
    assert result.returncode == 0, result.stderr[-3000:]
    return log_dir, result


def test_reference_reaches_80_percent_validation_accuracy_within_1000_iterations(trained):
    log_dir, result = trained
    history = read_history(log_dir / "history.csv")
    assert [row["iteration"] for row in history] == list(range(0, 10 * len(history), 10))
    final = history[-1]
    assert final["val_accuracy_query"] >= 0.8
    assert final["iteration"] <= 1000
    assert "stopping early" in result.stdout + result.stderr
    # five inner steps from the random initialisation already give ~74 %; meta-training must add to it
    assert final["val_accuracy_query"] > history[0]["val_accuracy_query"]
    assert final["val_accuracy_support_post"] > final["val_accuracy_support_pre"]


def test_the_run_says_its_device_its_expected_wall_time_and_how_long_it_took(trained):
    log_dir, result = trained
    lines = result.stdout.strip().splitlines()
    assert any(line.startswith(("Training on the CPU (", "Training on GPU:0 (")) for line in lines)
    expected = [line for line in lines if line.startswith("Expected wall time of this run: about ")]
    assert len(expected) == 1 and "990 more iterations" in expected[0]  # after the validation at 10
    last = read_history(log_dir / "history.csv")[-1]["iteration"]  # stopped early at 80 %
    assert lines[-1].startswith(f"Trained iterations 0..{last} in ")


def test_saved_weights_are_the_final_meta_parameters(trained, omniglot):
    log_dir, _ = trained
    hp = json.loads((log_dir / "hparams.json").read_text())["hparams"]
    assert hp["num_way"] == 5 and hp["num_support"] == 5 and hp["num_query"] == 15
    assert hp["num_inner_steps"] == 5 and hp["inner_lr"] == 0.4 and hp["outer_lr"] == 0.001
    assert hp["first_order"] is True
    model = maml.build_maml(hp)
    model.load_weights(log_dir / "weights.npz")
    sampler = load_data.TaskSampler(omniglot, "val", 5, 5, 15, seed=VAL_SEED)
    _, query = model.evaluate([sampler.task(i) for i in range(hp["num_val_tasks"])],
                              chunk_size=hp["meta_batch_size"])
    final = read_history(log_dir / "history.csv")[-1]
    assert query.mean() == pytest.approx(final["val_accuracy_query"], abs=1e-3)


def test_run_folder_has_plot_tensorboard_and_checkpoints(trained):
    log_dir, _ = trained
    with Image.open(log_dir / "val_accuracy.png") as image:
        assert image.format == "PNG" and image.size[0] >= 600
    assert list((log_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (log_dir / "checkpoints" / "checkpoint").is_file()
    assert not list(log_dir.rglob("*.part")), "no temporary files may remain"


def test_test_mode_reports_accuracy_with_confidence_interval(trained):
    log_dir, _ = trained
    result = run_python(["maml.py", "--test", "--log-dir", str(log_dir), "--num-test-tasks", "100"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((log_dir / "test_results_5way_5shot.json").read_text())
    assert report["num_tasks"] == 100
    assert report["accuracy_query"] >= 0.75
    assert 0 < report["accuracy_query_ci95"] < 0.05
    assert f"{report['accuracy_query']:.4f} ± {report['accuracy_query_ci95']:.4f}" in result.stdout


def test_an_existing_run_is_never_overwritten(trained):
    log_dir, _ = trained
    before = (log_dir / "history.csv").read_bytes()
    result = run_python(["maml.py", "--log-dir", str(log_dir), "--num-iterations", "5"])
    assert result.returncode != 0 and "Pass --resume" in result.stderr
    changed = run_python(["maml.py", "--log-dir", str(log_dir), "--resume", "--inner-lr", "0.1"])
    assert changed.returncode != 0 and "inner_lr was 0.4, now 0.1" in changed.stderr
    assert (log_dir / "history.csv").read_bytes() == before


# program -> (command, the flag of its length and its value for n steps, the step's name, its other flags)
PROGRAMS = {
    "maml": (["maml.py"], "--num-iterations", str, "iteration",
             ["--meta-batch-size", "4", "--val-interval", "2", "--num-val-tasks", "4", "--seed", "3"]),
    "pretrain": (["maml_transfer.py", "pretrain"], "--num-epochs", lambda n: repr(n / 220), "step",  # 220 batches
                 ["--batch-size", "100", "--val-interval", "2", "--num-val-tasks", "8", "--seed", "3"]),
}


@pytest.mark.parametrize("program", PROGRAMS)
def test_interrupt_then_resume_gives_the_same_weights_as_one_run(tmp_path, program):
    command, length, steps, unit, common = PROGRAMS[program]
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        [sys.executable, *command, "--log-dir", str(interrupted), length, steps(1000), *common],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while len(read_history(interrupted / "history.csv")) < 3:  # steps 0, 2, 4 validated
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode != 0
    assert "checkpoint saved" in stderr and "--resume" in stderr
    stopped_at = int(stderr.split(f"Interrupted at {unit} ")[1].split(";")[0])
    total = stopped_at + 3

    resumed = run_python([*command, "--log-dir", str(interrupted), "--resume", length, steps(total), *common])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming {interrupted} from {unit} {stopped_at}" in resumed.stdout
    straight = tmp_path / "straight"
    once = run_python([*command, "--log-dir", str(straight), length, steps(total), *common])
    assert once.returncode == 0, once.stderr[-3000:]

    with np.load(interrupted / "weights.npz") as a, np.load(straight / "weights.npz") as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-7, err_msg=name)
    history = read_history(interrupted / "history.csv")
    assert [r["iteration"] for r in history] == sorted({r["iteration"] for r in history})
    assert history[-1]["iteration"] == total


def test_the_resume_hint_of_plain_fomaml_names_no_mamlpp_flag():
    import settings

    assert settings.cli_flags(settings.ASSIGNMENT) == []
    assert settings.cli_flags(settings.MAMLSettings(inner_lr=0.1, first_order=False)) == ["--inner-lr 0.1",
                                                                                          "--second-order"]


def test_help_lists_the_assignment_defaults():
    result = run_python(["maml.py", "--help"])
    assert result.returncode == 0
    for text in ("--num-inner-steps", "(default: 5)", "--inner-lr", "(default: 0.4)", "--outer-lr",
                 "(default: 0.001)", "--num-iterations", "(default: 1000)", "--resume", "--test"):
        assert text in result.stdout
