"""The PgBouncer binary for the tests that run it: skipped on a developer's machine
without it, a failure in CI (CI=true), where .ci/run installs it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgvbench.server.pgbouncer_setup import find_pgbouncer

MISSING = (
    "pgbouncer is not installed (not on PATH nor in /usr/sbin); "
    "install it with: apt-get install pgbouncer"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_pgbouncer() -> Path:
    """The binary, or skip (locally) / fail (CI) the calling test."""
    binary = find_pgbouncer()
    if binary is None:
        if in_ci():
            pytest.fail(f"{MISSING}. CI must run the PgBouncer tests.", pytrace=False)
        pytest.skip(MISSING)
    return binary
