"""The capacity study in sentences: the answers at the target, each beside the held-out error
of the fit it rests on, and a warning wherever it extrapolates past what the levels can
tell. No database: everything comes from the record (predict.py fits it).
"""

from __future__ import annotations

import math

from ..base import Recommendation
from ..build.sizes import format_size
from ..tune.words import secs_text, size_text
from .answers import CapacityAnswers
from .fits import EXTRAPOLATION_LIMIT, Fit, Prediction
from .predict import BY_BYTES, KindAnalysis, analyse, at_target
from .records import CapacityRecord

KNOB = {"hnsw": "ef_search", "ivfflat": "probes"}
KNOB_GUC = {"hnsw": "hnsw.ef_search", "ivfflat": "ivfflat.probes"}
KIND_NAME = {"hnsw": "HNSW", "ivfflat": "IVFFlat"}


def recommendations(record: CapacityRecord) -> list[Recommendation]:
    """Advice per index kind: the answers at the target, or (no target) how to get them."""
    out: list[Recommendation] = []
    for part in analyse(record):
        out.extend(kind_advice(record, part))
    return out


def kind_advice(record: CapacityRecord, part: KindAnalysis) -> list[Recommendation]:
    a = part.answers
    if a is None:
        return [_no_target(record, part)]
    prefix = beyond_text(a)
    size = f"{a.target.rows:,} x {a.dim}"
    kind = KIND_NAME.get(part.kind, part.kind)
    out: list[Recommendation] = []
    restore, backup = part.fit("restore_seconds"), part.fit("basebackup_seconds")
    if restore is not None:
        jobs = _jobs(record)
        text = (
            f"{prefix}Restoring {size} with its {kind} index takes about "
            f"{seconds_range(restore.predict(a.target.rows))} with pg_restore -j {jobs} "
            f"({held_out_text(restore)}){_rebuild_share(record)}"
        )
        build = part.fit("build_seconds")
        if _missed(restore) and build is not None and not _missed(build):
            text += (
                "; that rebuild is the same CREATE INDEX as the build, whose fit held "
                f"({held_out_text(build)}): about {seconds_range(a.build_seconds)} of it"
            )
        if backup is not None:
            text += (
                f"; a base backup of its heap + index about "
                f"{seconds_range(at_target('basebackup_seconds', backup, a))} "
                f"({held_out_text(backup)})"
            )
        out.append(
            Recommendation(
                text=text + dim_note(a, "timed") + ".", evidence=_evidence(restore, a.target.rows)
            )
        )
    out.append(
        Recommendation(
            text=f"{prefix}At {size}, index + heap take about {bytes_range(a.resident_bytes)} "
            f"({held_out_text(part.fit('index_bytes'))} for the index): set shared_buffers = "
            f"{format_size(a.shared_buffers_bytes)} to keep them resident, and give the server "
            f"about {size_text(a.ram_serving_bytes)} of RAM ({size_text(a.ram_rebuild_bytes)} "
            f"while an index is rebuilt beside the serving one){rescaled_note(a)}.",
            evidence={
                "resident_bytes": round(a.resident_bytes.value),
                "shared_buffers_bytes": a.shared_buffers_bytes,
            },
            config_change={"shared_buffers": format_size(a.shared_buffers_bytes)},
        )
    )
    if a.build_memory_bytes is not None:
        out.append(_memory_advice(a, size, prefix))
    out.append(
        Recommendation(
            text=f"{prefix}Building the {kind} index at {size} takes about "
            f"{seconds_range(a.build_seconds)} with the build settings the levels ran with "
            f"({held_out_text(part.fit('build_seconds'))}){dim_note(a, 'built')}. Disk: about "
            f"{bytes_range(a.disk_bytes)} for heap + index, "
            f"{size_text(a.rebuild_disk_bytes.value)} while REINDEX CONCURRENTLY holds a "
            "second index.",
            evidence=_evidence(part.fit("build_seconds"), a.target.rows),
        )
    )
    if a.knob is not None:
        out.append(_knob_advice(record, part, a, prefix))
    if a.cores is not None and a.target.qps is not None:
        out.append(_cores_advice(record, part, a, prefix))
    return out


def _memory_advice(a: CapacityAnswers, size: str, prefix: str) -> Recommendation:
    need = a.build_memory_bytes or 0
    have = a.maintenance_work_mem_bytes
    if have is None:
        verdict = "set maintenance_work_mem to that for the build"
    elif a.build_fits:
        verdict = f"the {format_size(have)} the levels ran with is enough"
    else:
        verdict = (
            f"the {format_size(have)} the levels ran with is not: raise maintenance_work_mem "
            "for the build, or it slows down once the graph no longer fits (pgvector's "
            "NOTICE 'hnsw graph no longer fits into maintenance_work_mem')"
        )
    return Recommendation(
        text=f"{prefix}An HNSW build at {size} needs about {size_text(need)} of "
        f"maintenance_work_mem to keep its graph in memory; {verdict}.",
        evidence={"build_memory_bytes": need, "maintenance_work_mem_bytes": have or 0},
        config_change=None if a.build_fits else {"maintenance_work_mem": format_size(need)},
    )


def _knob_advice(
    record: CapacityRecord, part: KindAnalysis, a: CapacityAnswers, prefix: str
) -> Recommendation:
    assert a.knob is not None
    knob = KNOB.get(part.kind, "knob")
    value = int(a.knob.value)
    recall = record.spec.get("recall", 0.95)
    confidence = record.spec.get("confidence", 0.95)
    last = next(
        (
            ix.knob
            for level in reversed(record.levels)
            if (ix := level.index(part.kind)) is not None and ix.knob is not None
        ),
        None,
    )
    measured = f"; {last} at the largest level, {record.levels[-1].rows:,} rows" if last else ""
    text = (
        f"{prefix}Recall@{record.k} >= {recall} (its {confidence:.0%} lower bound) at "
        f"{a.target.rows:,} rows needs {knob} of about {value:,} ({int_range(a.knob)}"
        f"{measured}; {held_out_text(part.fit('knob'))})"
    )
    top = knob_limit(record, part.kind)
    if top is not None and value > top:
        params = ", ".join(f"{k} = {v}" for k, v in _params(record, part.kind).items())
        text += (
            f". That is beyond {top:,}, the largest {knob} allowed here: with {params} the "
            f"recall target is out of reach at {a.target.rows:,} rows (and the QPS answers, "
            "taken at that knob, with it). Plan with a denser graph: raise m and "
            "ef_construction in [capacity] and measure again"
        )
        return Recommendation(text=text + ".", evidence={knob: value, f"max_{knob}": top})
    return Recommendation(
        text=text + ".",
        evidence={knob: value},
        config_change={KNOB_GUC.get(part.kind, knob): str(value)},
    )


def knob_limit(record: CapacityRecord, kind: str) -> int | None:
    """The largest query knob the levels could use (HNSW: max_ef_search, pgvector's 1000)."""
    if kind != "hnsw":
        return None
    top = record.spec.get("max_ef_search", 1000)
    return top if isinstance(top, int) else 1000


def _params(record: CapacityRecord, kind: str) -> dict[str, object]:
    for level in record.levels:
        ix = level.index(kind)
        if ix is not None:
            return dict(ix.config.params)
    return {}


def _cores_advice(
    record: CapacityRecord, part: KindAnalysis, a: CapacityAnswers, prefix: str
) -> Recommendation:
    cores, per_core = a.cores, a.qps_per_core
    assert cores is not None and per_core is not None and a.target.qps is not None
    qps = f"{a.target.qps:,.0f} QPS"
    if cores.cores is None:
        peak = qps_text(cores.ceiling_qps)
        need = f"more cores than one server can use well (one server peaks near {peak})"
    else:
        need = f"about {cores.cores:,} cores"
        if cores.cores_high is not None and cores.cores_high != cores.cores:
            need += f" ({cores.cores_high:,} at the low end of the per-core interval)"
    text = (
        f"{prefix}Serving {qps} at {a.target.rows:,} rows needs {need}: QPS per server core "
        f"there is about {per_core.value:,.0f} ({range_text(per_core, '{:,.0f}')}; "
        f"{held_out_text(part.fit('qps_per_core'))}), measured at {_clients(record)}"
    )
    if cores.cores_per_server and cores.servers is not None:
        text += (
            f"; with servers of {cores.cores_per_server} cores like this host, "
            f"{cores.servers:,} servers (primary + read replicas)"
        )
    top = knob_limit(record, part.kind)
    if a.knob is not None and top is not None and a.knob.value > top:
        text += (
            f" (at a {KNOB.get(part.kind, 'knob')} beyond the {top:,} allowed: with a denser "
            "graph the knob, and so the cores, will be lower)"
        )
    if cores.usl_alpha == 0 and cores.usl_beta == 0:
        text += "; this counts cores as adding throughput linearly (no USL fit over clients)"
    if a.p99_ms is not None and a.target.p99_ms is not None:
        verdict = "within" if a.p99_ok else "over"
        text += (
            f". The p99 there would be about {a.p99_ms:,.1f} ms, {verdict} the "
            f"{a.target.p99_ms:g} ms bound"
        )
    return Recommendation(
        text=text + dim_note(a, "measured") + ".",
        evidence={"cores": cores.cores or 0, "qps_per_core": round(per_core.value, 1)},
    )


def _no_target(record: CapacityRecord, part: KindAnalysis) -> Recommendation:
    build = part.fit("build_seconds")
    growth = f"build time grows as {form_text(build)}" if build else "no build-time fit"
    return Recommendation(
        text=f"{KIND_NAME.get(part.kind, part.kind)} over {len(record.levels)} data sizes: "
        f"{growth} ({held_out_text(build)}). Give a target (target_rows in [capacity], or "
        "`pgvbench plan --target-rows N`) for the RAM, build, disk and core answers at that "
        "size.",
    )


# --------------------------------------------------------------------------- words


def beyond_text(a: CapacityAnswers) -> str:
    """The warning that leads every answer extrapolated past the limit ("" within it)."""
    if not a.beyond_limit:
        return ""
    return (
        f"Far beyond the measurements ({a.target.rows:,} rows is {a.extrapolation:,.0f}x the "
        f"largest level, past the {EXTRAPOLATION_LIMIT:g}x limit; read the interval, not the "
        "value): "
    )


def held_out_text(fit: Fit | None) -> str:
    """``held-out error +4.2% at 200,000 rows`` (and the miss, when it missed)."""
    if fit is None:
        return "no fit"
    held = fit.holdout
    if held is None:
        return "no level held out: too few levels"
    error = held.relative_error
    where = f"{held.rows:,} rows" if fit.quantity not in BY_BYTES else size_text(held.rows)
    text = f"held-out error {error:+.1%} at {where}"
    if not held.within:
        text += f", beyond the ±{held.tolerance:.0%} tolerance: the fit missed"
    return text


def form_text(fit: Fit | None) -> str:
    names = {"n_log_n": "n log n", "power": "a power law", "linear": "a line", "log": "log n"}
    if fit is None:
        return "unknown"
    if fit.form == "power":
        return f"n^{fit.params['b']:.2f}"
    return names.get(fit.form, fit.form)


def range_text(p: Prediction, pattern: str) -> str:
    if not p.bounded:
        return "interval unbounded: too few levels"
    return f"{pattern.format(p.low)}–{pattern.format(p.high)} at {p.level:.0%}"


def seconds_range(p: Prediction) -> str:
    if not p.bounded:
        return f"{secs_text(p.value)} (interval unbounded: too few levels)"
    return f"{secs_text(p.value)} ({secs_text(p.low)}–{secs_text(p.high)} at {p.level:.0%})"


def bytes_range(p: Prediction) -> str:
    if not p.bounded:
        return f"{size_text(p.value)} (interval unbounded: too few levels)"
    return f"{size_text(p.value)} ({size_text(p.low)}–{size_text(p.high)} at {p.level:.0%})"


def int_range(p: Prediction) -> str:
    return range_text(p, "{:,.0f}")


def qps_text(value: float | None) -> str:
    return "an unknown rate" if value is None or not math.isfinite(value) else f"{value:,.0f} QPS"


def dim_note(a: CapacityAnswers, verb: str) -> str:
    """Build and query times are for the measured dimension, not rescaled."""
    if not a.dim_rescaled:
        return ""
    return (
        f" ({verb} at {a.measured_dim} dimensions: distance work at {a.dim} is about "
        f"{a.dim_ratio:.1f}x, so expect it to scale with that; measure at the target dimension "
        "for a firm figure)"
    )


def rescaled_note(a: CapacityAnswers) -> str:
    if not a.dim_rescaled:
        return ""
    return (
        f" (sizes carried from {a.measured_dim} to {a.dim} dimensions by the bytes per "
        "dimension, not measured there)"
    )


def _missed(fit: Fit | None) -> bool:
    return fit is not None and fit.holdout is not None and not fit.holdout.within


def _rebuild_share(record: CapacityRecord) -> str:
    """What share of the largest timed restore the index rebuild took."""
    for level in reversed(record.levels):
        b = level.backup
        total = b.restore_seconds if b is not None else None
        if b is not None and total and b.restore_index_seconds is not None:
            share = b.restore_index_seconds / total
            return f"; rebuilding the index was {share:.0%} of it at {level.rows:,} rows"
    return ""


def _jobs(record: CapacityRecord) -> int:
    jobs = record.spec.get("jobs", 2)
    return jobs if isinstance(jobs, int) else 2


def _clients(record: CapacityRecord) -> str:
    clients = record.spec.get("clients", 1)
    return f"{clients} client{'s' if clients != 1 else ''}"


def _evidence(fit: Fit | None, rows: int) -> dict[str, float | int | str]:
    if fit is None:
        return {}
    p = fit.predict(rows)
    out: dict[str, float | int | str] = {"predicted": round(p.value, 4), "form": fit.form}
    if fit.holdout is not None:
        out["held_out_error"] = round(fit.holdout.relative_error, 4)
    return out
