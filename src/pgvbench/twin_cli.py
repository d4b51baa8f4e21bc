"""``pgvbench twin SAMPLE``: fit the synthetic generator to a sample of real vectors.

Writes ``twin.toml`` (a ``[dataset]`` table to paste into a spec: the same difficulty at
any size) and ``twin.json`` (the fit: target and twin LID/RC, residuals, parameters,
every evaluation). Exit codes: 0 matched within 10%; 1 the best fit missed 10% (both
files are still written); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._atomic import write_bytes_atomic
from ._outputs import check_writable_dir
from .datasets.files import _read_vectors, load_hdf5
from .datasets.twin import (
    DEFAULT_FIT_ROWS,
    DEFAULT_HETEROGENEOUS_EVALUATIONS,
    DEFAULT_MAX_EVALUATIONS,
    DEFAULT_TOLERANCE,
    Evaluation,
    TwinFit,
    fit_twin,
)
from .errors import DatasetError, RunFailed
from .metrics import Metric
from .progress import Reporter

#: The issue's acceptance: the twin's median LID and RC within 10% of the sample's.
ACCEPT = 0.10
_VECTOR_FILES = (".npy", ".fvecs")
_HDF5_FILES = (".hdf5", ".h5")


def _whole(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum}")
        return value

    return parse


_positive = _whole(1)
_nonnegative = _whole(0)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in (0, 1)")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    twin = sub.add_parser(
        "twin",
        help="fit synthetic data to a sample of your vectors (same LID and relative contrast)",
        description="Fit the clustered generator (clusters, spread, intrinsic_dim, and when "
        "the sample's difficulty varies between queries more than equal clusters give, "
        "size_skew and tail_dof; dim and metric come from the sample) so that its data is "
        "as hard for nearest-neighbour search as a sample of your real vectors: median "
        "local intrinsic dimensionality (LID, MLE over 100 neighbours) and median relative "
        "contrast within 10%, and the spread of both over queries (p10, p90) close. The "
        "twin then generates the same distribution at any size, for capacity planning "
        "with data that cannot leave production. Writes OUT/twin.toml (a [dataset] table "
        "for a spec) and OUT/twin.json (the fit and its residuals). Takes 30-90 s for a "
        "20k x 384 sample (about 2.5 min when heterogeneity is fitted too). Exit codes: 0 "
        "matched within 10%; 1 the best fit missed 10% (files still written); 2 bad input.",
    )
    twin.add_argument(
        "sample",
        type=Path,
        metavar="SAMPLE",
        help="your vectors: a .npy (2-D float array) or .fvecs file, an ann-benchmarks "
        ".hdf5 file (its 'train' vectors), or a spec .toml whose [dataset] is read (Parquet; "
        "a table with --dsn: its `sample` rows, else --fit-rows, in the run's seeded order)",
    )
    twin.add_argument(
        "--dsn",
        help="libpq connection string of the server holding the table, when SAMPLE is a spec "
        'whose [dataset] source = "table" (the table is only read, in one snapshot)',
    )
    twin.add_argument(
        "--metric",
        choices=[m.value for m in Metric],
        help="distance the vectors are searched with; required for .npy/.fvecs (an .hdf5 "
        "file or a spec names its own, and --metric must then agree)",
    )
    twin.add_argument(
        "--n",
        type=_positive,
        help="rows of the twin dataset written in twin.toml (default: the sample's rows)",
    )
    twin.add_argument(
        "--queries",
        type=_positive,
        default=1000,
        help="queries of the twin dataset written in twin.toml (default 1000)",
    )
    twin.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where twin.toml and twin.json go (default reports/twin-<sample name>/)",
    )
    twin.add_argument(
        "--fit-rows",
        type=_positive,
        default=DEFAULT_FIT_ROWS,
        help="rows generated per fit evaluation; a larger sample is subsampled to this "
        f"size, since LID and contrast depend on n (default {DEFAULT_FIT_ROWS:,})",
    )
    twin.add_argument(
        "--max-evaluations",
        type=_positive,
        default=DEFAULT_MAX_EVALUATIONS,
        help=f"budget of generated candidates (default {DEFAULT_MAX_EVALUATIONS})",
    )
    twin.add_argument(
        "--heterogeneous-evaluations",
        type=_nonnegative,
        default=DEFAULT_HETEROGENEOUS_EVALUATIONS,
        metavar="N",
        help="candidates added when the sample's LID varies between queries more than "
        "alike clusters give, to fit size_skew and tail_dof too; 0 turns that stage off "
        f"(default {DEFAULT_HETEROGENEOUS_EVALUATIONS})",
    )
    twin.add_argument(
        "--tolerance",
        type=_fraction,
        default=DEFAULT_TOLERANCE,
        help="the fit stops once both medians are this close, relative (default "
        f"{DEFAULT_TOLERANCE:g}: a margin under the 10%% acceptance for another seed)",
    )
    twin.add_argument("--seed", type=int, default=0, help="seed of the fit (default 0)")
    twin.add_argument("--quiet", action="store_true", help="no progress lines")


def run_twin(args: argparse.Namespace) -> int:
    sample, metric, name = _read_sample(args.sample, args.metric, args.dsn, args.fit_rows)
    out = args.out or Path("reports") / f"twin-{name}"
    check_writable_dir(out, what="the twin's files", option="--out")
    title = f"fit twin to {sample.shape[0]:,} x {sample.shape[1]}"
    with Reporter(enabled=not args.quiet) as reporter, reporter.task(title, total=1) as t:

        def progress(e: Evaluation, budget: int) -> None:
            t.update(
                completed=t.completed + 1,
                total=budget,
                description=f"fit twin: {e.stage} clusters={e.params.clusters} "
                f"spread={e.params.spread:g} intrinsic_dim={e.params.intrinsic_dim}"
                f"{_heterogeneity_of(e)} -> "
                f"LID {e.lid:.3g}, RC {e.rc:.3g}",
            )

        fit = fit_twin(
            sample,
            metric,
            fit_rows=args.fit_rows,
            max_evaluations=args.max_evaluations,
            heterogeneous_evaluations=args.heterogeneous_evaluations,
            tolerance=args.tolerance,
            seed=args.seed,
            progress=progress,
        )
    out.mkdir(parents=True, exist_ok=True)
    rows = args.n or int(sample.shape[0])
    write_bytes_atomic(out / "twin.toml", twin_toml(fit, args.sample, rows, args.queries).encode())
    record = {"sample": str(args.sample), "accept": ACCEPT, **fit.to_dict()}
    write_bytes_atomic(out / "twin.json", (json.dumps(record, indent=2) + "\n").encode())
    print(summary(fit, out))
    if not fit.matched(ACCEPT):
        raise RunFailed(
            f"the best twin found misses the sample's median LID or relative contrast by more "
            f"than {ACCEPT:.0%} ({_residuals(fit)}); {out / 'twin.toml'} holds the closest "
            "parameters. Raise --max-evaluations, or --fit-rows if the sample is larger"
        )
    return 0


def _read_sample(
    path: Path, metric_arg: str | None, dsn: str | None, rows: int
) -> tuple[np.ndarray, Metric, str]:
    suffix = path.suffix.lower()
    if dsn and suffix != ".toml":
        raise DatasetError(f"{path}: --dsn applies only to a spec whose [dataset] is a table")
    if suffix in _VECTOR_FILES:
        if metric_arg is None:
            raise DatasetError(
                f"{path}: a {suffix} file does not say how its vectors are compared; give "
                "--metric l2, cosine or ip"
            )
        return _read_vectors(path, "sample vectors"), Metric(metric_arg), path.stem
    if suffix in _HDF5_FILES:
        dataset = load_hdf5(path)
        return dataset.base, _agree(path, dataset.metric, metric_arg), path.stem
    if suffix == ".toml":
        from .datasets.prepared import build_dataset
        from .spec.parse import load_spec

        spec = load_spec(path)
        if spec.dataset is not None and spec.dataset.source == "table":
            if not dsn:
                raise DatasetError(
                    f'{path}: [dataset] source = "table" is read from a server: give --dsn '
                    f"with the server that holds {spec.dataset.table}"
                )
            from .datasets.table_source import read_table_sample

            base, metric = read_table_sample(dsn, spec, rows)
            return base, _agree(path, metric, metric_arg), spec.name
        dataset = build_dataset(spec)
        return dataset.base, _agree(path, dataset.metric, metric_arg), spec.name
    raise DatasetError(
        f"{path}: unsupported sample type {suffix or '(none)'}; give a .npy or .fvecs file "
        "of vectors, an ann-benchmarks .hdf5 file, or a spec .toml with a [dataset]"
    )


def _agree(path: Path, metric: Metric, metric_arg: str | None) -> Metric:
    if metric_arg is not None and Metric(metric_arg) is not metric:
        raise DatasetError(
            f"{path}: its vectors are compared with {metric.value}, but --metric says "
            f"{metric_arg}; leave --metric out or make them agree"
        )
    return metric


def twin_toml(fit: TwinFit, sample: Path, rows: int, queries: int) -> str:
    """A [dataset] table reproducing the fit, with what it matched as comments."""
    p = fit.params
    return "\n".join(
        [
            f"# Synthetic twin of {sample} ({fit.sample_rows:,} x {fit.dim}, {fit.metric}),",
            "# written by `pgvbench twin`: its median LID and relative contrast match the",
            f"# sample's at {fit.fit_rows:,} rows ({_residuals(fit)}). See twin.json.",
            "[dataset]",
            'source = "synthetic"',
            'distribution = "clustered"',
            f"n = {rows}",
            f"dim = {fit.dim}",
            f"clusters = {p.clusters}",
            f"spread = {p.spread}",
            f"intrinsic_dim = {p.intrinsic_dim}",
            *_heterogeneity_lines(fit),
            f'metric = "{fit.metric}"',
            f"queries = {queries}",
            "",
        ]
    )


def _heterogeneity_lines(fit: TwinFit) -> list[str]:
    """The heterogeneity keys the fit used (left out at 0, the generator's default), with
    how widely the LID spreads over queries, which they were fitted to."""
    p, t, w = fit.params, fit.target.lid, fit.twin.lid
    keys = [f"{k} = {v:g}" for k, v in (("size_skew", p.size_skew), ("tail_dof", p.tail_dof)) if v]
    if not keys:
        return []
    return [
        f"# per-query LID p10-p90: sample {t.p10:.3g}-{t.p90:.3g}, twin {w.p10:.3g}-{w.p90:.3g}",
        *keys,
    ]


def summary(fit: TwinFit, out: Path) -> str:
    t, w = fit.target, fit.twin
    return (
        f"sample: median LID {t.lid.median:.3g}, relative contrast {t.rc.median:.3g}\n"
        f"twin:   median LID {w.lid.median:.3g}, relative contrast {w.rc.median:.3g} "
        f"(clusters = {fit.params.clusters}, spread = {fit.params.spread:g}, "
        f"intrinsic_dim = {fit.params.intrinsic_dim}{_heterogeneity(fit)})\n"
        f"per-query LID p10-p90: sample {t.lid.p10:.3g}-{t.lid.p90:.3g}, twin "
        f"{w.lid.p10:.3g}-{w.lid.p90:.3g}\n"
        f"residuals: {_residuals(fit)}; {len(fit.evaluations)} evaluations, "
        f"{fit.seconds:.1f} s\n"
        f"wrote {out / 'twin.toml'} and {out / 'twin.json'}"
    )


def _heterogeneity(fit: TwinFit) -> str:
    return _heterogeneity_of(fit)


def _heterogeneity_of(fit_or_evaluation: TwinFit | Evaluation) -> str:
    p = fit_or_evaluation.params
    return "".join(
        f", {k} = {v:g}" for k, v in (("size_skew", p.size_skew), ("tail_dof", p.tail_dof)) if v
    )


def _residuals(fit: TwinFit) -> str:
    r = fit.residuals

    def pct(value: float) -> str:
        return "n/a" if not math.isfinite(value) else f"{value:+.1%}"

    return (
        f"LID {pct(r['lid'])}, RC {pct(r['rc'])}; with another seed LID "
        f"{pct(r['check_lid'])}, RC {pct(r['check_rc'])}"
    )
