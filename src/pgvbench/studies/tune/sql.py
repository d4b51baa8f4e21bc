"""The SQL of a tuner configuration (pgvector 0.8): its CREATE INDEX and its top-k query,
per storage. Pure text, no database access: apply.py prints the same statements for the
user (``concurrently=True``) that measure.py runs.

* ``vector``: ``USING hnsw (embedding vector_<metric>_ops)``, queried
  ``ORDER BY embedding <op> $1``.
* ``halfvec_index``: expression index ``((embedding::halfvec(d)) halfvec_<metric>_ops)``
  on the vector column, queried ``ORDER BY embedding::halfvec(d) <op> $1::halfvec(d)``.
* ``halfvec_column``: the column itself is ``halfvec(d)``; index
  ``(embedding halfvec_<metric>_ops)``, queried ``ORDER BY embedding <op> $1::halfvec(d)``.

``$1`` is always sent as ``vector``: the cast to halfvec happens on the server, as it
would for an application that keeps sending full-precision query vectors.
"""

from __future__ import annotations

from psycopg import sql

from ...metrics import Metric
from .records import Config
from .spec import STORAGES

USING = {"hnsw": "hnsw", "ivfflat": "ivfflat"}
# storage -> the type of the column the table holds
COLUMN_TYPE = {"vector": "vector", "halfvec_index": "vector", "halfvec_column": "halfvec"}


def ident(*names: str) -> str:
    """Names as one quoted SQL identifier, e.g. ``ident("s", "items")`` -> ``"s"."items"``
    (psycopg quotes every name; db.schema.sql_name asks the server for the minimal form)."""
    return sql.Identifier(*names).as_string()


def _check(config: Config, dim: int) -> None:
    if config.storage not in STORAGES:
        raise ValueError(f"unknown storage {config.storage!r}; expected one of {STORAGES}")
    if config.kind not in USING:
        raise ValueError(f"unknown index kind {config.kind!r}; expected one of {tuple(USING)}")
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")


def index_expression(config: Config, *, column: str, dim: int, metric: Metric) -> str:
    """The indexed expression and its opclass, e.g. ``embedding vector_l2_ops``."""
    _check(config, dim)
    if config.storage == "vector":
        return f"{column} {metric.opclass()}"
    if config.storage == "halfvec_index":
        return f"({column}::halfvec({dim})) {metric.opclass('halfvec')}"
    return f"{column} {metric.opclass('halfvec')}"


def with_clause(config: Config) -> str:
    """The index's storage parameters, e.g. ``m = 16, ef_construction = 64``."""
    return ", ".join(f"{k} = {int(v)}" for k, v in config.params.items())


def index_sql(
    config: Config,
    *,
    relation: str,
    column: str = "embedding",
    dim: int,
    metric: Metric,
    name: str,
    concurrently: bool = False,
) -> str:
    """``CREATE INDEX [CONCURRENTLY] name ON relation USING ... (...) WITH (...)``.

    ``relation``, ``column`` and ``name`` are pasted as given: pass them as SQL text,
    quoted where needed (see :func:`ident`). Build settings are not part of the statement
    (they are session settings: SET / SET LOCAL before it).
    """
    expr = index_expression(config, column=column, dim=dim, metric=metric)
    params = with_clause(config)
    how = "CONCURRENTLY " if concurrently else ""
    stmt = f"CREATE INDEX {how}{name} ON {relation} USING {USING[config.kind]} ({expr})"
    return f"{stmt} WITH ({params})" if params else stmt


def order_expression(storage: str, *, column: str, dim: int, metric: Metric) -> str:
    """What the top-k query orders by, ``$1`` being the query vector (type vector)."""
    op = metric.operator
    if storage == "vector":
        return f"{column} {op} $1"
    if storage == "halfvec_index":
        return f"{column}::halfvec({dim}) {op} $1::halfvec({dim})"
    if storage == "halfvec_column":
        return f"{column} {op} $1::halfvec({dim})"
    raise ValueError(f"unknown storage {storage!r}; expected one of {STORAGES}")


def query_sql(
    storage: str,
    *,
    relation: str,
    column: str = "embedding",
    dim: int,
    metric: Metric,
    k: int,
    id_column: str = "id",
    where: str | None = None,
) -> str:
    """The top-k statement of a storage, ``$1`` the query vector (type vector).

    ``where`` (SQL text, e.g. a [filtered] predicate) is pasted as given.
    """
    order = order_expression(storage, column=column, dim=dim, metric=metric)
    filtered = f" WHERE {where}" if where else ""
    return f"SELECT {id_column} FROM {relation}{filtered} ORDER BY {order} LIMIT {int(k)}"
