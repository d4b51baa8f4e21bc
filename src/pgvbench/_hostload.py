"""The host-load record of one measured window (kept out of results.py, which re-exports
it, to keep that module within the size limit)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class HostLoad:
    """What the host was doing around one measured window (instrument/host.py).

    Cores are CPU-seconds per wall second over the window; ``foreign_cores`` is the
    host's busy cores minus this benchmark's client and server (None when the server's
    CPU is unknown, e.g. an external server); ``steal_cores`` is None where the kernel
    does not report steal time. Load averages are the 1-minute figure at each edge.
    """

    loadavg_start: float
    loadavg_end: float
    busy_cores: float
    steal_cores: float | None = None
    foreign_cores: float | None = None
    client_cores: float | None = None
    server_cores: float | None = None
    cpu_count: int | None = None
