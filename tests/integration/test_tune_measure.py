"""The tuner's measurement side on a real server: one configuration built, its query knob
bisected on the recall lower bound, timed; budgets, failures, the halfvec storages, the
winner's confirmation, and every table and index the tuner made dropped at the end.
3000 x 32 clustered vectors, k = 10. No timing thresholds."""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pgvbench.analysis.paired import recall_lower_bound
from pgvbench.datasets import (
    Dataset,
    GroundTruth,
    generate_clustered,
    ground_truth,
    tie_aware_recall,
)
from pgvbench.datasets.groundtruth import exact_knn
from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.metrics import Metric
from pgvbench.recall_rule import DEFAULT_RULE
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies.tune.confirm import build_spread, confirm, with_build_margin
from pgvbench.studies.tune.measure import Bench, Candidate, TuneTables, assess, evaluate
from pgvbench.studies.tune.objective import objective
from pgvbench.studies.tune.records import Config, KnobProbe, Trial
from pgvbench.studies.tune.relative import RANK_ROUNDS, Reference, evaluate_ranked
from pgvbench.studies.tune.spec import TuneSpec
from pgvbench.studies.tune.sql import ident

pytestmark = pytest.mark.integration

N, DIM, K = 3000, 32, 10
LADDER = (10, 16, 20, 24, 32, 40, 48, 64, 80, 100, 128, 160, 200)
SMALL = Config(kind="hnsw", params={"m": 8, "ef_construction": 32})
BIG = Config(kind="hnsw", params={"m": 16, "ef_construction": 64})
WEAK = Config(kind="hnsw", params={"m": 4, "ef_construction": 8})


@dataclasses.dataclass
class Loaded:
    dsn: str
    schema: str
    dataset: Dataset
    truth: GroundTruth

    def bench(self, *, rows: int = N, **target: Any) -> Bench:
        base, truth = self.dataset.base, self.truth
        if rows < N:
            ids, distances = exact_knn(base[:rows], self.dataset.queries, K, Metric.L2)
            truth = GroundTruth(ids=ids, distances=distances, method="exact", seconds=0.0,
                                cached=False)  # fmt: skip
        return Bench(
            dsn=self.dsn,
            schema=self.schema,
            table="items",
            prefix=f"t{uuid.uuid4().hex[:6]}",
            rows=rows,
            dim=DIM,
            metric=Metric.L2,
            k=K,
            base=base[:rows],
            recall_queries=self.dataset.queries,
            truth=truth,
            load_queries=self.dataset.queries,
            rule=DEFAULT_RULE,
            target=TuneSpec(**{"recall": 0.95, **target}),
            warmup_s=0.05,
            measure_s=0.25,
            statement_timeout_ms=10_000,
        )

    def tables(self, bench: Bench) -> TuneTables:
        return TuneTables(self.dsn, self.schema, "items", bench.prefix, DIM)

    def relations(self) -> set[tuple[str, str]]:
        with connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'i')",
                (self.schema,),
            ).fetchall()
        return {(str(r[0]), str(r[1])) for r in rows}


@pytest.fixture(scope="module")
def loaded(embedded_server: EmbeddedServer) -> Iterator[Loaded]:
    dsn = embedded_server.dsn()
    schema = f"s_tm{uuid.uuid4().hex[:8]}"
    dataset = generate_clustered(
        n=N, dim=DIM, n_queries=100, clusters=16, spread=1.0, seed=5, metric=Metric.L2
    )
    with connect(dsn) as conn:
        db_schema.ensure_schema(conn, schema)
        db_schema.create_vector_table(conn, schema, "items", DIM)
    load_vectors(dsn, schema, "items", dataset.base)
    yield Loaded(dsn, schema, dataset, ground_truth(dataset, K, cache_dir=None))
    with connect(dsn) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _own_recall_low(loaded: Loaded, bench: Bench, candidate: Candidate, value: int) -> float:
    """The recall lower bound at ``value`` on the candidate's index, measured here with
    plain psycopg rather than through the Candidate."""
    stmt = candidate.sql.replace("$1", "%s::vector")
    ids = []
    with connect(loaded.dsn) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute(f"SET hnsw.ef_search = {value}")
        for q in bench.recall_queries:
            text = "[" + ",".join(repr(float(x)) for x in q) + "]"
            ids.append([int(r[0]) for r in conn.execute(stmt, (text,)).fetchall()])
    per_query = tie_aware_recall(
        ids, bench.truth, bench.recall_queries, bench.base, K, Metric.L2, rule=bench.rule
    )
    return recall_lower_bound(per_query, confidence=bench.target.confidence)


def test_evaluate_bisects_to_the_smallest_knob_meeting_the_bound(loaded: Loaded) -> None:
    bench = loaded.bench(recall=0.95)
    before = loaded.relations()
    steps: list[str] = []
    with loaded.tables(bench) as tables:
        with Candidate(bench, tables, SMALL, on_step=steps.append) as candidate:
            ev = assess(candidate, LADDER, started=time.perf_counter())
            assert ev.reason is None and ev.knob_value is not None, ev.to_dict()
            at = LADDER.index(ev.knob_value)
            assert _own_recall_low(loaded, bench, candidate, ev.knob_value) >= 0.95
            if at > 0:  # the value below misses, measured independently on the same build
                assert _own_recall_low(loaded, bench, candidate, LADDER[at - 1]) < 0.95
        # bisection, not a grid: the top value, then about log2(len) probes
        assert ev.probes[0].value == LADDER[-1]
        assert 2 <= len(ev.probes) <= 1 + math.ceil(math.log2(len(LADDER)))
        assert len({p.value for p in ev.probes}) == len(ev.probes)
        assert ev.recall is not None and ev.recall.low is not None and ev.recall.low >= 0.95
        assert ev.latency is not None and ev.latency.operations > 0 and ev.latency.qps > 0
        assert ev.latency.p50_ms <= ev.latency.p95_ms <= ev.latency.p99_ms
        assert ev.build_seconds is not None and ev.index_bytes > 0 and ev.table_bytes > 0
        assert any("build" in s for s in steps) and any("recall" in s for s in steps)
        # evaluate() is assess() on a Candidate that drops its index
        again = evaluate(bench, tables, Config(kind="ivfflat", params={"lists": 30}),
                         (1, 2, 3, 4, 6, 8, 12, 16, 23, 30))  # fmt: skip
        assert again.reason is None and again.knob_value is not None
        assert {r for r in loaded.relations() if r[1] == "i"} == set()
    assert loaded.relations() == before


def test_unreachable_recall_stops_at_the_top_of_the_ladder(loaded: Loaded) -> None:
    bench = loaded.bench(recall=0.9999)
    with loaded.tables(bench) as tables:
        ev = evaluate(bench, tables, WEAK, (10, 16, 20))
    assert ev.reason == "recall_unreachable"
    assert [p.value for p in ev.probes] == [20]  # only the top value: nothing below can meet it
    assert ev.knob_value is None and ev.latency is None
    assert ev.recall is not None and ev.recall.mean == ev.probes[0].recall_mean


def test_halfvec_storages(loaded: Loaded) -> None:
    bench = loaded.bench(recall=0.9)
    with loaded.tables(bench) as tables:
        full = evaluate(bench, tables, SMALL, LADDER)
        index = evaluate(bench, tables, dataclasses.replace(SMALL, storage="halfvec_index"), LADDER)
        column = evaluate(
            bench, tables, dataclasses.replace(SMALL, storage="halfvec_column"), LADDER
        )
        copies = {r for r in loaded.relations() if r[0].startswith(bench.prefix)}
    for ev in (full, index, column):
        assert ev.reason is None and ev.latency is not None, ev.to_dict()
    assert column.table_bytes < full.table_bytes  # the halfvec column shrinks the heap ...
    assert index.table_bytes == full.table_bytes  # ... the expression index does not
    assert index.index_bytes < full.index_bytes and column.index_bytes < full.index_bytes
    assert copies == {(f"{bench.prefix}_half_all", "r")}
    assert not {r for r in loaded.relations() if r[0].startswith(bench.prefix)}


def test_a_budget_missed_skips_the_knob_search(loaded: Loaded) -> None:
    bench = loaded.bench(max_index_mb=0.01)
    with loaded.tables(bench) as tables:
        ev = evaluate(bench, tables, SMALL, LADDER)
        memory = evaluate(loaded.bench(max_memory_mb=0.5), tables, SMALL, LADDER)
    assert ev.reason == "index_over" and ev.probes == () and ev.latency is None
    assert ev.index_bytes > 0.01 * 2**20 and ev.build_seconds is not None
    assert memory.reason == "memory_over" and memory.probes == ()
    # a build running past max_build_seconds is stopped there, not waited for
    slow = Config(kind="hnsw", params={"m": 48, "ef_construction": 1000})
    with loaded.tables(bench) as tables:
        stopped = evaluate(loaded.bench(max_build_seconds=0.05), tables, slow, LADDER)
    assert stopped.reason == "build_over" and stopped.probes == ()
    assert stopped.build_seconds is not None and stopped.build_seconds >= 0.05
    assert stopped.index_bytes == 0 and stopped.error is None
    assert {r for r in loaded.relations() if r[1] == "i"} == set()


def test_a_refused_build_is_build_failed_with_the_servers_message(loaded: Loaded) -> None:
    bench = loaded.bench()
    too_big = Config(kind="hnsw", params={"m": 101, "ef_construction": 400})  # m <= 100
    bad_setting = dataclasses.replace(SMALL, build_settings={"maintenance_work_mem": "lots"})
    with loaded.tables(bench) as tables:
        refused = evaluate(bench, tables, too_big, LADDER)
        unset = evaluate(bench, tables, bad_setting, LADDER)
    for ev, word in ((refused, '"m"'), (unset, "maintenance_work_mem")):
        assert ev.reason == "build_failed" and ev.build_seconds is None, ev.to_dict()
        assert ev.error is not None and word in ev.error
        assert ev.probes == () and ev.latency is None and ev.index_bytes == 0
    assert {r for r in loaded.relations() if r[1] == "i"} == set()


def test_ctrl_c_during_a_build_cancels_it_and_leaves_nothing(loaded: Loaded) -> None:
    bench = loaded.bench()
    slow = Config(kind="hnsw", params={"m": 48, "ef_construction": 1000})

    polls: list[float] = []

    def interrupt(step: str) -> None:
        if " build " in step:  # a progress poll: the build is running on the server
            polls.append(time.perf_counter())
            if polls[-1] - polls[0] > 0.5:  # well into it
                raise KeyboardInterrupt

    tables = loaded.tables(bench)
    with pytest.raises(KeyboardInterrupt), tables:
        evaluate(bench, tables, dataclasses.replace(slow, storage="halfvec_column"), LADDER,
                 on_step=interrupt)  # fmt: skip
    assert not {r for r in loaded.relations() if r[0].startswith(bench.prefix) or r[1] == "i"}
    with connect(loaded.dsn) as conn:
        running = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX%%' "
            "AND state = 'active'"
        ).fetchone()
    assert running is not None and running[0] == 0


def test_confirm_times_winner_and_runner_up_interleaved(loaded: Loaded) -> None:
    bench = loaded.bench(recall=0.95)
    before = loaded.relations()
    with loaded.tables(bench) as tables:
        done = confirm(bench, tables, SMALL, 40, BIG, 10, lambda c: LADDER, rounds=4,
                       window_s=0.15, seed=3)  # fmt: skip
        assert {r for r in loaded.relations() if r[1] == "i"} == set()  # both dropped
        alone = confirm(bench, tables, WEAK, 200, None, None, lambda c: LADDER, rounds=2)
    assert done.rounds == 4 and done.window_s == 0.15
    assert done.qps is not None and done.p99 is not None
    assert done.qps.rounds == 4 and len(done.qps.per_round) == 4 and done.p99.rounds == 4
    assert done.winner.config == SMALL and done.winner.knob_value is not None
    assert done.runner_up is not None and done.runner_up.config == BIG
    # recall_holds: the rebuild's own bound at the chosen knob (m=8 reaches 0.98 at 40;
    # m=4, ef_construction=8 stays below 0.95 at any ef_search)
    assert done.recall_holds and done.winner.knob_value <= 40
    assert not alone.recall_holds and alone.winner.reason == "recall_unreachable"
    assert alone.runner_up is None and alone.qps is None and alone.p99 is None
    assert loaded.relations() == before


def test_the_build_margin_steps_the_knob_up_by_the_spread_between_builds(
    loaded: Loaded,
) -> None:
    bench = loaded.bench(recall=0.95)
    with loaded.tables(bench) as tables, Candidate(bench, tables, SMALL) as rebuilt:
        evaluation = assess(rebuilt, LADDER, started=time.perf_counter())
        knob = evaluation.knob_value
        assert knob is not None and knob < LADDER[-1]
        below = LADDER[LADDER.index(knob) - 1]
        mean = {p.value: p.recall_mean for p in evaluation.probes}
        assert below in mean  # the bisection measured the step below the knob it chose
        # the search's build: 0.04 lower than the rebuild at the step below the knob
        searched = [KnobProbe(value=below, recall_mean=mean[below] - 0.04, recall_low=0.0)]
        spread = build_spread(searched, evaluation.probes, LADDER, knob)
        assert spread == pytest.approx(0.04, abs=1e-5)
        margined, got = with_build_margin(rebuilt, evaluation, knob, searched, LADDER)
        assert got == spread
        assert margined.knob_value is not None and margined.knob_value >= knob
        # the smallest ladder value whose bound, less the spread, meets the target
        at = LADDER.index(margined.knob_value)
        assert (
            rebuilt.recall(margined.knob_value).recall_low - 0.04 >= 0.95
            or margined.knob_value == LADDER[-1]
        )
        for value in LADDER[LADDER.index(knob) : at]:
            assert rebuilt.recall(value).recall_low - 0.04 < 0.95
        assert margined.recall is not None and margined.latency is not None
        # no probe measured on both builds near the knob: no spread, no margin
        unchanged, none = with_build_margin(rebuilt, evaluation, knob, [], LADDER)
        assert none is None and unchanged == evaluation


def test_the_margin_is_measured_at_the_search_knob_when_the_rebuild_needed_less(
    loaded: Loaded,
) -> None:
    # the search chose a knob above the rebuild's, one the rebuild's bisection never
    # probed: the spread must still be measured there (it was silently none before)
    bench = loaded.bench(recall=0.95)
    with loaded.tables(bench) as tables, Candidate(bench, tables, SMALL) as rebuilt:
        evaluation = assess(rebuilt, LADDER, started=time.perf_counter())
        knob = evaluation.knob_value
        assert knob is not None
        probed = {p.value for p in evaluation.probes}
        above = [v for v in LADDER[LADDER.index(knob) + 1 : -1] if v not in probed]
        assert above, (knob, sorted(probed))  # the bisection skips most of the ladder
        searched_knob = above[0]
        true_mean = rebuilt.recall(searched_knob).recall_mean  # cached; not in evaluation
        searched = [KnobProbe(value=searched_knob, recall_mean=true_mean - 0.03, recall_low=0.0)]
        margined, spread = with_build_margin(rebuilt, evaluation, searched_knob, searched, LADDER)
        assert spread == pytest.approx(0.03, abs=1e-5)
        assert margined.knob_value is not None and margined.knob_value >= searched_knob
        assert searched_knob in {p.value for p in margined.probes}
        assert (
            rebuilt.recall(margined.knob_value).recall_low - 0.03 >= 0.95
            or margined.knob_value == LADDER[-1]
        )


def test_tables_are_made_once_and_dropped_on_close(loaded: Loaded) -> None:
    bench = loaded.bench()
    before = loaded.relations()
    tables = loaded.tables(bench)
    assert tables.table_for("vector", N) == "items"  # the loaded table itself
    assert tables.table_for("halfvec_index", N) == "items"
    sub = tables.table_for("vector", 1000)
    assert tables.table_for("halfvec_index", 1000) == sub  # same rows, same column type
    half = tables.table_for("halfvec_column", N)
    extra = tables.table_for("vector", N, copy=1)
    assert len({sub, half, extra}) == 3 and all(t.startswith(bench.prefix) for t in (sub, half))
    with connect(loaded.dsn) as conn:
        counts = {
            t: conn.execute(f"SELECT count(*), max(id) FROM {ident(loaded.schema, t)}").fetchone()
            for t in (sub, half, extra)
        }
        kind = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "%s::regclass AND attname = 'embedding'",
            (f"{loaded.schema}.{half}",),
        ).fetchone()
    assert counts == {sub: (1000, 999), half: (N, N - 1), extra: (N, N - 1)}
    assert kind == (f"halfvec({DIM})",)
    tables.close()
    assert loaded.relations() == before  # the source table stays, the copies are gone
    assert tables.leftovers == []


def test_a_subsample_is_measured_on_its_own_table_with_the_index_in_the_plan(
    loaded: Loaded,
) -> None:
    # at ef_search 200 on 1000 rows the planner would rather scan: the index is forced
    bench = loaded.bench(rows=1000, recall=0.9)
    with loaded.tables(bench) as tables:
        ev = evaluate(bench, tables, SMALL, LADDER)
    assert ev.rows == 1000 and ev.reason is None and ev.probes[0].value == 200


def test_an_exhaustive_ivfflat_top_is_probed_only_when_the_bisection_ends_there(
    loaded: Loaded,
) -> None:
    ladder = (1, 2, 3, 4, 6, 8, 12, 16, 23, 30)  # 30 = every list: an exact scan
    ivf = Config(kind="ivfflat", params={"lists": 30})
    with loaded.tables(loaded.bench()) as tables:
        easy = evaluate(loaded.bench(recall=0.9), tables, ivf, ladder)
        hard = evaluate(loaded.bench(recall=0.97), tables, ivf, ladder)
    assert easy.reason is None and easy.knob_value is not None and easy.knob_value < 30
    assert 30 not in [p.value for p in easy.probes]  # never measured: not needed
    assert easy.probes[0].value == ladder[(len(ladder) - 1) // 2]  # the bisection's first
    # whatever the harder bound needs, the answer was measured, never assumed
    assert hard.knob_value is None or hard.knob_value in [p.value for p in hard.probes]
    if hard.knob_value == 30:
        assert hard.probes[-1].value == 30


def test_builds_are_ranked_against_a_kept_reference_timed_interleaved(loaded: Loaded) -> None:
    bench = loaded.bench(recall=0.95)
    before = loaded.relations()
    with loaded.tables(bench) as tables:
        reference = Reference(bench, tables, seed=1)
        first = evaluate_ranked(reference, SMALL, LADDER, 0)
        assert first.relative is None and reference.trial == 0 and reference.copy == 1
        kept = {r for r in loaded.relations() if r[1] == "i"}
        assert len(kept) == 1  # the reference stays while later builds are measured
        second = evaluate_ranked(reference, BIG, LADDER, 1)
        rel = second.relative
        assert rel is not None and rel.reference == 0 and rel.measure == "qps"
        assert rel.ratio.rounds == RANK_ROUNDS and len(rel.ratio.per_round) == RANK_ROUNDS
        assert first.latency is not None and rel.reference_value == first.latency.qps
        # the search compares this value, on the reference's scale, not one window
        assert objective(bench.target, second) == pytest.approx(rel.ratio.ratio * first.latency.qps)
        assert objective(bench.target, first) == first.latency.qps
        assert {r for r in loaded.relations() if r[1] == "i"} == kept  # BIG's index dropped
        # an infeasible build is not timed against it
        weak = evaluate_ranked(reference, WEAK, (10, 16, 20), 2)
        assert weak.reason == "recall_unreachable" and weak.relative is None
        reference.close()
        assert {r for r in loaded.relations() if r[1] == "i"} == set()
        # --resume: the recorded reference is rebuilt when a ratio first needs it
        again = Reference(bench, tables, seed=1)
        again.restore(Trial(number=0, phase="explore", evaluation=first, started_s=0.0,
                            finished_s=1.0, objective=first.latency.qps))  # fmt: skip
        third = evaluate_ranked(again, BIG, LADDER, 3)
        assert third.relative is not None and third.relative.reference == 0
        assert third.relative.reference_value == first.latency.qps
        again.close()
    assert loaded.relations() == before
