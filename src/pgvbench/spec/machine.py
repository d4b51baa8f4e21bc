"""[server] memory_limit and cpus: the embedded server run as a smaller machine.

server/cgroup.py applies them (a cgroup memory limit, which counts the page cache, and a
cpuset); this module parses and checks the keys against this host, and holds the size
and CPU-list notations both sides share.
"""

from __future__ import annotations

import os
import re

from .model import MachineLimits
from .table import Table

# PostgreSQL's memory units (1MB = 1024 kB), so a limit reads like shared_buffers does
_UNITS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_SIZE_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b)\s*", re.IGNORECASE)
MIN_MEMORY = 64 * 1024**2
# what the server's own processes need beside shared_buffers (catalog caches, a few
# backends' work memory): a limit that leaves less would only measure the OOM killer
SERVER_HEADROOM = 32 * 1024**2
DEFAULT_SHARED_BUFFERS = 128 * 1024**2  # initdb's value; pgvbench does not change it
MEMORY_ALLOWED = 'a size with a unit, e.g. "512MB" or "2GB" (kB, MB, GB, TB; 1GB = 1024MB)'


def parse_size(text: str) -> int | None:
    """Bytes of "512MB" / "2GB" / "1.5GB" (MiB, GiB accepted too); None if not a size."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        return None
    unit = match.group(2).lower().replace("ib", "b")
    return int(float(match.group(1)) * _UNITS[unit])


def _pg_setting_bytes(value: str, *, unit: int) -> int | None:
    """A PostgreSQL memory setting's bytes: "1GB", or a bare number in ``unit`` bytes."""
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return int(text) * unit
    return parse_size(text)


def parse_cpu_list(text: str) -> tuple[int, ...] | None:
    """The CPUs of a cpuset list ("0-1,3" -> (0, 1, 3)); None if it is not one."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            return None
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            return None
        cpus.update(range(lo, hi + 1))
    return tuple(sorted(cpus)) if cpus else None


def format_cpu_list(cpus: tuple[int, ...] | list[int]) -> str:
    """(0, 1, 3) -> "0-1,3", the kernel's own notation."""
    parts: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def host_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on (its affinity, i.e. its cpuset)."""
    return tuple(sorted(os.sched_getaffinity(0)))


def host_memory_bytes() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def gib(n: int) -> str:
    return f"{n / 1024**3:.3g} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


def parse_limits(t: Table, settings: list[dict[str, str]]) -> MachineLimits | None:
    """[server] memory_limit / cpus, or None when neither is set. ``settings``: the
    [server.settings] table and each [[server.sweep]] entry on top of it, whose
    shared_buffers must fit inside the limit."""
    memory = _memory(t) if "memory_limit" in t.data else None
    cpus = _cpus(t) if "cpus" in t.data else ()
    if memory is None and not cpus:
        return None
    if memory is not None:
        for table in settings:
            _check_shared_buffers(t, memory, table)
    return MachineLimits(memory_bytes=memory, cpus=cpus)


def _memory(t: Table) -> int:
    value = t.data["memory_limit"]
    size = parse_size(value) if isinstance(value, str) else None
    if size is None:
        t.fail("memory_limit", f"= {value!r} must be {MEMORY_ALLOWED}")
    assert size is not None
    size -= size % os.sysconf("SC_PAGE_SIZE")  # the kernel keeps whole pages ("1.3GB")
    if size < MIN_MEMORY:
        t.fail("memory_limit", f"= {value!r} is below the minimum {gib(MIN_MEMORY)}")
    ram = host_memory_bytes()
    if size > ram:
        t.fail(
            "memory_limit",
            f"= {value!r} is more than this host's {gib(ram)} of RAM, so it would never bind; "
            f"use a size up to {gib(ram)}, or leave memory_limit out to run on the whole host",
        )
    return size


def _cpus(t: Table) -> tuple[int, ...]:
    value = t.data["cpus"]
    available = host_cpus()
    listing = format_cpu_list(available)
    allowed = (
        f"an integer 1..{len(available)} (how many of this host's CPUs) or a CPU list "
        f'within "{listing}", e.g. "{available[-1]}"'
    )
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= len(available):
            t.fail("cpus", f"= {value} must be {allowed}")
        # the highest-numbered CPUs: CPU 0 tends to take the most interrupts, and the
        # client keeps every CPU the server was not given
        return available[-value:]
    cpus = parse_cpu_list(value) if isinstance(value, str) else None
    if cpus is None:
        t.fail("cpus", f"= {value!r} must be {allowed}")
    assert cpus is not None
    outside = [c for c in cpus if c not in available]
    if outside:
        t.fail(
            "cpus",
            f"= {value!r} names CPU {format_cpu_list(outside)}, which this process may not "
            f"use (its CPUs: {listing}); it must be {allowed}",
        )
    return cpus


def _check_shared_buffers(t: Table, memory: int, settings: dict[str, str]) -> None:
    raw = settings.get("shared_buffers")
    size = DEFAULT_SHARED_BUFFERS if raw is None else _pg_setting_bytes(raw, unit=8192)
    if size is None or size + SERVER_HEADROOM <= memory:
        return  # a value PostgreSQL itself will judge
    where = (
        "PostgreSQL's default shared_buffers (128MB)"
        if raw is None
        else f"shared_buffers = {raw!r} in [server.settings] (or a [[server.sweep]] entry)"
    )
    t.fail(
        "memory_limit",
        f"= {gib(memory)} leaves no room for {where}: shared_buffers lives inside the limit, "
        f"and the server's processes need about {gib(SERVER_HEADROOM)} more; raise "
        f"memory_limit or set a smaller shared_buffers (e.g. a quarter of the limit)",
    )
