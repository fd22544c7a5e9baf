"""Hostile and broken submissions against the sandbox (grader/sandbox.py, grader/worker.py).

Two levels:

* the sandbox itself, with small ``maml.py`` files written here and the
  probes of ``tests/probes_isolation.py`` (no TensorFlow, so each case takes
  about a second): import and syntax errors, exceptions, sys.exit and
  os._exit at import, a hang, a process killed, memory, 100 MB of output,
  garbage on the grader's channel, a process escaping into its own session,
  the network, the user it runs as, and the grader's files;
* the whole public grader (``grader.runner`` -> pytest with the plugin -> the
  sandbox) on the reference solution made hostile: results files forged by
  the student's code and a daemon that keeps forging, and TensorFlow, numpy
  and the grader's own modules monkeypatched inside the worker.

Every case must end with a verdict and a reason, and no case may raise the
score above what the honest code earns.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import probes_isolation as probes
import pytest

from grader import bytecode, compare, runner, wire
from grader import probes as grader_probes
from grader.failures import SandboxError, StudentFailure
from grader.files import ROOT
from grader.results import PASSED
from grader.sandbox import InProcessSandbox, Limits, Sandbox

QUICK = replace(Limits(), call_seconds=20.0, total_seconds=120.0, startup_seconds=60.0, max_starts=4)
# A few public tests: enough to see the score, quick enough for a test (one import of TensorFlow each run).
SUBSET = ["-k", "inner_loop_outputs or transfer_learn_head"]


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a killed orphan waits there for init to reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def make_sandbox(tmp_path: Path, code: str, limits: Limits = QUICK) -> Sandbox:
    student = tmp_path / "student"
    student.mkdir(exist_ok=True)
    (student / "maml.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return Sandbox(student, limits=limits)


def failure(sandbox: Sandbox, function: str, **kwargs) -> StudentFailure:
    with pytest.raises(StudentFailure) as caught:
        sandbox.call(probes.run, {"function": function, **kwargs})
    return caught.value


# ---------------------------------------------------------------- the sandbox, case by case


@pytest.mark.parametrize("code, status, expected", [
    ("def f(:\n    pass\n", "error", "could not import maml.py: SyntaxError: invalid syntax (maml.py line 1"),
    ("import no_such_module\n", "error", "could not import maml.py: ModuleNotFoundError: No module named"),
    ("import sys\nsys.exit(0)\n", "error", "could not import maml.py: SystemExit: 0 (maml.py line 2)"),
    ("def f():\n    return 1 / 0\n", "error", "ZeroDivisionError: division by zero\n(raised in f (maml.py line 2))"),
    ("def f():\n    raise NotImplementedError('later')\n", "todo", "not implemented yet: f (maml.py line 2)"),
    ("import os\nos._exit(3)\n", "error", "ended with exit status 3 while running run"),
    ("def f():\n    x = bytearray(3 * 2**30)\n", "error", "ran out of memory (MemoryError)"),
])
def test_broken_code_fails_with_a_reason(tmp_path, code, status, expected):
    with make_sandbox(tmp_path, code, replace(QUICK, memory_bytes=2 * 2**30)) as sandbox:
        error = failure(sandbox, "f")
    assert error.status == status
    assert expected in error.message, error.message


def test_the_first_call_in_a_fresh_worker_draws_the_same_random_numbers_as_every_later_one(tmp_path):
    """Probes run seeded (Python, numpy, TensorFlow) from the first call on, though a fresh worker has
    imported neither numpy nor TensorFlow when it seeds: they are seeded as they are imported."""
    code = """
        def draw():
            import random

            import numpy as np
            import tensorflow as tf

            return [random.random(), *np.random.rand(2), *tf.random.uniform([2]).numpy(), *tf.random.normal([2]).numpy()]
        """
    with make_sandbox(tmp_path, code, replace(QUICK, call_seconds=120.0, total_seconds=300.0)) as sandbox:
        first, second = (sandbox.call(probes.run, {"function": "draw"}) for _ in range(2))  # importing TensorFlow
        assert sandbox.starts == 1
    first, second = ([float(x) for x in numbers] for numbers in (first, second))
    assert first == second and len(set(first)) == len(first)


def test_a_run_in_parts_continues_its_random_state_and_a_new_run_starts_from_the_seed(tmp_path):
    """A probe marked ``continues_random_state`` (training in chunks) draws on where its previous call left
    off, as one longer call would, instead of seeding again (which makes TensorFlow instantiate every
    compiled function again); any other call in between starts the next run from the seed."""
    with make_sandbox(tmp_path, "", replace(QUICK, call_seconds=120.0, total_seconds=300.0)) as sandbox:
        seeded = sandbox.call(probes.draw)
        first, second = (sandbox.call(probes.draw_in_parts) for _ in range(2))
        sandbox.call(probes.draw)
        again = sandbox.call(probes.draw_in_parts)
        assert sandbox.starts == 1
    seeded, first, second, again = ([float(x) for x in numbers] for numbers in (seeded, first, second, again))
    assert first == seeded == again and not set(second) & set(first)


def test_a_hang_is_stopped_and_the_next_call_gets_a_fresh_process(tmp_path):
    code = """
        def hang():
            while True:
                pass

        def ok():
            return 42
        """
    with make_sandbox(tmp_path, code, replace(QUICK, call_seconds=3.0)) as sandbox:
        error = failure(sandbox, "hang")  # the call's own limit stopped it, not the sandbox's 120 s in all
        assert "took longer than 3 s, the limit of this check" in error.message
        assert sandbox.call(probes.run, {"function": "ok"}) == 42
        assert sandbox.starts == 2


def test_a_killed_process_is_reported_and_replaced(tmp_path):
    code = """
        import os, signal

        def die():
            print("about to die")
            os.kill(os.getpid(), signal.SIGKILL)

        def ok():
            return "alive"
        """
    with make_sandbox(tmp_path, code) as sandbox:
        error = failure(sandbox, "die")
        assert "ended while running run: it was killed (SIGKILL)" in error.message
        assert "Last output:\nabout to die" in error.message
        assert sandbox.call(probes.run, {"function": "ok"}) == "alive"


def test_too_many_crashes_stop_the_remaining_calls(tmp_path):
    with make_sandbox(tmp_path, "import os\nos._exit(0)\n", replace(QUICK, max_starts=2)) as sandbox:
        for _ in range(2):
            assert "exit status 0" in failure(sandbox, "f").message
        assert "already ended 2 times" in failure(sandbox, "f").message


def test_100_mb_of_output_is_drained_capped_and_the_result_still_arrives(tmp_path):
    code = """
        import sys

        def flood():
            line = "x" * 1023 + "\\n"
            for _ in range(100 * 1024):
                sys.stdout.write(line)
            sys.stdout.flush()
            return "done"
        """
    with make_sandbox(tmp_path, code, replace(QUICK, output_bytes=64 * 1024)) as sandbox:
        assert sandbox.call(probes.run, {"function": "flood"}) == "done"
    assert sandbox.output.total >= 100 * 2**20  # all of it went through (the last pipe-full once it stopped)
    text = sandbox.outputs[-1]
    assert len(text) < 70 * 1024 and "bytes of output not kept" in text and text.rstrip().endswith("x" * 100)


def test_garbage_on_the_grader_channel_is_a_failure_not_a_crash(tmp_path):
    code = """
        import json, os, sys

        def forge():
            fd = json.loads(sys.argv[2])["response_fd"]  # the worker's configuration is on its command line
            os.write(fd, b"GRW1" + b"\\xff" * 64)
            return 1
        """
    with make_sandbox(tmp_path, code) as sandbox:
        error = failure(sandbox, "forge")
        assert "could not read what came back" in error.message


def test_wire_refuses_malformed_and_oversized_messages():
    message = wire.encode({"a": [1, 2.5, None, float("nan")], "b": (True, "x")})
    header_length = int.from_bytes(message[4:12], "little")
    tree = wire.decode(message[20:20 + header_length], message[20 + header_length:])
    assert tree["b"] == (True, "x") and tree["a"][:3] == [1, 2.5, None] and tree["a"][3] != tree["a"][3]
    for header in (b"not json", b'{"tree": {"__pickle__": "x"}, "arrays": []}',
                   b'{"tree": {"__array__": 0}, "arrays": [{"dtype": "object", "shape": [1], "offset": 0, "nbytes": 8}]}',
                   b'{"tree": {"__array__": 0}, "arrays": [{"dtype": "float64", "shape": [10], "offset": 0, "nbytes": 80}]}'):
        with pytest.raises(wire.WireError):
            wire.decode(header, b"\0" * 8)
    read, write = os.pipe()
    os.write(write, wire.encode(list(range(1000))))
    with pytest.raises(wire.WireError, match="more than the limit"):
        wire.read_message(read, max_bytes=100)
    os.close(read), os.close(write)


def processes_with(argument: str) -> list[int]:
    """The pids of the running processes with ``argument`` on their command line (seen from the grader)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and argument.encode() in (entry / "cmdline").read_bytes().split(b"\0") \
                    and running(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(os.geteuid() != 0, reason="without root there is no PID namespace: a daemon that also "
                                               "clears its environment outlives the worker (see the README)")
def test_a_daemon_with_a_clean_environment_in_its_own_session_ends_with_the_worker(tmp_path):
    """It left the worker's process group and session and dropped the sandbox's marker from its environment:
    only the PID namespace ends it (with a uid of its own, the kill of that uid as well)."""
    seconds = f"{300 + secrets.randbelow(10**6) / 10**6:.6f}"  # a command line to find it by
    code = f"""
        import os, time

        def escape():
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execve("/bin/sleep", ["sleep", {seconds!r}], {{}})
                os._exit(0)
            time.sleep(0.5)
            return "forked"
        """
    for user in ("always", "never"):  # a uid of its own; root (GRADER_USER=never: only the namespace)
        sandbox = make_sandbox(tmp_path, code, replace(QUICK, user=user))
        assert sandbox.call(probes.run, {"function": "escape"}) == "forked"
        assert processes_with(seconds), user
        sandbox.close()
        time.sleep(0.2)
        assert not processes_with(seconds), user


def test_no_network_where_the_kernel_allows(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    code = f"""
        import socket

        def connect():
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
                return "connected"
            except OSError as error:
                return f"refused: {{error}}"
        """
    try:
        with make_sandbox(tmp_path, code) as sandbox:
            outcome = sandbox.call(probes.run, {"function": "connect"})
            network = sandbox.notes["network"]
    finally:
        server.close()
    if network.startswith("isolated"):
        assert outcome.startswith("refused"), outcome  # its loopback is not the grader's
    else:  # e.g. a container without CAP_SYS_ADMIN and no user namespaces: said plainly
        assert network.startswith("not isolated: unshare failed"), network
        assert outcome == "connected"


def unusable_by_other_users() -> str | None:
    """Why another user could not run this Python with numpy (None: it can), tried as nobody (65534)."""
    try:
        child = subprocess.run([sys.executable, "-I", "-c", "import json, numpy"], user=65534, group=65534,
                               extra_groups=[], capture_output=True, text=True, timeout=120, check=False)
    except PermissionError as error:
        return f"{sys.executable} cannot be started by other users ({error})"
    lines = child.stderr.strip().splitlines()
    return f"{sys.executable} fails for other users: {lines[-1] if lines else child.returncode}" \
        if child.returncode else None


ATTACKS = """
    import os, socket

    def probe(secret, hidden_test, unix_socket):
        here = os.path.dirname(__file__)
        grader_file = os.path.join(here, "grader", "wire.py")

        def connect():
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(unix_socket)

        attempts = {
            "read the grader's secret": lambda: open(secret).read(),
            "read the hidden tests": lambda: open(hidden_test).read(),
            "reach a host socket": connect,
            "change a grader file": lambda: open(grader_file, "a").write("#"),
            "make it writable": lambda: os.chmod(grader_file, 0o666),
            "plant a compiled file": lambda: os.makedirs(os.path.join(here, "grader", "__pycache__")),
            "change its own code": lambda: open(os.path.join(here, "maml.py"), "a").write("#"),
            "become root": lambda: os.setuid(0),
            "signal the grader": lambda: os.kill(os.getppid(), 0) if os.getppid() > 1 else os.kill(1, 0),
        }
        outcome = {"uid": os.getuid()}
        for name, attempt in attempts.items():
            try:
                attempt()
                outcome[name] = "allowed"
            except OSError as error:  # PermissionError, FileNotFoundError (not in its view), read-only
                outcome[name] = type(error).__name__
        return outcome
    """


def attack_targets(tmp_path: Path) -> dict[str, str]:
    """A root-only secret, a hidden test and a unix socket anyone may connect to, for ``ATTACKS``."""
    secret = tmp_path / "secret.txt"  # stands for the hidden tests' expected values
    secret.write_text("expected values")
    secret.chmod(0o600)
    public = Path(tempfile.mkdtemp(prefix="grader-test-socket-"))
    public.chmod(0o755)
    return {"secret": str(secret), "hidden_test": str(next(runner.HIDDEN_TESTS.rglob("*.py"))),
            "unix_socket": str(public / "socket")}


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can switch the student's code to another user")
@pytest.mark.parametrize("own_view", [True, False], ids=["own view", "whole filesystem"])
def test_as_root_the_code_runs_as_a_user_of_its_own_that_can_touch_nothing(tmp_path, own_view):
    """Set-up (a), Python not readable by other users: the view makes it reachable for a uid of its own, and
    shows nothing of the grader's. Set-up (b), a world-readable Python without the view: the uid alone."""
    if not own_view and (reason := unusable_by_other_users()):  # e.g. Python under /root (mode 700)
        pytest.skip(f"set-up (b) needs a Python every user can read: {reason}")
    targets = attack_targets(tmp_path)
    server = socket.socket(socket.AF_UNIX)
    server.bind(targets["unix_socket"])
    os.chmod(targets["unix_socket"], 0o777)
    server.listen()
    try:
        with make_sandbox(tmp_path, ATTACKS, replace(QUICK, user="always", own_view=own_view)) as sandbox:
            outcome = sandbox.call(probes.privileges, targets)
            assert sandbox.notes["own_uid"] and "a user of its own" in sandbox.notes["account"]
            assert sandbox.notes["view"].startswith("its own" if own_view else "the whole filesystem")
            assert not sandbox.tampered()
    finally:
        server.close()
        shutil.rmtree(Path(targets["unix_socket"]).parent)
    assert outcome.pop("uid") == sandbox.notes["uid"] != 0
    allowed = {name for name, result in outcome.items() if result == "allowed"}
    if own_view:
        assert not allowed, outcome
    else:  # without the view a world-readable repository and socket are open to it (README's table)
        assert allowed <= {"read the hidden tests", "reach a host socket"}, outcome
        assert outcome["read the grader's secret"] == "PermissionError", outcome


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can switch the student's code to another user")
def test_as_root_a_user_of_its_own_that_could_not_read_the_data_runs_nothing_and_says_why(tmp_path):
    """GRADER_USER=always refuses up front (no import of the student's code) what would fail on its first read."""
    data = tmp_path / "data.npz"  # in pytest's folder of root, mode 700: like Python installed under /root
    data.write_bytes(b"not for other users")
    data.chmod(0o600)
    imported = tmp_path / "imported.txt"
    student = tmp_path / "student"
    student.mkdir()
    (student / "maml.py").write_text(f"open({str(imported)!r}, 'w').close()\n", encoding="utf-8")
    with Sandbox(student, limits=replace(QUICK, user="always"), readable=(str(data),)) as sandbox:
        with pytest.raises(SandboxError, match="is not readable by other users") as refused:
            sandbox.call(probes.privileges)
        assert sandbox.process is None and sandbox.starts == 1
    assert "GRADER_USER=never runs it as root" in str(refused.value)
    assert not imported.exists()


ATTACKS_ON_ITS_OWN_GRADER = """
    import ctypes, os

    def probe(grader_file, hidden_test, grader_pid):
        here = os.path.dirname(__file__)
        code = os.path.join(here, "grader", "wire.py")

        def mount_over_its_view():
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

        attempts = {
            "read the grader's own file": lambda: open(grader_file).read(),
            "read the hidden tests": lambda: open(hidden_test).read(),
            "change a grader file": lambda: open(code, "a").write("#"),
            "make it writable": lambda: os.chmod(code, 0o666),
            "change its own code": lambda: open(os.path.join(here, "maml.py"), "a").write("#"),
            "leave its view": lambda: os.chroot("/tmp"),
            "mount over its view": mount_over_its_view,
            "see the grader's process": lambda: os.stat(f"/proc/{grader_pid}"),
            "signal the grader": lambda: os.kill(grader_pid, 0),
        }
        outcome = {}
        for name, attempt in attempts.items():
            try:
                attempt()
                outcome[name] = "allowed"
            except OSError as error:  # PermissionError, FileNotFoundError (not in its view), ProcessLookupError
                outcome[name] = type(error).__name__
        return outcome
    """

AS_AN_ORDINARY_GRADER = """
import json, os, sys
from dataclasses import replace
from pathlib import Path
sys.path[:0] = sys.argv[1:3]
import probes_isolation as probes
from grader.sandbox import Limits, Sandbox
folder = Path(sys.argv[3])
with Sandbox(folder / "student", limits=replace(Limits(), call_seconds=20.0, total_seconds=120.0)) as sandbox:
    outcome = sandbox.call(probes.privileges, {"grader_file": str(folder / "grader-only.txt"),
                                               "hidden_test": sys.argv[4], "grader_pid": os.getpid()})
    print(json.dumps({"outcome": outcome, "notes": sandbox.notes, "tampered": sandbox.tampered()}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the test plays a grader that is not root: only root can become one")
@pytest.mark.parametrize("tmp", ["/tmp", "noexec,noatime"], ids=["tmp", "tmp mounted noexec,noatime"])
def test_a_grader_that_is_not_root_gives_the_code_its_own_view_and_no_privilege(tmp):
    """An instructor grading as an ordinary user (uid 65534 here): the worker starts as root of a user namespace
    of its own, builds the student's view and drops every capability. The code runs as the grader's own user,
    so the grader's files (its own, mode 600) are out of reach only because the view does not hold them. In a
    user namespace the kernel locks the flags of the mounts it binds: a temporary folder mounted noexec,noatime
    (hardened systems) must still give the view."""
    if reason := unusable_by_other_users():
        pytest.skip(f"a grader of another user needs a Python every user can read: {reason}")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork", "true"], user=65534,
                           group=65534, extra_groups=[], capture_output=True, text=True, check=False)
    if probe.returncode:
        pytest.skip(f"this system gives ordinary users no user namespace: {probe.stderr.strip()}")
    with contextlib.ExitStack() as stack:
        if tmp != "/tmp":  # a folder every user can reach (pytest's own are root's alone)
            tmp = tempfile.mkdtemp(prefix="grader-test-noexec-")
            stack.callback(os.rmdir, tmp)
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,noatime,nosuid,nodev,mode=1777", "tmpfs",
                                      tmp], capture_output=True, text=True, check=False)
            if mounted.returncode:
                pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
            stack.callback(subprocess.run, ["umount", "-l", tmp], check=False)
        found = _graded_by_an_ordinary_grader(tmp)
    notes = found["notes"]
    assert "no privilege: root of a user namespace of its own" in notes["account"], notes
    assert notes["view"].startswith("its own") and "user namespace" in notes["processes"], notes
    assert not found["tampered"]
    assert "allowed" not in found["outcome"].values(), found["outcome"]


def _graded_by_an_ordinary_grader(tmp: str) -> dict:
    """``ATTACKS_ON_ITS_OWN_GRADER`` in a sandbox of a grader running as uid 65534, with ``tmp`` as TMPDIR."""
    folder = Path(tempfile.mkdtemp(prefix="grader-test-ordinary-", dir=tmp))  # the ordinary grader's own folder
    try:
        (folder / "student").mkdir()
        (folder / "student" / "maml.py").write_text(textwrap.dedent(ATTACKS_ON_ITS_OWN_GRADER), encoding="utf-8")
        (folder / "grader-only.txt").write_text("expected values")
        (folder / "grader-only.txt").chmod(0o600)
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, 65534, 65534)
        hidden_test = next(runner.HIDDEN_TESTS.rglob("*.py"))
        # no compiled-file cache (a folder the grader does not own is refused): nothing here imports TensorFlow
        env = {"PATH": os.environ["PATH"], "HOME": str(folder), "TMPDIR": tmp, "GRADER_BYTECODE_CACHE": "/tmp"}
        child = subprocess.run([sys.executable, "-c", AS_AN_ORDINARY_GRADER, str(ROOT), str(Path(__file__).parent),
                                str(folder), str(hidden_test)], user=65534, group=65534, extra_groups=[], env=env,
                               cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_changing_the_grader_files_is_refused_or_detected(tmp_path):
    code = """
        import os

        def tamper():
            target = os.path.join(os.path.dirname(__file__), "grader", "compare.py")
            try:
                os.chmod(os.path.dirname(target), 0o755)
                os.chmod(target, 0o644)
                with open(target, "w") as handle:
                    handle.write("def assert_close(*args, **kwargs):\\n    pass\\n")
                os.remove(os.path.join(os.path.dirname(target), "results.py"))
                return "changed"
            except OSError:  # PermissionError; in its own view, a read-only file system
                return "denied"
        """
    with make_sandbox(tmp_path, code) as sandbox:
        outcome = sandbox.call(probes.run, {"function": "tamper"})
        changed = sandbox.tampered()
    if outcome == "denied":  # a user of its own: the files are root's
        assert changed == []
    else:  # the same user as the grader: it could, and it is caught
        assert changed == ["grader/compare.py", "grader/results.py"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a cgroup of its own for the worker")
def test_memory_and_processes_are_limited_for_the_whole_process_tree(tmp_path):
    """Three children of 150 MiB each under a 300 MiB limit, and 40 processes under a limit of 20: each
    process alone is within the per-process limits (RLIMIT_AS), the tree is not (its cgroup)."""
    code = """
        import os, time

        def children(count, megabytes):
            pids = []
            for _ in range(count):
                try:
                    pid = os.fork()
                except BlockingIOError:  # fork refused: the process limit
                    break
                if pid == 0:
                    block = bytearray(megabytes * 2**20)
                    block[::4096] = b"x" * len(block[::4096])  # touched: resident
                    time.sleep(1)
                    os._exit(0)
                pids.append(pid)
            return [os.waitpid(pid, 0)[1] for pid in pids]
        """
    limits = replace(QUICK, memory_bytes=300 * 2**20, processes=20, user="never")  # root: only the group limits
    with make_sandbox(tmp_path, code, limits) as sandbox:
        assert sandbox.call(probes.run, {"function": "children", "count": 0, "megabytes": 0}) == []
        if not sandbox.notes["group"].startswith("a cgroup of its own"):
            pytest.skip(sandbox.notes["group"])
        statuses = sandbox.call(probes.run, {"function": "children", "count": 3, "megabytes": 150})
        assert any(os.WIFSIGNALED(s) and os.WTERMSIG(s) == 9 for s in statuses), statuses  # the OOM killer
        started = sandbox.call(probes.run, {"function": "children", "count": 40, "megabytes": 1})
        assert 0 < len(started) < 20, started


def test_a_compiled_file_planted_in_the_grader_folder_is_never_read(tmp_path):
    """As root on the whole filesystem (GRADER_USER=never, no view: the worst case), the code plants a compiled
    grader/__pycache__/wire.*.pyc that passes Python's check (the source's time and size); the next worker
    must still run the source (pycache_prefix points where no compiled file is)."""
    code = """
        import os, sys
        from importlib._bootstrap_external import _code_to_timestamp_pyc

        def plant():
            folder = os.path.join(os.path.dirname(__file__), "grader")
            source = os.path.join(folder, "wire.py")
            text = open(source).read() + "\\nPLANTED = True\\n"
            stat = os.stat(source)
            try:
                os.chmod(folder, 0o755)
                os.makedirs(os.path.join(folder, "__pycache__"), exist_ok=True)
                with open(os.path.join(folder, "__pycache__", f"wire.{sys.implementation.cache_tag}.pyc"), "wb") as handle:
                    handle.write(_code_to_timestamp_pyc(compile(text, source, "exec"), stat.st_mtime, stat.st_size))
            except OSError as error:
                return type(error).__name__
            return "planted"

        def planted():
            return getattr(sys.modules["grader.wire"], "PLANTED", False)
        """
    with make_sandbox(tmp_path, code, replace(QUICK, user="never", own_view=False)) as sandbox:
        assert sandbox.call(probes.run, {"function": "plant"}) == "planted"
        sandbox.recycle()
        assert sandbox.call(probes.run, {"function": "planted"}) is False


def test_workers_read_compiled_files_only_from_a_cache_no_other_user_can_write(tmp_path):
    """The workers' pycache_prefix (grader.bytecode): TensorFlow compiled once by the grader, not at every start;
    a folder another user could change is never used."""
    with make_sandbox(tmp_path, "import sys\ndef prefix():\n    return sys.pycache_prefix\n") as sandbox:
        prefix = Path(sandbox.call(probes.run, {"function": "prefix"}))
    assert prefix == bytecode.cache() and (prefix / bytecode.warm_marker()).exists()
    import tensorflow

    source = Path(tensorflow.__file__).resolve()
    compiled = prefix / source.parent.relative_to("/") / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
    assert compiled.is_file(), compiled
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    assert bytecode.cache(shared) is None
    assert bytecode.cache(shared / "below") is None  # a folder above it is writable by others



def test_a_cache_warmed_by_another_environment_is_warmed_again_for_this_one(tmp_path):
    """One cache serves several Pythons (a course venv, a handout's venv, a checkout at another path): the
    compiled files are kept by source path, so another environment's marker must not stop this one's warm-up."""
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (folder / f".warm-{sys.implementation.cache_tag}-another-environment").touch()
    assert bytecode.warm_marker() != f".warm-{sys.implementation.cache_tag}-another-environment"
    assert bytecode.cache(folder) == folder
    import numpy

    source = Path(numpy.__file__)
    assert (folder / source.parent.relative_to("/") / f"{source.stem}.{sys.implementation.cache_tag}.pyc").is_file()
    assert (folder / bytecode.warm_marker()).exists()

def test_a_run_whose_grader_files_changed_is_flagged_and_scores_0(tmp_path):
    """The runner flags the whole run (``Results.flagged``) when the worker changed its grader files."""
    student = tmp_path / "student"
    student.mkdir()
    (student / "maml.py").write_text(textwrap.dedent("""
        import os

        def tamper():
            target = os.path.join(os.path.dirname(__file__), "grader", "wire.py")
            os.chmod(os.path.dirname(target), 0o755)
            os.chmod(target, 0o644)
            with open(target, "a") as handle:
                handle.write("# changed")
            return "changed"
        """), encoding="utf-8")
    tests = tmp_path / "test_tampering.py"
    tests.write_text(textwrap.dedent(f"""
        import sys

        sys.path.insert(0, {str(ROOT / "tests")!r})
        import probes_isolation
        from grader.plugin import points


        @points(2)
        def test_tamper(student):
            \"\"\"a check the code passes while changing the grader's files\"\"\"
            assert student.call(probes_isolation.run, {{"function": "tamper"}}) == "changed"
        """), encoding="utf-8")
    results, output = runner.run_tests(tests, student_dir=student, timeout=300, env={"GRADER_USER": "never"})
    assert results.flagged, output
    assert [(t.points, t.status, t.message) for t in results.tests] == [
        (0.0, "failed", "not graded: the submission changed the grader's files")]
    assert results.problems == ["flagged for review: the submission's code changed the grader's files "
                                "(grader/wire.py); every check scores 0 and the course staff will review the "
                                "submission."]


def test_the_student_process_loads_neither_pytest_nor_the_grader_plugin(tmp_path):
    """The worker describes failures with grader.failures; pytest, the plugin and the sandbox stay in the grader."""
    code = """
        import sys

        def fail():
            raise ValueError("described in the worker")

        def loaded():
            import grader.probes  # what the public probes import

            return sorted(name for name in sys.modules if name.split(".")[0] in ("pytest", "_pytest", "grader"))
        """
    with make_sandbox(tmp_path, code) as sandbox:
        assert "ValueError: described in the worker" in failure(sandbox, "fail").message
        loaded = sandbox.call(probes.run, {"function": "loaded"})
    assert {"grader.failures", "grader.probes", "grader.worker"} <= set(loaded), loaded
    assert not [name for name in loaded if name.split(".")[0] in ("pytest", "_pytest")
                or name in ("grader.plugin", "grader.sandbox")], loaded


def test_the_student_process_gets_inputs_never_expected_results(tmp_path):
    """What a test sends is compare.inputs(fixture); the worker's folder holds no fixture or test."""
    for name in ("maml", "transfer"):
        fixture = compare.load_fixture(name)
        sent = compare.inputs(fixture)
        assert sent and set(sent) < set(fixture)
        assert not any(key.startswith(("inner/", "outer/", "grad_", "head/", "mistake/")) or key == "accuracy_query"
                       for key in sent)
    with make_sandbox(tmp_path, "x = 1\n") as sandbox:
        files = {p.relative_to(sandbox.workspace).as_posix() for p in sandbox.workspace.rglob("*") if p.is_file()}
    assert "maml.py" in files and "grader/wire.py" in files
    assert not any(f.endswith(".npz") or "/tests/" in f or f.startswith("instructor") for f in files), files


def same(a, b) -> bool:
    import numpy as np

    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, np.ndarray):  # other thread settings, other summation order: round-off apart
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-12)
    return a == b


def test_the_in_process_stand_in_gives_the_sandbox_answers(tmp_path):
    """Where no process sandbox exists (Windows) a student's local run calls probes in-process: same results,
    random numbers included (seeded before every probe, as in the worker)."""
    import numpy as np

    args = {"inputs": compare.inputs(compare.load_fixture("maml"))}
    with Sandbox(ROOT, limits=replace(QUICK, call_seconds=120.0)) as sandbox:
        isolated = sandbox.call(grader_probes.inner_loop, args)
        drawn = sandbox.call(probes.draw)
    local = InProcessSandbox(ROOT)
    assert same(local.call(grader_probes.inner_loop, args), isolated)
    np.random.rand(3)  # the tests' own process has drawn before: the probe must not see it
    assert local.call(probes.draw) == local.call(probes.draw) == drawn
    with pytest.raises(StudentFailure, match="AttributeError: module 'maml' has no attribute 'no_such_function'"):
        local.call(probes.run, {"function": "no_such_function"})


# ---------------------------------------------------------------- the whole grader on hostile code


@pytest.fixture(scope="module")
def reference_code(tmp_path_factory) -> Path:
    """The reference solution as a student would submit it (markers removed)."""
    from instructor.release import markers

    folder = tmp_path_factory.mktemp("reference")
    for name in ("maml.py", "maml_transfer.py"):
        (folder / name).write_text(markers.stub_source((ROOT / name).read_text(), name).solved, encoding="utf-8")
    return folder


def grade(folder: Path, subset: list[str] = SUBSET):
    results, output = runner.run_tests(student_dir=folder, extra=subset,
                                       env={"GRADER_CALL_SECONDS": "120", "GRADER_TOTAL_SECONDS": "600"})
    assert results.tests, output
    return results, output


def hostile_copy(reference_code: Path, tmp_path: Path, addition: str) -> Path:
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "maml_transfer.py").write_bytes((reference_code / "maml_transfer.py").read_bytes())
    (folder / "maml.py").write_text((reference_code / "maml.py").read_text() + textwrap.dedent(addition))
    return folder


FORGER = """
import json, os, sys, time

FORGED = {"version": "x", "problems": [], "notes": [], "tests": [
    {"id": "forged", "name": "forged", "max_points": 1000, "points": 1000, "status": "passed", "message": ""}]}


def forge():
    for pid in os.listdir("/proc"):  # every process it can see: the grader's pytest, if it can
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
        except OSError:
            continue
        for flag, value in zip(args, args[1:]):
            if flag == b"--grader-json":
                try:
                    with open(value.decode(), "w") as handle:
                        json.dump(FORGED, handle)
                except OSError:
                    pass


forge()
if __name__ == "__main__":  # the daemon (python -c FORGER token): keeps forging after the tests end
    end = time.time() + 120
    while time.time() < end:
        forge()
        time.sleep(0.005)
"""


def test_forged_results_files_and_a_forging_daemon_do_not_change_the_score(reference_code, tmp_path):
    """The code looks for the results path on every command line it can see and writes full marks there; a
    daemon with a clean environment in a session of its own keeps doing it (found by its command line)."""
    token = f"forger-{secrets.token_hex(8)}"
    folder = hostile_copy(reference_code, tmp_path, f"""

        import os as _os, sys as _sys

        exec({FORGER!r})
        if _os.fork() == 0:
            _os.setsid()
            if _os.fork() == 0:
                _os.execve(_sys.executable, [_sys.executable, "-c", {FORGER!r}, {token!r}], {{}})
            _os._exit(0)
        """)
    seen: set[int] = set()
    grading = threading.Event()

    def watch():
        while not grading.is_set():
            seen.update(processes_with(token))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        results, _ = grade(folder)
    finally:
        grading.set()
        watcher.join()
    assert [t.name for t in results.tests if t.name == "forged"] == []
    assert results.points == results.max_points == 5.0 and all(t.status == PASSED for t in results.tests)
    assert seen, "the forging daemon never started: the test would prove nothing"
    time.sleep(0.2)
    assert not processes_with(token)


def test_monkeypatched_tensorflow_numpy_and_grader_cannot_pass_wrong_code(reference_code, tmp_path):
    """A missing inner_loop plus patches of everything the worker could use to judge it still scores 0."""
    folder = hostile_copy(reference_code, tmp_path, """

        import numpy as _np
        import tensorflow as _tf
        import grader.compare as _compare
        import grader.failures as _failures

        _np.allclose = _np.array_equal = lambda *args, **kwargs: True
        _tf.GradientTape.gradient = lambda self, target, sources, *args, **kwargs: (
            {name: _tf.zeros_like(value) for name, value in sources.items()} if isinstance(sources, dict)
            else [_tf.zeros_like(value) for value in sources])
        _compare.assert_close = _compare.assert_parameters_close = _compare.assert_shape = lambda *args, **kwargs: None
        _failures.describe_failure = lambda error: ("passed", "")


        def _missing(self, images, labels, train):
            raise NotImplementedError("MAML.inner_loop is not implemented yet")


        MAML.inner_loop = _missing
        """)
    results, _ = grade(folder)
    by_name = {t.name.split(":")[0]: t for t in results.tests}
    assert results.points == 0, [(t.name, t.points, t.message) for t in results.tests]
    assert by_name["inner_loop"].status != PASSED and by_name["inner_loop"].message
    assert "differs from the reference" in by_name["transfer_learn"].message
    assert json.loads(results.to_json())["tests"]  # a complete, valid record


def test_nan_results_fail_with_a_reason(reference_code, tmp_path):
    folder = hostile_copy(reference_code, tmp_path, """

        import tensorflow as _tf

        _reference_inner_loop = MAML.inner_loop


        def _nan_inner_loop(self, images, labels, train):
            parameters, accuracies = _reference_inner_loop(self, images, labels, train)
            return {name: value * _tf.constant(float("nan"), value.dtype) for name, value in parameters.items()}, accuracies


        MAML.inner_loop = _nan_inner_loop
        """)
    results, _ = grade(folder, ["-k", "inner_loop_adapted or inner_loop_support"])
    by_name = {t.name: t for t in results.tests}
    adapted = by_name["inner_loop: adapted parameters match the reference"]
    assert adapted.points == 0 and "contains NaN or infinity" in adapted.message
    assert by_name["inner_loop: support accuracies match the reference"].status == PASSED
