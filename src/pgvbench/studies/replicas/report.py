"""The report's Read replicas section: reads per number of standbys, the read/write mix
(per-standby QPS, replay lag) and recall right after writes. Records only, no database."""

from __future__ import annotations

from collections.abc import Sequence

from ...report.document import Block, Heading, Image, KeyValues, Paragraph, Table
from ...report.fmt import DASH, format_optional, format_qps, format_sig
from .records import ReadArm, ReplicasResult
from .summary import lag_summaries, shared_host, visibility

SCALING_FIGURE = "replicas_reads.png"
SCALING_ALT = "Read QPS per number of standbys read from, per server"
LAG_FIGURE = "replicas_lag.png"
LAG_ALT = "Replay lag per standby during the read/write mix"


def _ms(seconds: float | None) -> str:
    return DASH if seconds is None else format_sig(1000 * seconds)


def _dropped(count: int) -> str:
    if not count:
        return ""
    return f", {count:,} arrivals dropped (the primary did not keep up with the rate)"


def _share(part: int, whole: int) -> str:
    return DASH if whole == 0 else f"{100 * part / whole:.0f}%"


def section(result: ReplicasResult, images: Sequence[Image]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Read replicas")]
    routing = "per-client assignment (client i on standby i mod N)"
    if result.load_balance:
        routing += " and libpq's load_balance_hosts=random (one arm)"
    libpq = f"{result.libpq_version // 10000}.{result.libpq_version % 10000}"
    blocks.append(
        KeyValues(
            [
                ("standbys", ", ".join(result.standbys) or DASH),
                (
                    "servers",
                    "embedded primary and standbys on this host "
                    f"({result.cpu_count or '?'} cores shared)"
                    if shared_host(result)
                    else "the --dsn cluster",
                ),
                ("replication", "PostgreSQL streaming replication, one physical slot each")
                if shared_host(result)
                else ("replication", "the cluster's own"),
                ("reads spread by", routing),
                ("client libpq", libpq),
                ("read clients", str(result.clients)),
            ]
        )
    )
    if result.problem:
        blocks.append(Paragraph(result.problem, lead="Not measured.", style="warning"))
    blocks += _arms(result, images)
    blocks += _mix(result, images)
    blocks += _visibility(result)
    return blocks


def _arm_row(arm: ReadArm) -> list[str]:
    ratio = arm.qps_ratio
    if ratio is None:
        ratio_text = DASH
    elif ratio.low is not None and ratio.high is not None:
        ratio_text = (
            f"{format_sig(ratio.ratio)} [{format_sig(ratio.low)}, {format_sig(ratio.high)}]"
        )
    else:
        ratio_text = format_sig(ratio.ratio)
    per_server = ", ".join(f"{s} {format_qps(q)}" for s, q in sorted(arm.server_qps().items()))
    latency = arm.latency
    return [
        arm.label,
        format_qps(arm.qps),
        per_server or DASH,
        DASH if latency is None else format_sig(latency.p50),
        DASH if latency is None else format_sig(latency.p99),
        ratio_text,
        format_optional(arm.server_cpu_cores),
        DASH if arm.qps_per_core is None else format_qps(arm.qps_per_core),
        f"{arm.errors:,}",
    ]


def _arms(result: ReplicasResult, images: Sequence[Image]) -> list[Block]:
    if not result.arms:
        return []
    rounds = max((len(a.windows) for a in result.arms), default=0)
    blocks: list[Block] = [
        Heading(3, "Reads per number of standbys"),
        Paragraph(
            f"The agent mix's reads, {result.clients} closed-loop clients, every arm in "
            f"{rounds} interleaved windows (random order per round, mirrored); the ratio is "
            "the arm's QPS over the primary-only arm's in the same round."
        ),
        Table(
            header=[
                "reads on",
                "QPS",
                "QPS per server",
                "p50 ms",
                "p99 ms",
                "x primary [95% CI]",
                "server cores",
                "QPS / core",
                "errors",
            ],
            rows=[_arm_row(a) for a in result.arms],
            numeric=frozenset({1, 3, 4, 6, 7, 8}),
        ),
    ]
    if shared_host(result):
        blocks.append(
            Paragraph(
                "The primary and its standbys run on one host: standbys add processes, not "
                "cores, so the total read QPS is bound by the host's cores whatever the "
                "number of standbys. Capacity is counted in cores: QPS per server core "
                "(all servers' CPU during the window) is the figure that carries to a "
                "cluster of machines.",
                lead="Cores, not replicas.",
            )
        )
    blocks += [i for i in images if i.src == SCALING_FIGURE]
    return blocks


def _mix(result: ReplicasResult, images: Sequence[Image]) -> list[Block]:
    mix = result.mix
    if mix is None:
        return []
    kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(mix.write_kinds.items()) if v)
    read_qps = mix.read.server_qps()
    lags = {lag.standby: lag for lag in lag_summaries(mix.in_window())}
    rows = []
    for name in result.standbys:
        lag = lags.get(name)
        rows.append(
            [
                name,
                format_qps(read_qps.get(name, 0.0)),
                _ms(lag.replay_p50_s if lag else None),
                _ms(lag.replay_p99_s if lag else None),
                _ms(lag.replay_max_s if lag else None),
                DASH if lag is None or lag.bytes_max is None else f"{lag.bytes_max:,}",
                str(mix.conflicts.get(name, 0)),
            ]
        )
    for name, lag in lags.items():  # an external cluster names its standbys its own way
        if name not in result.standbys:
            rows.append(
                [
                    name,
                    DASH,
                    _ms(lag.replay_p50_s),
                    _ms(lag.replay_p99_s),
                    _ms(lag.replay_max_s),
                    DASH if lag.bytes_max is None else f"{lag.bytes_max:,}",
                    DASH,
                ]
            )
    write = mix.write_latency
    blocks: list[Block] = [
        Heading(3, "Read/write mix"),
        Paragraph(
            f"{format_sig(mix.seconds)} s: writes on the primary at {format_sig(mix.write_rate)}"
            f"/s requested, {format_sig(mix.write_qps)}/s done{_dropped(mix.write_dropped)} "
            f"({kinds or 'none'}; p99 "
            f"{DASH if write is None else format_sig(write.p99)} ms, {mix.write_errors} errors)"
            f"; reads on every standby, {format_qps(mix.read.qps)} QPS in all (p99 "
            f"{DASH if mix.read.latency is None else format_sig(mix.read.latency.p99)} ms). "
            "Lag is the primary's pg_stat_replication, sampled through the mix and "
            "summarised over the writers' timed window; the standbys had replayed "
            f"everything {_ms(mix.caught_up_s)} ms after it ended."
        ),
        Table(
            header=[
                "standby",
                "read QPS",
                "replay lag p50 ms",
                "p99 ms",
                "max ms",
                "max WAL behind (bytes)",
                "recovery conflicts",
            ],
            rows=rows,
            numeric=frozenset({1, 2, 3, 4, 5, 6}),
        ),
    ]
    blocks += [i for i in images if i.src == LAG_FIGURE]
    return blocks


def _visibility(result: ReplicasResult) -> list[Block]:
    rows = visibility(result.probes)
    if not rows:
        return []
    return [
        Heading(3, "Recall right after a write"),
        Paragraph(
            "A memory written on the primary, then searched for on a standby with its own "
            f"vector (top {result.k}): not returned counts as a miss, whatever the cause. "
            "Once the standbys caught up the same searches ran again: a row missed only the "
            "first time was not yet visible (replication's miss, not the index's). "
            "'Replayed' compares the standby's replay position with the primary's WAL "
            "position read after the commit (conservative: later writes may follow it)."
        ),
        Table(
            header=[
                "delay ms",
                "sent after ms (p50)",
                "probes",
                "recall after write",
                "recall once caught up",
                "not yet visible",
                "replayed",
                "WAL behind p50 (bytes)",
                "replay lag p50 ms",
            ],
            rows=[
                [
                    format_sig(v.delay_ms),
                    format_optional(v.since_commit_p50_ms),
                    str(v.probes),
                    f"{v.recall:.3f}",
                    DASH if v.later_recall is None else f"{v.later_recall:.3f}",
                    str(v.not_yet_visible),
                    _share(v.replayed, v.replayed_known),
                    DASH if v.behind_bytes_p50 is None else f"{v.behind_bytes_p50:,.0f}",
                    _ms(v.replay_lag_p50_s),
                ]
                for v in rows
            ],
            numeric=frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8}),
        ),
    ]


def validity(result: ReplicasResult) -> list[str]:
    lines = []
    for arm in result.arms:
        if arm.errors:
            lines.append(f"Read replicas: {arm.label} had {arm.errors} failed reads.")
    if result.mix is not None and result.mix.read.errors:
        lines.append(f"Read replicas: {result.mix.read.errors} reads failed during the mix.")
    return lines
