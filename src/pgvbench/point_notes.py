"""The wording of the notes sweep points and load points carry in results.json.

Measurement code (runner/, loadtest.py) decides *that* a note applies and passes the
figures; the sentences live here, so measurement modules write no English.
"""

from __future__ import annotations

from collections import Counter


def operations_failed(errors: int, messages: Counter[str]) -> str:
    top = "; ".join(f"{m} (x{c})" for m, c in messages.most_common(3))
    return f"{errors} operations failed: {top}"


def stopped_early(why: str, *, sweep: bool) -> str:
    return f"measurement stopped early: {why}" if sweep else f"stopped early: {why}"


def no_statements() -> str:
    return "pg_stat_statements is not available on this server"


def repeats_merged(repeats: int) -> str:
    return (
        f"{repeats} repeats, interleaved with the other points; latency and QPS merge all repeats"
    )


def client_saturated(cores: float, *, python_engine_cap: bool) -> str:
    if python_engine_cap:
        return (
            f"load generator used {cores:.2f} cores: it may be the bottleneck (one Python "
            "process is capped near one core)"
        )
    return f"load generator used {cores:.2f} cores: it may be the bottleneck"


def ef_search_below_k(ef_search: int, k: int) -> str:
    return f"hnsw.ef_search = {ef_search} < k = {k}: at most {ef_search} rows return"


def server_setting(guc: str, value: str | None) -> str:
    return (
        f"{guc} = {value if value is not None else '?'} (the server's setting: the spec leaves "
        "it to the server)"
    )


def through_pgbouncer(mode: str, style: str) -> str:
    return f"through PgBouncer {mode} mode: {style}"


def pgbench_tps(tps: float) -> str:
    return f"pgbench's own tps (warm-up included): {tps:,.1f}"


def rate_not_reached(achieved: float, target: float) -> str:
    return f"achieved {achieved:,.1f} ops/s of the {target:,.1f} target: the system did not keep up"


def fidelity_different_sql() -> str:
    return (
        "fidelity compares the vector-parameter SQL with pgbench's table-lookup SQL; set "
        'query_source = "table" for like with like'
    )


def fidelity_low(
    fidelity: float, threshold: float, spread: tuple[float, float] | None = None
) -> str:
    rounds = f" (single rounds {spread[0]:.2f}-{spread[1]:.2f})" if spread else ""
    return (
        f"fidelity {fidelity:.2f}{rounds} < {threshold}: the Python engine reached less "
        "throughput than pgbench on the same SQL, measured in alternating windows"
    )
