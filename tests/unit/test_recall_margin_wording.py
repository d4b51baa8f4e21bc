"""The vector sweep's headline with its margin: the lower confidence bound of recall, the p5
target, queries with recall 0, the build-to-build spread, and what to try when nothing
reaches the target. Results are built by hand: report code never touches the database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgvbench.analysis.pareto import fastest_at_recall, safer_point
from pgvbench.compare.environment import check_environment
from pgvbench.recall_rule import ANN_BENCHMARKS, STRICT
from pgvbench.report.sections.summary import recommendation
from pgvbench.results import BuildSpread, Recall, Results, SweepPoint, load_results, write_results
from pgvbench.spec.parse import parse_spec
from study_support import results_for

HNSW = "hnsw(m=16,ef_construction=64)"
IVF = "ivfflat(lists=100)"
EF = "hnsw.ef_search"


def _recall(
    mean: float, low: float | None = None, *, p5: float | None = None, zero: int = 0
) -> Recall:
    return Recall(
        mean=mean,
        p5=mean - 0.05 if p5 is None else p5,
        min=0.0 if zero else mean - 0.2,
        low=low,
        p1=0.0 if zero else mean - 0.1,
        zero=zero,
        queries=200,
    )


def _point(
    value: int | None,
    recall: Recall,
    qps: float,
    *,
    index: str = HNSW,
    kind: str = "hnsw",
    params: dict[str, int] | None = None,
    rebuilds: BuildSpread | None = None,
) -> SweepPoint:
    param = {"hnsw": EF, "ivfflat": "ivfflat.probes"}.get(kind)
    return SweepPoint(
        index=index,
        index_kind=kind,
        index_params=params if params is not None else {"m": 16, "ef_construction": 64},
        query_params={param: value} if param and value is not None else {},
        k=10,
        concurrency=1,
        recall=recall,
        qps=qps,
        latency_ms=None,
        operations=int(qps * 3),
        errors=0,
        duration_s=3.0,
        warmup_s=1.0,
        valid=True,
        rebuilds=rebuilds,
    )


def _results(runs: list[SweepPoint], **query: Any) -> Results:
    results = results_for(spec={"query": {"target_recall": 0.95, "k": 10, **query}})
    results.runs = runs
    return results


def test_sentence_states_the_margin() -> None:
    results = _results([_point(40, _recall(0.962, 0.955), 2100.0)])
    text = recommendation(results, 0.95)
    assert f"is {HNSW} with hnsw.ef_search=40:" in text
    assert "recall 0.962, at least 0.955 with 95% confidence (target 0.95), p5 0.912" in text
    assert "Flag" not in text


def test_chooses_on_the_lower_bound_not_the_mean() -> None:
    # the fast point's mean clears 0.95 but its bound does not: a rebuild or another query
    # sample could well read below the target
    fast = _point(20, _recall(0.952, 0.944), 4000.0)
    safe = _point(40, _recall(0.97, 0.962), 2500.0)
    assert fastest_at_recall([fast, safe], 0.95) is safe
    assert "hnsw.ef_search=40" in recommendation(_results([fast, safe]), 0.95)
    # an old file (no bound) is judged on the mean, as before
    old = _point(20, Recall(mean=0.952, p5=0.9, min=0.5), 4000.0)
    assert fastest_at_recall([old, safe], 0.95) is old


def test_zero_recall_queries_are_flagged() -> None:
    results = _results([_point(40, _recall(0.962, 0.955, zero=3), 2100.0)])
    text = recommendation(results, 0.95)
    assert "Flag: 3 of 200 recall queries (1.5%) found none of their true neighbours" in text


def test_p5_target_must_clear_too() -> None:
    wide = _point(20, _recall(0.967, 0.96, p5=0.70), 5000.0, index=IVF, kind="ivfflat",
                  params={"lists": 100})  # fmt: skip
    tight = _point(80, _recall(0.975, 0.97, p5=0.92), 1800.0)
    results = _results([wide, tight], target_recall_p5=0.9)
    assert fastest_at_recall(results.runs, 0.95) is wide  # on the mean alone
    assert fastest_at_recall(results.runs, 0.95, p5_target=0.9) is tight
    text = recommendation(results, 0.95)
    assert "hnsw.ef_search=80" in text and "p5 0.920 (p5 target 0.9)" in text


def test_nothing_reaches_names_the_largest_knob_and_the_exact_scan_cost() -> None:
    runs = [_point(40, _recall(0.90, 0.89), 3000.0), _point(160, _recall(0.94, 0.93), 1200.0)]
    text = recommendation(_results(runs), 0.95)
    assert "No configuration reaches recall@10 ≥ 0.95 with 95% confidence" in text
    assert f"highest recall reached is 0.940 (at least 0.930) by {HNSW} with " in text
    assert f"the largest hnsw.ef_search tried on {HNSW} was 160 (recall 0.940)" in text
    assert "try hnsw.ef_search = 320" in text
    assert 'add an [[index]] kind = "none"' in text
    # with an exact scan in the sweep it wins; the sentence still says what to try
    exact = _point(None, _recall(1.0, 1.0), 45.0, index="none", kind="none", params={})
    text = recommendation(_results([*runs, exact]), 0.95)
    assert "fastest configuration is the exact scan (no index): recall 1.000" in text
    assert "45.0 QPS" in text
    assert f"No index reaches the target: the best is {HNSW} with hnsw.ef_search=160" in text
    assert "try hnsw.ef_search = 320" in text
    # an exact scan that itself fell short (timeouts): its measured cost is still named
    short = _point(None, _recall(0.99, 0.985), 45.0, index="none", kind="none", params={})
    text = recommendation(_results([*runs, short]), 0.999)
    assert "the exact scan ran at 45.0 QPS here but reached only recall 0.990" in text
    assert f"the largest hnsw.ef_search tried on {HNSW} was 160" in text


def test_nothing_reaches_at_pgvectors_maximum_suggests_a_denser_graph() -> None:
    runs = [_point(1000, _recall(0.93, 0.92), 300.0)]
    text = recommendation(_results(runs), 0.95)
    assert "was 1000 (recall 0.930), pgvector's maximum" in text
    assert "m (now 16, e.g. 32) or ef_construction (now 64, e.g. 128)" in text
    runs = [_point(400, _recall(0.93, 0.92), 500.0)]
    text = recommendation(_results(runs), 0.95)
    assert "try hnsw.ef_search = 800, or rebuild with a larger m" in text


def test_nothing_reaches_with_ivfflat() -> None:
    runs = [
        _point(p, _recall(r, r - 0.01), q, index=IVF, kind="ivfflat", params={"lists": 100})
        for p, r, q in [(1, 0.6, 3000.0), (8, 0.9, 900.0)]
    ]
    text = recommendation(_results(runs), 0.95)
    assert f"the largest ivfflat.probes tried on {IVF} was 8 (recall 0.900)" in text
    assert "try ivfflat.probes = 16" in text


def test_mean_clears_but_bound_does_not_is_said() -> None:
    text = recommendation(_results([_point(40, _recall(0.951, 0.94), 2000.0)]), 0.95)
    assert "whose mean clears the target but not with 95% confidence" in text


def test_rebuild_spread_larger_than_margin_names_the_next_safer_point() -> None:
    chosen = _point(
        20, _recall(0.958, 0.952), 4000.0,
        rebuilds=BuildSpread(recall=[0.958, 0.9496, 0.955], qps=[4000.0, 3900.0, 4100.0]),
    )  # fmt: skip
    next_up = _point(40, _recall(0.962, 0.955), 3000.0)  # not enough margin either
    safer = _point(80, _recall(0.985, 0.98), 2000.0)
    runs = [chosen, next_up, safer]
    assert safer_point(runs, chosen, 0.95, 0.0085) is safer
    text = recommendation(_results(runs), 0.95)
    assert "Across 3 builds of this index its recall ranged 0.950–0.958" in text
    assert "QPS 3,900–4,100" in text
    assert "smaller than that build-to-build spread (0.0084)" in text
    assert "may miss the target" in text
    assert "The next safer point is" in text and "hnsw.ef_search=80 (recall 0.985" in text


def test_rebuild_spread_within_margin_is_reported_plainly() -> None:
    chosen = _point(
        80, _recall(0.985, 0.98), 2000.0,
        rebuilds=BuildSpread(recall=[0.985, 0.982], qps=[2000.0, 1950.0]),
    )  # fmt: skip
    text = recommendation(_results([chosen]), 0.95)
    assert "Across 2 builds" in text and "the target holds on every build" in text


def test_rebuild_spread_without_a_safer_point_says_extend() -> None:
    chosen = _point(
        20, _recall(0.958, 0.952), 4000.0,
        rebuilds=BuildSpread(recall=[0.958, 0.9496], qps=[4000.0, 3900.0]),
    )  # fmt: skip
    text = recommendation(_results([chosen]), 0.95)
    assert "no larger hnsw.ef_search in this sweep clears it by that spread" in text


def test_new_fields_round_trip_and_old_files_load(tmp_path: Path) -> None:
    spread = BuildSpread(recall=[0.958, 0.9496], qps=[4000.0, 3900.0])
    results = _results([_point(20, _recall(0.958, 0.952, zero=2), 4000.0, rebuilds=spread)])
    results.recall_rule = ANN_BENCHMARKS
    path = tmp_path / "results.json"
    write_results(results, path)
    data = json.loads(path.read_text())
    assert data["recall_rule"] == {"epsilon": 0.001, "relative": False}
    again = load_results(path)
    assert again.recall_rule == ANN_BENCHMARKS
    point = again.runs[0]
    assert point.recall == results.runs[0].recall and point.recall is not None
    assert point.recall.zero == 2 and point.recall.queries == 200  # counts, not fractions
    assert point.rebuilds == spread
    # a file from before: no rule, no bound, no spread
    del data["recall_rule"]
    for key in ("low", "p1", "zero", "queries"):
        del data["runs"][0]["recall"][key]
    del data["runs"][0]["rebuilds"]
    path.write_text(json.dumps(data))
    old = load_results(path)
    assert old.recall_rule == STRICT
    assert old.runs[0].recall is not None and old.runs[0].recall.low is None
    assert old.runs[0].rebuilds is None
    assert "recall 0.958 (p5 0.908)" in recommendation(old, 0.95)


def test_new_query_keys_keep_old_baselines_comparable() -> None:
    """Keys added to [query] are recorded only when they change what was measured, so a
    baseline saved before them compares with a run that keeps the old recall rule."""
    base = {
        "experiment": {"name": "x"},
        "dataset": {"source": "synthetic", "n": 100, "dim": 4},
        "index": [{"kind": "hnsw"}],
    }
    default = parse_spec(base).to_dict()["query"]
    assert default["recall_epsilon"] == 0.001
    assert "rebuilds" not in default and "target_recall_p5" not in default
    strict = parse_spec({**base, "query": {"recall_epsilon": "strict"}}).to_dict()
    assert "recall_epsilon" not in strict["query"]
    tuned = parse_spec({**base, "query": {"rebuilds": 3, "target_recall_p5": 0.8}}).to_dict()
    assert tuned["query"]["rebuilds"] == 3 and tuned["query"]["target_recall_p5"] == 0.8

    older = results_for(spec=strict)  # a file from before the rule: no recall_epsilon either
    same_rule = results_for(spec=dict(strict))
    assert check_environment(older, same_rule).compatible
    changed = results_for(spec=parse_spec(base).to_dict())
    check = check_environment(older, changed)
    assert not check.compatible
    assert any("recall_epsilon" in r for r in check.refusals)
