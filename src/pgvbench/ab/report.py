"""Every sentence of ``pgvbench ab``: the terminal table, ab.md (a PR comment), the rows
that compare's JUnit writer turns into test cases. Reads records, never the database."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._atomic import write_bytes_atomic
from ..compare.core import CompareOptions, Comparison, Row
from ..compare.environment import EnvironmentCheck
from ..compare.output import metric_value, to_junit
from .record import AbRecord
from .verdict import MetricVerdict

_MARK = {
    "regression": "❌ regression",
    "invalid": "❌ invalid",
    "improvement": "✅ improvement",
    "unchanged": "unchanged",
    "skipped": "not measured",
}
_STYLE = {"regression": "bold red", "invalid": "bold red", "improvement": "green"}


def change(v: MetricVerdict) -> str:
    if v.change is None:
        return ""
    return f"{v.change:+.4f}" if v.absolute else f"{v.change:+.1%}"


def interval(v: MetricVerdict) -> str:
    if v.low is None or v.high is None:
        return ""
    if v.absolute:
        return f"{v.low:+.4f} .. {v.high:+.4f}"
    return f"{v.low:+.1%} .. {v.high:+.1%}"


def _effect(v: MetricVerdict) -> str:
    return f"{v.min_effect:.4f}" if v.absolute else f"{v.min_effect:.0%}"


def reason(v: MetricVerdict, record: AbRecord) -> str:
    level = f"{v.level:.0%}"
    units = "recall queries" if v.metric == "recall" else "rounds"
    if v.why == "unavailable":
        if v.metric == "blocks" and not record.blocks_available:
            return "pg_stat_statements is not available on this server: not measured"
        if v.metric == "cpu" and not record.cpu_available:
            return (
                "the server's backends cannot be read from this host (an external server): "
                "not measured"
            )
        return f"fewer than 2 {units} measured something on both sides: not judged"
    where = f"{level} interval {interval(v)} over {v.n} {units}"
    if v.why == "below_noise" and v.low == v.high == 0:
        return f"no difference: identical in every one of the {v.n} {units}"
    if v.why == "below_noise":
        return f"the difference is smaller than the noise ({where} holds 0)"
    if v.why == "below_min_effect":
        return f"a real difference ({where}) but smaller than the minimum effect {_effect(v)}"
    word = "worse" if v.why == "regressed" else "better"
    return (
        f"B is {word} by {change(v).lstrip('+-')} ({where}), beyond the minimum effect {_effect(v)}"
    )


def rows(record: AbRecord) -> list[Row]:
    """compare's row model: the JUnit writer (and any tool reading compare's rows) works."""
    run = f"{record.label('A')} -> {record.label('B')}"
    out: list[Row] = []
    for plan in record.plans:
        if plan.get("problem"):
            out.append(
                Row(
                    run=run,
                    metric=f"plan {plan['arm']}",
                    verdict="invalid",
                    reason=f"arm {plan['arm']}: {plan['problem']}",
                )
            )
    errors_a, errors_b = record.errors.get("A", 0), record.errors.get("B", 0)
    if errors_a or errors_b:
        out.append(
            Row(
                run=run,
                metric="errors",
                verdict="regression" if errors_b and not errors_a else "unchanged",
                base=float(errors_a),
                current=float(errors_b),
                reason=f"failed operations: {errors_a} in A, {errors_b} in B",
            )
        )
    for v in record.verdicts:
        out.append(
            Row(
                run=run,
                metric=v.metric,
                verdict="unchanged" if v.verdict == "skipped" else v.verdict,
                base=v.a,
                current=v.b,
                change=v.change,
                absolute=v.absolute,
                p_value=v.p_value,
                method="bootstrap over queries" if v.metric == "recall" else "paired t over rounds",
                n_base=v.n,
                n_current=v.n,
                reason=reason(v, record),
            )
        )
    return out


def summary_line(record: AbRecord) -> str:
    if record.verdict == "invalid":
        return "INVALID: a variant's plan does not use its index; nothing was timed"
    bad = [v.metric for v in record.verdicts if v.fails]
    better = [v.metric for v in record.verdicts if v.verdict == "improvement"]
    head = "REGRESSION" if record.verdict == "regression" else "no regression"
    parts = [f"{len(bad)} regression(s){': ' + ', '.join(bad) if bad else ''}"]
    parts.append(f"{len(better)} improvement(s){': ' + ', '.join(better) if better else ''}")
    return f"{head} in B ({record.label('B')}) vs A ({record.label('A')}): " + "; ".join(parts)


def setup_lines(record: AbRecord) -> list[str]:
    """What ran: the variants, what was built, how it was measured."""
    lines = []
    for v in record.variants:
        params = ", ".join(f"{k}={x}" for k, x in v["query_params"].items())
        extra = [params] if params else []
        settings = {k: x for k, x in v["settings"].items() if k != "statement_timeout"}
        if settings:
            extra.append("settings " + ", ".join(f"{k}={x}" for k, x in settings.items()))
        if v.get("sql"):
            extra.append(f"SQL {v['sql']}")
        lines.append(
            f"{v['arm']}: {v['label']}: {v['index']}" + (f" ({'; '.join(extra)})" if extra else "")
        )
    for b in record.built:
        arms = " and ".join(b["arms"])
        what = (
            f"index {b['index_name']} ({b['index']}, {b['build_seconds']:.1f} s)"
            if b.get("index_name")
            else "no index (exact scan)"
        )
        shared = ", shared by both arms" if len(b["arms"]) > 1 else ""
        lines.append(f"built: table {b['table']} with {what} for {arms}{shared}")
    lines.append(
        f"measured: {record.rounds} rounds x 2 arms x {record.window_s:g} s windows, "
        f"{record.clients} client(s), order drawn per round (seed {record.seed}): "
        f"{record.measured_s:.0f} s measured, {record.wall_s:.0f} s of rounds"
    )
    if not record.blocks_available:
        lines.append("blocks/query: pg_stat_statements is not available, so it was skipped")
    if not record.cpu_available:
        lines.append("CPU/query: the server's backends are not on this host, so it was skipped")
    return lines


def print_table(record: AbRecord, console: Console) -> None:
    for line in setup_lines(record):
        console.print(escape(line))
    table = Table(title=f"pgvbench ab: {record.label('A')} (A) -> {record.label('B')} (B)")
    for col in ("metric", "A", "B", "change", "interval", "p-value", "verdict"):
        table.add_column(col, justify="right" if col in ("A", "B", "change") else "left")
    for row in rows(record):
        v = next((m for m in record.verdicts if m.metric == row.metric), None)
        table.add_row(
            escape(row.metric),
            metric_value(row.metric, row.base),
            metric_value(row.metric, row.current),
            change(v) if v else "",
            interval(v) if v else "",
            f"{row.p_value:.2g}" if row.p_value is not None else "",
            _MARK.get(row.verdict, row.verdict),
            style=_STYLE.get(row.verdict, ""),
        )
    console.print(table)
    for row in rows(record):
        console.print(f"  {escape(row.metric)}: {escape(row.reason)}")
    style = "bold red" if record.verdict != "ok" else "bold green"
    console.print(f"[{style}]{escape(summary_line(record))}[/{style}]")


def to_markdown(record: AbRecord) -> str:
    icon = "✅" if record.verdict == "ok" else "❌"
    lines = [f"## {icon} pgvbench ab: {summary_line(record)}", ""]
    lines += [f"- {line}" for line in setup_lines(record)]
    lines += [
        "",
        f"Randomized interleaved trials: each round runs A and B for one window each, in "
        f"random order. A metric regressed when its {1 - record.alpha:.0%} interval lies "
        "wholly on the bad side and the change is at least its minimum effect.",
        "",
        "| metric | A | B | change | interval | verdict | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows(record):
        v = next((m for m in record.verdicts if m.metric == row.metric), None)
        cells = [
            row.metric,
            metric_value(row.metric, row.base),
            metric_value(row.metric, row.current),
            change(v) if v else "",
            interval(v) if v else "",
            _MARK.get(row.verdict, row.verdict),
            row.reason,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    for plan in record.plans:
        if plan.get("problem"):
            lines += ["", f"Plan of arm {plan['arm']}:", "", "```", plan["plan_text"], "```"]
    lines.append("")
    return "\n".join(lines)


def junit_xml(record: AbRecord) -> str:
    comparison = Comparison(
        base_name=f"A: {record.label('A')}",
        current_name=f"B: {record.label('B')}",
        environment=EnvironmentCheck(refusals=(), warnings=()),
        rows=tuple(rows(record)),
        notes=(),
        options=CompareOptions(alpha=record.alpha),
        matched_runs=1,
    )
    root = to_junit(comparison)
    suite = root.find("testsuite")
    if suite is not None:
        suite.set("name", "pgvbench ab")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_text(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def refusal(record: AbRecord) -> str:
    """One paragraph when a plan check refused the comparison (exit 1)."""
    problems = "; ".join(
        f"arm {p['arm']} ({record.label(p['arm'])}): {p['problem']}"
        for p in record.plans
        if p.get("problem")
    )
    return (
        f"the comparison was refused before timing: {problems}. A timing of a plan that "
        "does not use the intended index says nothing about that index: check the index "
        "parameters, the dataset size (the planner prefers a scan of a tiny table) and the "
        "settings (e.g. enable_indexscan), then run again. Plans are in ab.md."
    )
