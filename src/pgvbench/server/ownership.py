"""Proof that a data directory is pgvbench's own, before anything deletes or chowns it.

pgvbench creates its data directories itself and, once initdb has filled one, writes a
marker file into it. Only a directory carrying that marker (or, for data directories made
by pgvbench 0.1 before the marker existed, pgvbench's own conf file) may be re-created
with ``--fresh``, chowned or chmodded. Everything else at that path is the user's: it is
refused with a paragraph that says what is there, and left exactly as it was.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
from pathlib import Path

from .. import __version__
from ..errors import SafetyError

MARKER = ".pgvbench-owned"
CONF_FILE = "pgvbench.conf"
CONF_HEADER = "# Written by pgvbench."  # first line of pgvbench.conf since 0.1


class DirState(enum.Enum):
    MISSING = "missing"  # nothing at the path: pgvbench may create it
    OWNED = "owned"  # a data directory pgvbench created (marker or 0.1 conf)
    EMPTY = "empty"  # an empty directory pgvbench did not create
    FOREIGN_PGDATA = "foreign-pgdata"  # a PostgreSQL data directory of someone else's
    FOREIGN = "foreign"  # a non-empty directory that is not a data directory
    NOT_A_DIRECTORY = "not-a-directory"  # a file, a socket, a dangling link...


@dataclasses.dataclass(frozen=True)
class Inspection:
    path: Path
    state: DirState
    sample: tuple[str, ...] = ()  # a few entry names, for the refusal message
    entries: int = 0


def inspect(path: Path) -> Inspection:
    """What is at ``path``, without changing anything."""
    if not path.exists() and not path.is_symlink():
        return Inspection(path, DirState.MISSING)
    if not path.is_dir():
        return Inspection(path, DirState.NOT_A_DIRECTORY)
    try:
        names = sorted(p.name for p in path.iterdir())
    except OSError:
        return Inspection(path, DirState.FOREIGN)
    if not names:
        return Inspection(path, DirState.EMPTY)
    sample = tuple(names[:5])
    if MARKER in names or _legacy_owned(path):
        return Inspection(path, DirState.OWNED, sample, len(names))
    if "PG_VERSION" in names:
        return Inspection(path, DirState.FOREIGN_PGDATA, sample, len(names))
    return Inspection(path, DirState.FOREIGN, sample, len(names))


def _legacy_owned(path: Path) -> bool:
    """A pgvbench 0.1 data directory: PG_VERSION plus the conf file pgvbench wrote."""
    if not (path / "PG_VERSION").is_file():
        return False
    try:
        with open(path / CONF_FILE, encoding="utf-8", errors="replace") as fh:
            return fh.readline().startswith(CONF_HEADER)
    except OSError:
        return False


def write_marker(path: Path) -> None:
    """Mark ``path`` as created by pgvbench (version and time, for whoever finds it)."""
    body = {
        "created_by": "pgvbench",
        "version": __version__,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "note": "pgvbench created this PostgreSQL data directory and may delete it "
        "(pgvbench run --fresh). Remove this file to keep pgvbench from touching it.",
    }
    (path / MARKER).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def refuse(found: Inspection, *, action: str) -> SafetyError:
    """The refusal for a path that is not pgvbench's to use; ``action`` is what was asked."""
    path = found.path
    untouched = "pgvbench has not changed it (contents, owner and mode are as they were)."
    if found.state is DirState.NOT_A_DIRECTORY:
        kind = "a symbolic link to nothing" if path.is_symlink() else "not a directory"
        return SafetyError(
            f"the data directory {path} is {kind}; {untouched} Point --data-dir (or "
            "PGVBENCH_DATA_DIR) at a path that does not exist yet: pgvbench creates the "
            "directory itself."
        )
    if found.state is DirState.EMPTY:
        return SafetyError(
            f"the data directory {path} is an existing empty directory that pgvbench did not "
            f"create, and {action} would change its owner and mode; {untouched} Point "
            "--data-dir at a path that does not exist yet (pgvbench creates it and marks it "
            f"as its own), or remove the empty directory first (rmdir {path})."
        )
    listing = ", ".join(found.sample) + (", ..." if found.entries > len(found.sample) else "")
    entries = f"{found.entries} {'entry' if found.entries == 1 else 'entries'}"
    if found.state is DirState.FOREIGN_PGDATA:
        return SafetyError(
            f"{path} is a PostgreSQL data directory that pgvbench did not create (it has no "
            f"{MARKER} file), so pgvbench will not {action} it; {untouched} To benchmark a "
            "server you run yourself, start it and pass --dsn; for an embedded server, point "
            "--data-dir at a new path."
        )
    return SafetyError(
        f"the data directory {path} already exists and is not a PostgreSQL data directory "
        f"({entries}: {listing}), so pgvbench will not {action} it; "
        f"{untouched} Point --data-dir (or PGVBENCH_DATA_DIR) at a path that does not exist "
        "yet: pgvbench creates the directory itself."
    )
