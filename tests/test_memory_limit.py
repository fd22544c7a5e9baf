"""Memory as a limit the grader plans for (grader/container.py, the sandbox's memory watchdog).

Real processes and, where this machine allows (root, cgroup v1), real
cgroups made by ``/work/shared/tools/gradescope-box`` (or $GRADESCOPE_BOX):

* ``container.resident_bytes`` sees a child's 200 MB array;
* a student's function that allocates without bound is stopped at the
  sandbox's resident limit with "your code used more than N MB in <check>",
  and the next call gets a new worker;
* inside a 700 MB, 1-CPU cgroup: the limits read from the cgroup, the limit
  derived from it stopping a runaway allocation before the kernel does, and
  the kernel's OOM killer reported as such when the grader sets no limit.

No TensorFlow: each case takes a few seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import probes_isolation as probes
import pytest

from grader import container, sandbox
from grader.files import ROOT
from grader.sandbox import Limits, Sandbox, StudentFailure

MiB = 2**20
BOX = Path(os.environ.get("GRADESCOPE_BOX", "/work/shared/tools/gradescope-box"))
QUICK = dict(call_seconds=60.0, total_seconds=180.0, startup_seconds=60.0, max_starts=4)
HOG = """
    import time

    def grow():
        kept = []
        while True:  # 16 MB a step, each page written (bytearray(n) alone may stay unmapped)
            kept.append(bytearray(b"x") * (16 * 2**20))
            time.sleep(0.005)

    def ok():
        return "still grading"
    """

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")


def student(tmp_path: Path, code: str) -> Path:
    folder = tmp_path / "student"
    folder.mkdir(exist_ok=True)
    (folder / "maml.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return folder


def test_resident_bytes_counts_a_child_s_200_mb_array():
    code = ("import sys, numpy\n"
            "print('ready', flush=True); sys.stdin.readline()\n"
            "array = numpy.ones(200 * 2**20 // 8)\n"
            "print('ready', flush=True); sys.stdin.readline()\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        baseline = container.resident_bytes(child.pid)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ready"
        holding = container.resident_bytes(child.pid)
    finally:
        child.kill()
        child.wait()
    assert baseline > 0
    assert abs(holding - baseline - 200 * MiB) < 0.03 * 200 * MiB, (baseline / MiB, holding / MiB)
    assert container.resident_bytes(child.pid) == 0  # gone: nothing left in its session
    assert 0 < container.own_resident_bytes() < 4096 * MiB


def test_code_allocating_without_bound_is_stopped_and_the_other_checks_still_run(tmp_path):
    limits = Limits.from_env(resident_bytes=300 * MiB, **QUICK)
    with Sandbox(student(tmp_path, HOG), limits=limits) as sandbox:
        sandbox.label = "test_memory_hog"
        with pytest.raises(StudentFailure) as caught:
            sandbox.call(probes.run, {"function": "grow"})
        assert caught.value.status == "error"
        assert "your code used more than 300 MB of memory in test_memory_hog: the grader stopped it" \
            in caught.value.message, caught.value.message
        assert "grow without bound" in caught.value.message
        sandbox.label = "test_next_check"
        assert sandbox.call(probes.run, {"function": "ok"}) == "still grading"
        assert sandbox.starts == 2
        assert 300 * MiB < sandbox.peaks[0] < 1024 * MiB, sandbox.peaks
        report = sandbox.log_text()
    assert "resident limit 300 MiB" in report and "worker 1: peak resident memory" in report, report


def test_the_resident_limit_can_be_set_from_the_environment():
    assert Limits.from_env({"GRADER_RESIDENT_BYTES": str(500 * MiB)}).resident_bytes == 500 * MiB
    assert Limits.from_env({}).resident_bytes == 0


# ---------------------------------------------------------------- inside a real cgroup


def in_box(args: list[str], memory: str = "700M", env: dict | None = None, timeout: float = 120):
    """``python ARGS`` inside gradescope-box (1 CPU, ``memory``); skips where it cannot make cgroups."""
    if not BOX.is_file():
        pytest.skip(f"{BOX} not found (set GRADESCOPE_BOX)")
    done = subprocess.run(["bash", str(BOX), "--cpus", "1", "--memory", memory, "--timeout", str(int(timeout)),
                           "--", sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout + 60, env={**os.environ, **(env or {})})
    if done.returncode == 2 and "cannot create cgroups" in done.stderr:
        pytest.skip(f"gradescope-box cannot create cgroups here (needs root and cgroup v1): {done.stderr.strip()}")
    return done


def test_limits_are_read_from_the_cgroup():
    done = in_box(["-c", "from grader import container, sandbox\n"
                         "print(container.memory_limit_bytes(), container.cpu_quota())\n"
                         "print(sandbox.resident_limit(sandbox.Limits()))"])
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines[0] == f"{700 * MiB} 1.0", done.stdout
    derived = int(lines[1])  # 700 MiB - this process (~20 MiB) - the reserve
    assert 500 * MiB < derived <= 700 * MiB - sandbox.RESIDENT_RESERVE, derived / MiB


SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, str(Path(sys.argv[1]) / "tests"))
import probes_isolation as probes
from grader.sandbox import Limits, Sandbox, StudentFailure

with Sandbox(sys.argv[2], limits=Limits.from_env(call_seconds=60.0, startup_seconds=60.0)) as sandbox:
    sandbox.label = "test_in_a_box"
    try:
        sandbox.call(probes.run, {"function": "grow"})
        print("NOT STOPPED")
    except StudentFailure as failure:
        print("MESSAGE", failure.message.splitlines()[0])
    print("NEXT", sandbox.call(probes.run, {"function": "ok"}))
"""


@pytest.mark.parametrize("resident, expected", [
    ("0", "used more than {limit} MB of memory in test_in_a_box: the grader stopped it (the grading "
          "container has 700 MB for everything)"),
    ("-1", "used more than the container's memory limit in test_in_a_box: the system stopped it "
           "(the grading container has 700 MB for everything)"),
])
def test_in_a_700_mb_container_a_runaway_allocation_is_reported_and_grading_goes_on(tmp_path, resident, expected):
    (tmp_path / "script.py").write_text(SCRIPT, encoding="utf-8")
    done = in_box([str(tmp_path / "script.py"), str(ROOT), str(student(tmp_path, HOG))],
                  env={"GRADER_RESIDENT_BYTES": resident})
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("MESSAGE", "NEXT")))
    assert done.returncode == 0, done.stdout + done.stderr
    assert lines.get("NEXT") == "still grading", done.stdout + done.stderr
    message = lines.get("MESSAGE", "")
    if resident == "0":  # derived: 700 MiB - the script's process - the reserve
        limit = int(message.split("used more than ", 1)[1].split(" ", 1)[0]) if "used more than " in message else 0
        assert 500 < limit <= 700 - sandbox.RESIDENT_RESERVE // MiB, message
        expected = expected.format(limit=limit)
        assert "oom kills 0" in done.stdout, done.stdout  # the grader stopped it before the kernel had to
    assert expected in message, done.stdout + done.stderr


REFERENCE_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests import probes_isolation as probes  # as the reference worker imports it: from the repository
from grader.sandbox import Limits, Sandbox, StudentFailure

with Sandbox.reference(limits=Limits.from_env(call_seconds=60.0, startup_seconds=60.0)) as reference:
    try:
        reference.call(probes.grow)
        print("NOT STOPPED")
    except StudentFailure as failure:
        print("MESSAGE", failure.message.splitlines()[0])
"""


def test_a_reference_worker_out_of_memory_is_reported_as_the_container_s_not_the_student_s(tmp_path):
    (tmp_path / "script.py").write_text(REFERENCE_SCRIPT, encoding="utf-8")
    done = in_box([str(tmp_path / "script.py"), str(ROOT)])
    message = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith("MESSAGE")).get(
        "MESSAGE", "")
    assert done.returncode == 0, done.stdout + done.stderr
    assert message == ("the grader's own measurement (grow) did not finish: the process running the reference "
                       "solution ran out of memory (the grading container has 700 MB for everything). This is not "
                       "your code: tell the course staff (README of the autograder: the container to choose)."), \
        done.stdout + done.stderr


NEEDS_CONTAINER = ("from instructor.autograder.tests import test_training as t\n"
                   "try:\n"
                   "    t.needs_container(t.FOMAML_CONTAINER_BYTES, 'training FO-MAML')\n"
                   "    print('RUNS')\n"
                   "except AssertionError as error:\n"
                   "    print('MESSAGE', error)\n")


@pytest.mark.parametrize("memory, expected", [
    ("700M", "MESSAGE not run: this grading container has 700 MB of memory, and training FO-MAML needs about 900 MB "
             "(measured with the reference solution). This is the course's setting, not your code: tell the course "
             "staff (README of the autograder: the container to choose)."),
    ("900M", "RUNS"),
])
def test_a_training_check_too_big_for_the_container_says_so_instead_of_running(memory, expected):
    done = in_box(["-c", NEEDS_CONTAINER], memory=memory)
    assert done.returncode == 0 and done.stdout.splitlines()[0] == expected, done.stdout + done.stderr
