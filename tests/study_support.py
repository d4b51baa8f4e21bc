"""Helpers for the study tests: a study's context over a loaded spec dataset, and an
empty results file to store records in."""

from __future__ import annotations

import copy
from typing import Any

from psycopg import sql

from conftest import TINY_SPEC
from pgvbench.datasets import ground_truth
from pgvbench.datasets.prepared import PreparedData, build_dataset, split_queries
from pgvbench.db import schema as db_schema
from pgvbench.db.load import load_vectors
from pgvbench.progress import Reporter
from pgvbench.results import DatasetInfo, Environment, HostInfo, Results
from pgvbench.server.connection import Target, connect
from pgvbench.server.embedded import EmbeddedServer
from pgvbench.spec.model import ExperimentSpec
from pgvbench.studies.base import SpecContext, StudyContext, VectorData


def tiny_spec_data(name: str) -> dict[str, Any]:
    """conftest's tiny vector spec under its own name and schema."""
    data = copy.deepcopy(TINY_SPEC)
    data["experiment"].update(name=name, schema=f"s_{name}")
    return data


def results_for(
    cores: int = 2, *, run_name: str = "r", spec: dict[str, Any] | None = None
) -> Results:
    """An empty results file (environment filled in) for a study to store its record in."""
    env = Environment(
        postgres_version="18", pgvector_version="0.8.1", server_kind="embedded",
        non_default_settings={}, host=HostInfo(cpu_model="x", cores=cores, ram_bytes=1, os="linux"),
        pgvbench_version="0", git_commit=None, python_version="3.11",
    )  # fmt: skip
    return Results(
        run_name=run_name,
        status="complete",
        started_at="",
        finished_at=None,
        environment=env,
        spec=spec or {},
    )


def study_context(server: EmbeddedServer, spec: ExperimentSpec) -> StudyContext:
    """The study's context over the spec's dataset, loaded into ``<schema>.items``."""
    dataset = build_dataset(spec)
    sets = split_queries(dataset, spec.query.recall_queries)
    truth = ground_truth(sets.recall, spec.query.k, cache_dir=None)
    info = DatasetInfo(
        name=dataset.name, source=dataset.source, n=dataset.n, dim=dataset.dim,
        metric=str(dataset.metric), seed=dataset.seed, n_queries=dataset.n_queries,
        n_recall_queries=sets.recall.n_queries,
    )  # fmt: skip
    with connect(server.dsn()) as conn:
        db_schema.ensure_schema(conn, spec.schema)
        db_schema.create_vector_table(conn, spec.schema, "items", dataset.dim)
        ident = sql.Identifier(spec.schema, "items").as_string(conn)
        row = conn.execute("SELECT 'vector'::regtype::oid").fetchone()
        assert row is not None
    load_vectors(server.dsn(), spec.schema, "items", dataset.base)
    vectors = VectorData(
        table="items",
        items_ident=ident,
        vector_oid=int(row[0]),
        prepared=PreparedData(dataset=dataset, sets=sets, truth=truth, info=info),
    )
    return StudyContext(
        spec=spec,
        target=Target(dsn=server.dsn(), kind="embedded"),
        server=server,
        reporter=Reporter(enabled=False),
        vectors=vectors,
    )


def spec_context(spec: ExperimentSpec) -> SpecContext:
    """What a study's parser sees of ``spec``."""
    return SpecContext(
        where="<spec>", kind=spec.kind, seed=spec.seed, query=spec.query, indexes=spec.indexes
    )
