"""The process that runs student code: started by ``grader.sandbox``, never by hand.

It starts as grader code and hardens itself before any student code is
imported, using only the standard library until then:

1. resource limits (``resource.setrlimit``): address space (memory), CPU
   seconds, size of any file written, no core dumps, and, when it runs under a
   uid of its own, the number of processes;
2. no network: a new, empty network namespace (``unshare(CLONE_NEWNET)``; as
   an ordinary user together with a user namespace), when the kernel allows;
3. when started as root: a view of the filesystem of its own
   (``grader.mounts``: Python, the data and its code read-only, private
   tmpfs for its home folder and /tmp, nothing else), then a uid and gid of
   its own (no other process or file has them), no supplementary groups, and
   a check that root cannot be regained; where that uid could not read
   Python, nothing runs (``refused``) unless GRADER_USER=never. When the
   grader is not root, it starts the worker as root of a user namespace of
   its own (``grader.sandbox.process_namespace``), where it builds the same
   view, then drops every capability: the student's code runs as the
   grader's user, with no privilege, seeing only its view;
4. ``PR_SET_PDEATHSIG``: it dies with the grader.

Then it reports what it achieved (``hello``) and serves requests: each names a
*probe*, a grader function (``module:function``) that calls the student's
code, and its arguments; the answer is the probe's return value
(``grader.wire``) or ``{"failure": {status, message}}`` saying what the
student's code did (``grader.failures``, the same messages as in the grader's
process). Expected values never come here: the grader compares in its own
process. Nor does pytest: the worker loads the grader's probes, wire format
and failure descriptions, and what the student's code imports.
"""

from __future__ import annotations

import ctypes
import json
import os
import random  # imported here, while the Python installation is surely readable (used by seed_random_state)
import resource
import signal
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
CAPABILITY_VERSION_3 = 0x20080522  # linux/capability.h: two 32-bit words per set


class _CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapabilitySets(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _unshare_network() -> str:
    """Moves this process into a new network namespace; returns a note on what happened."""
    if not sys.platform.startswith("linux"):
        return f"not isolated: {sys.platform} has no network namespaces"
    libc = _libc()
    if libc.unshare(CLONE_NEWNET) == 0:
        return "isolated"
    first = os.strerror(ctypes.get_errno())
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:  # an ordinary user may, where user namespaces are on
        for path, text in (("/proc/self/setgroups", "deny"), ("/proc/self/uid_map", f"{uid} {uid} 1"),
                           ("/proc/self/gid_map", f"{gid} {gid} 1")):
            try:
                with open(path, "w") as handle:
                    handle.write(text)
            except OSError:
                pass
        return "isolated (user namespace)"
    return f"not isolated: unshare failed ({first}; with a user namespace: {os.strerror(ctypes.get_errno())})"


def _set_limits(limits: dict, own_uid: bool) -> list[str]:
    """Sets the resource limits; returns those the system refused (e.g. RLIMIT_AS on macOS)."""
    refused = []

    def limit(name: str, value):
        kind = getattr(resource, name)
        value = int(value)
        try:
            _, hard = resource.getrlimit(kind)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            refused.append(name)

    limit("RLIMIT_AS", limits["memory_bytes"])
    limit("RLIMIT_CPU", limits["cpu_seconds"])
    limit("RLIMIT_FSIZE", limits["file_bytes"])
    limit("RLIMIT_CORE", 0)
    if own_uid:  # counts every process of the uid: only meaningful when the uid is this sandbox's alone
        limit("RLIMIT_NPROC", limits["processes"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too large file is an OSError, not a silent death
    return refused


def _unreadable_as(uid: int, gid: int, paths: list[str]) -> str | None:
    """The first of ``paths`` that ``uid`` cannot read (None: all readable), tried with effective ids."""
    os.setegid(gid)
    os.seteuid(uid)
    try:
        for path in paths:
            try:
                if os.path.isdir(path):
                    os.listdir(path)
                else:
                    with open(path, "rb"):
                        pass
            except OSError:
                return path
        return None
    finally:
        os.seteuid(0)
        os.setegid(0)


def _drop_capabilities() -> None:
    """Drops every capability, for this process and anything it executes: root of a user namespace (uid 0
    there, the grader's user outside) becomes an ordinary process that cannot leave its view (no chroot, no
    mount) or gain a capability back (an empty bounding set, no_new_privs)."""
    libc = _libc()
    for capability in range(64):  # past the kernel's last capability prctl says EINVAL: nothing to drop
        libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(capability), ctypes.c_ulong(0), ctypes.c_ulong(0),
                   ctypes.c_ulong(0))
    header, sets = _CapabilityHeader(CAPABILITY_VERSION_3, 0), (_CapabilitySets * 2)()
    if libc.capset(ctypes.byref(header), sets) != 0:
        raise RuntimeError(f"capset: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0),
                  ctypes.c_ulong(0)) != 0:
        raise RuntimeError(f"PR_SET_NO_NEW_PRIVS: {os.strerror(ctypes.get_errno())}")
    try:
        os.chroot("/")
    except PermissionError:
        return
    raise RuntimeError("a capability survived dropping them all")


def _needed_paths(config: dict) -> list[str]:
    """What the student's process reads: the Python installation, numpy, TensorFlow, its own folders."""
    import importlib.util

    paths = [os.path.dirname(os.__file__), os.__file__, config["workspace"]]
    for name in ("numpy", "tensorflow"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            paths.append(os.path.dirname(spec.origin))
    return paths + [p for p in config.get("readable", []) if os.path.exists(p)]


def _drop_privileges(uid: int, gid: int, scratch: str) -> None:
    for folder, folders, files in os.walk(scratch):
        for path in [folder, *(os.path.join(folder, name) for name in [*folders, *files])]:
            os.lchown(path, uid, gid)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise RuntimeError("root could be regained after dropping privileges")


def _view(config: dict, uid: int, gid: int) -> str:
    """Enters the student's own view of the filesystem (``grader.mounts``); returns a note on what happened."""
    from grader import mounts

    if not config.get("view_root"):
        return "the whole filesystem: a view of its own is switched off"
    read_only = [*mounts.python_paths(), *config.get("readable", []), config["workspace"]]
    if config.get("bytecode"):  # the grader's compiled-file cache (grader.bytecode), read-only like Python
        read_only.append(config["bytecode"])
    try:
        mounts.enter_view(config["view_root"], read_only, [config["scratch"]],
                          disk_bytes=config["limits"]["disk_bytes"], uid=uid, gid=gid)
    except OSError as error:
        return f"the whole filesystem: the system refused a view of its own ({error})"
    os.makedirs(os.path.join(config["scratch"], "tmp"), exist_ok=True)
    return (f"its own: Python, its packages, the data and its code read-only; its home folder and /tmp "
            f"private ({config['limits']['disk_bytes'] // 2**20} MiB each)")


def harden(config: dict) -> dict:
    """Applies the limits, network isolation, filesystem view and user of ``config``; returns what was achieved.

    Started as root, the student's code runs as a uid of its own, in a view of
    the filesystem of its own where the system allows (``grader.mounts``: it also
    makes an interpreter under ``/root`` reachable for that uid). ``config["user"]``:
    "auto" or "always" (a uid of its own; when that uid cannot read what the
    student's code needs, nothing is run: ``refused`` says why and how to fix
    it) or "never" (stay root: only for one's own code, e.g. a student's
    container where no other user can run Python).
    """
    if sys.platform.startswith("linux"):
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1 and not config.get("pid_namespace"):  # the grader is already gone (in a PID namespace
        os._exit(70)  # the parent is the namespace's first process, which ends with the grader)
    for group in config.get("cgroups", []):  # its cgroup (grader.container.Group): all it starts is counted
        with open(os.path.join(group, "cgroup.procs"), "w") as handle:
            handle.write("0")
    user, uid, gid = config.get("user", "auto"), config.get("uid"), config.get("gid")
    view = "the whole filesystem: only root can build a view of its own"
    if os.getuid() != 0:
        uid, account = None, "the grader's own user (the grader does not run as root)"
    elif config.get("user_namespace"):  # root here is the grader's user outside (process_namespace)
        view = _view(config, 0, 0)
        uid, account = None, ("the grader's own user, with no privilege: root of a user namespace of its own, "
                              "every capability dropped (the grader is not root)")
    elif user == "never" or uid is None:
        uid, account = None, "root (GRADER_USER=never: a user of its own is switched off)"
    else:
        view = _view(config, uid, gid) if sys.platform.startswith("linux") else view
        blocked = _unreadable_as(uid, gid, _needed_paths(config))
        if blocked:  # it would fail on its first import: say so instead of running it as root
            return {"refused": f"the student's code must run as a user of its own, but {blocked} is not readable "
                               f"by other users (filesystem: {view}); install "
                               f"Python and the data where every user can read them (as the autograder's "
                               f"setup.sh does), or run the grader where it may use mount namespaces; only for "
                               f"your own code, GRADER_USER=never runs it as root"}
        account = f"uid {uid}, a user of its own"
    network = _unshare_network() if config.get("isolate_network", True) else "not isolated: switched off"
    refused = _set_limits(config["limits"], own_uid=uid is not None)
    if uid is not None:
        _drop_privileges(uid, gid, config["scratch"])
    elif config.get("user_namespace"):
        _drop_capabilities()
    os.umask(0o077)
    os.chdir(config["scratch"])
    return {"uid": os.getuid(), "own_uid": uid is not None, "account": account, "network": network,
            "view": view, "limits_refused": refused}


def _call(probe: str, args: dict, trusted: bool = False):
    import importlib

    module_name, _, function_name = probe.partition(":")
    if not trusted and not module_name.startswith("grader."):
        raise ValueError(f"not a grader probe: {probe!r}")
    function = importlib.import_module(module_name)
    for part in function_name.split("."):
        function = getattr(function, part)
    seed_unless_continued(probe, function)
    return function(**args)


SEED = 0
_previous_probe = ""  # the probe called last in this process ("module:function")
_SEEDERS = {"numpy": lambda numpy: numpy.random.seed(SEED),  # module -> how to seed it
            "tensorflow": lambda tensorflow: tensorflow.random.set_seed(SEED)}


class _SeedOnImport:
    """A ``sys.meta_path`` finder that seeds numpy and TensorFlow the moment they are first imported.

    A probe imports them itself (the worker starts with the standard library
    only), so in a fresh worker they are not there yet when ``seed_random_state`` runs
    before the first probe: without this, that first call drew unseeded
    numbers and every later one seeded numbers. Python's ``random`` is seeded
    again then too: importing TensorFlow draws from it.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname not in _SEEDERS:
            return None
        spec = next((spec for finder in sys.meta_path if finder is not self and hasattr(finder, "find_spec")
                     for spec in [finder.find_spec(fullname, path, target)] if spec is not None), None)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_seed(module):
            exec_module(module)
            random.seed(SEED)
            _SEEDERS[fullname](module)

        spec.loader.exec_module = exec_and_seed
        return spec


def seed_random_state() -> None:
    """The same random state before every probe, from the first one in a fresh worker on, so a submission
    gets the same numbers on every run: Python's, numpy's and TensorFlow's global seeds (TensorFlow's also
    resets its sequence of op seeds). A library not imported yet is seeded as it is imported."""
    random.seed(SEED)
    for name, seed in _SEEDERS.items():
        if name in sys.modules:
            seed(sys.modules[name])
    if not any(isinstance(finder, _SeedOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SeedOnImport())


def continues_random_state(probe):
    """Marks ``probe`` as a run in parts (training in chunks, timed rounds of steps): a call right after a
    call of the same probe continues the random state where that one left it, as one longer call would,
    instead of starting from the seed again.

    Seeding TensorFlow clears its caches, so every compiled function is instantiated again on its next call:
    measured on 2 cores, ~5 s before each chunk of the assignment's training step (3 s for 5 iterations
    became 8 s) and ~1.3 s before each call of the efficiency check's 5 timed steps (60 ms of work).
    """
    probe.continues_random_state = True
    return probe


def seed_unless_continued(probe: str, function) -> None:
    """``seed_random_state`` before a probe, unless the probe continues the previous call
    (``continues_random_state``): what the same sequence of calls draws is the same in every run."""
    global _previous_probe
    if not (probe == _previous_probe and getattr(function, "continues_random_state", False)):
        seed_random_state()
    _previous_probe = probe


def _describe(error: BaseException) -> dict:
    from grader.failures import describe_failure  # imports neither pytest nor the sandbox

    if isinstance(error, SystemExit):
        return {"status": "error", "message": f"your code called sys.exit({error.code!r}) (or exit/quit): "
                                              f"remove it; the grader calls your functions itself."}
    if isinstance(error, KeyboardInterrupt):
        return {"status": "error", "message": "your code raised KeyboardInterrupt"}
    if isinstance(error, MemoryError):
        return {"status": "error", "message": "your code ran out of memory (MemoryError): the grader's "
                                              "limit is far above what the assignment needs; look for "
                                              "arrays that grow without bound."}
    status, message = describe_failure(error)
    return {"status": status, "message": message}


def serve(request_fd: int, response_fd: int, hello: dict, trusted: bool = False) -> None:
    from grader import wire

    wire.write_message(response_fd, {"hello": hello})
    while "refused" not in hello:
        try:
            request = wire.read_message(request_fd, max_bytes=2**40)
        except EOFError:
            return
        try:
            answer = {"result": _call(request["probe"], request.get("args") or {}, trusted)}
        except BaseException as error:  # noqa: BLE001 - whatever the student's code raised is reported
            try:
                answer = {"failure": _describe(error)}
            except BaseException as inner:  # noqa: BLE001 - describing must not end the worker
                answer = {"failure": {"status": "error", "message": f"{type(error).__name__} "
                                                                    f"(not describable: {type(inner).__name__})"}}
        try:
            message = wire.encode(answer)
        except BaseException as error:  # noqa: BLE001
            message = wire.encode({"failure": {"status": "error", "message": f"the result could not be sent "
                                                                           f"back ({type(error).__name__})"}})
        view = memoryview(message)
        while view:
            view = view[os.write(response_fd, view):]


def main(config_text: str) -> None:
    from grader import wire  # noqa: F401 - imported while the Python installation is surely readable

    config = json.loads(config_text)
    if config.get("trusted"):  # the grader's reference measurements: no student code, the grader's own user
        if sys.platform.startswith("linux"):
            _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        os.chdir(config["scratch"])
        hello = {"uid": os.getuid(), "own_uid": False, "account": "the grader (reference worker)",
                 "network": "not isolated: no student code", "limits_refused": []}
    else:
        hello = harden(config)
    serve(config["request_fd"], config["response_fd"], hello, bool(config.get("trusted")))
    sys.stdout.flush()
    os._exit(0)
