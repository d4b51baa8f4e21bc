"""The tuner's spec, space and search bookkeeping (no server: the measurement side has its
own integration tests, tests/integration/test_tune_*.py)."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import optuna
import pytest

from pgvbench.errors import SpecError
from pgvbench.results import Recall
from pgvbench.spec.parse import parse_spec
from pgvbench.spec.table import Table
from pgvbench.studies.tune.records import Config, Evaluation, Latency, Trial
from pgvbench.studies.tune.search import (
    _nearest_pair,
    _params_of,
    constraints,
    propose,
    ranked,
    storage_trials,
    violation,
)
from pgvbench.studies.tune.space import (
    EF_SEARCH_LADDER,
    default_lists,
    grid_configs,
    grid_points,
    neighbours,
    probes_ladder,
    resolve_space,
)
from pgvbench.studies.tune.spec import TuneSpec, parse_tune
from pgvbench.tune_cli import check_storage, tune_spec

BASE = {
    "experiment": {"name": "t"},
    "dataset": {"source": "synthetic", "n": 5000, "dim": 32, "queries": 300},
}


def _parse(**keys: object) -> TuneSpec:
    return parse_tune(Table("spec.toml", "tune", dict(keys)))


def test_parse_defaults_and_errors_name_the_key() -> None:
    spec = _parse()
    assert spec.recall == 0.95 and spec.objective == "qps" and spec.m is None
    with pytest.raises(SpecError, match=r"\[tune\] ef_construction.*2 x m = 64"):
        _parse(m=[32], ef_construction=[32])
    with pytest.raises(SpecError, match=r"storage.*'float'.*vector, halfvec_index, halfvec_column"):
        _parse(storage=["float"])
    with pytest.raises(SpecError, match="resume"):
        _parse(resume=True)  # a command-line option, not a key
    with pytest.raises(SpecError, match=r"recall = 1\.5 is above the maximum 1\.0"):
        _parse(recall=1.5)


def test_space_is_derived_from_the_data() -> None:
    small = resolve_space(TuneSpec(), rows=50_000, dim=128, k=10)
    assert small.storage == ("vector",)  # halfvec saves little at 128 dims
    assert small.lists == default_lists(50_000) and 50 in small.lists  # rows / 1000 at the centre
    assert set(small.derived) == {"m", "ef_construction", "lists", "storage"}
    wide = resolve_space(TuneSpec(), rows=50_000, dim=768, k=10)
    assert wide.storage == ("vector", "halfvec_index", "halfvec_column")
    huge = resolve_space(TuneSpec(), rows=10_000, dim=3072, k=10)
    assert "vector" not in huge.storage  # pgvector indexes vector up to 2,000 dims
    pinned = resolve_space(TuneSpec(m=(16,), storage=("vector",)), rows=50_000, dim=768, k=10)
    assert pinned.m == (16,) and "m" not in pinned.derived and "storage" not in pinned.derived


def test_grid_holds_only_buildable_configurations() -> None:
    space = resolve_space(TuneSpec(), rows=50_000, dim=128, k=10)
    configs = grid_configs(space)
    hnsw = [c for c in configs if c.kind == "hnsw"]
    assert all(c.params["ef_construction"] >= 2 * c.params["m"] for c in hnsw)
    assert len({c.key for c in configs}) == len(configs)
    assert len(configs) == len(space.hnsw_pairs()) + len(space.lists)
    assert grid_points(space) == sum(len(space.knob_ladder(c)) for c in configs)


def test_knob_ladders() -> None:
    space = resolve_space(TuneSpec(max_ef_search=300), rows=20_000, dim=64, k=20)
    ladder = space.knob_ladder(Config(kind="hnsw", params={"m": 16, "ef_construction": 64}))
    assert ladder[0] >= 20 and ladder[-1] == 300  # never below k; the cap itself included
    assert list(ladder) == sorted(set(ladder))
    assert set(ladder) - {300} <= set(EF_SEARCH_LADDER)
    probes = probes_ladder(100)
    assert probes[0] == 1 and probes[-1] == 100 and list(probes) == sorted(set(probes))
    assert all(b / a <= 1.5 for a, b in itertools.pairwise(probes[3:]))


def test_proposals_are_always_buildable_and_reproducible() -> None:
    space = resolve_space(TuneSpec(m=(8, 32), ef_construction=(32, 64, 128)), rows=5000, dim=32,
                          k=10)  # fmt: skip
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        config = propose(trial, space)
        seen.add(config.key)
        if config.kind == "hnsw":
            assert config.params["ef_construction"] >= 2 * config.params["m"]
        study.tell(trial, 1.0)
        # the enqueued form of a configuration proposes exactly it again
        study.enqueue_trial(_params_of(config, space))
        again = study.ask()
        assert propose(again, space).key == config.key
        study.tell(again, 1.0)
    assert seen <= {c.key for c in grid_configs(space)}
    assert _nearest_pair(space, 1, 0) == (32, 64)  # m=32 with efc 32 is not buildable


def _evaluation(config: Config, *, low: float, qps: float | None, reason: str | None) -> Evaluation:
    latency = (
        Latency(qps=qps, p50_ms=1.0, p95_ms=2.0, p99_ms=3.0, operations=100)
        if qps is not None
        else None
    )
    return Evaluation(
        config=config,
        rows=1000,
        build_seconds=1.0,
        index_bytes=2**20,
        table_bytes=2**20,
        probes=(),
        knob_value=40 if reason != "recall_unreachable" else None,
        recall=Recall(mean=low + 0.01, p5=0.5, min=0.4, low=low),
        latency=latency,
        reason=reason,
        seconds=1.0,
    )


def test_constraints_ranking_and_violation() -> None:
    spec = TuneSpec(recall=0.95, latency_ms=5.0)
    a = Config(kind="hnsw", params={"m": 8, "ef_construction": 64})
    b = Config(kind="ivfflat", params={"lists": 50})
    c = Config(kind="hnsw", params={"m": 16, "ef_construction": 64})
    good = _evaluation(a, low=0.96, qps=900.0, reason=None)
    better = _evaluation(b, low=0.97, qps=1200.0, reason=None)
    missed = _evaluation(c, low=0.90, qps=None, reason="recall_unreachable")
    assert all(v <= 0 for v in constraints(spec, good).values())
    assert constraints(spec, missed)["recall"] == pytest.approx(0.05)
    assert violation(spec, missed) > violation(spec, good) == 0.0
    trials = [
        Trial(number=i, phase="explore", evaluation=ev, started_s=0.0, finished_s=1.0,
              objective=ev.latency.qps if ev.feasible and ev.latency else None)
        for i, ev in enumerate([good, better, missed])
    ]  # fmt: skip
    assert [t.number for t in ranked(spec, trials)] == [1, 0]  # infeasible left out
    low_p99 = TuneSpec(objective="p99")
    assert [t.number for t in ranked(low_p99, [
        Trial(number=0, phase="explore", evaluation=good, started_s=0, finished_s=1,
              objective=4.0),
        Trial(number=1, phase="explore", evaluation=better, started_s=0, finished_s=1,
              objective=2.0),
    ])] == [1, 0]  # fmt: skip


def test_a_tune_only_spec_needs_no_index_and_the_command_line_overrides(tmp_path: Path) -> None:
    spec = parse_spec({**BASE, "tune": {"recall": 0.9}})
    assert spec.indexes == () and spec.study_specs["tune"].recall == 0.9
    with pytest.raises(SpecError, match=r"at least one \[\[index\]\]"):
        parse_spec(dict(BASE))
    path = tmp_path / "t.toml"
    path.write_text(
        '[experiment]\nname = "t"\n[dataset]\nsource = "synthetic"\nn = 5000\ndim = 32\n'
        'queries = 300\n[[index]]\nkind = "hnsw"\n[tune]\nrecall = 0.9\ntrials = 5\n'
    )
    args = argparse.Namespace(spec=path, resume=True, recall=0.97, trials=None, latency_ms=2.5,
                              latency=None, clients=4, rate=None, objective=None,
                              time_budget=None, subsample=None)  # fmt: skip
    narrowed = tune_spec(args)
    tune = narrowed.study_specs["tune"]
    assert narrowed.indexes == ()  # `tune` builds its own
    assert (tune.recall, tune.trials, tune.latency_ms, tune.clients, tune.resume) == (
        0.97, 5, 2.5, 4, True
    )  # fmt: skip
    bad = argparse.Namespace(**{**vars(args), "recall": 2.0})
    with pytest.raises(SpecError, match=r"t.toml.*\[tune\] recall = 2.0"):
        tune_spec(bad)


def test_a_kept_session_is_never_replaced(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="holds no tuning session"):
        check_storage(tmp_path, resume=True)
    check_storage(tmp_path, resume=False)  # nothing there: a new session may start
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    study = optuna.create_study(storage=storage, study_name="tune")
    study.tell(study.ask(), 1.0)
    assert storage_trials(tmp_path / "tune.db") == 1
    with pytest.raises(SpecError, match="--resume"):
        check_storage(tmp_path, resume=False)
    check_storage(tmp_path, resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "tune.db").write_text("not a database")
    with pytest.raises(SpecError, match="not a tuning session pgvbench can read"):
        check_storage(tmp_path / "other", resume=False)  # left as it is, never overwritten
    assert (tmp_path / "other" / "tune.db").read_text() == "not a database"


def test_neighbours_are_one_step_away_and_buildable() -> None:
    space = resolve_space(TuneSpec(storage=("vector", "halfvec_index")), rows=50_000, dim=128,
                          k=10)  # fmt: skip
    config = Config(kind="hnsw", params={"m": 16, "ef_construction": 64})
    near = neighbours(config, space)
    keys = {c.key for c in near}
    assert config.key not in keys and keys <= {c.key for c in grid_configs(space)}
    params = {(c.params["m"], c.params["ef_construction"]) for c in near if c.storage == "vector"}
    assert params == {(12, 32), (12, 64), (12, 128), (16, 32), (16, 128), (24, 64), (24, 128)}
    # (24, 32) is not buildable: ef_construction < 2 m
    assert any(c.storage == "halfvec_index" and c.params == config.params for c in near)
    first = near[0]
    assert (
        abs(space.m.index(first.params["m"]) - 2)
        + abs(space.ef_construction.index(first.params["ef_construction"]) - 1)
        <= 1
        or first.storage != "vector"
    )  # nearest first
    lists = neighbours(Config(kind="ivfflat", params={"lists": space.lists[0]}), space)
    assert [c.params["lists"] for c in lists if c.storage == "vector"] == [space.lists[1]]
