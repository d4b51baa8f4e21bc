"""CPU around one long step (a build, a restore's index rebuild): the server's CPU-seconds
and the rest of the host's busy cores over its wall time.

A build's wall time on a shared host stretches with whatever else runs; its CPU-seconds
hardly do. Both are recorded, so a build slowed by a neighbour is seen as such (validity)
and the CPU-seconds can be fitted beside the wall time.
"""

from __future__ import annotations

import dataclasses
import time

import psutil

from ...instrument.cpu import ServerCpuProbe, client_cpu_seconds
from ...instrument.host import CpuReading, host_load, read_cpu, server_probe

REAP_WAIT_S = 1.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class StepCpu:
    server_cpu_s: float | None  # CPU-seconds of the server's processes (None: not known)
    foreign_cores: float | None  # other processes' busy cores, averaged over the step


class CpuWindow:
    """``start()`` before the step, ``stop()`` after it (embedded server only; with an
    unknown postmaster both figures are None)."""

    def __init__(self, postmaster_pid: int | None) -> None:
        self._probe: ServerCpuProbe | None = server_probe(postmaster_pid)
        self._server: float | None = None
        self._client = 0.0
        self._host: CpuReading | None = None

    def start(self) -> CpuWindow:
        self._server = self._probe.seconds() if self._probe is not None else None
        self._client = client_cpu_seconds()
        self._host = read_cpu()
        return self

    def stop(self) -> StepCpu:
        if self._probe is None or self._server is None or self._host is None:
            return StepCpu(server_cpu_s=None, foreign_cores=None)
        _await_reaped(self._probe)
        server = self._probe.seconds()
        last = read_cpu()
        elapsed = last.at - self._host.at
        if server is None or elapsed <= 0:
            return StepCpu(server_cpu_s=None, foreign_cores=None)
        used = server - self._server
        load = host_load(
            self._host,
            last,
            client_cores=(client_cpu_seconds() - self._client) / elapsed,
            server_cores=used / elapsed,
        )
        foreign = load.foreign_cores if load is not None else None
        return StepCpu(
            server_cpu_s=round(used, 3),
            foreign_cores=round(foreign, 3) if foreign is not None else None,
        )


def _await_reaped(probe: ServerCpuProbe, limit_s: float = REAP_WAIT_S) -> None:
    """Wait (briefly) until no backend of the postmaster is a zombie: a backend that just
    exited (pg_restore's, a parallel worker) counts in the postmaster's children's CPU only
    once reaped, and is unreadable until then."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            children = probe.process.children(recursive=False)
            if not any(_zombie(c) for c in children):
                return
        except psutil.Error:
            return
        time.sleep(0.01)


def _zombie(process: psutil.Process) -> bool:
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False  # gone: reaped
