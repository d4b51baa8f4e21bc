"""The SQL of each variant (pgvector 0.8): its index expression and its top-k query.

* ``full``: ``USING hnsw (embedding vector_<metric>_ops)``.
* ``halfvec``: expression index ``((embedding::halfvec(d)) halfvec_<metric>_ops)``,
  queried ``ORDER BY embedding::halfvec(d) <op> $1::halfvec(d)``.
* ``binary``: ``((binary_quantize(embedding)::bit(d)) bit_hamming_ops)``; the Hamming
  order fetches ``k x overfetch`` candidates in a subquery that are re-ranked by the
  full-precision distance. ``binary_norerank`` (the Hamming top-k as is) is measured
  alongside for comparison.
"""

from __future__ import annotations

from ...metrics import Metric


def index_expression(variant: str, dim: int, metric: Metric) -> str:
    """The indexed expression and its opclass, e.g. ``embedding vector_l2_ops``."""
    if variant == "full":
        return f"embedding {metric.opclass()}"
    if variant == "halfvec":
        return f"(embedding::halfvec({dim})) {metric.opclass('halfvec')}"
    return f"(binary_quantize(embedding)::bit({dim})) bit_hamming_ops"


def query_sql(
    variant: str, *, relation: str, dim: int, metric: Metric, k: int, overfetch: int = 1
) -> str:
    """The top-k statement of a variant, with ``$1`` the query vector (type vector)."""
    op = metric.operator
    if variant == "full":
        return f"SELECT id FROM {relation} ORDER BY embedding {op} $1 LIMIT {k}"
    if variant == "halfvec":
        return (
            f"SELECT id FROM {relation} ORDER BY embedding::halfvec({dim}) {op} "
            f"$1::halfvec({dim}) LIMIT {k}"
        )
    hamming = f"binary_quantize(embedding)::bit({dim}) <~> binary_quantize($1)"
    if variant == "binary_norerank":
        return f"SELECT id FROM {relation} ORDER BY {hamming} LIMIT {k}"
    return (
        f"SELECT id FROM (SELECT id, embedding FROM {relation} ORDER BY {hamming} "
        f"LIMIT {k * overfetch}) candidates ORDER BY embedding {op} $1 LIMIT {k}"
    )
