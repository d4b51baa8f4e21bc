"""The environment records of a result: the host, the limits the server ran under, the
software (kept out of results.py, which re-exports them, to keep that module within the
size limit)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class HostInfo:
    cpu_model: str
    cores: int
    ram_bytes: int
    os: str


@dataclasses.dataclass
class ServerLimits:
    """The cgroup limits the server's processes ran under, read back from the cgroup files
    (server/cgroup.py): a [server] memory_limit / cpus, or a container's own limits.

    ``memory_bytes`` counts the page cache too; None: no limit below the host's RAM.
    ``cpus``: the server's cpuset when narrower than the host's CPUs, else empty.
    """

    cgroup_version: int  # 1 or 2
    memory_bytes: int | None = None
    # v1 with swap accounting: memory + swap (pgvbench sets it equal: no swapping past it)
    memsw_bytes: int | None = None
    cpus: list[int] = dataclasses.field(default_factory=list)
    memory_cgroup: str | None = None  # e.g. "/pgvbench-0a1b2c3d4e5f"
    cpuset_cgroup: str | None = None
    set_by_pgvbench: bool = False  # pgvbench made the cgroup for [server] limits


@dataclasses.dataclass
class Environment:
    postgres_version: str
    pgvector_version: str
    server_kind: str  # "embedded" | "external"
    non_default_settings: dict[str, str]
    host: HostInfo
    pgvbench_version: str
    git_commit: str | None
    python_version: str
    client_libraries: dict[str, str] = dataclasses.field(default_factory=dict)
    server_limits: ServerLimits | None = None  # absent in older files: none recorded

    def server_ram_bytes(self) -> int:
        """The memory the server had: the host's RAM, or its memory limit when lower (the
        limit counts the page cache, so it is the RAM of the machine simulated)."""
        limit = self.server_limits.memory_bytes if self.server_limits else None
        ram = self.host.ram_bytes
        return min(ram, limit) if limit and ram > 0 else (limit or ram)

    def server_cores(self) -> int:
        """The CPUs the server could use: its cpuset's, or the host's."""
        cpus = self.server_limits.cpus if self.server_limits else []
        return len(cpus) if cpus else self.host.cores

    @property
    def limited(self) -> bool:
        return self.server_limits is not None and bool(
            self.server_limits.memory_bytes or self.server_limits.cpus
        )
