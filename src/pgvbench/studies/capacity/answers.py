"""The capacity answers at a target size: memory, build, disk and cores, from the fits.

Figures only (the report words them). The rules, each a first-order model stated here:

* **Resident set**: index + heap bytes at the target rows (bytes fits, rescaled to the
  target dimension by :class:`fits.DimRescale` when it differs: then ``dim_rescaled``).
  ``shared_buffers`` is sized on the interval's high end (staying resident is the point)
  plus SHARED_BUFFERS_HEADROOM for the visibility map, free space map and other relations,
  rounded up to a MiB. RAM for serving is that plus OS_RESERVE_BYTES (the OS, connections,
  work_mem); RAM for a rebuild while serving adds the build's memory (the old index stays
  resident while the new graph is built).
* **Build memory** (HNSW): pgvector builds the graph in maintenance_work_mem and falls back
  to much slower on-disk inserts once it no longer fits ("hnsw graph no longer fits into
  maintenance_work_mem"); the in-memory graph is about the size of the finished index,
  so the build needs the index's high end plus BUILD_MEMORY_MARGIN. IVFFlat keeps no graph:
  no figure.
* **Build time with N workers**: the fitted serial time divided by the speed-up measured
  with N workers (at the measured levels: assumed to hold at the target).
* **Disk**: heap + index; a rebuild (REINDEX CONCURRENTLY) holds a second index meanwhile.
* **Cores**: the per-core QPS predicted at the target rows (measured at a concurrency whose
  p99 met the bound), scaled by the USL over clients when one is given, with cores as the
  scale variable: ``X(C) = q·C / (1 + α(C-1) + β·C(C-1))``; the answer is the smallest C
  with X(C) >= the target QPS (none if the curve peaks below it). Servers of a given core
  count each give X(cores_per_server); read replicas add up (they share no CPU).
* **p99**: the measured p99 at the largest level, scaled by how much slower a query gets
  at the target (per-core QPS there vs at the largest level).

Build time and QPS are for the measured dimension (not rescaled): ``dim_ratio`` says by
how much the target's distance computations differ.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ...analysis.usl import UslFit
from .._fields import float_or, int_or, opt_float, opt_int, text
from .fits import Fit, Prediction, extrapolation, rescale_dim

MIB = 1024 * 1024
SHARED_BUFFERS_HEADROOM = 0.10
OS_RESERVE_BYTES = 1024 * MIB
BUILD_MEMORY_MARGIN = 0.10
MAX_CORES = 100_000  # the search for the smallest core count stops here


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """What the answers are for: rows, dimension (None: the measured one), QPS, p99."""

    rows: int
    dim: int | None = None
    qps: float | None = None
    p99_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        return cls(
            rows=int_or(data, "rows", 0),
            dim=opt_int(data, "dim"),
            qps=opt_float(data, "qps"),
            p99_ms=opt_float(data, "p99_ms"),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cores:
    """Cores (one server) and servers of ``cores_per_server`` for the target QPS; the
    ``_high`` figures use the per-core prediction's low end. None: not reachable (the
    USL curve peaks below the target, or the per-core QPS predicts 0)."""

    cores: int | None
    cores_high: int | None
    ceiling_qps: float | None  # one server's peak under the USL (None: no peak)
    cores_per_server: int | None = None
    servers: int | None = None
    servers_high: int | None = None
    usl_alpha: float = 0.0
    usl_beta: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cores:
        return cls(
            cores=opt_int(data, "cores"),
            cores_high=opt_int(data, "cores_high"),
            ceiling_qps=opt_float(data, "ceiling_qps"),
            cores_per_server=opt_int(data, "cores_per_server"),
            servers=opt_int(data, "servers"),
            servers_high=opt_int(data, "servers_high"),
            usl_alpha=float_or(data, "usl_alpha", 0.0),
            usl_beta=float_or(data, "usl_beta", 0.0),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class CapacityAnswers:
    """The answers at ``target`` (see the module docstring for each rule)."""

    target: Target
    measured_dim: int
    largest_rows: int  # the largest measured level
    index_kind: str
    index_bytes: Prediction
    heap_bytes: Prediction | None
    resident_bytes: Prediction  # index + heap
    shared_buffers_bytes: int
    ram_serving_bytes: int
    ram_rebuild_bytes: int
    disk_bytes: Prediction  # heap + index
    rebuild_disk_bytes: Prediction  # heap + 2 x index
    build_seconds: Prediction
    build_memory_bytes: int | None = None  # the maintenance_work_mem a build needs
    maintenance_work_mem_bytes: int | None = None  # the setting the levels ran with
    parallel_workers: int | None = None
    parallel_speedup: float | None = None
    parallel_build_seconds: Prediction | None = None
    knob: Prediction | None = None  # ef_search / probes meeting the recall target
    qps_per_core: Prediction | None = None
    cores: Cores | None = None
    p99_ms: float | None = None  # predicted at the target, at the measured load

    @property
    def dim(self) -> int:
        return self.target.dim or self.measured_dim

    @property
    def dim_rescaled(self) -> bool:
        """Bytes carried to another dimension by rule, not measured there."""
        return self.dim != self.measured_dim

    @property
    def dim_ratio(self) -> float:
        return self.dim / self.measured_dim if self.measured_dim else math.nan

    @property
    def extrapolation(self) -> float:
        return extrapolation(self.target.rows, self.largest_rows)

    @property
    def beyond_limit(self) -> bool:
        return self.build_seconds.beyond_limit

    @property
    def build_fits(self) -> bool | None:
        """Whether the build's graph fits the maintenance_work_mem the levels ran with."""
        if self.build_memory_bytes is None or self.maintenance_work_mem_bytes is None:
            return None
        return self.build_memory_bytes <= self.maintenance_work_mem_bytes

    @property
    def p99_ok(self) -> bool | None:
        if self.p99_ms is None or self.target.p99_ms is None:
            return None
        return self.p99_ms <= self.target.p99_ms

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            out[field.name] = value.to_dict() if hasattr(value, "to_dict") else value
        derived = ("dim", "dim_rescaled", "dim_ratio", "extrapolation", "beyond_limit")
        out.update({name: getattr(self, name) for name in (*derived, "build_fits", "p99_ok")})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CapacityAnswers:
        def pred(key: str) -> Prediction | None:
            value = data.get(key)
            return Prediction.from_dict(value) if isinstance(value, Mapping) else None

        empty = Prediction(value=math.nan, low=-math.inf, high=math.inf)
        target, cores = data.get("target"), data.get("cores")
        return cls(
            target=Target.from_dict(target if isinstance(target, Mapping) else {}),
            measured_dim=int_or(data, "measured_dim", 0),
            largest_rows=int_or(data, "largest_rows", 1),
            index_kind=text(data, "index_kind", "hnsw"),
            index_bytes=pred("index_bytes") or empty,
            heap_bytes=pred("heap_bytes"),
            resident_bytes=pred("resident_bytes") or empty,
            shared_buffers_bytes=int_or(data, "shared_buffers_bytes", 0),
            ram_serving_bytes=int_or(data, "ram_serving_bytes", 0),
            ram_rebuild_bytes=int_or(data, "ram_rebuild_bytes", 0),
            disk_bytes=pred("disk_bytes") or empty,
            rebuild_disk_bytes=pred("rebuild_disk_bytes") or empty,
            build_seconds=pred("build_seconds") or empty,
            build_memory_bytes=opt_int(data, "build_memory_bytes"),
            maintenance_work_mem_bytes=opt_int(data, "maintenance_work_mem_bytes"),
            parallel_workers=opt_int(data, "parallel_workers"),
            parallel_speedup=opt_float(data, "parallel_speedup"),
            parallel_build_seconds=pred("parallel_build_seconds"),
            knob=pred("knob"),
            qps_per_core=pred("qps_per_core"),
            cores=Cores.from_dict(cores) if isinstance(cores, Mapping) else None,
            p99_ms=opt_float(data, "p99_ms"),
        )


def _sum(*parts: Prediction) -> Prediction:
    """Sum of predictions; bounds add too (as if perfectly correlated: the conservative
    width, since every part grows with the same rows)."""
    return dataclasses.replace(
        parts[0],
        value=sum(p.value for p in parts),
        low=sum(p.low for p in parts),
        high=sum(p.high for p in parts),
    )


def _sized(prediction: Prediction) -> float:
    """The interval's high end when bounded, else the value."""
    return prediction.high if prediction.bounded else prediction.value


def _mib_ceil(value: float) -> int:
    return math.ceil(value / MIB) * MIB


def usl_throughput(per_core: float, cores: int, alpha: float, beta: float) -> float:
    return per_core * cores / (1.0 + alpha * (cores - 1) + beta * cores * (cores - 1))


def cores_for(qps: float, per_core: float, *, alpha: float = 0.0, beta: float = 0.0) -> int | None:
    """The smallest core count whose USL throughput reaches ``qps`` (None: never)."""
    if per_core <= 0:
        return None
    if alpha == 0 and beta == 0:
        return max(1, math.ceil(qps / per_core - 1e-9))
    best = 0.0
    for cores in range(1, MAX_CORES + 1):
        throughput = usl_throughput(per_core, cores, alpha, beta)
        if throughput >= qps * (1 - 1e-12):
            return cores
        if throughput < best:  # past the peak: more cores only lose
            return None
        best = throughput
    return None


def _ceiling(per_core: float, alpha: float, beta: float) -> float | None:
    if beta > 0:
        peak = max(1.0, math.sqrt((1.0 - alpha) / beta))
        return max(
            usl_throughput(per_core, c, alpha, beta) for c in (math.floor(peak), math.ceil(peak))
        )
    return per_core / alpha if alpha > 0 else None


def _cores(
    qps: float, per_core: Prediction, usl: UslFit | None, cores_per_server: int | None
) -> Cores:
    alpha, beta = (usl.alpha, usl.beta) if usl is not None else (0.0, 0.0)
    servers = servers_high = None
    if cores_per_server:
        per_server = usl_throughput(per_core.value, cores_per_server, alpha, beta)
        low_server = usl_throughput(per_core.low, cores_per_server, alpha, beta)
        servers = math.ceil(qps / per_server - 1e-9) if per_server > 0 else None
        servers_high = math.ceil(qps / low_server - 1e-9) if low_server > 0 else None
    return Cores(
        cores=cores_for(qps, per_core.value, alpha=alpha, beta=beta),
        cores_high=cores_for(qps, per_core.low, alpha=alpha, beta=beta),
        ceiling_qps=_ceiling(per_core.value, alpha, beta),
        cores_per_server=cores_per_server,
        servers=servers,
        servers_high=servers_high,
        usl_alpha=alpha,
        usl_beta=beta,
    )


def answer(
    *,
    target: Target,
    measured_dim: int,
    build: Fit,
    index_bytes: Fit,
    heap_bytes: Fit | None = None,
    knob: Fit | None = None,
    qps_per_core: Fit | None = None,
    index_kind: str = "hnsw",
    index_storage: str = "vector",
    maintenance_work_mem: int | None = None,
    parallel_workers: int | None = None,
    parallel_speedup: float | None = None,
    usl: UslFit | None = None,
    cores_per_server: int | None = None,
    measured_p99_ms: float | None = None,
) -> CapacityAnswers:
    """The answers at ``target`` from the fits (and what the levels ran with)."""
    rows, dim = target.rows, target.dim or measured_dim
    if dim != measured_dim:
        index_bytes = rescale_dim(
            index_bytes, measured_dim=measured_dim, target_dim=dim, storage=index_storage
        )
        if heap_bytes is not None:
            heap_bytes = rescale_dim(heap_bytes, measured_dim=measured_dim, target_dim=dim)
    index = index_bytes.predict(rows)
    heap = heap_bytes.predict(rows) if heap_bytes is not None else None
    resident = _sum(index, heap) if heap is not None else index
    shared_buffers = _mib_ceil(_sized(resident) * (1.0 + SHARED_BUFFERS_HEADROOM))
    build_memory = (
        _mib_ceil(_sized(index) * (1.0 + BUILD_MEMORY_MARGIN)) if index_kind == "hnsw" else None
    )
    serial = build.predict(rows)
    parallel = None
    if parallel_speedup and parallel_speedup > 0:
        parallel = dataclasses.replace(
            serial,
            value=serial.value / parallel_speedup,
            low=serial.low / parallel_speedup,
            high=serial.high / parallel_speedup,
        )
    per_core = qps_per_core.predict(rows) if qps_per_core is not None else None
    cores = None
    if per_core is not None and target.qps is not None:
        cores = _cores(target.qps, per_core, usl, cores_per_server)
    p99 = None
    if measured_p99_ms is not None and qps_per_core is not None and per_core is not None:
        at_largest = qps_per_core.predict(qps_per_core.largest).value
        if per_core.value > 0:
            p99 = measured_p99_ms * at_largest / per_core.value
    disk = _sum(index, heap) if heap is not None else index
    return CapacityAnswers(
        target=target,
        measured_dim=measured_dim,
        largest_rows=build.largest,
        index_kind=index_kind,
        index_bytes=index,
        heap_bytes=heap,
        resident_bytes=resident,
        shared_buffers_bytes=shared_buffers,
        ram_serving_bytes=shared_buffers + OS_RESERVE_BYTES,
        ram_rebuild_bytes=shared_buffers + OS_RESERVE_BYTES + (build_memory or 0),
        disk_bytes=disk,
        rebuild_disk_bytes=_sum(disk, index),
        build_seconds=serial,
        build_memory_bytes=build_memory,
        maintenance_work_mem_bytes=maintenance_work_mem,
        parallel_workers=parallel_workers,
        parallel_speedup=parallel_speedup,
        parallel_build_seconds=parallel,
        knob=knob.predict(rows) if knob is not None else None,
        qps_per_core=per_core,
        cores=cores,
        p99_ms=p99,
    )
