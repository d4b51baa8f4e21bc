"""pgvbench ab without a server: spec pairing, the [ab] table, the verdict rule, ab.json."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from pgvbench.ab.pair import Pairing, check_server_contexts, pair_specs
from pgvbench.ab.record import AbRecord
from pgvbench.ab.rules import RULES
from pgvbench.ab.trials import Window
from pgvbench.ab.verdict import judge_ratio, judge_recall
from pgvbench.cli import main
from pgvbench.errors import SpecError
from pgvbench.spec.model import ExperimentSpec
from pgvbench.spec.parse import parse_spec


def _spec(path: str = "a.toml", **tables: Any) -> ExperimentSpec:
    data: dict[str, Any] = {
        "experiment": {"name": "abunit", "seed": 3},
        "dataset": {"source": "synthetic", "n": 2000, "dim": 16, "queries": 100},
        "query": {"k": 10, "recall_queries": 20},
        "index": [{"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": 40}],
    }
    for name, table in tables.items():
        if isinstance(table, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **table}
        else:
            data[name] = table
    return parse_spec(data, source=Path(path))


def test_a_different_dataset_names_the_key_and_both_values() -> None:
    with pytest.raises(SpecError) as err:
        pair_specs(_spec("a.toml"), _spec("b.toml", dataset={"n": 3000}))
    text = str(err.value)
    assert "[dataset] n differs: 2000 in a.toml and 3000 in b.toml" in text


def test_a_different_k_or_seed_is_refused() -> None:
    with pytest.raises(SpecError, match=r"\[query\] k differs: 10 in a.toml and 20 in b.toml"):
        pair_specs(_spec("a.toml"), _spec("b.toml", query={"k": 20}))
    with pytest.raises(SpecError, match=r"\[experiment\] seed differs: 3 in a.toml and 4"):
        pair_specs(_spec("a.toml"), _spec("b.toml", experiment={"name": "abunit", "seed": 4}))


def _with_settings(a: dict[str, str], b: dict[str, str]) -> Pairing:
    return pair_specs(
        _spec("a.toml", server={"settings": a}), _spec("b.toml", server={"settings": b})
    )


def test_a_server_level_setting_that_differs_is_refused_with_the_way_out() -> None:
    pairing = _with_settings({"shared_buffers": "128MB"}, {"shared_buffers": "1GB"})
    assert pairing.differing == ("shared_buffers",)
    contexts = {"shared_buffers": "postmaster"}
    with pytest.raises(SpecError) as err:
        check_server_contexts(pairing, contexts.get)
    text = str(err.value)
    assert "shared_buffers differs: '128MB' in a.toml and '1GB' in b.toml" in text
    assert "context 'postmaster'" in text and "pgvbench compare" in text


def test_a_session_setting_that_differs_becomes_the_variants_own() -> None:
    pairing = _with_settings({"work_mem": "4MB", "jit": "off"}, {"work_mem": "64MB", "jit": "off"})
    check_server_contexts(pairing, {"work_mem": "user", "jit": "user"}.get)
    assert pairing.server_settings == {"jit": "off"}
    assert pairing.a.settings["work_mem"] == "4MB" and pairing.b.settings["work_mem"] == "64MB"


def test_one_operating_point_per_variant() -> None:
    many = {"kind": "hnsw", "m": 8, "ef_construction": 32, "ef_search": [20, 40]}
    with pytest.raises(SpecError, match="ef_search lists several values"):
        pair_specs(_spec("a.toml"), _spec("b.toml", index=[many]))
    pairing = pair_specs(_spec("a.toml"), _spec("b.toml", ab={"label": "b"}))
    assert pairing.b.session_settings["hnsw.ef_search"] == "40"
    assert (pairing.a.label, pairing.b.label) == ("a", "b")


def test_the_ab_table_is_checked_like_every_other_table() -> None:
    with pytest.raises(
        SpecError, match=r"\[ab\] windows is not a known key; did you mean 'window_seconds'"
    ):
        _spec(ab={"windows": 2})
    with pytest.raises(SpecError, match=r"\[ab\] sql must contain \{knn\} exactly once"):
        _spec(ab={"sql": "SELECT id FROM t"})
    spec = _spec(
        ab={
            "label": "md5",
            "sql": "SELECT id, md5(id::text) FROM ({knn}) AS q",
            "settings": {"work_mem": "8MB"},
            "rounds": 5,
        }
    )
    assert spec.ab.sql.startswith("SELECT id, md5") and spec.ab.settings == {"work_mem": "8MB"}


def test_the_command_exits_2_on_specs_that_cannot_be_paired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = (
        '[experiment]\nname = "abunit"\n[dataset]\nsource = "synthetic"\nn = {n}\ndim = 8\n'
        '[[index]]\nkind = "none"\n'
    )
    (tmp_path / "a.toml").write_text(base.format(n=100))
    (tmp_path / "b.toml").write_text(base.format(n=200))
    code = main(
        ["ab", str(tmp_path / "a.toml"), str(tmp_path / "b.toml"), "--output", str(tmp_path / "o")]
    )
    assert code == 2
    assert "[dataset] n differs: 100 in" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- the verdict rule


def _rounds(
    ratio: float, noise: float, n: int = 20, seed: int = 1
) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    a, b = [], []
    for _ in range(n):
        machine = 1000 * math.exp(rng.gauss(0, 0.2))  # the machine's state of the round
        a.append(machine * math.exp(rng.gauss(0, noise)))
        b.append(machine * ratio * math.exp(rng.gauss(0, noise)))
    return a, b


def test_a_ten_percent_qps_loss_is_a_regression_despite_machine_drift() -> None:
    a, b = _rounds(0.90, 0.03)
    v = judge_ratio(RULES["qps"], a, b)
    assert v.verdict == "regression" and v.why == "regressed"
    assert v.change is not None and -0.14 < v.change < -0.06
    assert v.high is not None and v.high < 0


def test_identical_arms_are_unchanged_below_the_noise() -> None:
    a, b = _rounds(1.0, 0.03, seed=5)
    v = judge_ratio(RULES["qps"], a, b)
    assert v.verdict == "unchanged"
    assert v.low is not None and v.high is not None and v.low <= 0 <= v.high
    assert v.why == "below_noise"


def test_a_real_but_small_change_is_below_the_minimum_effect() -> None:
    a, b = _rounds(1.015, 0.002)
    v = judge_ratio(RULES["p50"], a, b)  # 1.5% slower, very precisely measured
    assert v.verdict == "unchanged" and v.why == "below_min_effect"
    assert v.low is not None and v.low > 0


def test_latency_going_down_is_an_improvement() -> None:
    a, b = _rounds(0.7, 0.03)
    assert judge_ratio(RULES["p99"], a, b).verdict == "improvement"


def test_rounds_missing_a_side_are_skipped() -> None:
    v = judge_ratio(RULES["blocks"], [None, None], [None, None])
    assert v.verdict == "skipped" and v.why == "unavailable"


def test_recall_is_judged_per_query_as_an_absolute_drop() -> None:
    rng = random.Random(2)
    a = [1.0 if rng.random() < 0.97 else 0.9 for _ in range(200)]
    worse = [x - 0.1 if i % 3 == 0 else x for i, x in enumerate(a)]  # drop ~0.033
    v = judge_recall(RULES["recall"], a, worse)
    assert v.verdict == "regression" and v.absolute
    same = judge_recall(RULES["recall"], a, a)
    assert same.verdict == "unchanged" and same.change == 0


# ---------------------------------------------------------------- ab.json


def test_the_record_survives_a_json_round_trip() -> None:
    a, b = _rounds(0.9, 0.03, n=3)
    windows = tuple(
        Window(
            round=r,
            position=p,
            arm=arm,
            qps=q,
            p50_ms=1.0 + r,
            p99_ms=3.0,
            operations=100,
            errors=0,
            blocks_per_query=None,
            started_s=float(2 * r + p),
        )
        for r in range(3)
        for p, (arm, q) in enumerate(
            (("B", b[r]), ("A", a[r])) if r % 2 else (("A", a[r]), ("B", b[r]))
        )
    )
    schedule = tuple(tuple(w.arm for w in windows if w.round == r) for r in range(3))
    record = AbRecord(
        created_at="2026-12-03T00:00:00+00:00",
        variants=({"arm": "A", "label": "x"}, {"arm": "B", "label": "y"}),
        seed=1,
        rounds=3,
        window_s=0.5,
        clients=1,
        alpha=0.01,
        min_effects={"qps": 0.04},
        environment={"postgres_version": "18"},
        dataset={"n": 10},
        server_settings={},
        built=({"table": "t_ab1", "arms": ["A", "B"]},),
        plans=({"arm": "A", "problem": None, "plan_text": "Index Scan"},),
        recall={"A": (1.0, 0.9), "B": (1.0, 0.8)},
        recall_rule=None,
        schedule=schedule,
        windows=windows,
        blocks_available=False,
        cpu_available=False,
        measured_s=3.0,
        wall_s=3.5,
        verdicts=(judge_ratio(RULES["qps"], a, b),),
        errors={"A": 0, "B": 0},
    )
    data = json.loads(json.dumps(record.to_dict()))
    assert data["format"] == "pgvbench-ab" and data["version"] == 1
    assert all({"A", "B"} <= set(r) for r in data["rounds_detail"])
    again = AbRecord.from_dict(data)
    assert again.to_dict() == data
    assert again.windows == record.windows and again.schedule == record.schedule


def test_each_arm_runs_first_equally_often() -> None:
    from pgvbench.ab.measure import balanced_schedule

    for seed in range(20):
        rounds = balanced_schedule(16, seed=seed)
        assert len(rounds) == 16 and all(sorted(r) == ["A", "B"] for r in rounds)
        assert sum(r[0] == "A" for r in rounds) == 8
    odd = balanced_schedule(7, seed=3)
    assert len(odd) == 7 and abs(sum(r[0] == "A" for r in odd) - 3.5) == 0.5
    assert balanced_schedule(16, seed=1) != balanced_schedule(16, seed=2)  # still drawn
