"""Can two results files be compared? Differences that change what was measured refuse
the comparison; differences in where it ran are warnings.

Refused (unless ``--allow-env-diff``): the dataset (source, size, dimension, metric,
seed, query counts), the spec (anything but its file path and repeat count), the
PostgreSQL major version and the pgvector version. Warned: host CPU/cores/RAM/OS, the
server's non-default settings, server kind, Python and client library versions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any

from ..results import Results

# Spec keys that do not change what is measured: where the file lived, how often it ran.
_SPEC_IGNORED = frozenset({"source_path", "repeats"})
# Settings that differ between any two runs (a fresh port, a socket dir) and mean nothing.
_SETTINGS_IGNORED = frozenset(
    {
        "port",
        "unix_socket_directories",
        "data_directory",
        "config_file",
        "hba_file",
        "ident_file",
        "external_pid_file",
    }
)


@dataclasses.dataclass(frozen=True)
class EnvironmentCheck:
    refusals: tuple[str, ...]  # differences that make the comparison meaningless
    warnings: tuple[str, ...]  # differences worth knowing about

    @property
    def compatible(self) -> bool:
        return not self.refusals


def check_environment(base: Results, current: Results) -> EnvironmentCheck:
    refusals: list[str] = []
    warnings: list[str] = []
    be, ce = base.environment, current.environment
    if _major(be.postgres_version) != _major(ce.postgres_version):
        refusals.append(f"PostgreSQL major version: {be.postgres_version} vs {ce.postgres_version}")
    elif be.postgres_version != ce.postgres_version:
        warnings.append(f"PostgreSQL minor version: {be.postgres_version} vs {ce.postgres_version}")
    if be.pgvector_version != ce.pgvector_version:
        refusals.append(f"pgvector version: {be.pgvector_version} vs {ce.pgvector_version}")
    bd = dataclasses.asdict(base.dataset) if base.dataset else {}
    cd = dataclasses.asdict(current.dataset) if current.dataset else {}
    for field in ("name", "source", "n", "dim", "metric", "seed", "n_queries", "n_recall_queries"):
        if bd.get(field) != cd.get(field):
            refusals.append(f"dataset {field}: {bd.get(field)!r} vs {cd.get(field)!r}")
    for path, b, c in _diff(_spec_view(base.spec), _spec_view(current.spec)):
        refusals.append(f"spec {path}: {_show(b)} vs {_show(c)}")

    bh, ch = be.host, ce.host
    for field in ("cpu_model", "cores", "ram_bytes", "os"):
        if getattr(bh, field) != getattr(ch, field):
            warnings.append(f"host {field}: {getattr(bh, field)!r} vs {getattr(ch, field)!r}")
    if be.server_kind != ce.server_kind:
        warnings.append(f"server kind: {be.server_kind} vs {ce.server_kind}")
    settings_b = {k: v for k, v in be.non_default_settings.items() if k not in _SETTINGS_IGNORED}
    settings_c = {k: v for k, v in ce.non_default_settings.items() if k not in _SETTINGS_IGNORED}
    for path, b, c in _diff(settings_b, settings_c):
        warnings.append(f"server setting {path}: {_show(b)} vs {_show(c)}")
    if be.python_version != ce.python_version:
        warnings.append(f"Python: {be.python_version} vs {ce.python_version}")
    for path, b, c in _diff(be.client_libraries, ce.client_libraries):
        warnings.append(f"client library {path}: {_show(b)} vs {_show(c)}")
    return EnvironmentCheck(tuple(refusals), tuple(warnings))


def _major(version: str) -> str:
    return version.split(".")[0].split()[0] if version else version


def _spec_view(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec minus keys that do not change the measurement; file paths by name only."""
    view = {k: v for k, v in spec.items() if k not in _SPEC_IGNORED}
    studies = view.get("studies")
    if isinstance(studies, Mapping):
        # a study table the spec does not have is recorded as null, or (in files written
        # before that study existed) not at all: the same spec
        view["studies"] = {k: v for k, v in studies.items() if v is not None}
    dataset = view.get("dataset")
    if isinstance(dataset, Mapping):
        # a dataset file's directory differs between a laptop and CI; its name does not
        view["dataset"] = {
            k: (PurePath(v).name if isinstance(v, str) and "/" in v else v)
            for k, v in dataset.items()
        }
    return view


_MISSING = object()


def _diff(a: Any, b: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Leaf differences between two JSON values, as (dotted path, a, b)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            yield from _diff(a.get(key, _MISSING), b.get(key, _MISSING), sub)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _diff(x, y, f"{path}[{i}]")
    elif a != b:
        yield path, a, b


def _show(value: Any) -> str:
    return "(absent)" if value is _MISSING else repr(value)
