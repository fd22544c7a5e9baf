"""The student's own view of the filesystem: a mount namespace and a new root (Linux; standard library only).

``enter_view`` runs in the worker (``grader.worker.harden``) before any student
code is imported and before the worker drops root (the host's, or that of a
user namespace of its own when the grader is not root). It moves the process into
a new mount namespace, builds a root folder on a small tmpfs that holds only:

* read-only: the system's programs and libraries (``/usr``, ``/lib*``,
  ``/bin``, ``/sbin``, ``/etc``), the Python installation and its packages
  (``python_paths``: the interpreter's prefix, the virtual environment, the
  folders numpy and TensorFlow load from), the preprocessed data the worker is
  told about (``readable``) and the worker's code folder;
* writable, on tmpfs of ``disk_bytes`` each: the worker's home folder and
  ``/tmp``;
* ``/dev/null``, ``/dev/zero``, ``/dev/random``, ``/dev/urandom`` and a
  fresh ``/proc``;

and changes root into it (``chroot``). Everything else is simply not there:
the instructor's repository, the bundle, other submissions, results, logs,
``/root``, ``/home``, ``/run`` and ``/var`` (the host's unix sockets). Every
folder of a bound path is in the view with mode 755, so a uid of its own can
reach an interpreter installed under ``/root`` (pyenv, conda) without
changing anything on the host. Once the worker has dropped root, chroot
cannot be undone.

Bubblewrap (``bwrap``) builds the same view, but it is not installed on
most machines and, started as root, drops the capabilities the worker
needs to switch to a uid of its own; the few system calls here need nothing
beyond the standard library (``ctypes``), which the worker already uses for
its network namespace.
"""

from __future__ import annotations

import ctypes
import os
import sys
import sysconfig

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MS_NOEXEC, MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 8, 1024, 2048, 1 << 21, 1 << 24
SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")
DEVICES = ("null", "zero", "random", "urandom")


class ViewError(OSError):
    """The system refused to build the view (no privilege, no mount namespaces)."""


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
    return libc


def _mount(libc, source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    encode = (lambda text: None if text is None else os.fsencode(text))
    if libc.mount(encode(source), encode(target), encode(kind), flags, encode(data)) != 0:
        error = ctypes.get_errno()
        raise ViewError(error, f"mount {source or kind} on {target}: {os.strerror(error)}")


def _kept_flags(path: str) -> int:
    """The flags of the mount holding ``path`` that a read-only remount of its bind must repeat: in a user
    namespace the kernel locks them (a remount that drops ``noexec`` or changes the atime rule of a ``/tmp``
    mounted ``noexec,noatime`` is refused); as root, keeping them changes nothing that worked."""
    flags = os.statvfs(path).f_flag
    kept = MS_NOEXEC if flags & os.ST_NOEXEC else 0
    kept |= MS_NODIRATIME if flags & os.ST_NODIRATIME else 0
    if flags & os.ST_NOATIME:
        return kept | MS_NOATIME
    return kept | (MS_RELATIME if flags & os.ST_RELATIME else MS_STRICTATIME)


def python_paths() -> list[str]:
    """The folders the interpreter and its packages load from (real paths, links resolved)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(sysconfig.get_paths().get(key, "") for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    for name in ("numpy", "tensorflow"):
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            paths.add(os.path.dirname(os.path.dirname(spec.origin)))  # site-packages, with the package's libraries
    return sorted(os.path.realpath(p) for p in paths if p and os.path.isdir(p))


def enter_view(root: str, read_only: list[str], private: list[str], *, disk_bytes: int, uid: int, gid: int) -> None:
    """Moves this process into a new mount namespace and changes its root to a view of ``read_only``.

    Args:
        root: an empty folder of the grader's (mode 700) to build the view in.
        read_only: files and folders bound read-only at the same paths (the missing ones are left out).
        private: folders that become empty tmpfs of ``disk_bytes`` at the same paths, owned by ``uid``.
        disk_bytes: the size of each private folder and of ``/tmp``.

    Raises:
        ViewError: the system refused (not root, no mount namespaces, a seccomp filter, ...).
    """
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        error = ctypes.get_errno()
        raise ViewError(error, f"unshare(CLONE_NEWNS): {os.strerror(error)}")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here reaches the host
    _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0755")

    def inside(path: str) -> str:
        return os.path.join(root, path.lstrip("/"))

    os.makedirs(inside("/tmp"))
    _mount(libc, "tmpfs", inside("/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk_bytes},mode=1777")
    system = [p for p in SYSTEM_PATHS if os.path.lexists(p)]
    for path in sorted(set(system) | {os.path.abspath(p) for p in read_only if os.path.exists(p)}, key=len):
        target = inside(path)
        if os.path.islink(path) and path in SYSTEM_PATHS:  # /bin -> usr/bin (merged /usr): the link itself
            os.symlink(os.readlink(path), target)
            continue
        real = os.path.realpath(path)
        if os.path.isdir(real):
            os.makedirs(target, exist_ok=True)
        elif not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "a").close()
        _mount(libc, real, target, None, MS_BIND | MS_REC)
        _mount(libc, None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | _kept_flags(real))
    for path in private:
        os.makedirs(inside(path), exist_ok=True)
        _mount(libc, "tmpfs", inside(path), "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={disk_bytes},mode=0700,uid={uid},gid={gid}")
    os.makedirs(inside("/dev"), exist_ok=True)
    for device in DEVICES:
        open(inside(f"/dev/{device}"), "a").close()
        _mount(libc, f"/dev/{device}", inside(f"/dev/{device}"), None, MS_BIND)
    os.makedirs(inside("/proc"), exist_ok=True)
    _mount(libc, "proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV)
    os.chroot(root)
    os.chdir("/")
