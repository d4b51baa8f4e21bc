"""Two spec files as the two arms of one interleaved comparison.

Each file is one variant: one [[index]] build at one operating point, its session
settings and, optionally, an SQL wrapper around the kNN statement ([ab]). Both must
measure the same thing (dataset, seed, k, recall queries) and must be able to share one
server: settings that need a restart or reload cannot differ between the arms. Every
refusal is a SpecError (exit 2) naming the file, the key and both values.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..spec.model import ExperimentSpec, IndexSpec
from .spec import AbSpec

SESSION_CONTEXTS = ("user", "superuser")
DEFAULT_ROUNDS = 120
DEFAULT_WINDOW_S = 0.25
ARMS = ("A", "B")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Variant:
    """One arm: what runs on the server when it is its turn."""

    arm: str  # "A" or "B"
    label: str
    source: Path | None
    index: IndexSpec
    query_params: Mapping[str, int]  # the operating point (hnsw.ef_search / ivfflat.probes)
    settings: Mapping[str, str]  # session settings of [ab] and of [server.settings]
    sql: str | None  # [ab] sql: a wrapper with {knn}

    @property
    def session_settings(self) -> dict[str, str]:
        """Everything SET on each of this arm's connections."""
        return {**{k: str(v) for k, v in self.query_params.items()}, **self.settings}

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "label": self.label,
            "source": str(self.source) if self.source else None,
            "index": self.index.label,
            "index_kind": self.index.kind,
            "query_params": dict(self.query_params),
            "settings": dict(self.settings),
            "sql": self.sql,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class Pairing:
    a: Variant
    b: Variant
    spec: ExperimentSpec  # A's: the dataset, query and schema both share
    server_settings: Mapping[str, str]  # [server.settings] equal in both: applied to the server
    differing: tuple[str, ...]  # [server.settings] names that differ: must be session-level
    rounds: int
    window_s: float
    clients: int

    @property
    def variants(self) -> tuple[Variant, Variant]:
        return (self.a, self.b)


def pair_specs(
    a: ExperimentSpec,
    b: ExperimentSpec,
    *,
    rounds: int | None = None,
    window_s: float | None = None,
    clients: int | None = None,
) -> Pairing:
    """Check that ``a`` and ``b`` measure the same thing and make their variants; the
    command line's rounds/window/clients override the files' [ab] values."""
    for spec in (a, b):
        _check_kind(spec)
    _check_same(a, b)
    common, differing, session = _split_server_settings(a, b)
    label_a, label_b = _labels(a, b)
    var_a = _variant("A", a, label_a, session[0])
    var_b = _variant("B", b, label_b, session[1])
    ab_a, ab_b = _ab(a), _ab(b)
    return Pairing(
        a=var_a,
        b=var_b,
        spec=a,
        server_settings=common,
        differing=differing,
        rounds=rounds or _agreed(a, b, ab_a.rounds, ab_b.rounds, "rounds") or DEFAULT_ROUNDS,
        window_s=window_s
        or _agreed(a, b, ab_a.window_seconds, ab_b.window_seconds, "window_seconds")
        or DEFAULT_WINDOW_S,
        clients=clients or _agreed(a, b, ab_a.clients, ab_b.clients, "clients") or 1,
    )


def check_server_contexts(pairing: Pairing, context_of: Callable[[str], str | None]) -> None:
    """Refuse [server.settings] that differ between the arms unless a session may set them
    (``context_of``: the name's pg_settings context, None when the server does not know
    it, as for an extension's settings before its library loads: those are per session)."""
    for name in pairing.differing:
        context = context_of(name) or "user"
        if context not in SESSION_CONTEXTS:
            a = pairing.a.settings.get(name, "(not set)")
            b = pairing.b.settings.get(name, "(not set)")
            raise SpecError(
                f"[server.settings] {name} differs: {a!r} in {_where(pairing.a.source)} and "
                f"{b!r} in {_where(pairing.b.source)}, and it is a server-level setting "
                f"(context {context!r}), while `pgvbench ab` runs both variants on one server "
                "at once. Give both files the same value, or measure this change with "
                "`pgvbench run` on each file and `pgvbench compare`."
            )


def _check_kind(spec: ExperimentSpec) -> None:
    where = _where(spec.source_path)
    if spec.kind != "vector" or spec.dataset is None:
        raise SpecError(f"{where}: `pgvbench ab` compares vector experiments (kNN over a dataset)")
    if spec.server.sweep:
        raise SpecError(
            f"{where}: [[server.sweep]] is not used by `pgvbench ab` (each file is one variant); "
            "remove it, or put the settings of this variant in [server.settings] or [ab] settings"
        )


def _check_same(a: ExperimentSpec, b: ExperimentSpec) -> None:
    assert a.dataset is not None and b.dataset is not None
    pairs: list[tuple[str, object, object]] = [
        (f"[dataset] {f.name}", getattr(a.dataset, f.name), getattr(b.dataset, f.name))
        for f in dataclasses.fields(a.dataset)
    ]
    if a.dataset.source == "synthetic":
        pairs.append(("[experiment] seed", a.seed, b.seed))  # the seed draws the data
    pairs += [
        ("[query] k", a.query.k, b.query.k),
        ("[query] recall_queries", a.query.recall_queries, b.query.recall_queries),
        # the recall tolerance, when the spec has one (issue 12 adds it)
        (
            "[query] recall_epsilon",
            getattr(a.query, "recall_epsilon", None),
            getattr(b.query, "recall_epsilon", None),
        ),
    ]
    for key, x, y in pairs:
        if x != y:
            raise SpecError(
                f"{key} differs: {_show(x)} in {_where(a.source_path)} and {_show(y)} in "
                f"{_where(b.source_path)}; `pgvbench ab` compares two variants on the same data "
                "and queries. Give both files the same value."
            )


def _split_server_settings(
    a: ExperimentSpec, b: ExperimentSpec
) -> tuple[dict[str, str], tuple[str, ...], tuple[dict[str, str], dict[str, str]]]:
    """(settings equal in both, names that differ, each arm's differing values)."""
    sa, sb = dict(a.server.settings), dict(b.server.settings)
    common = {k: v for k, v in sa.items() if sb.get(k) == v}
    differing = tuple(sorted((set(sa) | set(sb)) - set(common)))
    return (
        common,
        differing,
        ({k: sa[k] for k in differing if k in sa}, {k: sb[k] for k in differing if k in sb}),
    )


def _variant(arm: str, spec: ExperimentSpec, label: str, server_session: dict[str, str]) -> Variant:
    ab = _ab(spec)
    index = _index(spec)
    return Variant(
        arm=arm,
        label=label,
        source=spec.source_path,
        index=index,
        query_params=_operating_point(spec, index),
        settings={
            "statement_timeout": str(spec.query.statement_timeout_ms),
            **server_session,
            **ab.settings,
        },
        sql=ab.sql,
    )


def _index(spec: ExperimentSpec) -> IndexSpec:
    if len(spec.indexes) == 1:
        return spec.indexes[0]
    if spec.load is not None:
        return next(ix for ix in spec.indexes if ix.label == spec.load.index)
    labels = ", ".join(ix.label for ix in spec.indexes)
    raise SpecError(
        f"{_where(spec.source_path)}: a variant of `pgvbench ab` is one [[index]] build; this "
        f"file has {len(spec.indexes)} ({labels}). Keep one, or name it in [load] index."
    )


def _operating_point(spec: ExperimentSpec, index: IndexSpec) -> dict[str, int]:
    if spec.load is not None and spec.load.index == index.label and spec.load.query_params:
        return dict(spec.load.query_params)
    if index.sweep_param is None or not index.sweep_values:
        return {}  # an exact scan, or the server's own ef_search/probes
    if len(index.sweep_values) > 1:
        key = index.sweep_param.split(".")[1]
        values = ", ".join(str(v) for v in index.sweep_values)
        raise SpecError(
            f"{_where(spec.source_path)}: [[index]] {index.label} {key} lists several values "
            f"({values}); a variant of `pgvbench ab` runs at one operating point. Give one "
            f"value (e.g. {key} = {index.operating_point}) or set [load] query_params."
        )
    return {index.sweep_param: index.sweep_values[0]}


def _labels(a: ExperimentSpec, b: ExperimentSpec) -> tuple[str, str]:
    la, lb = (_ab(s).label or _default_label(s) for s in (a, b))
    if la == lb:
        return f"{la} (A)", f"{lb} (B)"
    return la, lb


def _default_label(spec: ExperimentSpec) -> str:
    return spec.source_path.stem if spec.source_path is not None else spec.name


def _agreed(
    a: ExperimentSpec, b: ExperimentSpec, x: float | None, y: float | None, key: str
) -> Any:
    if x is not None and y is not None and x != y:
        raise SpecError(
            f"[ab] {key} differs: {x} in {_where(a.source_path)} and {y} in "
            f"{_where(b.source_path)}; both arms are measured in the same rounds. Give one "
            f"value (or set it on the command line)."
        )
    return x if x is not None else y


def _ab(spec: ExperimentSpec) -> AbSpec:
    return spec.ab if isinstance(spec.ab, AbSpec) else AbSpec()


def _where(path: Path | None) -> str:
    return str(path) if path is not None else "<spec>"


def _show(value: object) -> str:
    return repr(str(value)) if isinstance(value, Path) else repr(value)


def slug(text: str) -> str:
    """A label as a directory name part."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "variant"
