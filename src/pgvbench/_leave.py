"""How the process ends after the CLI returns its exit code."""

from __future__ import annotations

import os
import sys


def leave(code: int) -> int:
    """``code``; after a signal (>= 128: results written, servers stopped, the message
    printed) leave without the interpreter's teardown: a thread a signal left inside a C
    library (libpq, OpenMP) can crash it, and the process then ends by SIGSEGV instead of
    ``code`` (seen once in CI: `pgvbench tune` interrupted, exit -11)."""
    if code >= 128:
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
    return code
