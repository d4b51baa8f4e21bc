"""What was run on what: the dataset, the table load and the environment."""

from __future__ import annotations

from ...recall_rule import RecallRule
from ...results import DatasetInfo, Environment, LoadInfo
from ..document import Block, Heading, KeyValues, Paragraph, Table
from ..fmt import DASH, format_qps, format_sig


def dataset_section(
    dataset: DatasetInfo | None, *, recall_rule: RecallRule | None = None
) -> list[Block]:
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
                (
                    "Queries",
                    f"{dataset.n_queries:,} timed, {dataset.n_recall_queries:,} for recall",
                ),
                ("Ground truth", _ground_truth(dataset)),
                *rule,
            ]
        ),
    ]


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
