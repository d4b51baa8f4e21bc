"""What was run on what: the dataset, the table load and the environment."""

from __future__ import annotations

from ...recall_rule import RecallRule
from ...results import DatasetInfo, Environment, LoadInfo, Results, ServerLimits
from ..document import Block, Heading, KeyValues, Paragraph, Table
from ..fmt import DASH, format_qps, format_sig
from .attributes import attribute_blocks
from .difficulty import difficulty_blocks, difficulty_rows
from .table_source import table_source_blocks


def dataset_section(
    dataset: DatasetInfo | None,
    *,
    recall_rule: RecallRule | None = None,
    run: Results | None = None,
) -> list[Block]:
    """``run`` (the whole results) lets an agent run say what it timed and what its recall
    was measured against, which DatasetInfo's query counts (kNN query sets) do not hold."""
    if dataset is None:
        return [Heading(2, "Dataset"), Paragraph("No dataset information was recorded.")]
    rule = [] if recall_rule is None else [("Recall counts a neighbour", recall_rule.describe())]
    return [
        Heading(2, "Dataset"),
        KeyValues(
            [
                ("Name", dataset.name),
                ("Source", dataset.source),
                ("Vectors (n)", f"{dataset.n:,}"),
                ("Dimensions", str(dataset.dim)),
                ("Metric", dataset.metric),
                ("Seed", DASH if dataset.seed is None else str(dataset.seed)),
                *_queries_rows(dataset, run),
                *rule,
                *difficulty_rows(dataset),
            ]
        ),
        *difficulty_blocks(dataset),
        *table_source_blocks(dataset),
        *attribute_blocks(dataset),
    ]


def _queries_rows(dataset: DatasetInfo, run: Results | None) -> list[tuple[str, str]]:
    if run is not None and _agent_run(dataset, run):
        return [("Timed", agent_timed(run)), ("Recall measured", agent_recall(run))]
    return [
        ("Queries", f"{dataset.n_queries:,} timed, {dataset.n_recall_queries:,} for recall"),
        ("Ground truth", _ground_truth(dataset)),
    ]


def _agent_run(dataset: DatasetInfo, run: Results) -> bool:
    """An agent run: no kNN query sets of its own, its timings are the operation mix and
    its recall the agent studies'."""
    agent = run.agent is not None or any(p.workload for p in run.load_points)
    return agent and not run.runs and dataset.n_queries == 0 and dataset.n_recall_queries == 0


def agent_timed(run: Results) -> str:
    """What an agent run timed: the operation mix, its operations and the query setting."""
    points = [p for p in run.load_points if p.workload]
    setting = _agent_setting(run)
    if not points:
        return "no operation mix (the spec has no [workload] or [[operation]])"
    ops = sorted({name for p in points for name in p.operations_detail})
    total = sum(p.operations for p in points)
    mix = f" ({', '.join(ops)})" if ops else ""
    text = (
        f"the operation mix{mix}: {total:,} operations over {len(points)} load point"
        f"{'s' if len(points) != 1 else ''} (see Operations and Concurrency)"
    )
    return f"{text}; {setting}" if setting else text


def _agent_setting(run: Results) -> str:
    """The index's query-time setting the mix ran at, and why not the whole sweep."""
    indexes = run.spec.get("indexes")
    if not isinstance(indexes, list) or not indexes or not isinstance(indexes[0], dict):
        return ""
    index = indexes[0]
    param, values = index.get("sweep_param"), index.get("sweep_values")
    if not param or not isinstance(values, list) or not values:
        return ""
    load = run.spec.get("load")
    params = load.get("query_params") if isinstance(load, dict) else None
    chosen = params.get(param) if isinstance(params, dict) else None  # [load] overrides
    value = chosen if chosen is not None else values[len(values) // 2]
    text = f"its vector queries ran at {param} = {value}"
    if len(values) > 1:
        swept = ", ".join(str(v) for v in values)
        text += (
            f" (the [[index]] lists {param} {swept}: an agent run builds the index once and "
            "measures one setting, it does not sweep it)"
        )
    return text


def agent_recall(run: Results) -> str:
    """What an agent run's recall was measured against (the agent studies' ground truth)."""
    parts = []
    agent = run.agent
    filtered = agent.filtered if agent is not None else None
    if isinstance(filtered, dict):
        buckets = filtered.get("buckets")
        queries = sum(
            int(b.get("queries", 0))
            for b in (buckets if isinstance(buckets, list) else [])
            if isinstance(b, dict)
        )
        parts.append(
            f"filtered search: {queries:,} queries against the exact top-k over the rows "
            "each filter keeps (computed client-side)"
        )
    if agent is not None and isinstance(agent.drift, dict):
        parts.append("drift: the exact top-k over the rows live at each checkpoint")
    if not parts:
        return "no recall: the operation mix is timed only (add [filtered] or [drift])"
    return "; ".join(parts)


def _ground_truth(dataset: DatasetInfo) -> str:
    gt = dataset.ground_truth
    if gt is None:
        return "not recorded"
    cached = ", cached" if gt.cached else ""
    return f"{gt.method}, k={gt.k}, {format_sig(gt.seconds)} s{cached}"


def load_section(load: LoadInfo | None) -> list[Block]:
    if load is None:
        return []
    return [
        Heading(2, "Load"),
        KeyValues(
            [
                ("Table", load.table),
                ("Rows", f"{load.rows:,}"),
                ("Time", f"{format_sig(load.seconds)} s"),
                ("Rate", f"{format_qps(load.rows_per_second)} rows/s"),
                ("Table size", f"{format_sig(load.table_bytes / 1e6)} MB"),
            ]
        ),
    ]


def environment_section(env: Environment) -> list[Block]:
    host = env.host
    clients = ", ".join(f"{k} {v}" for k, v in sorted(env.client_libraries.items()))
    blocks: list[Block] = [
        Heading(2, "Environment"),
        KeyValues(
            [
                ("PostgreSQL", f"{env.postgres_version} ({env.server_kind})"),
                ("pgvector", env.pgvector_version),
                (
                    "Host",
                    f"{host.cpu_model}, {host.cores} cores, "
                    f"{host.ram_bytes / 2**30:.1f} GiB RAM, {host.os}",
                ),
                *_limits_rows(env.server_limits),
                ("pgvbench", f"{env.pgvbench_version} (commit {env.git_commit or 'unknown'})"),
                ("Python", env.python_version),
                ("Client libraries", clients or DASH),
            ]
        ),
        Heading(3, "Non-default server settings"),
    ]
    settings = sorted(env.non_default_settings.items())
    if not settings:
        blocks.append(Paragraph("None recorded."))
    else:
        blocks.append(Table(["Setting", "Value"], [[k, v] for k, v in settings]))
    return blocks


def _limits_rows(limits: ServerLimits | None) -> list[tuple[str, str]]:
    """The machine the server was limited to: it, not the host, is the "RAM" and the
    cores the rest of the report reasons with."""
    if limits is None:
        return []
    how = "set by [server] memory_limit / cpus" if limits.set_by_pgvbench else "inherited"
    parts = []
    if limits.memory_bytes is not None:
        swap = ", no swap beyond it" if limits.memsw_bytes == limits.memory_bytes else ""
        parts.append(
            f"memory {_binary_size(limits.memory_bytes)} (page cache included{swap}; "
            f"cgroup v{limits.cgroup_version} {limits.memory_cgroup})"
        )
    if limits.cpus:
        cpus = ", ".join(str(c) for c in limits.cpus)
        parts.append(f"{len(limits.cpus)} CPU{'s' if len(limits.cpus) > 1 else ''} ({cpus})")
    return [("Server limited to", f"{'; '.join(parts)}; {how}")]


def _binary_size(n: int) -> str:
    return f"{n / 2**30:.3g} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
