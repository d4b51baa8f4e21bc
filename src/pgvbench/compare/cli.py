"""``pgvbench compare`` and ``pgvbench baseline``: argument parsing and the exit code.

Exit codes: 0 no regression; 1 a regression (or an invalid/failed current run);
2 bad usage or inputs that cannot be compared.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._outputs import check_not_empty, check_writable_dir, check_writable_file
from ..errors import IncompatibleResults, OutputError, ResultsError
from ..results import Results, load_results, write_results
from .baselines import (
    DEFAULT_DIR,
    Baseline,
    baseline_path,
    list_baselines,
    resolve,
    save_baseline,
)
from .core import CompareOptions, compare_results
from .merge import merge_results, refuse_duplicate_runs
from .output import print_table, write_outputs
from .runs import RULES, runs_of

EXIT_OK, EXIT_REGRESSION = 0, 1


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    metrics = "; ".join(
        f"{r.name}: {r.description} ({'absolute' if r.absolute else 'relative'}, "
        f"default {r.min_effect:g})"
        for r in RULES.values()
    )
    compare = sub.add_parser(
        "compare",
        help="regression gate: compare CURRENT results against BASE (exit 1 on regression)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare two results files run by run (matched by workload, index kind "
        "and parameters, query parameters, concurrency, pooling and operation).\n\n"
        "A metric regressed when a two-sided Mann-Whitney U test over the repeats gives "
        "p < --alpha AND its median moved by more than the metric's minimum effect in the "
        "bad direction. With a single sample per side (no [experiment] repeats) only the "
        "minimum effect decides, and the output says so. Recall is an absolute drop.\n\n"
        "Exit codes: 0 no regression; 1 regression (or the current run failed / a point "
        "became invalid); 2 bad usage, unreadable files, or results that measured different "
        "things (dataset, spec, PostgreSQL major or pgvector version) unless --allow-env-diff.",
    )
    compare.add_argument(
        "base",
        help="base results: a results.json, a run's output directory, or a baseline name "
        "saved with `pgvbench baseline save`",
    )
    compare.add_argument("current", help="current results (same forms as BASE)")
    compare.add_argument(
        "--alpha",
        type=float,
        default=0.01,
        help="significance level of the Mann-Whitney U test (default 0.01)",
    )
    compare.add_argument(
        "--min-effect",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help=f"override a metric's minimum effect (repeatable). Metrics: {metrics}",
    )
    compare.add_argument(
        "--noise-k",
        type=float,
        default=3.0,
        metavar="K",
        help="when BASE pools 3 or more runs (pgvbench merge / baseline save with several "
        "files), a change must also exceed K x the base's run-to-run variation of that "
        "metric (default 3; 0 turns it off)",
    )
    compare.add_argument(
        "--allow-env-diff",
        action="store_true",
        help="compare even if the dataset, spec, PostgreSQL major or pgvector version differ "
        "(the differences are still printed)",
    )
    compare.add_argument("--markdown", metavar="FILE", help="write a PR comment")
    compare.add_argument("--json", metavar="FILE", help="write the comparison as JSON")
    compare.add_argument(
        "--junit",
        metavar="FILE",
        help="write JUnit XML: one test case per run x metric, regressions as failures",
    )
    compare.add_argument(
        "--only-changes",
        action="store_true",
        help="terminal table: hide unchanged metrics (files always carry every row)",
    )
    compare.add_argument(
        "--baselines-dir",
        default=str(DEFAULT_DIR),
        help=f"where baseline names are looked up (default {DEFAULT_DIR})",
    )

    baseline = sub.add_parser(
        "baseline",
        help="save or list named baselines for `compare`",
        description="Baselines are results files kept under reports/baselines/ (commit them), "
        "so CI compares against a known-good run by name: "
        "`pgvbench compare main reports/current/results.json`.",
    )
    actions = baseline.add_subparsers(dest="baseline_action", required=True, metavar="ACTION")
    save = actions.add_parser(
        "save",
        help="store a complete results file (or several runs of one spec, merged) as NAME",
        description="Store a results file as a named baseline. Given several runs of the same "
        "spec, they are merged first (see `pgvbench merge`): a baseline made of 2-3 runs "
        "carries the variation between runs, which makes the gate steadier.",
    )
    save.add_argument("name", help="baseline name: letters, digits, '.', '_', '-'")
    save.add_argument("results", nargs="+", help="the results.json (or several) to keep")
    save.add_argument("--force", action="store_true", help="replace an existing baseline")
    save.add_argument("--dir", default=str(DEFAULT_DIR), help=f"default {DEFAULT_DIR}")
    listing = actions.add_parser("list", help="list saved baselines")
    merge = sub.add_parser(
        "merge",
        help="pool several runs of one spec into one results file (for compare)",
        description="Pool complete runs of the same spec (same dataset, spec, PostgreSQL major "
        "and pgvector version) into one results file whose points carry every run's "
        "repeats. `compare` then tests against the variation between runs as well as within "
        "them: use it for both sides on noisy machines.",
    )
    merge.add_argument("out", help="the merged results file to write")
    merge.add_argument("results", nargs="+", help="results files or run directories (2 or more)")
    listing.add_argument("--dir", default=str(DEFAULT_DIR), help=f"default {DEFAULT_DIR}")


def run_compare(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.noise_k) and args.noise_k >= 0):
        # nan compares false with everything: it would silently turn the noise floor off
        raise ResultsError(
            f"--noise-k {args.noise_k:g} must be a finite number >= 0 (default 3; 0 turns "
            "the run-to-run noise floor off)"
        )
    options = CompareOptions(
        alpha=_alpha(args.alpha),
        min_effects=parse_min_effects(args.min_effect, RULES),
        noise_k=args.noise_k,
    )
    # before reading or comparing anything: a CI job should not learn this at the end
    outputs = list(check_output_options(args, json_what="the JSON comparison").items())
    check_not_empty(args.baselines_dir, "--baselines-dir")
    baselines_dir = Path(args.baselines_dir)
    base_name, base_path = resolve(args.base, baselines_dir)
    current_name, current_path = resolve(args.current, baselines_dir)
    _refuse_overwrite(
        [(option, path, option) for option, path in outputs],
        [(f"BASE {base_name}", base_path), (f"CURRENT {current_name}", current_path)],
    )
    base, current = load_results(base_path), load_results(current_path)
    comparison = compare_results(
        base, current, options=options, base_name=base_name, current_name=current_name
    )
    env = comparison.environment
    if not env.compatible and not args.allow_env_diff:
        listed = "\n".join(f"  - {r}" for r in env.refusals)
        raise IncompatibleResults(
            f"{base_name} and {current_name} did not measure the same thing:\n{listed}\n"
            "Re-run both with the same spec and versions, or pass --allow-env-diff to "
            "compare anyway."
        )
    if comparison.matched_runs == 0 and comparison.verdict == "ok":
        # no metric was judged: exit 0 would pass a gate that never looked (a failed
        # CURRENT stays exit 1, a regression in its own right)
        raise ResultsError(_nothing_to_compare(base, current, base_name, current_name))
    console = Console(stderr=False, highlight=False, width=max(120, Console().width))
    print_table(comparison, console, only_changes=args.only_changes)
    paths = dict(outputs)
    write_outputs(
        comparison,
        markdown=paths.get("--markdown"),
        json_path=paths.get("--json"),
        junit=paths.get("--junit"),
    )
    return EXIT_REGRESSION if comparison.verdict == "regression" else EXIT_OK


def run_merge(args: argparse.Namespace) -> int:
    check_not_empty(args.out, "OUT file")
    out = Path(args.out)
    check_writable_file(out, what="the merged results", option="OUT file")
    parts = _load(args.results)
    _refuse_overwrite([("OUT", out, "OUT file")], [(name, path) for name, path, _ in parts])
    refuse_duplicate_runs(parts)
    merged = merge_results([(name, results) for name, _, results in parts])
    write_results(merged, out)
    print(f"merged {len(merged.merged_from)} runs of {merged.run_name} into {out}")
    return EXIT_OK


def _load(refs: Sequence[str], directory: Path = DEFAULT_DIR) -> list[tuple[str, Path, Results]]:
    parts = []
    for ref in refs:
        name, path = resolve(str(ref), directory)
        parts.append((name, path, load_results(path)))
    return parts


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): the same path all the same?
        return os.path.realpath(a) == os.path.realpath(b)


def _refuse_overwrite(
    outputs: Sequence[tuple[str, Path, str]], inputs: Sequence[tuple[str, Path]]
) -> None:
    """Outputs (label, path, option choosing it) are replaced whole at the end: one that is
    an input (or another output) would destroy it, so refuse before anything is written."""
    for i, (label, out, option) in enumerate(outputs):
        hint = (
            f"Choose another file with {option}."
            if option.startswith("-")
            else f"Choose another {option}."
        )
        for name, source in inputs:
            if _same_file(out, source):
                shown = name if str(source) in name else f"{name} ({source})"
                raise OutputError(
                    f"{label} {out} is the same file as the input {shown}: writing there "
                    f"would overwrite it. {hint}"
                )
        for other, earlier, _ in outputs[:i]:
            if _same_file(out, earlier):
                raise OutputError(
                    f"{label} {out} is the same file as {other} {earlier}: one output would "
                    f"overwrite the other. {hint}"
                )


def run_baseline(args: argparse.Namespace) -> int:
    if args.baseline_action == "save":
        check_not_empty(args.dir, "--dir")
        directory = Path(args.dir)
        check_writable_dir(directory, what="the baseline", option="--dir")
        target = baseline_path(args.name, directory)  # also checks the name
        check_writable_file(target, what=f"baseline {args.name!r}", option="NAME or --dir")
        parts = _load(args.results, directory)
        _refuse_overwrite(
            [(f"baseline {args.name!r}", target, "NAME or --dir")],
            [(name, path) for name, path, _ in parts],
        )
        refuse_duplicate_runs(parts)
        results = (
            merge_results([(name, r) for name, _, r in parts]) if len(parts) > 1 else parts[0][2]
        )
        saved = save_baseline(
            args.name,
            results,
            source=", ".join(name for name, _, _ in parts),
            directory=directory,
            force=args.force,
        )
        runs = len(saved.results.merged_from) or 1
        print(
            f"saved baseline {saved.name!r}: {saved.path} (run {saved.results.run_name}, "
            f"{runs} run{'s' if runs > 1 else ''})"
        )
        return EXIT_OK
    check_not_empty(args.dir, "--dir")
    entries = list_baselines(Path(args.dir))
    if not entries:
        print(f"no baselines in {args.dir}; save one with `pgvbench baseline save NAME FILE`")
        return EXIT_OK
    table = Table(title=f"baselines in {args.dir}")
    cols = (
        "name",
        "run",
        "finished",
        "postgres",
        "pgvector",
        "commit",
        "points",
        "repeats",
        "runs",
    )
    for col in cols:
        table.add_column(col)
    for entry in entries:
        if isinstance(entry, Baseline):
            r = entry.results
            repeats = r.spec.get("repeats", 1)
            table.add_row(
                entry.name,
                r.run_name,
                r.finished_at or "",
                r.environment.postgres_version,
                r.environment.pgvector_version,
                (r.environment.git_commit or "")[:10],
                str(len(r.runs) + len(r.load_points)),
                str(repeats),
                str(len(r.merged_from) or 1),
            )
        else:
            name, _, problem = entry
            table.add_row(name, f"[red]unreadable: {escape(problem)}[/red]", *[""] * 7)
    Console().print(table)
    return EXIT_OK


def _nothing_to_compare(base: Results, current: Results, base_name: str, current_name: str) -> str:
    sides = []
    counts = []
    for label, name, results in (("BASE", base_name, base), ("CURRENT", current_name, current)):
        n = len(runs_of(results))
        counts.append(n)
        if n == 0:
            sides.append(f"{label} {name} has no completed point (the run is {results.status})")
    if sides:
        detail = "; ".join(sides)
    else:
        detail = (
            f"BASE {base_name} has {counts[0]} run(s) and CURRENT {current_name} {counts[1]}, "
            "but none match (same workload, index and parameters, query parameters, "
            "concurrency, pooling and operation) with a metric on both sides"
        )
    return (
        f"nothing to compare: no metric of {current_name} could be judged against "
        f"{base_name}: {detail}. Compare two runs of the same spec that each completed at "
        "least one point (a partial run's completed points are compared)."
    )


def _alpha(value: float) -> float:
    if not 0.0 < value < 1.0:  # false for nan too
        raise ResultsError(
            f"--alpha {value:g} must be a significance level strictly between 0 and 1 "
            "(e.g. 0.01, the default)"
        )
    return value


def check_output_options(args: argparse.Namespace, *, json_what: str) -> dict[str, Path]:
    """--markdown/--json/--junit (compare's and ab's), checked before any work: a CI job
    should not learn at the end that it cannot write its report."""
    out: dict[str, Path] = {}
    for option, raw, what in (
        ("--markdown", args.markdown, "the Markdown comparison"),
        ("--json", args.json, json_what),
        ("--junit", args.junit, "the JUnit XML"),
    ):
        check_not_empty(raw, option)
        if raw is not None:
            check_writable_file(Path(raw), what=what, option=option)
            out[option] = Path(raw)
    return out


class _EffectRule(Protocol):
    @property
    def min_effect(self) -> float: ...
    @property
    def absolute(self) -> bool: ...


def parse_min_effects(items: list[str], rules: Mapping[str, _EffectRule]) -> dict[str, float]:
    """--min-effect METRIC=VALUE items (compare's and ab's), checked against ``rules``."""
    out: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or name not in rules:
            raise ResultsError(
                f"--min-effect {item!r}: expected METRIC=VALUE with METRIC one of "
                f"{', '.join(rules)} (e.g. --min-effect p99=0.15)"
            )
        try:
            value = float(raw)
        except ValueError:
            raise ResultsError(f"--min-effect {item!r}: {raw!r} is not a number") from None
        if not (math.isfinite(value) and value >= 0):
            # nan never exceeds and inf is never exceeded: either turns the gate off
            rule = rules[name]
            raise ResultsError(
                f"--min-effect {item!r}: the minimum effect for {name} must be a finite "
                f"number >= 0 ({'an absolute drop' if rule.absolute else 'a fraction'}, "
                f"default {name}={rule.min_effect:g})"
            )
        out[name] = value
    return out
