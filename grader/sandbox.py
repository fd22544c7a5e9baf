"""Runs student code in a separate, limited process; expected values never leave the grader.

The graded tests run in a process that never imports student code. When a
test needs the student's numbers it calls a *probe* in the sandbox::

    result = student.call(probes.inner_loop, compare.inputs(fixture))

A probe is a function in a grader module (``grader/probes.py``, or a module
beside the hidden tests) that receives the inputs (plain values and numpy
arrays), calls the student's code and returns what it computed. It runs in
the worker process (``grader/worker.py``), which gets only those inputs; the
test then compares the returned numbers with the expected ones in the grader's
process. Whatever the student's code does there can make its own checks fail,
never pass: the verdicts are computed here.

The worker's folder (a fresh temporary folder per sandbox) holds a copy of
the student's code files, ``load_data.py`` and the grader's Python modules
(never the tests or fixtures), read-only, plus a writable home folder. Limits
(``Limits``): time per call and in total, memory (address space), CPU time,
size of written files, printed output (kept: the first and last
``output_bytes / 2``; the rest is counted and dropped), processes, and size
of the answers. The worker also cuts itself off the network, enters a
filesystem view of its own (``grader/mounts.py``) and runs in a PID namespace
of its own (``process_namespace``: all it started ends with it); as root it
then switches to a uid of its own (see ``grader/worker.py``) and joins a
cgroup of its own (``grader.container.Group``: memory and processes of the
whole tree), and for a grader that is not root it does this as root of a user
namespace of its own and then drops every capability. ``notes`` says what was
achieved on this machine.

One TensorFlow at a time: a grading container may have room for one
TensorFlow process only (Gradescope's default: 768 MB), so starting a worker
stops any other worker of this process first (``Limits.exclusive``). The
hidden tests' trusted measurements run in a *reference worker*
(``Sandbox.reference()``: the solved reference, never student code, as the
grader's own user, any module's function as a probe), which takes turns with
the student's worker this way; the tests are ordered so that it happens once.

If the worker dies, hangs or sends garbage, the call raises
``StudentFailure`` with the reason and the next call starts a new worker
(at most ``Limits.max_starts`` in all).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from grader import budget, bytecode, container, wire, worker
from grader.failures import SandboxError, StudentFailure, StudentTimeout, describe_failure
from grader.files import GRADER_DIR, ROOT, STUDENT_FILES, file_digests, sha256

SCAFFOLD_FILES = ("load_data.py", "settings.py", "runs.py", "scaffold.py", "training.py")  # provided: the grader's copy
BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); from grader import worker; "
        "worker.main(sys.argv[2])")
UID_RANGE = (1_900_000_000, 2_000_000_000)  # far above any account: a uid of its own per sandbox
_LIVE: list["Sandbox"] = []  # workers running in this process (at most one with Limits.exclusive)
_TF_NOISE = re.compile(r"^([IWE]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")
# Kept free for the grading's other processes (measured in a 768 MB container: ~70 MiB besides the worker,
# this process included) and their growth.
RESIDENT_RESERVE = 80 * 2**20
# The least a worker gets: `python -c "import tensorflow"` alone holds ~205 MiB of anonymous memory (TF 2 on
# CPU, measured); the grader's checks need more than that, so a container this small cannot grade well anyway.
RESIDENT_FLOOR = 256 * 2**20
WATCH_SECONDS = (0.2, 0.05)  # how often the watchdog samples the worker's memory: below / above 3/4 of the limit


@dataclass(frozen=True)
class Limits:
    """Limits of one sandbox; every field can be set from the environment as GRADER_<FIELD>.

    Attributes:
        call_seconds: wall-clock time of one probe call.
        total_seconds: wall-clock time of everything the sandbox runs (starts included).
        startup_seconds: time for a worker to start (not the student's code).
        memory_bytes: address space of the worker (RLIMIT_AS; TensorFlow alone reserves ~1.5 GB) and, as root,
            the memory of its whole process tree (its cgroup).
        cpu_seconds: CPU time of one worker (RLIMIT_CPU), all its threads together.
        file_bytes: the largest file the student's code may write (RLIMIT_FSIZE).
        disk_bytes: the size of each private folder of the worker's own filesystem view (its home folder and
            ``/tmp``, both tmpfs; ``grader.mounts``): what all its files together may take.
        processes: processes and threads of the worker's uid (RLIMIT_NPROC; only with a uid of its own) and,
            as root, of its whole process tree (its cgroup, ``grader.container.Group``).
        output_bytes: printed output kept for the log (first and last halves).
        message_bytes: the largest answer accepted from the worker.
        max_starts: workers started at most (a crash ends one; the next call starts another).
        user: "auto" or "always": as root, the student's code runs as a uid of its own, and a worker
            whose uid could not read Python or ``readable`` is not started (``SandboxError`` with the fix);
            "never": it runs as the grader's own user, root included (only for one's own code; see
            ``grader.worker.harden``).
        isolate_network: cut the worker off the network where the OS allows.
        own_view: give the worker a view of the filesystem of its own where the OS allows (as root, or in a
            user namespace; ``grader.mounts``); False shows what the other protections do without it.
        exclusive: starting a worker stops every other worker of this process (one TensorFlow at a time).
        resident_bytes: resident memory of the worker's process tree; 0: derived from the container, see
            ``grader.container`` and ``resident_limit``; negative: none. A worker above it is killed and the
            call fails with "your code used more than N MB" (the next call starts a new worker).
    """

    call_seconds: float = 300.0  # = the per-test timeout of grader/pytest.ini
    total_seconds: float = 2400.0  # Gradescope's longest timeout; the grading's own budget is grader.budget
    startup_seconds: float = 120.0
    memory_bytes: int = 8 * 2**30
    cpu_seconds: float = 7200.0
    file_bytes: int = 256 * 2**20
    disk_bytes: int = 1 * 2**30
    processes: int = 1024
    output_bytes: int = 256 * 2**10
    message_bytes: int = 512 * 2**20
    max_starts: int = 8
    user: str = "auto"
    isolate_network: bool = True
    own_view: bool = True
    exclusive: bool = True
    resident_bytes: int = 0

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Limits":
        """Defaults, then GRADER_<FIELD> variables (e.g. GRADER_CALL_SECONDS=60), then ``overrides``."""
        environ = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            text = environ.get(f"GRADER_{field.name.upper()}")
            if text is None:
                continue
            kind = type(getattr(cls, field.name))
            try:
                values[field.name] = (text.lower() in ("1", "true", "yes")) if kind is bool else kind(text)
            except ValueError:
                raise SandboxError(f"GRADER_{field.name.upper()}={text!r} is not a {kind.__name__}") from None
        limits = replace(cls(), **values, **overrides)
        if limits.user not in ("auto", "always", "never"):
            raise SandboxError(f"GRADER_USER must be auto, always or never, not {limits.user!r}")
        return limits


def resident_limit(limits: Limits) -> int | None:
    """The resident memory a worker may use (bytes), or None: no limit beyond ``Limits.memory_bytes``.

    ``limits.resident_bytes`` when it is set; else the container's memory limit
    (its cgroup) minus what this grader process holds now minus
    ``RESIDENT_RESERVE``, at least ``RESIDENT_FLOOR``; no container limit: None.
    """
    if limits.resident_bytes:
        return limits.resident_bytes if limits.resident_bytes > 0 else None
    total = container.memory_limit_bytes()
    if total is None:
        return None
    return max(total - container.own_resident_bytes() - RESIDENT_RESERVE, RESIDENT_FLOOR)


class _OutputTail:
    """Drains a pipe in a thread, keeping the first and last bytes of what came through."""

    def __init__(self, pipe, keep: int):
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0
        self.keep = max(keep // 2, 1)
        self.thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self.thread.start()

    def _drain(self, pipe) -> None:
        fd = pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.total += len(chunk)
            room = self.keep - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            if chunk:
                self.tail.append(chunk)
                self.tail_size += len(chunk)
                while self.tail_size - len(self.tail[0]) >= self.keep:
                    self.tail_size -= len(self.tail.popleft())
        pipe.close()

    def text(self) -> str:
        tail = b"".join(self.tail)[-self.keep:]
        dropped = self.total - len(self.head) - len(tail)
        middle = f"\n[... {dropped} bytes of output not kept ...]\n".encode() if dropped > 0 else b""
        return (bytes(self.head) + middle + tail).decode("utf-8", errors="replace")

    def last_lines(self, count: int = 6, width: int = 300) -> str:
        lines = [line[:width] for line in self.text().strip().splitlines()[-count:]]
        return "\n".join(lines)


def _make_read_only(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    folder.chmod(0o555)


def _remove(folder: Path) -> None:
    def writable_again(function, path, _):
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        function(path)

    shutil.rmtree(folder, onerror=writable_again)


def _interop_threads() -> str:
    """TensorFlow's inter-op threads in a worker: 2, or 1 in a container of at most one CPU, where a second
    thread gains nothing and running independent ops side by side costs memory (measured: FO-MAML training
    peaks at 575 MiB with 1 thread and 623 MiB with 2, with MALLOC_ARENA_MAX=2)."""
    quota = container.cpu_quota()
    return "1" if quota is not None and quota <= 1 else "2"


def process_namespace() -> tuple[list[str], str]:
    """(the command that starts the worker in a PID namespace of its own, or [], a note on what happened).

    As root on Linux, util-linux's ``unshare --pid --fork --kill-child`` starts
    ``sh`` as the namespace's first process, which runs the worker and ends
    when it ends (its exit status 128 + N: the worker was killed by signal N);
    then the kernel ends every process in the namespace, a daemon that left the
    worker's session included. Nothing there can see or signal the grader's
    processes. (The worker itself is not the first process: that one ignores
    even SIGKILL sent from inside, so code that kills its own process would
    hang instead of ending.)

    A grader that is not root does the same inside a user namespace of its own
    (``--user --map-root-user``, where the system allows ordinary users one):
    the worker starts as its root, which is the grader's user outside, builds
    its filesystem view and drops every capability (``grader.worker.harden``).
    """
    tool = shutil.which("unshare")
    command = ["--pid", "--fork", "--kill-child", "/bin/sh", "-c", '"$@"; exit $?', "sh"]
    if not sys.platform.startswith("linux"):
        why = sys.platform
    elif tool is None:
        why = "no unshare command"
    elif os.geteuid() == 0:
        return [tool, *command], "a PID namespace of its own: all end with the worker"
    elif _user_namespaces(tool):
        return ([tool, "--user", "--map-root-user", *command],
                "a PID namespace of its own, in a user namespace of its own (the grader is not root): all end "
                "with the worker")
    else:
        why = "the grader is not root, and this system gives ordinary users no user namespace"
    return [], f"shared with the system ({why}): the grader ends the worker's process group, uid and marked ones"


@functools.cache
def _user_namespaces(tool: str) -> bool:
    """Whether this user may start a process in a user and PID namespace of its own (e.g. Ubuntu 24.04's
    AppArmor refuses ordinary users by default, as do many containers)."""
    try:
        return subprocess.run([tool, "--user", "--map-root-user", "--pid", "--fork", "true"], timeout=60,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _kill_marked(marker: bytes) -> int:
    """Kills every process whose environment holds ``marker`` (the sandbox's token); returns how many.

    Catches what the student's code forked into a session of its own, unless it
    also replaced its environment with exec.
    """
    killed = 0
    if not Path("/proc").is_dir():  # e.g. macOS: the process group and the uid are all there is
        return killed
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):
            continue
    return killed


def _kill_uid(uid: int) -> None:
    """Kills every process of ``uid`` (a sandbox's own uid): kill(-1) sent as that uid."""
    for _ in range(3):  # a process may fork while the first signal goes out
        subprocess.run(["/bin/kill", "-KILL", "-1"], user=uid, group=uid, extra_groups=[],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


@functools.cache
def _bytecode_cache() -> Path | None:
    """The workers' compiled-file cache (grader.bytecode), looked up (and warmed) once per grader process."""
    return bytecode.cache()


def code_digest(folder: Path) -> str:
    """sha256 of the student's files (``STUDENT_FILES``: their names and ``file_digests``) in ``folder``: what
    grading seeds are keyed on (``instructor/autograder/tests/seeds.py``)."""
    digests = file_digests(*(folder / name for name in STUDENT_FILES), root=folder)
    return sha256(json.dumps(digests, sort_keys=True).encode())


class Sandbox:
    """One student's code in a worker process; see the module docstring.

    Args:
        student_dir: where the student's code files are (only ``STUDENT_FILES`` are taken).
        limits: default ``Limits.from_env()``.
        readable: more files or folders the student's code reads (e.g. the
            Omniglot cache); their readability by the worker's uid is checked.
        env: more environment variables for the worker.
    """

    def __init__(self, student_dir: str | os.PathLike | None, *, limits: Limits | None = None,
                 readable: tuple[str, ...] = (), env: dict[str, str] | None = None, trusted: bool = False):
        self.trusted = trusted
        self.limits = limits or Limits.from_env()
        self.started = time.monotonic()
        self.deadline = self.started + self.limits.total_seconds
        self.job = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        token = secrets.token_hex(8)  # the worker can use its folders, not list the job folder
        self.workspace = self.job / f"code-{token}"
        self.scratch = self.job / f"home-{token}"
        self.readable = [str(Path(p).resolve()) for p in readable]
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.output: _OutputTail | None = None
        self.outputs: list[str] = []  # the output of every worker that ended
        self.starts = 0
        self.forgiven = 0  # stops that do not count against max_starts: another worker's turn, a recycle, a
        # time limit (the time budget governs time; max_starts is there for code that keeps crashing the worker)
        self.label = ""  # the check running now (set by the plugin), for messages
        self.code_digest = ""  # ``code_digest`` of the student's files as copied in (_build), before any ran
        self.notes: dict = {}
        self.peaks: list[int] = []  # peak resident memory of every worker started (bytes, sampled)
        self._over_memory = 0  # the watchdog killed the current worker at this resident memory
        self._resident_limit: int | None = None
        self._oom_kills: int | None = None  # the container's OOM kill count when the worker started
        self._probes: dict[str, str] = {}  # probe module file -> module name in the worker
        self._namespace, self._processes_note = ([], "the grader's (reference worker)") if trusted else \
            process_namespace()
        self._uid = secrets.randbelow(UID_RANGE[1] - UID_RANGE[0]) + UID_RANGE[0]
        self._marker = f"GRADER_SANDBOX={token}"
        self._view_root = self.job / f"view-{token}"  # where the worker builds its filesystem view
        self._no_bytecode = self.job / f"bytecode-{token}"  # never created: no compiled file is read
        try:
            if trusted:
                self.workspace = ROOT  # the grader's own files: the reference worker imports from there
                (self.scratch / "tmp").mkdir(parents=True)
                self.scratch.chmod(0o700)
            else:
                self._build(Path(student_dir))
        except BaseException:
            _remove(self.job)
            raise

    @classmethod
    def reference(cls, *, limits: Limits | None = None, env: dict[str, str] | None = None) -> "Sandbox":
        """A worker for the grader's trusted measurements (the solved reference; no student code ever runs there)."""
        limits = replace(limits or Limits.from_env(), user="never", isolate_network=False)
        return cls(None, limits=limits, env=env, trusted=True)

    # ------------------------------------------------------------ folders

    def _build(self, student_dir: Path) -> None:
        self.job.chmod(0o711)
        self._view_root.mkdir(mode=0o700)
        self.workspace.mkdir()
        (self.scratch / "tmp").mkdir(parents=True)
        self.scratch.chmod(0o700)
        for name in STUDENT_FILES:  # a missing one is reported by the probes that import it
            if (student_dir / name).is_file():
                shutil.copyfile(student_dir / name, self.workspace / name)
        self.code_digest = code_digest(self.workspace)
        for name in SCAFFOLD_FILES:
            if (ROOT / name).is_file():
                shutil.copyfile(ROOT / name, self.workspace / name)
        (self.workspace / "grader").mkdir()
        for source in GRADER_DIR.glob("*.py"):
            shutil.copyfile(source, self.workspace / "grader" / source.name)
        if (GRADER_DIR / "VERSION").is_file():
            shutil.copyfile(GRADER_DIR / "VERSION", self.workspace / "grader" / "VERSION")
        _make_read_only(self.workspace)
        self._grader_files = self._grader_digest()

    def _grader_digest(self) -> dict[str, str]:
        """Digests of the grader's files in the worker's folder (everything but the student's files)."""
        if self.trusted or not self.workspace.is_dir():
            return {}
        return {p: d for p, d in file_digests(self.workspace, root=self.workspace).items()
                if p not in STUDENT_FILES}

    def tampered(self) -> list[str]:
        """The grader's files in the worker's folder that were changed, added or removed (call before close)."""
        now = self._grader_digest()
        return sorted(p for p in set(now) | set(self._grader_files) if now.get(p) != self._grader_files.get(p))

    def _probe_name(self, probe) -> str:
        """``module:function`` of a probe in the worker; a probe module outside grader/ is copied in."""
        if isinstance(probe, str):
            return probe
        if self.trusted:
            return f"{probe.__module__}:{probe.__qualname__}"
        source = Path(inspect.getsourcefile(probe)).resolve()
        name = f"{probe.__qualname__}"
        if source.parent == GRADER_DIR:
            return f"grader.{source.stem}:{name}"
        if str(source) not in self._probes:
            module = f"probes_{source.stem}" if not source.stem.startswith("probes_") else source.stem
            target = self.workspace / "grader" / f"{module}.py"
            if target.exists():
                raise SandboxError(f"two probe modules would be called {module}: rename {source}")
            folder = self.workspace / "grader"
            folder.chmod(0o755)
            try:
                shutil.copyfile(source, target)
                target.chmod(0o444)
            finally:
                folder.chmod(0o555)
            self._grader_files.update(file_digests(target, root=self.workspace))  # ours, not tampering
            self._probes[str(source)] = f"grader.{module}"
        return f"{self._probes[str(source)]}:{name}"

    # ------------------------------------------------------------ worker

    def _env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "OMNIGLOT_DATA_DIR", "TF_CPP_MIN_LOG_LEVEL")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        home = str(self.scratch)
        env.update({
            "HOME": home, "TMPDIR": f"{home}/tmp", "MPLCONFIGDIR": f"{home}/.matplotlib", "MPLBACKEND": "Agg",
            "PYTHONHASHSEED": "0",  # -I ignores the PYTHON* variables; they are for what the code starts
            "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"), "CUDA_VISIBLE_DEVICES": "",
            "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": _interop_threads(),
            "TF_DETERMINISTIC_OPS": "1",
            "MALLOC_ARENA_MAX": "2",  # glibc's per-thread arenas hold ~50 MB more in a TensorFlow process
        })
        env.update(dict([self._marker.split("=", 1)]))
        env.update({k: v for k, v in self.extra_env.items() if k != "GRADER_SANDBOX"})
        return env

    def _start(self) -> None:
        if self.limits.exclusive:
            for other in [w for w in _LIVE if w is not self]:
                other.forgiven += 1
                other._stop()
        if self.starts - self.forgiven >= self.limits.max_starts:
            raise StudentFailure("error", f"not run: the process running your code already ended "
                                          f"{self.starts} times; fix the errors reported for earlier checks first.")
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        limits = self.limits
        self._over_memory, self._oom_kills = 0, container.oom_kills()
        self._group = None if self.trusted or os.geteuid() != 0 else \
            container.Group(f"{self.job.name}-{self.starts}", limits.memory_bytes, limits.processes)
        self._resident_limit = None if self.trusted else resident_limit(limits)  # the reference: watched only
        config = {
            "workspace": str(self.workspace), "scratch": str(self.scratch), "readable": self.readable,
            "view_root": str(self._view_root) if limits.own_view and not self.trusted else None,
            "bytecode": str(_bytecode_cache() or ""),
            "pid_namespace": bool(self._namespace), "user_namespace": "--user" in self._namespace,
            "cgroups": [str(path) for path in self._group.paths] if self._group else [],
            "request_fd": request_read, "response_fd": response_write,
            "user": limits.user, "uid": self._uid, "gid": self._uid, "isolate_network": limits.isolate_network,
            "trusted": self.trusted,
            "limits": {"memory_bytes": limits.memory_bytes, "cpu_seconds": limits.cpu_seconds,
                       "file_bytes": limits.file_bytes, "processes": limits.processes,
                       "disk_bytes": limits.disk_bytes},
        }
        # -B writes no compiled file and pycache_prefix makes Python read them only from the grader's own cache
        # (grader.bytecode; a compiled file planted in grader/__pycache__ is never read); the PID namespace
        # (process_namespace) ends every process the student's code started when the worker ends
        prefix = _bytecode_cache() or self._no_bytecode
        python = [sys.executable, "-I", "-B", "-X", f"pycache_prefix={prefix}", "-u"]
        try:
            self.process = subprocess.Popen(
                [*self._namespace, *python, "-c", BOOT, str(self.workspace), json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.scratch,
                env=self._env(), pass_fds=(request_read, response_write), start_new_session=True)
        finally:
            os.close(request_read)
            os.close(response_write)
        _LIVE.append(self)
        self.starts += 1
        self.peaks.append(0)
        threading.Thread(target=self._watch, args=(self.process, self._resident_limit, len(self.peaks) - 1),
                         daemon=True).start()
        self._request, self._response = request_write, response_read
        self.output = _OutputTail(self.process.stdout, self.limits.output_bytes)
        deadline = min(time.monotonic() + limits.startup_seconds, self.deadline)
        try:
            hello = wire.read_message(self._response, max_bytes=2**20, deadline=deadline)["hello"]
        except (TimeoutError, EOFError, wire.WireError, KeyError, TypeError) as error:
            self._stop()
            raise SandboxError(f"the grader could not start the process for the student's code "
                               f"({type(error).__name__}):\n{self.outputs[-1][-2000:]}") from None
        if hello.get("refused"):  # e.g. GRADER_USER=always, and that user could not read Python
            self._stop()
            raise SandboxError(f"the grader could not start the process for the student's code: "
                               f"{hello['refused']}")
        self.notes = {key: hello.get(key) for key in ("uid", "own_uid", "account", "network", "view",
                                                      "limits_refused")}
        self.notes["processes"] = self._processes_note
        self.notes["group"] = self._group.note if self._group else "no cgroup of its own (the grader is not root)"
        self.notes.update(resident_limit=self._resident_limit, resident_peaks=self.peaks)

    def _watch(self, process: subprocess.Popen, limit: int | None, index: int) -> None:
        """Samples the resident memory of the worker's session until it ends; kills it above ``limit``."""
        while process.poll() is None:
            used = container.resident_bytes(process.pid)  # the worker leads a session of its own
            self.peaks[index] = max(self.peaks[index], used)
            if limit is not None and used > limit and process.poll() is None:
                if self.process is process:
                    self._over_memory = used
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                return
            time.sleep(WATCH_SECONDS[limit is not None and used > limit * 3 // 4])

    def _stop(self) -> None:
        """Ends the worker and everything it started."""
        process, self.process = self.process, None
        if self in _LIVE:
            _LIVE.remove(self)
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.notes.get("own_uid") and os.geteuid() == 0:
            _kill_uid(int(self.notes["uid"]))
        _kill_marked(self._marker.encode())
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if self._group is not None:
            self._group.remove()
        for fd in (self._request, self._response):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.output is not None:
            self.output.thread.join(timeout=2)  # a process that escaped may still hold the pipe
            self.outputs.append(self.output.text())

    def recycle(self) -> None:
        """Stops the worker, not for a fault of the code: the next call starts a fresh one, with none of the
        memory the earlier calls left behind (a grading container may have little)."""
        if self.process is not None:
            self.forgiven += 1
            self._stop()

    def close(self) -> None:
        """Stops the worker and removes the sandbox's folders."""
        self._stop()
        if self.job.exists():
            _remove(self.job)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ calls

    def call(self, probe, args: dict | None = None, *, timeout: float | None = None):
        """Runs ``probe(**args)`` in the worker and returns its result.

        Args:
            probe: a probe function (in grader/ or a module beside the tests) or "grader.module:function".
            args: keyword arguments: plain values and numpy arrays.
            timeout: seconds for this call (default ``Limits.call_seconds``).

        Raises:
            StudentFailure: the student's code raised, ended the process, ran
                too long, or sent back something unreadable.
        """
        name = self._probe_name(probe)
        what = name.split(":")[-1]
        if time.monotonic() >= self.deadline or budget.left() <= 0:
            raise StudentFailure("error", budget.spent_message([]) if budget.left() <= 0 else
                                 f"not run: the grader's total time limit of {self.limits.total_seconds:g} s was "
                                 f"used up by earlier checks.")
        if self.process is None:
            self._start()
        wanted = timeout or budget.call_limit(self.limits.call_seconds)
        limit = max(min(wanted, self.deadline - time.monotonic(), budget.left()), 0.0)
        message = wire.encode({"probe": name, "args": args or {}})
        done = False
        try:
            deadline = time.monotonic() + limit
            self._send(message, deadline)
            answer = wire.read_message(self._response, max_bytes=self.limits.message_bytes, deadline=deadline)
            done = True
        except TimeoutError:
            self.forgiven += 1  # stopped below (done is False): by the limit, not a crash
            if limit < wanted:
                raise StudentTimeout("error", f"not finished after {limit:.0f} s, when the time budget of the whole "
                                              f"grading ran out: look for an endless loop, or work repeated far more "
                                              f"often than needed.") from None
            raise StudentTimeout("error", f"took longer than {limit:.0f} s, the limit of this check: look for "
                                          f"an endless loop, or work repeated far more often than needed.") from None
        except (EOFError, BrokenPipeError):
            raise StudentFailure("error", self._death(what)) from None
        except wire.WireError as error:
            raise StudentFailure("error", f"the grader could not read what came back from {what} ({error}): "
                                          f"does your code write to file descriptors it did not open?") from None
        finally:
            if not done:
                self._stop()
        if isinstance(answer, dict) and "result" in answer:
            return answer["result"]
        failure = answer.get("failure") if isinstance(answer, dict) else None
        if isinstance(failure, dict) and isinstance(failure.get("message"), str):
            raise StudentFailure(str(failure.get("status")), failure["message"])
        self._stop()
        raise StudentFailure("error", f"the grader got an answer it does not understand from {what}.")

    def _send(self, message: bytes, deadline: float) -> None:
        import select

        view = memoryview(message)
        while view:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self._request], [], left)[1]:
                raise TimeoutError
            view = view[os.write(self._request, view[:65536]):]

    def _death(self, what: str) -> str:
        process = self.process
        code = None
        if process is not None:
            try:
                code = process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        if code is not None and code > 128 and self._namespace:  # sh's way of saying "killed by a signal"
            code = 128 - code
        over_memory, limit, group = self._over_memory, self._resident_limit, self._group
        oom_killed = code == -signal.SIGKILL and (
            (self._oom_kills is not None and (container.oom_kills() or 0) > self._oom_kills)
            or (group is not None and group.oom_kills() > 0))  # read before _stop removes the group
        self._stop()
        lines = self.outputs[-1].strip().splitlines() if self.outputs else []
        tail = [line for line in lines if not _TF_NOISE.match(line)][-6:]
        total = container.memory_limit_bytes()
        if self.trusted:  # the reference: none of the student's code runs there
            how = ("ran out of memory" + (f" (the grading container has {total // 2**20} MB for everything)"
                                          if total else "")) if code == -signal.SIGKILL and oom_killed else \
                f"ended (exit status {code})"
            return (f"the grader's own measurement ({what}) did not finish: the process running the reference "
                    f"solution {how}. This is not your code: tell the course staff (README of the autograder: the "
                    f"container to choose).")
        if code == -signal.SIGKILL and (over_memory or oom_killed):
            has = f" (the grading container has {total // 2**20} MB for everything)" if total else ""
            who, used = (("the grader", f"{limit // 2**20} MB of memory") if over_memory and limit else
                         ("the system", "the container's memory limit"))
            text = (f"your code used more than {used} in {self.label or what}: {who} stopped it{has}. "
                    f"Look for lists or arrays that grow without bound, or tensors kept from every iteration.")
        elif code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
            reason = {
                "SIGXCPU": f"it used more than {self.limits.cpu_seconds:g} s of CPU time",
                "SIGKILL": "it was killed (SIGKILL): by your code, or by the system for using too much memory",
                "SIGSEGV": "it crashed (segmentation fault)",
                "SIGABRT": "it aborted (SIGABRT), often a TensorFlow error or running out of memory",
            }.get(name, f"it was stopped by {name}")
            text = f"the process running your code ended while running {what}: {reason}."
        elif code is not None:
            text = (f"the process running your code ended with exit status {code} while running {what}: your "
                    f"code must not end the process (os._exit, sys.exit in a thread, os.kill, ...).")
        else:
            text = f"the process running your code closed its channel to the grader while running {what}."
        if tail:
            text += "\nLast output:\n" + "\n".join(line[:200] for line in tail)
        return text

    # ------------------------------------------------------------ reporting

    def log_text(self) -> str:
        """What the sandbox achieved and the student's output, for the instructor's log."""
        notes = self.notes or {}
        refused = f" (refused by the system: {', '.join(notes['limits_refused'])})" if notes.get("limits_refused") else ""
        lines = [f"sandbox: user {notes.get('account', '(never started)')}; network "
                 f"{notes.get('network', '(never started)')}; filesystem {notes.get('view', '(never started)')}; "
                 f"processes {notes.get('processes', '(never started)')}; {self.starts} worker start(s); limits{refused} "
                 + json.dumps({k: v for k, v in asdict(self.limits).items()
                               if k in ("call_seconds", "total_seconds", "memory_bytes", "cpu_seconds")})]
        if self.peaks:
            limit = self._resident_limit
            lines.append(f"sandbox memory: resident limit {f'{limit // 2**20} MiB' if limit else 'none'}; "
                         + ", ".join(f"worker {n}: peak resident memory {peak / 2**20:.0f} MiB"
                                     for n, peak in enumerate(self.peaks, 1)))
        outputs = self.outputs + ([self.output.text()] if self.process is not None and self.output else [])
        for number, text in enumerate(outputs, 1):
            if text.strip():
                lines.append(f"--- output of worker {number} ---\n{text.rstrip()}")
        return "\n".join(lines)


class InProcessSandbox:
    """The stand-in where the process sandbox cannot run (Windows): probes run in the tests' own process.

    Only for students checking their own work with ``python -m grader`` (their
    code on their machine); ``grader.gradescope`` never uses it. Results still
    make the round trip through ``grader.wire``, so the tests see exactly what
    the sandbox would give them (arrays, not tensors), and failures become the
    same ``StudentFailure`` messages, and every probe starts from the same random
    state as in a worker. Time limits are pytest-timeout's.
    """

    def __init__(self, student_dir: str | os.PathLike, **ignored):
        if Path(student_dir).resolve() != ROOT.resolve():
            raise SandboxError(f"without a process sandbox only the code in {ROOT} can be tested, not {student_dir}")
        self.limits = Limits()
        self.starts = 0
        self.code_digest = code_digest(ROOT)
        self.notes = {"account": "the grader's own process (no process sandbox on this system; the autograder "
                                 "isolates your code)", "network": "not isolated", "own_uid": False}

    def call(self, probe, args: dict | None = None, *, timeout: float | None = None):
        import importlib

        if isinstance(probe, str):
            module, _, name = probe.partition(":")
            probe = importlib.import_module(module)
            for part in name.split("."):
                probe = getattr(probe, part)
        self.starts = 1
        worker.seed_unless_continued(f"{probe.__module__}:{probe.__qualname__}", probe)  # as a worker does
        try:
            result = probe(**(args or {}))
        except (Exception, SystemExit) as error:  # noqa: BLE001 - the student's failures become messages
            raise StudentFailure(*describe_failure(error)) from None
        return wire.loads(wire.encode({"result": result}))["result"]

    def tampered(self) -> list[str]:
        return []

    def recycle(self) -> None:
        pass

    def log_text(self) -> str:
        return f"sandbox: none: student code ran in {self.notes['account']}"

    def close(self) -> None:
        pass


def open_sandbox(student_dir: str | os.PathLike, **options):
    """A ``Sandbox`` where processes can be isolated (Linux, macOS), else an ``InProcessSandbox``.

    ``GRADER_ISOLATION=process`` (the autograder sets it) makes a missing
    sandbox an error instead of a fallback.
    """
    if os.name == "posix":
        return Sandbox(student_dir, **options)
    if os.environ.get("GRADER_ISOLATION") == "process":
        raise SandboxError(f"the autograder needs a POSIX system (Linux) to isolate student code, not {os.name}")
    return InProcessSandbox(student_dir, **options)
