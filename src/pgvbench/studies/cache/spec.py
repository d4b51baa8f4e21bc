"""``[cache]``: which cache states to measure, under which shared_buffers sizes."""

from __future__ import annotations

import dataclasses
import re

from ...spec.table import Table

STRATEGIES = ("cold", "warm", "autoprewarm")
# PostgreSQL's own memory units (case-sensitive, as postgresql.conf takes them).
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(kB|MB|GB|TB)\s*$")
_UNIT_BYTES = {"kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
KEYS = ["strategies", "shared_buffers", "measure_seconds", "warmup_series_seconds", "drop_os_cache"]


@dataclasses.dataclass(frozen=True)
class CacheSpec:
    strategies: tuple[str, ...] = STRATEGIES
    shared_buffers: tuple[str, ...] = ()  # empty: keep the server's current value
    measure_seconds: float = 5.0
    warmup_series_seconds: float = 10.0
    drop_os_cache: bool = True


def size_bytes(value: str) -> int:
    """Bytes of a PostgreSQL memory size like "64MB"; ValueError if not one."""
    match = _SIZE_RE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size like 64MB")
    return int(match.group(1)) * _UNIT_BYTES[match.group(2)]


def parse_cache(t: Table) -> CacheSpec:
    """The ``[cache]`` table of a spec."""
    t.only(KEYS)
    strategies = t.str_list("strategies", default=list(STRATEGIES), allowed=STRATEGIES)
    if len(set(strategies)) != len(strategies):
        t.fail("strategies", f"= {list(strategies)!r} lists a strategy twice")
    raw = t.data.get("shared_buffers", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        t.fail("shared_buffers", f'= {raw!r} must be a list of sizes like ["64MB", "1GB"]')
    sizes: list[str] = []
    for item in raw:
        if not isinstance(item, str) or _SIZE_RE.match(item) is None:
            t.fail(
                "shared_buffers",
                f"contains {item!r}; every value must be a size string with a unit "
                'kB, MB, GB or TB, e.g. "64MB"',
            )
        elif size_bytes(item) < 128 << 10:
            t.fail("shared_buffers", f"contains {item!r}, below PostgreSQL's minimum 128kB")
        sizes.append(item.strip().replace(" ", ""))
    drop = t.data.get("drop_os_cache", True)
    if not isinstance(drop, bool):
        t.fail("drop_os_cache", f"= {drop!r} must be true or false")
    return CacheSpec(
        strategies=strategies,
        shared_buffers=tuple(sizes),
        measure_seconds=t.number("measure_seconds", default=5.0, minimum=0.5, maximum=3600),
        warmup_series_seconds=t.number(
            "warmup_series_seconds", default=10.0, minimum=1.0, maximum=3600
        ),
        drop_os_cache=drop,
    )
