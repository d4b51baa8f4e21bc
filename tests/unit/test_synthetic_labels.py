"""Generated attributes on synthetic vectors ([[dataset.labels]], datasets/synthetic_labels.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pgvbench.datasets.agents import fit_zipf_exponent
from pgvbench.datasets.prepared import build_dataset
from pgvbench.datasets.synthetic import generate_clustered
from pgvbench.datasets.synthetic_labels import generate_labels, zipf_counts
from pgvbench.errors import SpecError
from pgvbench.metrics import Metric
from pgvbench.spec.labels import LabelsSpec
from pgvbench.spec.model import ExperimentSpec
from pgvbench.spec.parse import load_spec

HEAD = """
[experiment]
name = "labels_test"
seed = {seed}

[dataset]
source = "synthetic"
n = {n}
dim = 16
clusters = 40
spread = 0.5
queries = 300
"""
INDEX = """
[[index]]
kind = "hnsw"
"""
LABEL = """
[[dataset.labels]]
name = "label"
values = 2000
skew = 1.1
queries = "own"
"""


def _spec(tmp_path: Path, labels: str = "", *, seed: int = 7, n: int = 20000) -> ExperimentSpec:
    path = tmp_path / f"labels_{seed}_{n}_{abs(hash(labels))}.toml"
    path.write_text(HEAD.format(seed=seed, n=n) + labels + INDEX)
    return load_spec(path)


def _error(tmp_path: Path, labels: str) -> str:
    with pytest.raises(SpecError) as info:
        _spec(tmp_path, labels)
    return str(info.value)


# --------------------------------------------------------------------------- same as before


def test_no_labels_leaves_dataset_and_recorded_spec_as_before(tmp_path: Path) -> None:
    plain = _spec(tmp_path)
    assert plain.dataset is not None and plain.dataset.labels == ()
    data = build_dataset(plain)
    direct = generate_clustered(
        n=20000, dim=16, n_queries=300, clusters=40, spread=0.5, seed=7, metric=Metric.L2
    )
    assert data.fingerprint() == direct.fingerprint()
    assert data.name == direct.name and data.attributes == ()
    assert "labels" not in plain.to_dict()["dataset"]

    labelled = _spec(tmp_path, LABEL)
    with_labels = build_dataset(labelled)
    # the vectors are untouched: same fingerprint, so the same cached ground truth
    assert with_labels.fingerprint() == direct.fingerprint()
    assert [a.name for a in with_labels.attributes] == ["label"]
    recorded = labelled.to_dict()["dataset"]
    assert recorded["labels"] == [
        {
            "name": "label",
            "kind": "int",
            "values": 2000,
            "skew": 1.1,
            "locality": 0.8,
            "per_row": 0,
            "start": "",
            "days": 0,
            "queries": "own",
        }
    ]
    json.dumps(labelled.to_dict())  # the recorded spec stays JSON


def test_same_seed_same_columns_other_seed_other_columns(tmp_path: Path) -> None:
    labels = LABEL + '[[dataset.labels]]\nname = "tags"\nkind = "text[]"\n'
    one = build_dataset(_spec(tmp_path, labels, seed=3))
    two = build_dataset(_spec(tmp_path, labels, seed=3))
    other = build_dataset(_spec(tmp_path, labels, seed=4))
    for a, b, c in zip(one.attributes, two.attributes, other.attributes, strict=True):
        assert a.values.tolist() == b.values.tolist()
        assert a.query_values is not None and b.query_values is not None
        assert a.query_values.tolist() == b.query_values.tolist()
        assert a.values.tolist() != c.values.tolist()
    # a column's stream is keyed by its name: adding a column leaves the others alone
    alone = build_dataset(_spec(tmp_path, LABEL, seed=3))
    assert alone.attributes[0].values.tolist() == one.attributes[0].values.tolist()


# --------------------------------------------------------------------------- the Zipf law


def test_label_counts_follow_zipf_with_a_long_tail(tmp_path: Path) -> None:
    n = 200_000
    data = build_dataset(_spec(tmp_path, LABEL, n=n))
    label = data.attributes[0]
    assert label.kind == "int" and label.values.dtype == np.int64
    counts = np.bincount(label.values, minlength=2000)
    assert counts.sum() == n and (counts >= 1).all()  # all 2,000 labels exist
    # exactly the Zipf split, whatever the swaps between regions did
    assert counts.tolist() == zipf_counts(n, 2000, 1.1).tolist()
    shares = np.sort(counts)[::-1] / n
    # rank r holds r**-1.1 / H(2000, 1.1): H is about 5.9, so the top label ~17%
    harmonic = (np.arange(1, 2001) ** -1.1).sum()
    assert shares[0] == pytest.approx(1 / harmonic, rel=0.01)
    assert shares[:3].min() > 0.03  # the commonest hold several %
    assert (shares < 0.001).mean() > 0.9  # most hold well under 0.1% ...
    assert np.median(shares) < 0.0002  # ... the median label about 0.005%
    assert fit_zipf_exponent(counts[:200]) == pytest.approx(1.1, abs=0.05)


def test_zipf_counts_sum_and_floor() -> None:
    assert zipf_counts(10, 3, 0.0).tolist() == [4, 3, 3]
    assert zipf_counts(5, 8, 1.0).sum() == 5  # fewer rows than labels: no floor of one
    counts = zipf_counts(1000, 50, 2.0)
    assert counts.sum() == 1000 and counts.min() == 1
    assert (np.diff(counts) <= 0).all()  # rank order: label 0 is the commonest


# --------------------------------------------------------------------------- own label


def _label_lift(
    labels: np.ndarray, query_labels: np.ndarray, base: np.ndarray, queries: np.ndarray
) -> float:
    """Mean over queries of (share of the query's label among its 50 nearest rows) / (the
    label's share of all rows): 1 when labels ignore the vectors. Labels of fewer than 20
    rows are left out: one row near the query would weigh hundreds."""
    counts = Counter(labels.tolist())
    distances = (queries**2).sum(1)[:, None] - 2 * queries @ base.T + (base**2).sum(1)[None, :]
    nearest = np.argsort(distances, axis=1)[:, :50]
    lifts = [
        (labels[rows] == q).mean() / (counts[q] / labels.size)
        for rows, q in zip(nearest, query_labels.tolist(), strict=True)
        if counts[q] >= 20
    ]
    assert len(lifts) > 100
    return float(np.mean(lifts))


def test_own_label_keeps_rows_near_the_query(tmp_path: Path) -> None:
    labels = LABEL + LABEL.replace('"label"', '"drawn"').replace('"own"', '"frequency"')
    labels += LABEL.replace('"label"', '"loose"') + "locality = 0.0\n"
    data = build_dataset(_spec(tmp_path, labels))
    own, drawn, loose = data.attributes
    assert own.query_values is not None and drawn.query_values is not None
    assert loose.query_values is not None
    own_lift = _label_lift(own.values, own.query_values, data.base, data.queries)
    drawn_lift = _label_lift(drawn.values, drawn.query_values, data.base, data.queries)
    loose_lift = _label_lift(loose.values, loose.query_values, data.base, data.queries)
    # the query's own label is far commoner among its neighbours than in the table; a label
    # drawn by frequency, or labels with no locality, are about as common as anywhere
    assert own_lift > 5, own_lift  # about 10
    assert 0.5 < drawn_lift < 2.5, drawn_lift  # about 1.2
    assert 0.5 < loose_lift < 2.5, loose_lift  # about 1.1-1.4
    # an own label is one the data holds, drawn by frequency within the query's region
    assert set(own.query_values.tolist()) <= set(own.values.tolist())


def test_own_labels_reach_every_selectivity_bucket(tmp_path: Path) -> None:
    data = build_dataset(_spec(tmp_path, LABEL, n=50000))
    label = data.attributes[0]
    assert label.query_values is not None
    share = np.bincount(label.values, minlength=2000) / label.rows
    picked = share[label.query_values]
    # [filtered]'s default buckets: < 0.1%, 0.1-1%, 1-5%, > 5%
    buckets = np.digitize(picked, [0.001, 0.01, 0.05])
    assert set(buckets.tolist()) == {0, 1, 2, 3}


# --------------------------------------------------------------------------- other kinds


def test_timestamp_tags_and_text_kinds(tmp_path: Path) -> None:
    labels = """
[[dataset.labels]]
name = "published_at"
kind = "timestamp"
start = 2024-01-01
days = 366

[[dataset.labels]]
name = "tags"
kind = "text[]"
values = 50
per_row = 2

[[dataset.labels]]
name = "codes"
kind = "int[]"
values = 30
queries = "frequency"

[[dataset.labels]]
name = "lang"
kind = "text"
values = 12
skew = 1.0
queries = "none"
"""
    spec = _spec(tmp_path, labels)
    data = build_dataset(spec)
    stamp, tags, codes, lang = data.attributes
    assert [a.sql_type for a in data.attributes] == ["timestamptz", "text[]", "bigint[]", "text"]

    assert stamp.values.dtype == np.dtype("datetime64[us]") and stamp.query_values is None
    low, high = np.datetime64("2024-01-01T00:00:00"), np.datetime64("2025-01-01T00:00:00")
    assert ((stamp.values >= low) & (stamp.values < high)).all()
    months = np.bincount(stamp.values.astype("datetime64[M]").astype(int) % 12, minlength=12)
    assert months.min() > 0.7 * months.max()  # uniform over the span

    assert tags.query_values is not None and len(tags.query_values) == data.n_queries
    sizes = np.array([len(t) for t in tags.values])
    assert sizes.min() >= 1 and sizes.max() <= 3  # per_row = 2: 1 .. 3 slots
    ranks = [[int(w.removeprefix("tags_")) for w in t] for t in tags.values[:2000]]
    assert all(r == sorted(set(r)) for r in ranks)  # no repeats, in rank order
    words = Counter(w for t in tags.values for w in t)
    assert set(words) <= {f"tags_{i}" for i in range(50)}
    assert words.most_common(1)[0][0] == "tags_0"  # rank 0 is the commonest tag
    assert all(isinstance(c, int) for t in codes.values[:100] for c in t)
    assert codes.query_values is not None

    assert lang.query_values is None and set(lang.values.tolist()) == {
        f"lang_{i}" for i in range(12)
    }
    recorded = spec.to_dict()["dataset"]["labels"]
    assert recorded[0]["start"] == "2024-01-01T00:00:00" and recorded[0]["days"] == 366


def test_generate_labels_on_uniform_vectors_and_tiny_sets() -> None:
    from pgvbench.datasets.synthetic import generate_uniform

    data = generate_uniform(n=30, dim=4, n_queries=5, seed=1, metric=Metric.COSINE)
    out = generate_labels(
        data,
        [LabelsSpec(name="x", values=100, skew=1.0, locality=1.0, queries="own")],
        seed=1,
        regions=64,
    )
    assert out[0].values.shape == (30,) and out[0].query_values is not None
    assert out[0].query_values.shape == (5,)


# --------------------------------------------------------------------------- spec errors


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ('name = "x"\nkind = "float"', "kind = 'float' is not one of: int, text, timestamp"),
        ('name = "x"\nper_row = 2', "per_row is not a known key"),
        ('name = "x"\nkind = "timestamp"\nvalues = 3', "values is not a known key"),
        ('name = "x"\nkind = "timestamp"\nqueries = "own"', "not one of: frequency, none"),
        ('name = "x"\nqueries = "mine"', "not one of: own, frequency, none"),
        ('name = "x"\nvalues = 0', "values = 0 is below the minimum 1"),
        ('name = "x"\nlocality = 1.5', "locality = 1.5 is above the maximum 1.0"),
        ('name = "x"\nskew = -1', "skew = -1 is below the minimum 0.0"),
        ('name = "Tenant"', "must be a column name"),
        ('name = "id"', "taken by pgvbench"),
        ('kind = "int"', "name is required"),
        ('name = "x"\nkind = "timestamp"\nstart = "last tuesday"', "must be a date or time"),
    ],
)
def test_label_spec_errors_name_file_table_key(tmp_path: Path, labels: str, expected: str) -> None:
    message = _error(tmp_path, "[[dataset.labels]]\n" + labels + "\n")
    assert "labels_" in message and "[dataset.labels #1]" in message, message
    assert expected in message, message


def test_label_columns_twice_and_on_file_sources(tmp_path: Path) -> None:
    message = _error(tmp_path, LABEL + LABEL)
    assert "[dataset] labels names the column 'label' twice" in message
    path = tmp_path / "npy.toml"
    path.write_text(
        '[experiment]\nname = "x"\n[dataset]\nsource = "npy"\nmetric = "l2"\n'
        'base = "b.npy"\nqueries_file = "q.npy"\n' + LABEL + INDEX
    )
    with pytest.raises(SpecError, match="labels is not a known key"):
        load_spec(path)


# --------------------------------------------------------------------------- the shipped spec


def test_shipped_filtered_labels_workload() -> None:
    from pgvbench.plan.count import validate

    path = Path(__file__).resolve().parents[2] / "workloads" / "filtered_labels.toml"
    plan = validate(path)  # what `pgvbench validate` prints
    assert plan.studies == ("filtered",)
    assert any("filtered" in item.what for item in plan.items)
    assert 0 < plan.estimated_seconds < 300  # the spec promises a run under 5 minutes

    spec = load_spec(path)
    assert spec.dataset is not None
    assert [lb.kind for lb in spec.dataset.labels] == ["int", "timestamp", "text[]"]
    data = build_dataset(spec)
    label = data.attribute("label")
    assert label is not None and label.query_values is not None
    share = np.bincount(label.values) / data.n
    assert (share > 0).sum() == 2000 and share.max() > 0.1 and (share < 0.001).mean() > 0.9
    # the own labels of the recall queries fill every [filtered] bucket of the spec
    edges = spec.raw["filtered"]["bucket_edges"]
    own = share[label.query_values[: spec.query.recall_queries]]
    assert set(np.searchsorted(edges, own, side="right").tolist()) == {0, 1, 2, 3}
    tags = data.attribute("tags")
    assert tags is not None
    tag_rows = Counter(t for row in tags.values for t in row)
    assert min(tag_rows.values()) / data.n < 0.001  # rare tags too: the < 0.1% overlap bucket
