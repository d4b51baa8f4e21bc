"""What the replicas study's records support saying, each sentence with its figures. No
database access."""

from __future__ import annotations

from ...report.fmt import format_qps, format_sig
from ..base import Recommendation
from .records import ReadArm, ReplicasResult
from .summary import best_arm, lag_summaries, primary_arm, shared_host, visibility

# libpq's random choice is "uneven" when a server got this much more than its fair share
UNEVEN_SHARE = 1.25


def advice(result: ReplicasResult) -> list[Recommendation]:
    out: list[Recommendation] = []
    out += scaling_advice(result)
    out += balance_advice(result)
    out += lag_advice(result)
    out += visibility_advice(result)
    return out


def _ratio_text(arm: ReadArm) -> str:
    ratio = arm.qps_ratio
    if ratio is None:
        return ""
    if ratio.low is not None and ratio.high is not None:
        return (
            f" ({format_sig(ratio.ratio)}x; {100 * ratio.level:.0f}% interval "
            f"{format_sig(ratio.low)}-{format_sig(ratio.high)}x over {ratio.rounds} paired rounds)"
        )
    return f" ({format_sig(ratio.ratio)}x, one round)"


def scaling_advice(result: ReplicasResult) -> list[Recommendation]:
    base, best = primary_arm(result), best_arm(result)
    if base is None or best is None or base.qps <= 0:
        return []
    evidence: dict[str, float | int | str] = {
        "primary_qps": round(base.qps, 1),
        "best_arm": best.label,
        "best_qps": round(best.qps, 1),
    }
    if best.qps_ratio is not None:
        evidence["ratio"] = round(best.qps_ratio.ratio, 3)
    text = (
        f"Reads on {best.label} ran {format_qps(best.qps)} QPS against "
        f"{format_qps(base.qps)} on the primary alone{_ratio_text(best)}."
    )
    if shared_host(result):
        per_core = best.qps_per_core
        cores = result.cpu_count
        text += (
            f" The primary and its standbys share this host's {cores or '?'} cores: standbys "
            "here add processes, not cores, so the total is bound by the cores and this "
            "measures what spreading reads costs, not what a cluster of machines holds."
        )
        if per_core is not None and best.latency is not None:
            evidence["qps_per_server_core"] = round(per_core, 1)
            text += (
                f" Plan by cores: {format_qps(per_core)} QPS per server core at p99 "
                f"{format_sig(best.latency.p99)} ms; a read target of T QPS needs about "
                f"T / {format_qps(per_core)} cores across the standbys (each standby's cores "
                "count, the number of standbys does not)."
            )
    return [Recommendation(text=text, evidence=evidence)]


def balance_advice(result: ReplicasResult) -> list[Recommendation]:
    random = next((a for a in result.arms if a.routing == "load_balance"), None)
    if random is None or random.qps <= 0:
        return []
    shares = {s: q / random.qps for s, q in random.server_qps().items()}
    fair = 1.0 / max(1, len(random.servers))
    top = max(shares.values(), default=0.0)
    if top <= UNEVEN_SHARE * fair:
        return []
    spread = ", ".join(f"{s} {100 * v:.0f}%" for s, v in sorted(shares.items()))
    return [
        Recommendation(
            text=(
                f"libpq's load_balance_hosts=random picks a server per connection, so "
                f"{result.clients} long-lived connections landed unevenly ({spread}); "
                "assign connections to standbys yourself (client i on standby i mod N, as "
                "the per-client arms did) or open many more connections than standbys."
            ),
            evidence={"clients": result.clients, **{f"share_{s}": v for s, v in shares.items()}},
        )
    ]


def lag_advice(result: ReplicasResult) -> list[Recommendation]:
    mix = result.mix
    if mix is None:
        return []
    out = []
    for lag in lag_summaries(mix.in_window()):
        if lag.replay_p99_s is None:
            continue
        out.append(
            Recommendation(
                text=(
                    f"Under {format_sig(mix.write_qps)} writes/s on the primary, {lag.standby} "
                    f"replayed with a lag of {format_sig(1000 * (lag.replay_p50_s or 0.0))} ms "
                    f"median, {format_sig(1000 * lag.replay_p99_s)} ms p99 "
                    f"(max {format_sig(1000 * (lag.replay_max_s or 0.0))} ms, at most "
                    f"{lag.bytes_max or 0:,} bytes of WAL behind)."
                ),
                evidence={
                    "standby": lag.standby,
                    "write_qps": round(mix.write_qps, 1),
                    "replay_p99_ms": round(1000 * lag.replay_p99_s, 3),
                    "samples": lag.samples,
                },
            )
        )
    conflicts = sum(mix.conflicts.values())
    if conflicts:
        out.append(
            Recommendation(
                text=(
                    f"{conflicts} queries on the standbys were cancelled by recovery conflicts "
                    "during the mix; hot_standby_feedback = on on the standbys avoids most "
                    "(the primary then keeps the rows they may still read)."
                ),
                evidence={"conflicts": conflicts},
                config_change={"hot_standby_feedback": "on"},
            )
        )
    return out


def visibility_advice(result: ReplicasResult) -> list[Recommendation]:
    rows = visibility(result.probes)
    if not rows:
        return []
    first = rows[0]
    later = first.later_recall
    evidence: dict[str, float | int | str] = {
        "probes": first.probes,
        "delay_ms": first.delay_ms,
        "recall_after_write": round(first.recall, 4),
    }
    text = (
        f"Searched on a standby {format_sig(first.since_commit_p50_ms or first.delay_ms)} ms "
        f"after the commit, {100 * first.recall:.0f}% of {first.probes} new memories came back"
    )
    if later is not None:
        evidence["recall_once_caught_up"] = round(later, 4)
        text += f" ({100 * later:.0f}% once the standbys caught up)"
    for row in rows[1:]:
        text += f"; after {format_sig(row.delay_ms)} ms, {100 * row.recall:.0f}%"
    text += "."
    if first.not_yet_visible:
        text += (
            f" {first.not_yet_visible} were not yet visible: an agent that reads its own "
            "memory right after writing it should read it from the primary, wait until the "
            "standby's pg_last_wal_replay_lsn() reaches the write's LSN, or commit with "
            "synchronous_commit = remote_apply (with synchronous_standby_names), at the cost "
            "of write latency."
        )
    return [Recommendation(text=text, evidence=evidence)]
