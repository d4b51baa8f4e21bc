"""The tuner's SQL per storage (pure text: apply.py prints the same statements)."""

from __future__ import annotations

import pytest

from pgvbench.metrics import Metric
from pgvbench.studies.tune.records import Config
from pgvbench.studies.tune.sql import ident, index_sql, query_sql


def test_index_and_query_sql_per_storage() -> None:
    cfg = Config(kind="hnsw", params={"m": 16, "ef_construction": 64}, storage="halfvec_index")
    text = index_sql(cfg, relation="public.items", dim=768, metric=Metric.COSINE, name="ix",
                     concurrently=True)  # fmt: skip
    assert text == (
        "CREATE INDEX CONCURRENTLY ix ON public.items USING hnsw "
        "((embedding::halfvec(768)) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    ivf = Config(kind="ivfflat", params={"lists": 100}, storage="halfvec_column")
    assert index_sql(ivf, relation="t", dim=8, metric=Metric.L2, name="i") == (
        "CREATE INDEX i ON t USING ivfflat (embedding halfvec_l2_ops) WITH (lists = 100)"
    )
    assert query_sql("halfvec_column", relation="t", dim=8, metric=Metric.INNER_PRODUCT, k=5) == (
        "SELECT id FROM t ORDER BY embedding <#> $1::halfvec(8) LIMIT 5"
    )
    assert query_sql("vector", relation=ident("s", "t"), dim=8, metric=Metric.L2, k=3) == (
        'SELECT id FROM "s"."t" ORDER BY embedding <-> $1 LIMIT 3'
    )
    assert query_sql("halfvec_index", relation="t", dim=4, metric=Metric.COSINE, k=1) == (
        "SELECT id FROM t ORDER BY embedding::halfvec(4) <=> $1::halfvec(4) LIMIT 1"
    )


def test_unknown_storage_is_refused() -> None:
    with pytest.raises(ValueError, match="storage"):
        query_sql("bits", relation="t", dim=4, metric=Metric.L2, k=1)
    with pytest.raises(ValueError, match="storage"):
        index_sql(Config(kind="hnsw", params={}, storage="bits"), relation="t", dim=4,
                  metric=Metric.L2, name="i")  # fmt: skip
