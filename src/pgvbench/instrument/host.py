"""Host figures over a phase: CPU busy cores, memory, and the server processes' footprint;
and the host load around each measured window (what else the machine was doing)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

import psutil

from ..results import HostLoad
from .cpu import ServerCpuProbe


def _busy_seconds(times: Any) -> float:
    idle = float(times.idle) + float(getattr(times, "iowait", 0.0))
    return (
        float(sum(times))
        - idle
        - float(getattr(times, "guest", 0.0))
        - float(getattr(times, "guest_nice", 0.0))
    )  # guest time is already counted in user/nice


def _server_memory(postmaster_pid: int) -> dict[str, Any]:
    """RSS (and PSS when readable) of the postmaster and its children, in bytes.

    RSS counts shared_buffers once per backend that touched them; PSS shares them out,
    so the PSS sum is what the server really occupies.
    """
    root = psutil.Process(postmaster_pid)
    procs = [root, *root.children(recursive=True)]
    rss, pss, pss_ok, counted = 0, 0, True, 0
    for proc in procs:
        try:
            if pss_ok:
                try:
                    full = proc.memory_full_info()
                    rss += int(full.rss)
                    pss += int(getattr(full, "pss", 0))
                    pss_ok = hasattr(full, "pss")
                    counted += 1
                    continue
                except psutil.AccessDenied:
                    pss_ok = False
            rss += int(proc.memory_info().rss)
            counted += 1
        except psutil.NoSuchProcess:
            continue
    return {
        "server_processes": counted,
        "server_rss_bytes": rss,
        "server_pss_bytes": pss if pss_ok else None,
    }


class HostCollector:
    """Host CPU busy cores over the phase, memory in use and the server's footprint at stop.

    ``postmaster_pid`` (embedded server) adds the server's CPU cores and memory; an
    external server (None) gets host figures only, which then describe the client host.
    """

    name = "host"
    cumulative = False

    def __init__(self, *, postmaster_pid: int | None) -> None:
        self.postmaster_pid = postmaster_pid
        self._t0: float | None = None
        self._cpu0 = 0.0
        self._server0: float | None = None
        self._probe: ServerCpuProbe | None = None

    def start(self) -> None:
        self._probe = None
        self._server0 = None
        if self.postmaster_pid is not None:
            try:
                self._probe = ServerCpuProbe(self.postmaster_pid)
                self._server0 = self._probe.seconds()
            except psutil.Error:
                self._probe = None
        self._cpu0 = _busy_seconds(psutil.cpu_times())
        self._t0 = time.perf_counter()

    def sample(self) -> None:
        return None

    def stop(self) -> dict[str, Any]:
        if self._t0 is None:
            raise RuntimeError("host: stop() without start()")
        elapsed = time.perf_counter() - self._t0
        busy = _busy_seconds(psutil.cpu_times()) - self._cpu0
        self._t0 = None
        mem = psutil.virtual_memory()
        out: dict[str, Any] = {
            "elapsed_s": round(elapsed, 4),
            "cpu_count": psutil.cpu_count(),
            "cpu_busy_cores": round(busy / elapsed, 4) if elapsed > 0 else None,
            "mem_total_bytes": int(mem.total),
            "mem_used_bytes": int(mem.total - mem.available),
            "mem_available_bytes": int(mem.available),
        }
        if self._probe is not None and self._server0 is not None:
            server1 = self._probe.seconds()
            if server1 is not None and elapsed > 0:
                out["server_cpu_cores"] = round((server1 - self._server0) / elapsed, 4)
        if self.postmaster_pid is not None:
            try:
                out.update(_server_memory(self.postmaster_pid))
            except psutil.Error as exc:
                out["server_memory_error"] = f"{type(exc).__name__}: {exc}"
        return out


# --- host load around one measured window --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CpuReading:
    """One reading of the host's CPU counters (all CPUs, seconds since boot) and load."""

    at: float  # time.perf_counter()
    busy_s: float  # user + nice + system + irq + softirq (steal and guest excluded)
    steal_s: float | None  # None where the kernel does not report steal
    loadavg_1m: float


def read_cpu() -> CpuReading:
    """The counters now (psutil reads /proc/stat on Linux)."""
    times = psutil.cpu_times()
    steal = getattr(times, "steal", None)
    busy = _busy_seconds(times) - (float(steal) if steal is not None else 0.0)
    return CpuReading(
        at=time.perf_counter(),
        busy_s=busy,
        steal_s=float(steal) if steal is not None else None,
        loadavg_1m=os.getloadavg()[0],
    )


def server_probe(postmaster_pid: int | None) -> ServerCpuProbe | None:
    """A CPU probe of the server's processes, or None (external server, or gone)."""
    if postmaster_pid is None:
        return None
    try:
        return ServerCpuProbe(postmaster_pid)
    except psutil.Error:
        return None


def host_load(
    first: CpuReading,
    last: CpuReading,
    *,
    client_cores: float | None,
    server_cores: float | None,
    cpu_count: int | None = None,
) -> HostLoad | None:
    """The host load between two readings.

    Foreign load is what the host's CPUs did beyond this benchmark's own client and
    server: busy cores - client - server, clamped at 0 (the three are read from different
    counters, so small negative remainders are rounding). Without the server's CPU (an
    external server) it is None: the server may share the host, and its work would be
    taken for foreign load.
    """
    elapsed = last.at - first.at
    if elapsed <= 0:
        return None
    busy = max(0.0, (last.busy_s - first.busy_s) / elapsed)
    steal = None
    if first.steal_s is not None and last.steal_s is not None:
        steal = max(0.0, (last.steal_s - first.steal_s) / elapsed)
    foreign = None
    if server_cores is not None:
        foreign = max(0.0, busy - (client_cores or 0.0) - server_cores)
    return HostLoad(
        loadavg_start=round(first.loadavg_1m, 2),
        loadavg_end=round(last.loadavg_1m, 2),
        busy_cores=round(busy, 3),
        steal_cores=_round(steal),
        foreign_cores=_round(foreign),
        client_cores=_round(client_cores),
        server_cores=_round(server_cores),
        cpu_count=cpu_count if cpu_count is not None else psutil.cpu_count(),
    )


def merge_host_loads(loads: Sequence[HostLoad | None], weights: Sequence[float]) -> HostLoad | None:
    """Several windows as one: cores weighted by window length, load averages from the
    first window's start and the last one's end."""
    known = [(h, w) for h, w in zip(loads, weights, strict=True) if h is not None and w > 0]
    if not known:
        return None

    def mean(values: list[tuple[float | None, float]]) -> float | None:
        present = [(v, w) for v, w in values if v is not None]
        total = sum(w for _, w in present)
        return round(sum(v * w for v, w in present) / total, 3) if present and total else None

    busy = mean([(h.busy_cores, w) for h, w in known])
    return HostLoad(
        loadavg_start=known[0][0].loadavg_start,
        loadavg_end=known[-1][0].loadavg_end,
        busy_cores=busy if busy is not None else 0.0,
        steal_cores=mean([(h.steal_cores, w) for h, w in known]),
        foreign_cores=mean([(h.foreign_cores, w) for h, w in known]),
        client_cores=mean([(h.client_cores, w) for h, w in known]),
        server_cores=mean([(h.server_cores, w) for h, w in known]),
        cpu_count=known[0][0].cpu_count,
    )


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None
