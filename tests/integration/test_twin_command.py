"""`pgvbench twin` end to end: a small .npy sample in, a [dataset] table that a spec
accepts and a twin.json with the fit out; bad input exits 2 with one paragraph."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from pgvbench.analysis.difficulty import measure_difficulty
from pgvbench.cli import main
from pgvbench.datasets.prepared import build_dataset
from pgvbench.metrics import Metric
from pgvbench.server.connection import connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.parse import load_spec

pytestmark = pytest.mark.integration


def _sample(n: int = 2_000, dim: int = 32, seed: int = 4) -> np.ndarray:
    """Unit vectors from a few anisotropic clusters (power-law spectrum, heavy tails)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 8, n)
    out = np.empty((n, dim))
    for c in range(8):
        rows = np.flatnonzero(labels == c)
        t = np.sqrt(4 / rng.chisquare(4, size=(rows.size, 1)))
        noise = rng.standard_normal((rows.size, dim)) * np.arange(1, dim + 1) ** -0.3 * t
        out[rows] = rng.standard_normal(dim) * 0.4 + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def test_twin_of_an_npy_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = _sample()
    np.save(tmp_path / "sample.npy", sample)
    out = tmp_path / "twin"
    code = main(
        [
            "twin",
            str(tmp_path / "sample.npy"),
            "--metric",
            "cosine",
            "--n",
            "5000",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "residuals: LID" in printed.out and "fit twin" in printed.err  # progress on stderr
    record = json.loads((out / "twin.json").read_text())
    assert record["metric"] == "cosine" and record["dim"] == 32 and record["sample_rows"] == 2000
    assert all(abs(v) <= 0.10 for v in record["residuals"].values()), record["residuals"]
    assert record["evaluations"] and record["seconds"] > 0
    assert {"clusters", "spread", "intrinsic_dim", "size_skew", "tail_dof"} == set(record["params"])

    # twin.toml is a [dataset] table a spec accepts, and it generates a twin as hard
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(
        '[experiment]\nname = "twin_check"\nseed = 3\n\n'
        + (out / "twin.toml").read_text()
        + '\n[[index]]\nkind = "none"\n'
    )
    spec = load_spec(spec_path)
    assert spec.dataset is not None and spec.dataset.n == 5000
    twin = build_dataset(spec)
    assert twin.n == 5000 and twin.dim == 32 and twin.metric is Metric.COSINE
    # measured at the sample's size: LID and contrast depend on n
    measured = measure_difficulty(twin.base[:2000], Metric.COSINE, max_queries=400)
    target = record["target"]
    assert measured.lid.median == pytest.approx(target["lid"]["median"], rel=0.12)
    assert measured.rc.median == pytest.approx(target["rc"]["median"], rel=0.12)


def _fails(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n\n") == 0
    return err


def test_bad_input_exits_2_with_one_paragraph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "s.npy", _sample(300, 8))
    out = tmp_path / "out"
    err = _fails(capsys, ["twin", str(tmp_path / "s.npy"), "--out", str(out)])
    assert "--metric" in err and "s.npy" in err
    (tmp_path / "t.npy").write_text("1,2,3\n")
    err = _fails(capsys, ["twin", str(tmp_path / "t.npy"), "--metric", "l2", "--out", str(out)])
    assert "not a NumPy .npy file" in err
    (tmp_path / "v.csv").write_text("1,2\n")
    err = _fails(capsys, ["twin", str(tmp_path / "v.csv"), "--metric", "l2", "--out", str(out)])
    assert "unsupported sample type .csv" in err
    err = _fails(capsys, ["twin", str(tmp_path / "missing.npy"), "--metric", "l2"])
    assert "missing.npy" in err
    np.save(tmp_path / "few.npy", _sample(50, 8))
    err = _fails(capsys, ["twin", str(tmp_path / "few.npy"), "--metric", "l2", "--out", str(out)])
    assert "at least 200 rows" in err
    with h5py.File(tmp_path / "a.hdf5", "w") as f:
        f.attrs["distance"] = "angular"
        f["train"] = _sample(300, 8)
        f["test"] = _sample(10, 8, seed=5)
    err = _fails(capsys, ["twin", str(tmp_path / "a.hdf5"), "--metric", "l2", "--out", str(out)])
    assert "cosine" in err and "--metric" in err
    err = _fails(capsys, ["twin", str(tmp_path / "s.npy"), "--metric", "l2", "--tolerance", "2"])
    assert "fraction" in err
    assert not out.exists()  # nothing written for bad input


def test_twin_of_a_users_table_reads_it_only(
    embedded_server: EmbeddedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A spec with source = "table" and --dsn: the sample comes from the user's table (the
    metric from its index), in one read-only snapshot; the table is left as it was."""
    sample = _sample(n=2_100, dim=32, seed=4)
    schema = f"twin_{uuid.uuid4().hex[:8]}"
    with connect(embedded_server.dsn()) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.docs (id int PRIMARY KEY, embedding vector(32))")
        with conn.cursor().copy(f"COPY {schema}.docs (id, embedding) FROM STDIN") as copy:
            for i, v in enumerate(sample):
                copy.write_row((i, "[" + ",".join(f"{x:.7g}" for x in v) + "]"))
        conn.execute(
            f"CREATE INDEX docs_hnsw ON {schema}.docs USING hnsw (embedding vector_cosine_ops)"
        )
        before = conn.execute(
            f"SELECT count(*), sum(hashtext(embedding::text)) FROM {schema}.docs"
        ).fetchone()
    spec_path = tmp_path / "docs.toml"
    spec_path.write_text(
        f'[experiment]\nname = "docs"\nseed = 2\n\n[dataset]\nsource = "table"\n'
        f'table = "{schema}.docs"\nsample = 2000\nqueries_from = "sample"\nqueries = 100\n\n'
        '[[index]]\nkind = "none"\n'
    )
    try:
        out = tmp_path / "twin"
        missing = _fails(capsys, ["twin", str(spec_path), "--out", str(out)])
        assert "--dsn" in missing and f"{schema}.docs" in missing
        code = main(["twin", str(spec_path), "--dsn", embedded_server.dsn(), "--out", str(out)])
        printed = capsys.readouterr()
        assert code == 0, printed.err
        record = json.loads((out / "twin.json").read_text())
        # the metric came from the index's opclass; the sample is the spec's `sample` rows
        assert record["metric"] == "cosine" and record["sample_rows"] == 2000
        assert record["dim"] == 32
        with connect(embedded_server.dsn()) as conn:
            after = conn.execute(
                f"SELECT count(*), sum(hashtext(embedding::text)) FROM {schema}.docs"
            ).fetchone()
            objects = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s",
                (schema,),
            ).fetchone()
        assert after == before
        assert objects is not None and objects[0] == 3  # the table, its pkey, docs_hnsw
    finally:
        with connect(embedded_server.dsn()) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
