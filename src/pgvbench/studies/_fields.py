"""Tolerant readers for a study record's JSON form.

A results file may come from an older writer, a run that stopped early or a hand edit:
a study's ``from_dict`` reads each field through these and falls back to a default
instead of failing, so the report still shows what the file does hold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def opt_float(data: Mapping[str, Any], key: str) -> float | None:
    """A finite number at ``key`` as float, else None."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def float_or(data: Mapping[str, Any], key: str, default: float) -> float:
    value = opt_float(data, key)
    return default if value is None else value


def opt_int(data: Mapping[str, Any], key: str) -> int | None:
    value = opt_float(data, key)
    return None if value is None else int(value)


def int_or(data: Mapping[str, Any], key: str, default: int) -> int:
    value = opt_int(data, key)
    return default if value is None else value


def opt_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def text(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key)
    return default if value is None else str(value)


def flag(data: Mapping[str, Any], key: str) -> bool:
    return bool(data.get(key))


def strings(data: Mapping[str, Any], key: str) -> list[str]:
    """The non-empty strings of the list at ``key`` (anything else is skipped)."""
    raw = data.get(key)
    return [s for s in raw if isinstance(s, str) and s] if isinstance(raw, list) else []


def objects(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The objects of the list at ``key`` (anything else is skipped)."""
    raw = data.get(key)
    return [r for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else []


def str_map(data: Mapping[str, Any], key: str) -> dict[str, str]:
    raw = data.get(key)
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, Mapping) else {}
