"""Typed, validating access to one TOML table: every error names file, table and key.

Shared by the spec parser and every study's own parser.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .model import SERVER_VALUE


class Table:
    """Typed, validating access to one TOML table; every error names file + table + key."""

    def __init__(self, where: str, section: str, data: Any) -> None:
        self.where = where
        self.section = section
        if data is None:
            raise SpecError(f"{where}: missing required table [{section}]")
        if not isinstance(data, Mapping):
            raise SpecError(f"{where}: [{section}] must be a table")
        self.data: Mapping[str, Any] = data

    def fail(self, key: str, message: str) -> Any:
        prefix = f"[{self.section}] " if self.section else ""
        raise SpecError(f"{self.where}: {prefix}{key} {message}")

    def only(self, allowed: list[str]) -> None:
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else "."
                self.fail(
                    repr(key)[1:-1],
                    f"is not a known key{hint} Allowed keys: "
                    f"{', '.join(allowed) if allowed else '(none)'}.",
                )

    def _get(self, key: str, default: Any, required: bool) -> Any:
        if key not in self.data:
            if required:
                self.fail(key, "is required")
            return default
        return self.data[key]

    def string(self, key: str, *, default: str = "", required: bool = False) -> str:
        value = self._get(key, default, required)
        if not isinstance(value, str):
            self.fail(key, f"= {value!r} must be a string")
        return str(value)

    def choice(self, key: str, allowed: Any, *, default: str = "", required: bool = False) -> str:
        value = self.string(key, default=default, required=required)
        if value not in allowed:
            self.fail(key, f"= {value!r} is not one of: {', '.join(allowed)}")
        return value

    def integer(
        self,
        key: str,
        *,
        default: int = 0,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        value = self._get(key, default, required)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"= {value!r} must be an integer")
        return int(self._bounded(key, value, minimum, maximum))

    def number(
        self,
        key: str,
        *,
        default: float = 0.0,
        required: bool = False,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self._get(key, default, required)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"= {value!r} must be a number")
        if not math.isfinite(value):
            self.fail(key, f"= {value} must be a finite number")
        return float(self._bounded(key, value, minimum, maximum))

    def int_list(
        self,
        key: str,
        *,
        default: list[int],
        minimum: int,
        maximum: int,
        server_value: bool = False,
    ) -> tuple[int, ...]:
        """``server_value``: the key also accepts "server" (ef_search, probes), so say so."""
        value = self._get(key, default, False)
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        allowed = (
            f'an integer {minimum}..{maximum}, a list of them, or "{SERVER_VALUE}" (the '
            "server's own setting)"
            if server_value
            else "an integer or a non-empty list of integers"
        )
        if not isinstance(value, list) or not value:
            self.fail(key, f"= {value!r} must be {allowed}")
        out: list[int] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                if server_value:
                    self.fail(key, f"contains {item!r}; it must be {allowed}")
                self.fail(key, f"contains {item!r}; every value must be an integer")
            out.append(self._bounded(key, item, minimum, maximum))
        return tuple(sorted(set(out)))

    def str_list(
        self, key: str, *, default: list[str], allowed: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = self._get(key, default, False)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            self.fail(key, f"= {value!r} must be a non-empty list of: {', '.join(allowed)}")
        for item in value:
            if item not in allowed:
                self.fail(key, f"contains {item!r}, which is not one of: {', '.join(allowed)}")
        return tuple(value)

    def path(self, key: str, base_dir: Path) -> Path:
        value = self.string(key, required=True)
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base_dir / p)

    def _bounded(self, key: str, value: Any, minimum: Any, maximum: Any) -> Any:
        if minimum is not None and value < minimum:
            self.fail(key, f"= {value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            self.fail(key, f"= {value} is above the maximum {maximum}")
        return value
