"""Comparison outputs: a rich table for the terminal, Markdown for a PR comment, JSON for
tools and JUnit XML so CI systems show each run/metric as a test case."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._atomic import write_bytes_atomic
from .._records import now_iso
from .core import Comparison, Row
from .runs import RULES

COMPARE_SCHEMA_VERSION = 1
_STYLE = {
    "regression": "bold red",
    "invalid": "bold red",
    "improvement": "green",
    "unchanged": "",
    "added": "cyan",
    "removed": "yellow",
}
_MARK = {
    "regression": "❌ regression",
    "invalid": "❌ invalid",
    "improvement": "✅ improvement",
    "unchanged": "unchanged",
    "added": "➕ added",
    "removed": "➖ removed",
}


def fmt_value(row: Row, value: float | None) -> str:
    return metric_value(row.metric, value)


def metric_value(metric: str, value: float | None) -> str:
    """One metric's value as the comparison tables print it (compare's and ab's)."""
    if value is None:
        return ""
    if metric == "recall":
        return f"{value:.4f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def fmt_change(row: Row) -> str:
    if row.change is None:
        return ""
    if row.absolute:
        return f"{row.change:+.4f}"
    return f"{row.change:+.1%}"


def fmt_p(row: Row) -> str:
    if row.p_value is None:
        return "threshold" if row.method == "threshold" else ""
    return f"{row.p_value:.2g}"


def summary_line(c: Comparison) -> str:
    parts = [
        f"{c.count('regression') + c.count('invalid')} regression(s)",
        f"{c.count('improvement')} improvement(s)",
        f"{c.count('unchanged')} unchanged",
    ]
    if c.count("added") or c.count("removed"):
        parts.append(f"{c.count('added')} run(s) added, {c.count('removed')} removed")
    verdict = "REGRESSION" if c.verdict == "regression" else "no regression"
    return f"{verdict}: " + ", ".join(parts)


def print_table(c: Comparison, console: Console, *, only_changes: bool = False) -> None:
    """The terminal view: warnings, then one row per run x metric, then the verdict."""
    for warning in c.environment.warnings:
        console.print(f"[yellow]warning: environment differs: {escape(warning)}[/yellow]")
    for refusal in c.environment.refusals:
        console.print(f"[yellow]warning: compared despite: {escape(refusal)}[/yellow]")
    table = Table(title=f"pgvbench compare: {c.base_name} -> {c.current_name}")
    for col in ("run", "metric", "base", "current", "change", "p-value", "verdict"):
        table.add_column(col, justify="right" if col in ("base", "current", "change") else "left")
    for row in c.rows:
        if only_changes and row.verdict == "unchanged" and row.metric != "validity":
            continue
        table.add_row(
            escape(row.run),
            escape(row.metric),
            fmt_value(row, row.base),
            fmt_value(row, row.current),
            fmt_change(row),
            fmt_p(row),
            _MARK[row.verdict],
            style=_STYLE[row.verdict],
        )
    console.print(table)
    for row in c.rows:
        if row.fails or row.metric == "validity":
            console.print(f"  {escape(row.run)} {escape(row.metric)}: {escape(row.reason)}")
    for note in c.notes:
        console.print(f"[yellow]note: {escape(note)}[/yellow]")
    style = "bold red" if c.verdict == "regression" else "bold green"
    console.print(f"[{style}]{summary_line(c)}[/{style}]")


def to_markdown(c: Comparison) -> str:
    """A PR comment: verdict first, regressions and improvements, the full table folded."""
    icon = "❌" if c.verdict == "regression" else "✅"
    lines = [
        f"## {icon} pgvbench compare: {summary_line(c)}",
        "",
        f"Base `{c.base_name}` -> current `{c.current_name}`; Mann-Whitney U at "
        f"alpha {c.options.alpha:g} plus a minimum effect per metric.",
        "",
    ]
    if c.environment.warnings or c.environment.refusals:
        lines.append("**Environment differences:**")
        lines.append("")
        lines += [f"- {w}" for w in (*c.environment.refusals, *c.environment.warnings)]
        lines.append("")
    notable = [r for r in c.rows if r.verdict not in ("unchanged",) or r.metric == "validity"]
    if notable:
        lines += _md_table(notable, with_reason=True)
        lines.append("")
    for note in c.notes:
        lines.append(f"> {note}")
        lines.append("")
    lines += ["<details><summary>All runs and metrics</summary>", ""]
    lines += _md_table(list(c.rows), with_reason=False)
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _md_table(rows: list[Row], *, with_reason: bool) -> list[str]:
    head = ["run", "metric", "base", "current", "change", "p-value", "verdict"]
    if with_reason:
        head.append("why")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r.run,
            r.metric,
            fmt_value(r, r.base),
            fmt_value(r, r.current),
            fmt_change(r),
            fmt_p(r),
            _MARK[r.verdict],
        ]
        if with_reason:
            cells.append(r.reason)
        out.append("| " + " | ".join(_md_cell(x) for x in cells) + " |")
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_json(c: Comparison) -> dict[str, Any]:
    return {
        "compare_schema_version": COMPARE_SCHEMA_VERSION,
        "created_at": now_iso(),
        "base": c.base_name,
        "current": c.current_name,
        "verdict": c.verdict,
        "summary": summary_line(c),
        "alpha": c.options.alpha,
        "noise_k": c.options.noise_k,
        "min_effects": {name: c.options.rule(name).min_effect for name in RULES},
        "environment": {
            "compatible": c.environment.compatible,
            "refusals": list(c.environment.refusals),
            "warnings": list(c.environment.warnings),
        },
        "notes": list(c.notes),
        "rows": [
            {
                "run": r.run,
                "metric": r.metric,
                "verdict": r.verdict,
                "base": r.base,
                "current": r.current,
                "change": r.change,
                "change_kind": "absolute" if r.absolute else "relative",
                "p_value": r.p_value,
                "method": r.method,
                "n_base": r.n_base,
                "n_current": r.n_current,
                "reason": r.reason,
            }
            for r in c.rows
        ],
    }


def to_junit(c: Comparison) -> ET.Element:
    """One <testcase> per run x metric: regressions are failures, added/removed skipped."""
    cases = list(c.rows)
    suite = ET.Element(
        "testsuite",
        name="pgvbench compare",
        tests=str(len(cases)),
        failures=str(sum(1 for r in cases if r.fails)),
        skipped=str(sum(1 for r in cases if r.verdict in ("added", "removed"))),
        errors="0",
        timestamp=now_iso(),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("base", c.base_name), ("current", c.current_name)):
        ET.SubElement(props, "property", name=name, value=value)
    for r in cases:
        case = ET.SubElement(suite, "testcase", classname=r.run, name=r.metric, time="0")
        text = (
            f"{r.metric}: base {fmt_value(r, r.base)} -> current {fmt_value(r, r.current)} "
            f"({fmt_change(r)}); {r.reason}"
        )
        if r.fails:
            failure = ET.SubElement(case, "failure", message=f"{r.verdict}: {r.reason}")
            failure.text = text
        elif r.verdict in ("added", "removed"):
            ET.SubElement(case, "skipped", message=f"{r.verdict}: {r.reason}")
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{r.verdict}: {text}"
    root = ET.Element("testsuites", name="pgvbench")
    root.append(suite)
    return root


def write_outputs(
    c: Comparison,
    *,
    markdown: Path | None = None,
    json_path: Path | None = None,
    junit: Path | None = None,
) -> None:
    if markdown is not None:
        write_bytes_atomic(markdown, to_markdown(c).encode("utf-8"))
    if json_path is not None:
        write_bytes_atomic(json_path, (json.dumps(to_json(c), indent=2) + "\n").encode("utf-8"))
    if junit is not None:
        root = to_junit(c)
        ET.indent(root)
        text = ET.tostring(root, encoding="unicode", xml_declaration=True)
        write_bytes_atomic(junit, (text + "\n").encode("utf-8"))
