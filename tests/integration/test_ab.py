"""pgvbench ab end to end on the real embedded server: A/A passes, a large change fails,
a variant whose plan does not use its index is refused, nothing is left on the server."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from pgvbench.cli import main
from pgvbench.server.embedded import EmbeddedServer


def _write(path: Path, schema: str, index: str, ab: str = "") -> Path:
    path.write_text(
        f"""[experiment]
name = "abint"
seed = 11
schema = "{schema}"

[dataset]
source = "synthetic"
n = 2000
dim = 16
clusters = 8
queries = 300

[query]
k = 10
recall_queries = 40

[[index]]
{index}

[ab]
{ab}
"""
    )
    return path


HNSW = 'kind = "hnsw"\nm = 8\nef_construction = 32\nef_search = 40'
EXACT = 'kind = "none"'


def _ab(server: EmbeddedServer, a: Path, b: Path, out: Path, *extra: str) -> int:
    argv = ["ab", str(a), str(b), "--rounds", "6", "--window", "0.3", "-q"]
    argv += ["--data-dir", str(server.data_dir), "--output", str(out), *extra]
    return main(argv)


def _leftovers(server: EmbeddedServer, schema: str) -> int:
    with psycopg.connect(server.dsn()) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s",
            (schema,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_vs_a_passes_and_shares_one_index(
    embedded_server: EmbeddedServer, tmp_path: Path, unique_name: str
) -> None:
    schema = f"s_{unique_name}"
    a = _write(tmp_path / "a.toml", schema, HNSW, 'label = "base"')
    out = tmp_path / "out"
    # A/A with 6 short rounds: at the default alpha 0.01 each of the four timed metrics
    # flags a chance difference about 0.5% of the time (a CI run saw qps -10.3%, p=0.009);
    # 0.001 keeps this test about the pairing and the shared index, not about luck
    argv = ["--junit", str(tmp_path / "ab.xml"), "--alpha", "0.001"]
    assert _ab(embedded_server, a, a, out, *argv) == 0
    data = json.loads((out / "ab.json").read_text())
    assert data["format"] == "pgvbench-ab" and data["verdict"] == "ok"
    assert data["alpha"] == 0.001
    metrics = {m["metric"]: m for m in data["metrics"]}
    assert metrics["recall"]["change"] == 0.0  # one index: the very same answers
    assert len(data["built"]) == 1 and data["built"][0]["arms"] == ["A", "B"]
    assert len(data["schedule"]) == 6 and all(sorted(o) == ["A", "B"] for o in data["schedule"])
    assert all({"A", "B"} <= set(r) for r in data["rounds_detail"])
    assert data["recall"]["A"] == data["recall"]["B"]  # the same index, the same answers
    assert "pgvbench ab" in (out / "ab.md").read_text()
    assert 'name="pgvbench ab"' in (tmp_path / "ab.xml").read_text()
    assert _leftovers(embedded_server, schema) == 0


def test_a_much_larger_ef_search_is_a_regression_named_by_blocks(
    embedded_server: EmbeddedServer, tmp_path: Path, unique_name: str
) -> None:
    schema = f"s_{unique_name}"
    a = _write(tmp_path / "a.toml", schema, HNSW.replace("= 40", "= 10"), 'label = "ef10"')
    b = _write(tmp_path / "b.toml", schema, HNSW.replace("= 40", "= 100"), 'label = "ef100"')
    out = tmp_path / "out"
    md = tmp_path / "comment.md"
    assert _ab(embedded_server, a, b, out, "--markdown", str(md)) == 1
    data = json.loads((out / "ab.json").read_text())
    assert data["verdict"] == "regression"
    metrics = {m["metric"]: m for m in data["metrics"]}
    # buffers per query do not depend on the machine's mood: the graph walk of ef_search 100
    # reads many more pages than that of 10, in every round
    assert metrics["blocks"]["verdict"] == "regression"
    assert metrics["recall"]["change"] >= 0  # and finds at least as many true neighbours
    assert len(data["built"]) == 1  # one build (same m, ef_construction), two operating points
    assert "regression" in md.read_text()
    assert _leftovers(embedded_server, schema) == 0


def test_an_exact_scan_and_an_index_get_a_table_each(
    embedded_server: EmbeddedServer, tmp_path: Path, unique_name: str
) -> None:
    schema = f"s_{unique_name}"
    a = _write(tmp_path / "a.toml", schema, HNSW, 'label = "hnsw"')
    b = _write(tmp_path / "b.toml", schema, EXACT, 'label = "exact"')
    out = tmp_path / "out"
    assert _ab(embedded_server, a, b, out) in (0, 1)  # the verdict is the machine's to give
    data = json.loads((out / "ab.json").read_text())
    assert [b["index_name"] is None for b in data["built"]] == [False, True]
    assert [p["problem"] for p in data["plans"]] == [None, None]  # each plan as intended
    assert _leftovers(embedded_server, schema) == 0


def test_a_variant_whose_plan_skips_its_index_is_refused(
    embedded_server: EmbeddedServer,
    tmp_path: Path,
    unique_name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    schema = f"s_{unique_name}"
    a = _write(tmp_path / "a.toml", schema, HNSW)
    b = _write(tmp_path / "b.toml", schema, HNSW, "[ab.settings]\nenable_indexscan = false\n")
    out = tmp_path / "out"
    assert _ab(embedded_server, a, b, out) == 1
    err = capsys.readouterr().err
    assert "refused before timing" in err and "arm B" in err
    data = json.loads((out / "ab.json").read_text())
    assert data["verdict"] == "invalid" and data["rounds_detail"] == []
    assert _leftovers(embedded_server, schema) == 0
