"""`pgvbench tune` end to end on the embedded server: a small session finishes with its
outputs, resumes after Ctrl-C from its Optuna storage without measuring a trial twice,
and an unreachable target or a storage left from an earlier session is exit 2."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pgvbench.cli import main
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.studies.tune.records import TuneRecord
from support import write_toml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTPUTS = ("results.json", "tune.md", "tune.html", "apply.sql", "postgresql.conf", "tune.db")


def tune_spec(name: str, **tune: Any) -> dict[str, Any]:
    """3,000 x 32 clustered vectors, a few cheap HNSW builds, short windows."""
    return {
        "experiment": {"name": name, "seed": 7, "schema": f"s_{name}"},
        "dataset": {
            "source": "synthetic",
            "distribution": "clustered",
            "n": 3000,
            "dim": 32,
            "clusters": 8,
            "spread": 1.0,
            "metric": "l2",
            "queries": 300,
        },
        "query": {"k": 10, "recall_queries": 100, "warmup_seconds": 0.05, "measure_seconds": 0.25},
        "tune": {
            "recall": 0.9,
            "latency_ms": 1000.0,  # a bound every build meets: the tests are not about timing
            "clients": 1,
            "trials": 3,
            "kinds": ["hnsw"],
            "m": [4, 8],
            "ef_construction": [16, 32],
            "max_ef_search": 200,
            **tune,
        },
    }


def _tune(spec: Path, out: Path, server: EmbeddedServer, *extra: str) -> int:
    argv = ["tune", str(spec), "--out", str(out), "--data-dir", str(server.data_dir), "-q"]
    return main([*argv, *extra])


def _record(out: Path) -> TuneRecord:
    results = json.loads((out / "results.json").read_text())
    return TuneRecord.from_dict(results["tuning"]["tune"])


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGVBENCH_CACHE_DIR", str(tmp_path / "cache"))


def test_small_tune_finishes_with_its_outputs(
    embedded_server: EmbeddedServer,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_toml(tmp_path / "tune.toml", tune_spec(unique_name))
    out = tmp_path / "out"
    code = _tune(spec, out, embedded_server)
    err = capsys.readouterr().err
    assert code == 0, err
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    record = _record(out)
    assert record.winner is not None and record.stop_reason in ("trials", "space_exhausted")
    winner = record.trial(record.winner)
    assert winner is not None and winner.evaluation.feasible
    recall = winner.evaluation.recall
    assert recall is not None and recall.low is not None and recall.low >= 0.9
    assert winner.evaluation.knob_value is not None
    assert 1 <= len(record.trials) <= 3 and record.elapsed_s > 0
    # rebuilt and timed against the runner-up (whether the rebuild holds recall at 3,000
    # rows is build-to-build luck the report states, not something to assert)
    assert record.confirmation is not None and record.confirmation.rounds > 0
    # apply.sql sets the knob the search chose (or the rebuild's, when that needed more)
    script = (out / "apply.sql").read_text()
    (knob,) = re.findall(r'^ALTER DATABASE :"DBNAME" SET hnsw.ef_search = (\d+);$', script, re.M)
    assert int(knob) >= winner.evaluation.knob_value
    assert embedded_server.is_running()  # it was running before: the CLI leaves it so

    # the storage now holds this session: a second run must say --resume (or remove it)
    code = _tune(spec, out, embedded_server)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pgvbench: error:") and "--resume" in err and "tune.db" in err


def test_unreachable_target_names_the_recall_the_limit_and_the_best(
    embedded_server: EmbeddedServer,
    unique_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # no HNSW build of 3,000 rows reaches a 0.999 lower bound looking at 10 candidates
    spec_data = tune_spec(unique_name, recall=0.999, max_ef_search=10, trials=2, m=[4])
    spec = write_toml(tmp_path / "tune.toml", spec_data)
    out = tmp_path / "out"
    code = _tune(spec, out, embedded_server)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("pgvbench: error:") and err.count("pgvbench: error:") == 1
    assert "\n\n" not in err.strip() and "Traceback" not in err
    assert "0.999" in err and "ef_search ≤ 10" in err and "best was" in err, err
    record = _record(out)  # results.json is still written
    assert record.winner is None and record.best_unmet is not None
    assert record.best_unmet.reason == "recall_unreachable"
    assert all(t.evaluation.reason == "recall_unreachable" for t in record.trials)


def _measured_trials(storage: Path) -> int:
    """Trials Optuna has finished (complete or pruned), read without locking the writer."""
    if not storage.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{storage}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute(
                "SELECT count(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()
    except sqlite3.Error:  # not created yet, or the writer holds it this instant
        return 0
    return int(row[0]) if row else 0


def test_resume_after_ctrl_c_measures_no_trial_twice(
    embedded_server: EmbeddedServer, unique_name: str, tmp_path: Path
) -> None:
    # slower trials (longer windows, more of them), so Ctrl-C lands mid-session
    spec_data = tune_spec(unique_name, trials=3, m=[4, 8, 12], ef_construction=[16, 32, 64])
    spec_data["query"]["measure_seconds"] = 0.4
    spec = write_toml(tmp_path / "tune.toml", spec_data)
    out = tmp_path / "out"
    env = {**os.environ, "PGVBENCH_CACHE_DIR": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "pgvbench.cli", "tune", str(spec), "--out", str(out)]
    argv += ["--data-dir", str(embedded_server.data_dir), "-q"]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 180
        while _measured_trials(out / "tune.db") < 1 and proc.poll() is None:
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.1)
        assert proc.poll() is None, "the session ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    before = _measured_trials(out / "tune.db")
    assert 1 <= before < 3, before

    code = main(["tune", str(spec), "--out", str(out), "--data-dir",
                 str(embedded_server.data_dir), "-q", "--resume"])  # fmt: skip
    assert code == 0
    record = _record(out)
    assert record.resumed_trials >= 1
    numbers = [t.number for t in record.trials]
    assert len(numbers) == len(set(numbers)), numbers  # no trial measured twice
    assert sum(t.resumed for t in record.trials) == record.resumed_trials
    assert record.winner is not None
