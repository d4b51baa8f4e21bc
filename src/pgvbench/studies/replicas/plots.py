"""Figures of the replicas study: read QPS per arm (stacked by server, p99 beside it) and
replay lag over the read/write mix. Each writes one PNG, or returns None with nothing to
draw."""

from __future__ import annotations

from pathlib import Path

from ...report.figures import PALETTE, new_figure, save_figure
from .records import PRIMARY, MixResult, ReplicasResult


def plot_reads(result: ReplicasResult, path: Path) -> Path | None:
    arms = [a for a in result.arms if a.windows]
    if not arms:
        return None
    servers = [PRIMARY, *result.standbys]
    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(servers)}
    fig = new_figure(9, 4.8)
    ax = fig.add_subplot()
    labels = [a.label for a in arms]
    xs = list(range(len(arms)))
    bottoms = [0.0] * len(arms)
    for server in servers:
        heights = [a.server_qps().get(server, 0.0) for a in arms]
        if not any(heights):
            continue
        ax.bar(xs, heights, bottom=bottoms, color=colours[server], label=server, width=0.6)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks(xs, labels, rotation=12)
    ax.set_ylabel("read QPS (stacked by server)")
    p99 = ax.twinx()
    p99.plot(
        xs,
        [a.latency.p99 if a.latency else float("nan") for a in arms],
        color="#333333",
        marker="o",
        linewidth=1.2,
        label="p99 ms",
    )
    p99.set_ylabel("p99 latency, ms")
    p99.set_ylim(bottom=0)
    handles, names = ax.get_legend_handles_labels()
    more, more_names = p99.get_legend_handles_labels()
    ax.legend(handles + more, names + more_names, loc="upper left", fontsize=8)
    title = "Reads per number of standbys"
    if result.source == "embedded":
        title += f" (one host, {result.cpu_count or '?'} cores shared by every server)"
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def plot_lag(mix: MixResult, path: Path) -> Path | None:
    samples = mix.samples
    if not samples:
        return None
    fig = new_figure(9, 4.2)
    ax = fig.add_subplot()
    for i, name in enumerate(sorted({s.standby for s in samples})):
        mine = [s for s in samples if s.standby == name]
        ax.plot(
            [s.t for s in mine],
            [
                1000 * (s.replay_lag_s if s.replay_lag_s is not None else 0.0)
                if s.replay_lag_s is not None or s.lag_bytes == 0
                else float("nan")
                for s in mine
            ],
            color=PALETTE[(i + 1) % len(PALETTE)],
            linewidth=1.2,
            label=f"{name} replay lag",
        )
    if mix.window_start_s is not None and mix.window_end_s is not None:
        ax.axvspan(
            mix.window_start_s, mix.window_end_s, color="#dddddd", alpha=0.5, zorder=0,
            label="writers' timed window",
        )  # fmt: skip
    ax.set_xlabel("seconds into the mix")
    ax.set_ylabel("replay lag, ms")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        f"Replay lag under {mix.write_qps:.0f} writes/s on the primary (pg_stat_replication)",
        fontsize=10,
    )
    return save_figure(fig, path)
