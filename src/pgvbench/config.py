"""The one place pgvbench reads environment variables."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import platformdirs


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where pgvbench keeps state between runs."""

    cache_dir: Path  # ground truth and other derived data, safe to delete
    data_dir: Path  # embedded server data directory

    @property
    def groundtruth_dir(self) -> Path:
        return self.cache_dir / "groundtruth"


def paths_from_env() -> Paths:
    """PGVBENCH_CACHE_DIR and PGVBENCH_DATA_DIR override the per-user defaults."""
    cache = Path(os.environ.get("PGVBENCH_CACHE_DIR") or platformdirs.user_cache_path("pgvbench"))
    data = Path(os.environ.get("PGVBENCH_DATA_DIR") or cache / "embedded-pg18")
    return Paths(cache_dir=cache.expanduser(), data_dir=data.expanduser())


def debug_from_env() -> bool:
    """PGVBENCH_DEBUG=1 shows tracebacks, like --debug."""
    return os.environ.get("PGVBENCH_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def forget_libpq_environment() -> None:
    """PGSERVICE, PGOPTIONS, PGSSLMODE and friends are meant for a server of the user's;
    applied to the embedded one (by libpq, in this process and in pgbench) they break it."""
    for name in [n for n in os.environ if n.startswith("PG") and not n.startswith("PGVBENCH")]:
        del os.environ[name]
