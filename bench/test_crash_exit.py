"""How fast a run notices that its server died: seconds from SIGKILL of the postmaster to
pgvbench's exit, in each phase (issue 10 asks for at most 5 s).

The integration test (tests/integration/test_faults.py) checks the behaviour and only
that the exit is far from a hang; the 5 s bound lives here, with the other timings.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fault_support import SPECS, kill_postmaster_during
from pgvbench.server.embedded import EmbeddedServer

EXIT_WITHIN_S = 5.0


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pgvbench-crash-bench-"))
    yield path
    server = EmbeddedServer(data_dir=path / "data", lock_dir=path / "locks")
    if server.initialized:
        server.stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("phase", list(SPECS))
def test_crash_to_exit_seconds(
    phase: str, root: Path, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    proc, _, elapsed, _, stderr = kill_postmaster_during(phase, root, tmp_path / "out", tmp_path)
    record_property("crash_to_exit_s", round(elapsed, 3))
    print(f"\n{phase}: exit {proc.returncode} {elapsed:.2f} s after the kill")
    assert proc.returncode == 1, stderr
    assert elapsed < EXIT_WITHIN_S
