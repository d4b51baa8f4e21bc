"""Fault injection for integration tests and bench/: pgvbench runs in a subprocess on its
own embedded server, and the postmaster is killed once a phase shows on the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from support import write_toml


def spec(name: str, *, n: int, dim: int, index: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "experiment": {"name": name, "seed": 3},
        "dataset": {
            "source": "synthetic",
            "distribution": "clustered",
            "n": n,
            "dim": dim,
            "clusters": 16,
            "metric": "l2",
            "queries": 400,
        },
        "query": {"k": 10, "recall_queries": 50, "warmup_seconds": 0.1, "measure_seconds": 1.5},
        "index": [index],
    }
    spec.update(extra)
    return spec


SMALL_HNSW = {"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [10, 20, 40, 80]}
SLOW_HNSW = {"kind": "hnsw", "m": 32, "ef_construction": 200, "ef_search": [40]}

SPECS: dict[str, dict[str, Any]] = {
    "load": spec("fload", n=600_000, dim=96, index={"kind": "none"}),
    "build": spec("fbuild", n=60_000, dim=64, index=SLOW_HNSW),
    "sweep": spec("fsweep", n=5_000, dim=16, index=SMALL_HNSW),
    "load test": spec(
        "floadtest",
        n=5_000,
        dim=16,
        index={"kind": "hnsw", "m": 4, "ef_construction": 8, "ef_search": [20]},
        load={"clients": [3], "warmup_seconds": 0.2, "duration_seconds": 20},
    ),
}

# What pg_stat_activity / the progress views show in each phase (never our own backend).
PHASE_SQL = {
    "load": "SELECT count(*) FROM pg_stat_progress_copy WHERE pid <> pg_backend_pid()",
    "build": "SELECT count(*) FROM pg_stat_progress_create_index",
    "sweep": "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
    "AND query ILIKE '%ORDER BY embedding%' AND pid <> pg_backend_pid()",
    "load test": "SELECT CASE WHEN count(*) >= 2 THEN 1 ELSE 0 END FROM pg_stat_activity "
    "WHERE query ILIKE '%ORDER BY embedding%' AND pid <> pg_backend_pid() AND backend_type = "
    "'client backend'",
}


def start(
    spec_path: Path, root: Path, out: Path, *extra: str, dsn: str | None = None
) -> subprocess.Popen[str]:
    """pgvbench run in a subprocess: on the embedded server in root/data, or on ``dsn``."""
    server = ["--dsn", dsn] if dsn is not None else ["--data-dir", str(root / "data")]
    env = {**os.environ, "PGVBENCH_CACHE_DIR": str(root / "cache")}
    env.pop("PGVBENCH_DEBUG", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pgvbench.cli",
            "run",
            str(spec_path),
            "--out",
            str(out),
            *server,
            *extra,
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(
    root: Path, *args: str, data_dir: Path | None = None, cache_dir: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """One pgvbench command to its end, on the test's data dir (where it takes one)."""
    data = ["--data-dir", str(data_dir or root / "data")] if args[0] in ("run", "server") else []
    return subprocess.run(
        [sys.executable, "-m", "pgvbench.cli", *args, *data],
        env={**os.environ, "PGVBENCH_CACHE_DIR": str(cache_dir or root / "cache")},
        capture_output=True,
        text=True,
        check=False,
    )


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def phase_seen(root: Path, sql: str) -> Callable[[], bool]:
    return phase_seen_on(EmbeddedServer(data_dir=root / "data", lock_dir=root / "locks"), sql)


def phase_seen_on(server: EmbeddedServer, sql: str) -> Callable[[], bool]:
    """True once ``sql`` (a count over the server's activity views) is non-zero."""

    def seen() -> bool:
        if server.postmaster_pid() is None:
            return False
        try:
            with connect(server.dsn(), connect_timeout=2) as conn:
                row = conn.execute(sql).fetchone()
        except Exception:  # not up yet: keep polling
            return False
        return bool(row and row[0])

    return seen


def kill_postmaster_during(
    phase: str, root: Path, out: Path, spec_dir: Path
) -> tuple[subprocess.Popen[str], int, float, str, str]:
    """Run SPECS[phase], SIGKILL the postmaster once the phase shows; return the process,
    the killed pid, the seconds from the kill to pgvbench's exit, stdout and stderr."""
    spec_path = write_toml(spec_dir / f"{phase.replace(' ', '_')}.toml", SPECS[phase])
    proc = start(spec_path, root, out)
    try:
        wait_for(phase_seen(root, PHASE_SQL[phase]), 180, f"the {phase} phase")
        server = EmbeddedServer(data_dir=root / "data", lock_dir=root / "locks")
        postmaster = server.postmaster_pid()
        assert postmaster is not None
        os.kill(postmaster, signal.SIGKILL)
        killed_at = time.monotonic()
        stdout, stderr = proc.communicate(timeout=120)
        return proc, postmaster, time.monotonic() - killed_at, stdout, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
