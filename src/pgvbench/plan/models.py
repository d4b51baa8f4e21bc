"""The rough timing model behind ``pgvbench validate`` (calibration: see plan/__init__)."""

from __future__ import annotations

from ..analysis.interleave import LATER_WINDOW_WARMUP_S, rounds_for
from ..spec.model import IndexSpec, LoadSpec

# Calibration (2 cores, PostgreSQL 18, pgvector 0.8): see the module docstring.
HNSW_REF_SECONDS = 18.6  # m=16, ef_construction=64, 100,000 x 128
HNSW_REF_WORK = 100_000 * 128 * 16 * 64
IVFFLAT_REF_SECONDS = 1.5  # lists=100, 100,000 x 128 (k-means on a sample + assignment)
IVFFLAT_REF_WORK = 100_000 * 128 * 100
LOAD_VALUES_PER_S = 2.5e6  # generate + binary COPY + ANALYZE, floats per second
TRUTH_FLOPS = 2e9  # exact kNN for the recall queries (faiss, blocked)
INDEX_QUERY_S = 0.002  # one top-k through an index (recall passes, result-cache streams)
SCAN_VALUES_PER_S = 5e8  # an exact scan reads this many floats per second
POINT_OVERHEAD_S = 0.3  # EXPLAIN, collectors, results re-saved
LOAD_POINT_OVERHEAD_S = 0.5  # per window: connections / pool / pgbench start-up
RESTART_S = 3.0  # an embedded server restart (settings sweeps, cache study)

# A run holds base vectors and queries in memory as float32; ground truth, generation
# buffers and the copies made while loading roughly triple that.
MEMORY_FACTOR = 3

LONG_RUN_S = 30 * 60  # warn above this estimate ...
MANY_BUILDS = 50  # ... or this many index builds


def hnsw_build_seconds(rows: int, dim: int, m: int, ef_construction: int) -> float:
    """Rough HNSW build time: linear in rows x dim x m x ef_construction."""
    return HNSW_REF_SECONDS * (rows * dim * m * ef_construction) / HNSW_REF_WORK


def ivfflat_build_seconds(rows: int, dim: int, lists: int) -> float:
    """Rough IVFFlat build time: k-means plus assigning every row to one of ``lists``."""
    return 0.2 + IVFFLAT_REF_SECONDS * (rows * dim * lists) / IVFFLAT_REF_WORK


def build_seconds(index: IndexSpec, rows: int, dim: int) -> float:
    if index.kind == "hnsw":
        return hnsw_build_seconds(
            rows, dim, index.params.get("m", 16), index.params.get("ef_construction", 64)
        )
    if index.kind == "ivfflat":
        return ivfflat_build_seconds(rows, dim, index.params.get("lists", 100))
    return 0.0


def load_plan(load: LoadSpec, *, custom_operations: bool = False) -> int:
    """Load points of a [load] table: engines x pooling variants x clients (as loadtest)."""
    points = 0
    for engine in load.engines:
        for pooling in load.pooling:
            if engine == "pgbench" and (pooling.strategy != "direct" or custom_operations):
                continue  # pgbench runs the kNN reference on dedicated connections only
            points += len(pooling.variants()) * len(load.clients)
    return points


def load_point_seconds(load: LoadSpec) -> float:
    """One load point's wall time: its interleaved windows, each with a warm-up (the first
    the spec's, later ones short) and start-up. Measured: 42 points of workloads/pooling.toml
    took 328 s, this gives 332 s."""
    rounds = rounds_for(load.duration_seconds, load.window_seconds)
    later = (rounds - 1) * min(load.warmup_seconds, LATER_WINDOW_WARMUP_S)
    return load.warmup_seconds + later + load.duration_seconds + rounds * LOAD_POINT_OVERHEAD_S


def versus_exact_seconds(measure_seconds: float) -> float:
    """One build's best point against the exact scan (runner/versus_exact.py): two arms of
    ``measure_seconds`` in ~1 s windows, each with a 0.2 s warm-up and its connection.
    Quickstart (4 builds) ran in 113 s in all; with this the estimate says about 2 min."""
    rounds = rounds_for(measure_seconds, 1.0)
    return 2 * (measure_seconds + rounds * (0.2 + LOAD_POINT_OVERHEAD_S))
