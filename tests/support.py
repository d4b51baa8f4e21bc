"""Helpers shared by tests (importable thanks to pythonpath = tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    """Minimal TOML writer for test specs (tables, arrays of tables, scalars, lists)."""
    lines: list[str] = []

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):  # inline table, e.g. inside a list
            return "{ " + ", ".join(f"{k} = {scalar(x)}" for k, x in v.items()) + " }"
        return repr(v)

    def table(prefix: str, body: dict[str, Any], header: str) -> None:
        lines.append(header)
        nested = {k: v for k, v in body.items() if isinstance(v, dict)}
        for k, v in body.items():
            if k not in nested:
                key = f'"{k}"' if "." in k else k  # dotted keys would nest
                lines.append(f"{key} = {scalar(v)}")
        for k, v in nested.items():
            name = f'"{k}"' if "." in k else k
            table(f"{prefix}.{name}", v, f"[{prefix}.{name}]")

    for key, value in data.items():
        if isinstance(value, list):
            for item in value:
                table(key, item, f"[[{key}]]")
        else:
            table(key, value, f"[{key}]")
    path.write_text("\n".join(lines) + "\n")
    return path
