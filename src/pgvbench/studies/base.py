"""The Study interface: what every study (filtered search, drift, build tuning, cache
states, result caches, quantization, ...) provides, so the spec parser, both runners,
the plan estimate and the report loop over one registry instead of wiring each by hand.

A study is a package under ``studies/`` with, by concern: ``spec.py`` (its TOML table,
parsed into a frozen dataclass), measurement modules (ground truth, DDL, timing: they
return typed records and never write English), ``advice.py`` (records -> sentences) and
``report.py`` (records -> document blocks and figures; never touches the database). Its
``__init__.py`` exposes one :class:`Study` subclass instance, listed once in
``studies/registry.py``.

Data flows one way: ``parse`` -> ``run`` -> ``store`` into the results file; ``load``
reads it back (from this run or a results.json written elsewhere) for ``advice``,
``report`` and ``figures``.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ..report.document import Block, Image
from ..results import Results
from ..spec.model import ExperimentSpec, IndexSpec, QuerySpec, ServerSpec
from ..spec.table import Table

if TYPE_CHECKING:  # the run-time side: the spec parser imports this module and needs none
    from ..datasets.agents import AgentDataset
    from ..datasets.prepared import PreparedData
    from ..progress import Reporter
    from ..server.connection import Target
    from ..server.embedded import EmbeddedServer

S = TypeVar("S")  # the study's parsed spec (a frozen dataclass)
R = TypeVar("R")  # the study's result record (a frozen dataclass with to_dict/from_dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Recommendation:
    """One piece of advice: the sentence, the figures it rests on, and the change it asks
    for (``{"hnsw.ef_search": "40"}``, ``{"shared_buffers": "1GB"}``) when there is one."""

    text: str
    evidence: Mapping[str, float | int | str] = dataclasses.field(default_factory=dict)
    config_change: Mapping[str, str] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SpecContext:
    """What a study's parser may check its table against (the rest of the spec)."""

    where: str  # the spec file, for error messages
    kind: str  # experiment kind: "vector" | "agents"
    seed: int
    query: QuerySpec
    indexes: tuple[IndexSpec, ...]
    server: ServerSpec | None = None  # [server] (e.g. how many standbys [replicas] measures)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataShape:
    """The dataset a study will run on, and where each number came from (for messages)."""

    rows: int
    dim: int
    queries: int
    rows_from: str
    dim_from: str
    queries_from: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlanItem:
    """One line of ``pgvbench validate``'s estimate."""

    what: str
    count: int
    seconds: float
    builds: int = 0  # index builds among ``count``
    measurements: int = 0  # timed windows among ``count``


@dataclasses.dataclass(frozen=True, kw_only=True)
class VectorData:
    """A vector experiment's loaded table and query sets (vector studies read these)."""

    table: str  # the items table in the experiment's schema
    items_ident: str  # schema-qualified, quoted for SQL
    vector_oid: int  # the embedding column's type OID (pgvector's differ per database)
    prepared: PreparedData  # dataset, recall/load query sets, exact ground truth


@dataclasses.dataclass(frozen=True, kw_only=True)
class SharedIndex:
    """The index build studies with ``needs_index`` share (built once for all of them)."""

    spec: IndexSpec
    name: str
    query_settings: Mapping[str, str]  # statement_timeout and the default operating point


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyContext:
    """Everything a study's ``run`` may use; the runner builds it."""

    spec: ExperimentSpec
    target: Target
    server: EmbeddedServer | None  # the embedded server pgvbench owns (restarts), else None
    reporter: Reporter
    vectors: VectorData | None = None  # vector experiments
    agent_data: AgentDataset | None = None  # agent experiments with generated data
    index: SharedIndex | None = None  # set for studies with ``needs_index``
    # store a partial record and rewrite results.json: a study with long parts calls it
    # after each, so a failure later keeps what was measured (set by the runner)
    save_partial: Callable[[Any], None] | None = None
    # the run's output directory (results.json, report): a study keeping its own state
    # next to it (the tuner's resumable storage) finds it here; None outside a run
    out_dir: Path | None = None


class Study(abc.ABC, Generic[S, R]):
    """One study. Class attributes describe it; methods do its work."""

    name: ClassVar[str]  # its spec table, e.g. "cache" for [cache]; also its results key
    title: ClassVar[str]  # its report heading / progress label
    applies_to: ClassVar[tuple[str, ...]]  # experiment kinds: ("vector",) or ("agents",)
    section: ClassVar[str]  # where results and advice live: "tuning" | "agent"
    # "before": agent studies that need the data as generated (before the workload writes)
    stage: ClassVar[str] = "after"
    needs_index: ClassVar[bool] = False  # queries the spec's first hnsw/ivfflat build
    restarts_server: ClassVar[bool] = False  # run last: it restarts the embedded server

    # -- spec -----------------------------------------------------------------------------

    @abc.abstractmethod
    def parse(self, table: Table, ctx: SpecContext) -> S:
        """Validate the study's TOML table; raise SpecError naming file, table and key."""

    def spec_to_dict(self, spec: S) -> dict[str, Any]:
        """The parsed spec as JSON data (recorded in results.json's spec)."""
        return _plain(spec)

    def data_problem(self, spec: S, shape: DataShape) -> str | None:
        """Why the study cannot run on this dataset (dims, query counts), or None."""
        return None

    def dataset_problem(self, spec: S, dataset: Any, where: str) -> str | None:
        """Why the study cannot run on this dataset once it is read (e.g. no attribute to
        filter on), or None: checked before the server is touched, so a user's mistake is
        exit 2 at once instead of after the rest of the run."""
        return None

    def estimate(self, spec: S, experiment: ExperimentSpec, shape: DataShape) -> list[PlanItem]:
        """What the study will build and measure, and roughly how long it takes."""
        return []

    # -- measurement ----------------------------------------------------------------------

    @abc.abstractmethod
    def run(self, ctx: StudyContext, spec: S) -> R:
        """Measure; return the typed record. Never writes prose."""

    def progress_label(self, spec: S) -> str:
        """The progress line shown while ``run`` works ("": the study shows its own steps)."""
        return self.title

    # -- results --------------------------------------------------------------------------

    @abc.abstractmethod
    def store(self, results: Results, result: R) -> None:
        """Put the record's JSON form where results.json keeps it."""

    @abc.abstractmethod
    def load(self, results: Results) -> R | None:
        """The record read back from results (None when the run has none); every older
        results version's form must still read."""

    # -- advice and report (no database) ---------------------------------------------------

    @abc.abstractmethod
    def advice(self, result: R) -> list[Recommendation]:
        """Recommendations the record supports, each with its evidence."""

    def figures(self, result: R, out_dir: Path) -> list[Image]:
        """Draw the study's figures into ``out_dir``; return them as report Images."""
        return []

    def outputs(self, result: R, results: Results, out_dir: Path) -> list[Path]:
        """Files of the study's own beside the report (the tuner's apply.sql, tune.md);
        written with the report, from the record alone."""
        return []

    @abc.abstractmethod
    def report(self, result: R, images: Sequence[Image], results: Results) -> list[Block]:
        """The study's report section(s); ``images`` are the ones ``figures`` drew."""

    def validity(self, result: R) -> list[str]:
        """Lines for the report's validity section (measurements that may be invalid)."""
        return []

    def validity_summary(self, result: R) -> str:
        """A sentence for the validity section's summary, with a leading space ("": none)."""
        return ""


def _plain(obj: Any) -> dict[str, Any]:
    """A frozen spec dataclass as JSON data: tuples -> lists, mappings -> dicts, enums and
    paths -> strings."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"spec_to_dict: {type(obj).__name__} is not a dataclass instance")
    return {f.name: _json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def _json(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # Metric, Path
