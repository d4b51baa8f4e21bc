"""PostgreSQL memory sizes (``64MB``) and the limits of the two build settings tuned."""

from __future__ import annotations

import math
import re

DEFAULT_MEMORY = ("64MB", "256MB", "1GB")
DEFAULT_WORKERS = (0, 1)
MEMORY_UNITS = ("kB", "MB", "GB", "TB")
MIN_MEMORY_BYTES = 1024 * 1024  # PostgreSQL's floor for maintenance_work_mem
MAX_MEMORY_BYTES = 2_147_483_647 * 1024  # INT_MAX kB
MAX_WORKERS = 1024  # PostgreSQL's ceiling for max_parallel_maintenance_workers
PARTICIPANT_MIN_BYTES = 32 * 1024**2  # plan_create_index_workers: >= 32MB per participant
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgGtT][bB])\s*$")


def memory_worker_cap(memory_bytes: int) -> int:
    """Workers PostgreSQL plans for a build at this maintenance_work_mem.

    plan_create_index_workers leaves each participant (leader included) at least 32MB,
    so 16MB allows no worker, 64MB one, 96MB two.
    """
    return max(0, memory_bytes // PARTICIPANT_MIN_BYTES - 1)


def parse_size(text: str) -> int:
    """``"64MB"`` -> bytes (PostgreSQL memory units kB, MB, GB, TB; any case)."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 64MB (units: kB, MB, GB, TB)")
    unit = match.group(2).lower()
    power = [u.lower() for u in MEMORY_UNITS].index(unit) + 1
    return int(match.group(1)) * int(1024**power)


def format_size(num_bytes: float) -> str:
    """Bytes as PostgreSQL spells a setting: the largest exact unit (``1GB``, ``1536MB``)."""
    value = int(num_bytes)
    for power in range(len(MEMORY_UNITS), 0, -1):
        scale = 1024**power
        if value >= scale and value % scale == 0:
            return f"{value // scale}{MEMORY_UNITS[power - 1]}"
    return f"{max(1, math.ceil(value / 1024))}kB"
