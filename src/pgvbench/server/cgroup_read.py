"""Where the cgroup controllers are mounted, and what limits a process runs under, read
back from its cgroup files (the results record these: environment.py). The writing side,
the server's own cgroup, is cgroup.py."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from ..results import ServerLimits
from ..spec.machine import host_memory_bytes, parse_cpu_list

PREFIX = "pgvbench-"  # the cgroups pgvbench makes (cgroup.cgroup_name)
CONTROLLERS = ("memory", "cpuset")
MOUNTS = Path("/proc/self/mounts")
_UNLIMITED_V1 = 1 << 62  # memory.limit_in_bytes reads 0x7ffffffffffff000 when unlimited


@dataclasses.dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    root: Path  # where it is mounted
    read_only: bool


def hierarchies(mounts: Path = MOUNTS) -> dict[str, Hierarchy]:
    """Where each controller pgvbench uses is mounted: a v1 hierarchy of its own first,
    else a cgroup2 mount listing it in cgroup.controllers (on a hybrid host the v2 mount
    holds no controller the v1 ones have)."""
    found: dict[str, Hierarchy] = {}
    unified: Hierarchy | None = None
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[1]))
        options = set(fields[3].split(","))
        if fields[2] == "cgroup":
            for name in CONTROLLERS:
                if name in options:
                    found.setdefault(name, Hierarchy(1, point, "ro" in options))
        elif fields[2] == "cgroup2" and unified is None:
            unified = Hierarchy(2, point, "ro" in options)
    if unified is not None:
        available = read(unified.root / "cgroup.controllers").split()
        for name in CONTROLLERS:
            if name not in found and name in available:
                found[name] = unified
    return found


def membership(pid: int) -> dict[str, str]:
    """/proc/<pid>/cgroup as {controller: path}; the v2 line under ""."""
    out: dict[str, str] = {}
    for line in read(Path(f"/proc/{pid}/cgroup")).splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for name in parts[1].split(",") if parts[1] else [""]:
            out[name] = parts[2]
    return out


def limits_of(pid: int) -> ServerLimits | None:
    """The limits process ``pid`` runs under, read from the cgroup files (the tightest
    memory limit on its path up to the mount); None when neither is below the host's."""
    found = hierarchies()
    member = membership(pid)
    version = 1
    memory: int | None = None
    memsw: int | None = None
    memory_cgroup = cpuset_cgroup = None
    hierarchy = found.get("memory")
    if hierarchy is not None:
        version = hierarchy.version
        memory_cgroup = member.get("memory" if version == 1 else "")
        path = _resolve(hierarchy.root, memory_cgroup)
        memory = _tightest(hierarchy, path)
        if version == 1 and memory is not None:
            memsw = _bytes(read(path / "memory.memsw.limit_in_bytes"), version)
    if memory is not None and memory >= host_memory_bytes():
        memory, memsw = None, None
    cpus: tuple[int, ...] = ()
    hierarchy = found.get("cpuset")
    if hierarchy is not None:
        cpuset_cgroup = member.get("cpuset" if hierarchy.version == 1 else "")
        path = _resolve(hierarchy.root, cpuset_cgroup)
        file = "cpuset.effective_cpus" if hierarchy.version == 1 else "cpuset.cpus.effective"
        cpus = parse_cpu_list(read(path / file)) or ()
        if len(cpus) >= (os.cpu_count() or 0):
            cpus = ()
    if memory is None and not cpus:
        return None
    names = [c for c in (memory_cgroup, cpuset_cgroup) if c]
    return ServerLimits(
        cgroup_version=version,
        memory_bytes=memory,
        memsw_bytes=memsw,
        cpus=list(cpus),
        memory_cgroup=memory_cgroup if memory is not None else None,
        cpuset_cgroup=cpuset_cgroup if cpus else None,
        set_by_pgvbench=any(Path(c).name.startswith(PREFIX) for c in names),
    )


def _resolve(root: Path, relative: str | None) -> Path:
    """The process's cgroup directory; the mount root when its path is not visible here
    (a container without a cgroup namespace sees its own cgroup as the root)."""
    if relative:
        path = root / relative.lstrip("/")
        if path.is_dir():
            return path
    return root


def _tightest(hierarchy: Hierarchy, path: Path) -> int | None:
    file = "memory.limit_in_bytes" if hierarchy.version == 1 else "memory.max"
    limits = []
    while True:
        value = _bytes(read(path / file), hierarchy.version)
        if value is not None:
            limits.append(value)
        if path == hierarchy.root or hierarchy.root not in path.parents:
            break
        path = path.parent
    return min(limits) if limits else None


def _bytes(text: str, version: int) -> int | None:
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return None if version == 1 and value >= _UNLIMITED_V1 else value


def read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def oom_kills(cgroup_dir: Path) -> int:
    """Processes the kernel killed in this memory cgroup for want of memory (v1
    memory.oom_control, v2 memory.events: ``oom_kill N``); 0 when unknown."""
    for name in ("memory.events", "memory.oom_control"):
        for line in read(cgroup_dir / name).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return 0
