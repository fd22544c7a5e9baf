"""What the container the grader runs in allows, and what processes use of it (Linux; standard library only).

Grading platforms run the autograder in a container whose memory and CPU
are limited by a cgroup (Gradescope's default: 768 MB, 0.5 CPU). The kernel's
OOM killer counts a process's *anonymous* resident memory (heap, arrays,
tensors; ``RssAnon`` + ``RssShmem``), not the file-backed pages of the shared
libraries it maps, so that is what ``resident_bytes`` sums.

Both cgroup versions are read, and every mount of them that
``/proc/self/mountinfo`` lists (a container often sees its own cgroup at the
root of the mount, while ``/proc/self/cgroup`` still names the host's path).
The limit of a cgroup also binds its children, so each function walks from
this process's cgroup up to the root of the mount and takes the smallest
value. Elsewhere (macOS, no ``/proc``, unreadable files) the functions say
"no limit" (``None``) or 0 bytes instead of raising.
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_UNLIMITED = 2**60  # v1 says "no limit" with a huge number (page-aligned LONG_MAX)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroups() -> dict[str, str]:
    """Controller -> this process's cgroup path, from /proc/self/cgroup ("" is cgroup v2's unified line)."""
    groups: dict[str, str] = {}
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "":
            groups[""] = path
        for controller in filter(None, controllers.split(",")):
            groups[controller] = path
    return groups


def _mounts(version: int, controller: str) -> list[tuple[str, Path]]:
    """(root of the mount inside the hierarchy, mount point) of each cgroup mount holding ``controller``."""
    found = []
    for line in (_read(Path("/proc/self/mountinfo")) or "").splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        kind, options = tail[0], tail[2].split(",")
        if (version == 2 and kind == "cgroup2") or (version == 1 and kind == "cgroup" and controller in options):
            found.append((fields[3], Path(fields[4].replace("\\040", " "))))
    if not found:  # no mountinfo: where systemd and Docker mount them
        default = CGROUP_ROOT if version == 2 else CGROUP_ROOT / controller
        if version == 1 or (CGROUP_ROOT / "cgroup.controllers").exists():
            found.append(("/", default))
    return found


def _walk(version: int, controller: str) -> list[Path]:
    """This process's cgroup folders of ``controller``, innermost first, up to the root of each mount."""
    path = _own_cgroups().get("" if version == 2 else controller)
    if path is None:
        return []
    folders: list[Path] = []
    for root, mount in _mounts(version, controller):
        relative = path
        if root != "/" and (path == root or path.startswith(root.rstrip("/") + "/")):
            relative = path[len(root.rstrip("/")):]
        parts = [p for p in relative.split("/") if p and p != ".."]
        for depth in range(len(parts), -1, -1):  # a path missing here (another namespace) just adds nothing
            folder = mount.joinpath(*parts[:depth])
            if folder not in folders and folder.is_dir():
                folders.append(folder)
    return folders


def _smallest(values) -> float | None:
    values = [v for v in values if v is not None]
    return min(values) if values else None


def memory_limit_bytes() -> int | None:
    """The memory limit of the cgroup this process is in (the smallest on the way to the root); None: no limit."""
    def v2(folder: Path) -> int | None:
        text = _read(folder / "memory.max")
        return int(text) if text and text.isdigit() else None  # "max": none

    def v1(folder: Path) -> int | None:
        text = _read(folder / "memory.limit_in_bytes")
        return int(text) if text and text.isdigit() and int(text) < V1_UNLIMITED else None

    limit = _smallest([v2(f) for f in _walk(2, "memory")] + [v1(f) for f in _walk(1, "memory")])
    return None if limit is None else int(limit)


def cpu_quota() -> float | None:
    """How many CPUs the cgroup's quota allows (e.g. 0.5); None: no quota."""
    def v2(folder: Path) -> float | None:
        quota, _, period = (_read(folder / "cpu.max") or "").partition(" ")
        return int(quota) / int(period) if quota.isdigit() and period.strip().isdigit() and int(period) else None

    def v1(folder: Path) -> float | None:
        quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        try:
            return int(quota) / int(period) if int(quota) > 0 and int(period) > 0 else None  # -1: none
        except (TypeError, ValueError):
            return None

    return _smallest([v2(f) for f in _walk(2, "cpu")] + [v1(f) for f in _walk(1, "cpu")])


def oom_kills() -> int | None:
    """How many processes the kernel's OOM killer killed in this process's cgroups so far; None: unknown."""
    counts = []
    for folder in _walk(2, "memory"):
        for line in (_read(folder / "memory.events") or "").splitlines():
            if line.startswith("oom_kill "):
                counts.append(int(line.split()[1]))
    for folder in _walk(1, "memory"):
        for line in (_read(folder / "memory.oom_control") or "").splitlines():
            if line.startswith("oom_kill "):
                counts.append(int(line.split()[1]))
    return sum(counts) if counts else None


def _anonymous_bytes(pid: int | str) -> int:
    """RssAnon + RssShmem of one process (0 if it is gone or unreadable)."""
    total = 0
    for line in (_read(Path(f"/proc/{pid}/status")) or "").splitlines():
        if line.startswith(("RssAnon:", "RssShmem:")):
            total += int(line.split()[1]) * 1024  # kB
    return total


def resident_bytes(session_id: int) -> int:
    """Anonymous resident memory of every process in session ``session_id`` (what the OOM killer counts)."""
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for entry in entries:
        if not entry.isdigit():
            continue
        stat = _read(Path(f"/proc/{entry}/stat"))
        try:
            # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses
            if stat is None or int(stat.rsplit(")", 1)[1].split()[3]) != session_id:
                continue
        except (IndexError, ValueError):
            continue
        total += _anonymous_bytes(entry)
    return total


def own_resident_bytes() -> int:
    """Anonymous resident memory of this process (the grader)."""
    return _anonymous_bytes("self")


class Group:
    """A cgroup (v1 or v2) of its own for one worker's process tree: memory and process count for all together.

    Created as a child of this process's own cgroup in the memory and pids
    hierarchies (root only; ``paths`` is empty and ``note`` says why where the
    system refuses). The worker joins it itself (``join``, before it runs any
    student code), so everything it starts is counted, daemons included;
    ``remove`` deletes it once its processes have ended.
    """

    def __init__(self, name: str, memory_bytes: int, processes: int):
        self.paths: list[Path] = []
        self.note = ""
        settings = {"memory": [("memory.max", memory_bytes), ("memory.swap.max", 0),  # v2
                               ("memory.limit_in_bytes", memory_bytes), ("memory.memsw.limit_in_bytes", memory_bytes)],
                    "pids": [("pids.max", processes)]}
        try:
            for controller, values in settings.items():
                v2 = [f for f in _walk(2, controller) if controller in (_read(f / "cgroup.controllers") or "").split()]
                parents = _walk(1, controller) or v2
                if not parents:
                    raise OSError(f"no {controller} controller")
                folder = parents[0] / name
                if folder not in self.paths:
                    folder.mkdir()
                    self.paths.append(folder)
                written = [file for file, value in values if (folder / file).exists()
                           and (folder / file).write_text(str(value))]
                if not written:
                    raise OSError(f"{folder} has no {controller} limit files")
            self.note = (f"a cgroup of its own: {memory_bytes // 2**20} MiB of memory and {processes} processes "
                         f"for all its processes together")
        except OSError as error:
            self.remove()
            self.note = f"no cgroup of its own ({error}): memory and processes are limited per process"

    def join(self) -> None:
        """Moves the calling process into the group (v1 and v2 take 0 for "the writer")."""
        for folder in self.paths:
            (folder / "cgroup.procs").write_text("0")

    def oom_kills(self) -> int:
        """How many of its processes the kernel's OOM killer ended."""
        count = 0
        for folder in self.paths:
            for file in ("memory.events", "memory.oom_control"):
                for line in (_read(folder / file) or "").splitlines():
                    if line.startswith("oom_kill "):
                        count += int(line.split()[1])
        return count

    def remove(self) -> None:
        """Deletes the group (its processes must have ended; a group still busy is left, said nowhere)."""
        for folder in self.paths:
            try:
                folder.rmdir()
            except OSError:
                pass
        self.paths = []
