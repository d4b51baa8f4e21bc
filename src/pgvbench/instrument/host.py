"""Host figures over a phase: CPU busy cores, memory, and the server processes' footprint."""

from __future__ import annotations

import time
from typing import Any

import psutil

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
