"""One pgvbench run per embedded data directory at a time.

A run holds an exclusive ``flock`` for its whole length, not only while the server
starts: a second run on the same data directory is refused (exit 2) with the holder's
pid and command, and `pgvbench server stop` will not stop a server a run is using.
The kernel drops the lock when its holder dies, even by SIGKILL, so a lock is never
stale. Lock files live in pgvbench's cache directory, never beside the user's files;
they are a few bytes each and are left in place on purpose (deleting a lock file while
another process waits on it would let two runs hold "the" lock at once).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import SafetyError


def lock_path(lock_dir: Path, data_dir: Path, kind: str = "embedded") -> Path:
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]
    return lock_dir / f"{kind}-{digest}.lock"


class RunLock:
    """The whole-run lock on one data directory (see the module docstring)."""

    def __init__(
        self,
        *,
        lock_dir: Path,
        data_dir: Path,
        marker: Path | None = None,
        using: str = "is using the embedded server in",
        kind: str = "embedded",
    ) -> None:
        self.data_dir = data_dir
        self.path = lock_path(lock_dir, data_dir, kind)
        # The lock file lives in the cache dir, which another PGVBENCH_CACHE_DIR moves:
        # a lock on a file inside the directory itself (its ownership marker) holds anyway.
        self.marker = marker
        self.using = using
        self._fh: IO[str] | None = None
        self._marker_fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self, *, purpose: str) -> None:
        """Take the lock or raise SafetyError naming the run that holds it."""
        if self._fh is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held past this call)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = _describe(fh.read())
            fh.close()
            raise self._busy(holder, purpose) from None
        self._fh = fh
        try:
            self.lock_marker(purpose=purpose)
        except BaseException:
            self.release()
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "command": " ".join(["pgvbench", *sys.argv[1:]])[:300],
                    "data_dir": str(self.data_dir),
                }
            )
        )
        fh.flush()

    def lock_marker(self, *, purpose: str = "use") -> None:
        """Also lock the marker inside the directory (again after --fresh re-made it)."""
        if self.marker is None or self._fh is None:
            return
        if self._marker_fh is not None:
            self._marker_fh.close()  # the old inode, if the directory was re-created
            self._marker_fh = None
        try:
            fh = open(self.marker, encoding="utf-8")  # noqa: SIM115 (held past this call)
        except OSError:
            return  # not there yet: initdb writes it, and the caller locks it then
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            raise self._busy(
                "pid unknown: it keeps its lock files elsewhere, another PGVBENCH_CACHE_DIR",
                purpose,
            ) from None
        self._marker_fh = fh

    def _busy(self, holder: str, purpose: str) -> SafetyError:
        return SafetyError(
            f"another pgvbench process ({holder}) {self.using} {self.data_dir}, so this one "
            f"will not {purpose} it: its timings would overlap, and it may stop the server "
            "or overwrite the files under the other run. Wait for it to finish, or give "
            "this run its own directory."
        )

    def release(self) -> None:
        if self._marker_fh is not None:
            self._marker_fh.close()
            self._marker_fh = None
        if self._fh is None:
            return
        fcntl.flock(self._fh, fcntl.LOCK_UN)
        self._fh.close()
        self._fh = None

    @contextlib.contextmanager
    def hold(self, *, purpose: str) -> Iterator[RunLock]:
        self.acquire(purpose=purpose)
        try:
            yield self
        finally:
            self.release()


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']}, since {info['since']}: {info['command']}"
    except (ValueError, KeyError, TypeError):
        return "unknown pid"
