"""Synthetic results files for the regression-gate tests (no server needed)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pgvbench.results import (
    DatasetInfo,
    Environment,
    HostInfo,
    IndexBuild,
    Latency,
    Recall,
    Results,
    Sample,
    StatementStats,
    SweepPoint,
    write_results,
)

HNSW = {"m": 16, "ef_construction": 64}


def environment() -> Environment:
    return Environment(
        postgres_version="18.6",
        pgvector_version="0.8.6",
        server_kind="embedded",
        non_default_settings={"shared_buffers": "256MB", "port": "5432"},
        host=HostInfo(cpu_model="Test CPU", cores=2, ram_bytes=24 * 2**30, os="Linux"),
        pgvbench_version="0.1.0",
        git_commit="abc",
        python_version="3.11.7",
        client_libraries={"psycopg": "3.3.9"},
    )


def latency(p50: float) -> Latency:
    return Latency(p50=p50, p95=p50 * 1.5, p99=p50 * 2.0, p999=p50 * 3, max=p50 * 4, mean=p50)


def point(
    ef: int,
    p50s: Sequence[float],
    *,
    recall: float = 0.97,
    blocks: float = 600.0,
    valid: bool = True,
    errors: int = 0,
) -> SweepPoint:
    """A sweep point with one sample per p50 value (QPS = 1000 / p50)."""
    samples = [
        Sample(
            repeat=i,
            sequence=i,
            qps=round(1000.0 / p, 2),
            operations=int(1000.0 / p),
            errors=0,
            duration_s=1.0,
            latency_ms=latency(p),
            shared_blks_per_query=blocks,
        )
        for i, p in enumerate(p50s)
    ]
    median = float(np.median(p50s))
    return SweepPoint(
        index="hnsw(m=16,ef_construction=64)",
        index_kind="hnsw",
        index_params=dict(HNSW),
        query_params={"hnsw.ef_search": ef},
        k=10,
        concurrency=1,
        recall=Recall(mean=recall, p5=0.9, min=0.5),
        qps=round(1000.0 / median, 2),
        latency_ms=latency(median),
        operations=1000,
        errors=errors,
        duration_s=float(len(p50s)),
        warmup_s=0.3,
        valid=valid,
        notes=[] if valid else ["the plan uses a Seq Scan instead of items_hnsw"],
        statements=StatementStats(
            calls=1000,
            mean_exec_ms=median,
            shared_blks_hit_per_call=blocks,
            shared_blks_read_per_call=0.0,
        ),
        samples=samples if len(p50s) > 1 else [],
    )


def results(
    points: Sequence[SweepPoint], *, build_s: float = 5.0, status: str = "complete"
) -> Results:
    return Results(
        run_name="regression",
        status=status,  # type: ignore[arg-type]
        started_at="2026-11-28T00:00:00+00:00",
        finished_at="2026-11-28T00:01:00+00:00",
        environment=environment(),
        spec={"name": "regression", "seed": 42, "repeats": 7, "source_path": "/a/regression.toml"},
        dataset=DatasetInfo(
            name="clustered",
            source="synthetic:clustered",
            n=30000,
            dim=96,
            metric="l2",
            seed=42,
            n_queries=2500,
            n_recall_queries=500,
        ),
        indexes=[
            IndexBuild(
                label="hnsw(m=16,ef_construction=64)",
                kind="hnsw",
                params=dict(HNSW),
                build_seconds=build_s,
                index_bytes=20 * 2**20,
                build_settings={},
            )
        ],
        runs=list(points),
    )


def write(path: Path, res: Results) -> Path:
    write_results(res, path)
    return path


def variant(res: Results) -> Results:
    return copy.deepcopy(res)
