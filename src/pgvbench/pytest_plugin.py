"""pytest plugin: fixtures for regression benchmarks of your own pgvector queries.

Installed with pgvbench as the ``pgvbench`` pytest11 entry point, so pytest loads it
in every session of anyone who has pgvbench installed. Importing it therefore only
imports pytest: numpy, psycopg and the server code are imported inside the fixtures,
and nothing starts unless a test requests one.

Fixtures (session scope):

``pgvbench_server``
    A :class:`BenchServer`: an embedded PostgreSQL 18 + pgvector started for the
    session (data dir in the system temp folder, removed at the end), or the server
    given by ``--pgvbench-dsn`` / ``PGVBENCH_DSN``. On that external server pgvbench
    only writes inside schemas it created (marked ``pgvbench:owned``).
``pgvbench_dataset_factory``
    ``factory(n=..., dim=..., metric=..., seed=..., n_queries=..., k=...)`` loads a
    deterministic synthetic clustered dataset into ``pgvbench_pytest.<table>`` and
    returns a :class:`BenchDataset` (vectors, queries, exact ground truth); the same
    parameters return the same object for the rest of the session.
``pgvbench_dataset``
    The factory's default: 20,000 x 64 clustered vectors, l2, 100 queries, exact top-10.

With pytest-benchmark::

    def test_my_query(benchmark, pgvbench_dataset):
        ds = pgvbench_dataset
        ds.create_index("hnsw", m=16, ef_construction=64)
        with ds.connect() as conn:
            conn.execute("SET hnsw.ef_search = 40")
            sql = ds.knn_sql(k=10)
            rows = benchmark(lambda: [conn.execute(sql, (q,)).fetchall() for q in ds.queries])
        assert ds.recall([[r[0] for r in qrows] for qrows in rows]) >= 0.9

To change the embedded server's settings, override the fixture in a conftest.py::

    @pytest.fixture(scope="session")
    def pgvbench_server(pgvbench_server):
        if pgvbench_server.embedded is not None:
            pgvbench_server.embedded.apply_settings({"shared_buffers": "512MB"})
        return pgvbench_server
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    import numpy as np
    import psycopg

    from pgvbench.datasets import GroundTruth
    from pgvbench.metrics import Metric
    from pgvbench.server.connection import Target
    from pgvbench.server.embedded import EmbeddedServer

DSN_ENV = "PGVBENCH_DSN"
SCHEMA = "pgvbench_pytest"
#: Reloptions each index kind accepts through :meth:`BenchDataset.create_index`.
INDEX_PARAMS = {"hnsw": ("m", "ef_construction"), "ivfflat": ("lists",)}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pgvbench", "pgvbench benchmark fixtures")
    group.addoption(
        "--pgvbench-dsn",
        dest="pgvbench_dsn",
        metavar="DSN",
        default=None,
        help=(
            "run the pgvbench fixtures against this PostgreSQL + pgvector server (libpq URL "
            f"or key=value string; default: ${DSN_ENV}) instead of starting an embedded one; "
            f"they only write inside the pgvbench-owned schema {SCHEMA}"
        ),
    )


def _configured_dsn(config: pytest.Config) -> str | None:
    dsn = config.getoption("pgvbench_dsn", None) or os.environ.get(DSN_ENV)
    return str(dsn) if dsn else None


def pytest_report_header(config: pytest.Config) -> str | None:
    dsn = _configured_dsn(config)
    if dsn is None:
        return None
    from pgvbench.server.connection import redact_dsn

    return f"pgvbench: external server {redact_dsn(dsn)}"


# --------------------------------------------------------------------------- server


@dataclasses.dataclass(frozen=True)
class BenchServer:
    """The PostgreSQL server of the session's pgvbench fixtures."""

    dsn: str  # libpq conninfo; may hold a password: print ``display`` instead
    kind: Literal["embedded", "external"]
    embedded: EmbeddedServer | None = None  # set when kind == "embedded"

    def __repr__(self) -> str:  # shown by pytest (--showlocals, assertions): no password
        return f"BenchServer(kind={self.kind!r}, dsn={self.display!r})"

    @property
    def display(self) -> str:
        """The DSN with any password replaced, safe to print."""
        from pgvbench.server.connection import redact_dsn

        return redact_dsn(self.dsn)

    @property
    def target(self) -> Target:
        """The server as pgvbench's own code addresses it."""
        from pgvbench.server.connection import Target

        if self.embedded is None:
            return Target(dsn=self.dsn, kind=self.kind)
        return Target(
            dsn=self.dsn,
            kind=self.kind,
            bin_dir=self.embedded.bin_dir,
            postmaster_pid=self.embedded.postmaster_pid(),
        )

    def connect(self) -> psycopg.Connection[Any]:
        """An autocommit connection with pgvector enabled and numpy arrays adapted to vector."""
        from pgvector.psycopg import register_vector

        from pgvbench.server.connection import connect, ensure_vector_extension

        conn = connect(self.dsn)
        try:
            ensure_vector_extension(conn)
            register_vector(conn)
        except BaseException:
            conn.close()
            raise
        return conn


@pytest.fixture(scope="session")
def pgvbench_server(request: pytest.FixtureRequest) -> Iterator[BenchServer]:
    """Embedded PostgreSQL 18 + pgvector for the session, or the ``--pgvbench-dsn`` server."""
    from pgvbench.errors import PgvbenchError

    dsn = _configured_dsn(request.config)
    # Failures are reported without a traceback: with --showlocals it would print the
    # DSN, password and all (pgvbench's own messages are redacted).
    if dsn is not None:
        server = BenchServer(dsn=dsn, kind="external")
        try:
            server.connect().close()  # fail fast, before any test runs
        except PgvbenchError as exc:
            pytest.fail(f"pgvbench_server: {exc}", pytrace=False)
        yield server
        return
    from pgvbench.server.embedded import temporary_server

    with contextlib.ExitStack() as stack:
        try:
            embedded = stack.enter_context(temporary_server("pgvbench-pytest-"))
        except PgvbenchError as exc:
            pytest.fail(f"pgvbench_server: {exc}", pytrace=False)
        yield BenchServer(dsn=embedded.dsn(), kind="embedded", embedded=embedded)


# --------------------------------------------------------------------------- dataset


@dataclasses.dataclass(frozen=True, eq=False)
class BenchDataset:
    """A synthetic dataset loaded into ``schema.table_name`` (id bigint, embedding vector)."""

    server: BenchServer
    schema: str
    table_name: str
    metric: Metric
    seed: int
    base: np.ndarray  # float32 n x dim; row i has id i
    queries: np.ndarray  # float32 n_queries x dim, never equal to a base row
    truth: GroundTruth  # exact top-k of every query, nearest first

    def __repr__(self) -> str:
        return (
            f"BenchDataset(table={self.table!r}, n={self.n}, dim={self.dim}, "
            f"metric={self.metric.value!r}, queries={len(self.queries)}, k={self.k})"
        )

    @property
    def dsn(self) -> str:
        return self.server.dsn

    @property
    def table(self) -> str:
        """Qualified table name, ready for SQL (pgvbench's names need no quoting)."""
        return f"{self.schema}.{self.table_name}"

    @property
    def n(self) -> int:
        return int(self.base.shape[0])

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    @property
    def k(self) -> int:
        return self.truth.k

    @property
    def ground_truth(self) -> np.ndarray:
        """Exact neighbour ids, n_queries x k (int64), nearest first."""
        return self.truth.ids

    @property
    def operator(self) -> str:
        """pgvector distance operator of the metric (<->, <=> or <#>)."""
        return self.metric.operator

    def connect(self) -> psycopg.Connection[Any]:
        return self.server.connect()

    def knn_sql(self, k: int | None = None) -> str:
        """``SELECT id ... ORDER BY embedding <op> %s LIMIT k``: pass a query vector."""
        limit = self.k if k is None else int(k)
        return f"SELECT id FROM {self.table} ORDER BY embedding {self.operator} %s LIMIT {limit}"

    def recall(
        self, returned_ids: Sequence[Sequence[int]] | np.ndarray, k: int | None = None
    ) -> float:
        """Mean tie-aware recall@k of one result row per query (in query order)."""
        from pgvbench.datasets import tie_aware_recall

        per_query = tie_aware_recall(
            returned_ids, self.truth, self.queries, self.base, k or self.k, self.metric
        )
        return float(per_query.mean())

    def create_index(
        self,
        kind: Literal["hnsw", "ivfflat"],
        *,
        only: bool = True,
        maintenance_work_mem: str = "256MB",
        **params: int,
    ) -> str:
        """Create ``kind`` with these reloptions unless it exists; return the index name.

        With ``only`` (default) other vector indexes this method made on the table are
        dropped first, so the planner cannot pick one of them instead.
        """
        from psycopg import sql

        from pgvbench.db.schema import OWNER_MARK
        from pgvbench.errors import SafetyError

        if kind not in INDEX_PARAMS:
            raise ValueError(f"index kind must be one of {sorted(INDEX_PARAMS)}, got {kind!r}")
        unknown = sorted(set(params) - set(INDEX_PARAMS[kind]))
        if unknown:
            raise ValueError(f"{kind} takes {list(INDEX_PARAMS[kind])}, not {unknown}")
        name = "_".join([self.table_name, kind, *(f"{k}{v}" for k, v in sorted(params.items()))])
        name = name[:63]
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
                (self.table,),
            ).fetchall()
            existing = {str(r[0]): r[1] for r in rows}
            if name in existing and existing[name] != OWNER_MARK:
                raise SafetyError(f"index {self.schema}.{name} exists without pgvbench's mark")
            if only:
                for other, comment in existing.items():
                    if other != name and comment == OWNER_MARK:
                        conn.execute(
                            sql.SQL("DROP INDEX {}").format(sql.Identifier(self.schema, other))
                        )
            if name not in existing:
                conn.execute(
                    "SELECT set_config('maintenance_work_mem', %s, false)", (maintenance_work_mem,)
                )
                options = sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(int(v)))
                    for k, v in sorted(params.items())
                )
                conn.execute(
                    sql.SQL("CREATE INDEX {} ON {} USING {} (embedding {}){}").format(
                        sql.Identifier(name),
                        sql.Identifier(self.schema, self.table_name),
                        sql.SQL(kind),
                        sql.SQL(self.metric.opclass()),
                        sql.SQL(" WITH ({})").format(options) if params else sql.SQL(""),
                    )
                )
                conn.execute(
                    sql.SQL("COMMENT ON INDEX {} IS {}").format(
                        sql.Identifier(self.schema, name), sql.Literal(OWNER_MARK)
                    )
                )
                conn.execute(
                    sql.SQL("ANALYZE {}").format(sql.Identifier(self.schema, self.table_name))
                )
        return name


class DatasetFactory:
    """Loads datasets on demand and caches them by parameters for the session."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self._token = uuid.uuid4().hex[:6]  # sessions sharing an external server never collide
        self._cache: dict[tuple[Any, ...], BenchDataset] = {}

    def __call__(
        self,
        *,
        n: int = 20_000,
        dim: int = 64,
        metric: str = "l2",
        seed: int = 42,
        n_queries: int = 100,
        k: int = 10,
        clusters: int | None = None,
    ) -> BenchDataset:
        """Clustered vectors (Gaussian mixture, ``clusters`` default n // 400), loaded once."""
        from pgvbench.metrics import Metric

        metric_ = Metric(metric)
        clusters = clusters if clusters is not None else max(1, n // 400)
        key = (n, dim, metric_.value, seed, n_queries, k, clusters)
        if key not in self._cache:
            self._cache[key] = self._load(key, metric_)
        return self._cache[key]

    def _load(self, key: tuple[Any, ...], metric: Metric) -> BenchDataset:
        from pgvbench.datasets import generate_clustered, ground_truth
        from pgvbench.db.load import load_vectors
        from pgvbench.db.schema import create_vector_table, ensure_schema

        n, dim, _, seed, n_queries, k, clusters = key
        data = generate_clustered(
            n=n,
            dim=dim,
            n_queries=n_queries,
            clusters=clusters,
            spread=1.0,
            seed=seed,
            metric=metric,
            intrinsic_dim=max(1, min(dim, 16)),
        )
        truth = ground_truth(data, k, cache_dir=None)
        digest = hashlib.blake2b(repr(key).encode(), digest_size=4).hexdigest()
        table = f"ds{n}x{dim}_{metric.value}_{digest}_{self._token}"
        with self.server.connect() as conn:
            ensure_schema(conn, SCHEMA)
            create_vector_table(conn, SCHEMA, table, dim)
        load_vectors(self.server.dsn, SCHEMA, table, data.base)
        with self.server.connect() as conn:
            conn.execute(f"VACUUM (ANALYZE) {SCHEMA}.{table}")
        return BenchDataset(
            server=self.server,
            schema=SCHEMA,
            table_name=table,
            metric=metric,
            seed=seed,
            base=data.base,
            queries=data.queries,
            truth=truth,
        )

    def drop_tables(self) -> None:
        """Drop the tables this factory loaded (the schema stays: others may share it)."""
        from pgvbench.db.schema import drop_owned_table

        if not self._cache:
            return
        with self.server.connect() as conn:
            for ds in self._cache.values():
                drop_owned_table(conn, ds.schema, ds.table_name)
        self._cache.clear()


@pytest.fixture(scope="session")
def pgvbench_dataset_factory(pgvbench_server: BenchServer) -> Iterator[DatasetFactory]:
    """``factory(n=, dim=, metric=, seed=, n_queries=, k=)`` -> a loaded :class:`BenchDataset`."""
    factory = DatasetFactory(pgvbench_server)
    yield factory
    if pgvbench_server.kind == "external":  # an embedded server is removed whole
        factory.drop_tables()


@pytest.fixture(scope="session")
def pgvbench_dataset(pgvbench_dataset_factory: DatasetFactory) -> BenchDataset:
    """20,000 x 64 clustered vectors (l2, seed 42), 100 queries with their exact top-10."""
    return pgvbench_dataset_factory()
