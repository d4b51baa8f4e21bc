"""A reader that closes pgvbench's stdout early (`| head -1`) is not an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_closed_stdout_pipe_exits_quietly() -> None:
    code = "import sys; from pgvbench._entry import main; sys.exit(main())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "validate", str(ROOT / "workloads" / "pooling.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `head` does once it has its line: every write now gets EPIPE
    with proc.stderr:
        stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert stderr == ""  # no "operating-system error ... check free disk space"
