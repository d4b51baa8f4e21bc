"""Limits a spec is checked against before anything runs: derived names that must fit
PostgreSQL's 63 bytes, reserved schemas, pgvector's dimension limits, and what a
dataset must hold for the spec's k, recall queries and studies."""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError, SpecError
from ..studies.base import DataShape
from ..studies.registry import study_named
from .model import (
    IDENT_RE,
    INDEX_MAX_DIM,
    MAX_IDENTIFIER_BYTES,
    RESERVED_SCHEMAS,
    VECTOR_MAX_DIM,
    ExperimentSpec,
)
from .table import Table


def check_derived_names(exp: Table, name: str, kind: str) -> None:
    """The experiment name prefixes tables and indexes: the longest must fit 63 bytes."""
    derived = [f"{name}_items", f"{name}_queries"]
    if kind == "agents":
        # imported here: agent_schema pulls in psycopg, and vector specs never need it
        from ..datasets.agents.model import table_name
        from ..db.agent_schema import _SECONDARY_INDEXES

        derived += [f"{table_name(name, t)}_{suffix}" for t, suffix, _ in _SECONDARY_INDEXES]
    longest = max(derived, key=lambda n: len(n.encode()))
    size = len(longest.encode())
    if size > MAX_IDENTIFIER_BYTES:
        room = MAX_IDENTIFIER_BYTES - (size - len(name.encode()))
        exp.fail(
            "name",
            f"= {name!r} has {len(name)} characters, too many for the names it prefixes: "
            f"{longest!r} would be {size} bytes, and PostgreSQL names hold at most "
            f"{MAX_IDENTIFIER_BYTES} (NAMEDATALEN - 1); use a name of at most {room} characters",
        )


def check_schema_name(exp: Table, schema: str) -> None:
    if not IDENT_RE.fullmatch(schema):
        exp.fail(
            "schema",
            f"= {schema!r} must be a plain lowercase identifier (letters, digits and _, "
            "starting with a letter)",
        )
    size = len(schema.encode())
    if size > MAX_IDENTIFIER_BYTES:
        exp.fail(
            "schema",
            f"= {schema!r} is {size} bytes long; PostgreSQL names hold at most "
            f"{MAX_IDENTIFIER_BYTES} bytes (NAMEDATALEN - 1) and longer ones are silently "
            "truncated: use a shorter schema name",
        )
    if schema.startswith("pg_") or schema in RESERVED_SCHEMAS:
        exp.fail(
            "schema",
            f"= {schema!r} is reserved: names starting with pg_ belong to PostgreSQL's "
            "system schemas and information_schema to the SQL standard's catalog; choose "
            'another name, e.g. schema = "pgvbench"',
        )


def check_spec_numbers(spec: ExperimentSpec) -> None:
    """Limits known from the spec alone (synthetic data, agents): fail in validate."""
    where = str(spec.source_path) if spec.source_path else "<spec>"
    ds = spec.dataset
    if ds is not None and ds.source == "synthetic":
        problem = dataset_problem(
            spec,
            rows=ds.n,
            dim=ds.dim,
            queries=ds.queries,
            rows_from=f"[dataset] n = {ds.n}",
            dim_from=f"[dataset] dim = {ds.dim}",
            queries_from=f"[dataset] queries = {ds.queries}",
        )
        if problem:
            raise SpecError(f"{where}: {problem}")
    if ds is not None and ds.source == "hdf5" and 0 < ds.queries < spec.query.recall_queries:
        raise SpecError(
            f"{where}: [query] recall_queries = {spec.query.recall_queries} is more than "
            f"[dataset] queries = {ds.queries} (the test rows read from the file); lower "
            f"recall_queries to at most {ds.queries} or raise queries"
        )
    if spec.agents is not None and spec.agents.data is not None:
        data = spec.agents.data
        dim_from = f"[agents] dim = {data.dim}"
        shape = DataShape(
            rows=data.memories,
            dim=data.dim,
            queries=0,
            rows_from=f"[agents] memories = {data.memories}",
            dim_from=dim_from,
            queries_from="the agent platform",
        )
        problem = _index_dim_problem(spec, data.dim, dim_from) or _study_problem(spec, shape)
        if problem:
            raise SpecError(f"{where}: {problem}")


def check_dataset_shape(
    spec: ExperimentSpec,
    *,
    rows: int,
    dim: int,
    queries: int,
    base: Path,
    queries_path: Path,
) -> None:
    """Refuse a file dataset this spec cannot run on (k, recall_queries, pgvector's
    dimension limits), from its header or once loaded; DatasetError names file and spec."""
    where = str(spec.source_path) if spec.source_path else "<spec>"
    same = base == queries_path
    problem = dataset_problem(
        spec,
        rows=rows,
        dim=dim,
        queries=queries,
        rows_from=f"{base}",
        dim_from=f"{base} holds {dim}-dimensional vectors",
        queries_from=f"{queries_path}{' (test rows)' if same else ''}",
    )
    if problem:
        raise DatasetError(f"{where}: {problem}")


def dataset_problem(
    spec: ExperimentSpec,
    *,
    rows: int,
    dim: int,
    queries: int,
    rows_from: str,
    dim_from: str,
    queries_from: str,
) -> str | None:
    """Why this dataset cannot run ``spec``, or None; ``*_from`` say where each number is."""
    k = spec.query.k
    if k > rows:
        return f"[query] k = {k} exceeds the dataset's {rows} rows ({rows_from}); lower k"
    wanted = spec.query.recall_queries
    if queries < wanted:
        return (
            f"[query] recall_queries = {wanted} but the dataset has only {queries} queries "
            f"({queries_from}); lower recall_queries to at most {queries}, or give the "
            "dataset more queries"
        )
    shape = DataShape(
        rows=rows,
        dim=dim,
        queries=queries,
        rows_from=rows_from,
        dim_from=dim_from,
        queries_from=queries_from,
    )
    return _index_dim_problem(spec, dim, dim_from) or _study_problem(spec, shape)


def _study_problem(spec: ExperimentSpec, shape: DataShape) -> str | None:
    """The first study that cannot run on this dataset says why."""
    for entry in spec.studies:
        if entry.spec is not None:
            problem = study_named(entry.name).data_problem(entry.spec, shape)
            if problem:
                return problem
    return None


def _index_dim_problem(spec: ExperimentSpec, dim: int, dim_from: str) -> str | None:
    """pgvector's dimension limits for the column and every index the spec builds."""
    if dim > VECTOR_MAX_DIM:
        return (
            f"{dim_from}: pgvector's vector columns hold at most {VECTOR_MAX_DIM:,} "
            "dimensions; reduce the dimension (e.g. a smaller embedding model)"
        )
    limit = INDEX_MAX_DIM["vector"]
    limits = ", ".join(f"{t} {n:,}" for t, n in INDEX_MAX_DIM.items() if t != "vector")
    built = [ix for ix in spec.indexes if ix.kind != "none"]
    if built and dim > limit:
        ix = built[0]
        on = " (on memories and chunks)" if spec.kind == "agents" else ""
        return (
            f"[index.{ix.kind}] {ix.label}{on} cannot index {dim}-dimensional vectors "
            f"({dim_from}): pgvector's HNSW and IVFFlat indexes on type vector take at most "
            f"{limit:,} dimensions ({limits}); use at most {limit:,} dimensions, or kind = "
            '"none" (exact scan)'
            + (
                ' with [quantization] variants = ["halfvec", "binary"]'
                if spec.kind == "vector" and dim <= INDEX_MAX_DIM["halfvec"]
                else ""
            )
        )
    return None
