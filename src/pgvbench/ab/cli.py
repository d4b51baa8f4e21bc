"""``pgvbench ab A.toml B.toml``: argument parsing, the server, the outputs, the exit code.

Exit codes as ``compare``: 0 no regression; 1 a regression, a variant whose plan does
not use its index, or a server fault; 2 bad usage or specs that cannot be paired.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from .._outputs import check_writable_dir
from .._records import now_iso
from ..compare.cli import check_output_options, parse_min_effects
from ..config import forget_libpq_environment, paths_from_env
from ..errors import ConnectError, ResultsError, RunFailed, SpecError
from ..progress import Reporter
from ..results import DatasetInfo
from ..server.handle import ServerHandle
from .pair import ARMS, DEFAULT_ROUNDS, DEFAULT_WINDOW_S, Pairing, pair_specs, slug
from .rules import DEFAULT_ALPHA, RULES, AbRule, min_effects_help, rules_with

if TYPE_CHECKING:
    from .record import AbRecord

EXIT_OK, EXIT_REGRESSION = 0, 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ab = sub.add_parser(
        "ab",
        help="interleaved A/B: two variants on one server, exit 1 if B regressed against A",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure two variants of one workload on the same server at once, in "
        "randomized interleaved trials: each round runs A and B for one short window each, "
        "in an order drawn per round, so a busy neighbour hits both alike. Each spec file is "
        "one variant: one [[index]] at one ef_search/probes (or its [load] query_params), "
        "its [server.settings] that a session may set, and an optional [ab] table (label, "
        "settings, sql wrapper with {knn}, clients, rounds, window_seconds). Both files must "
        "have the same [dataset] and [query] k; settings that need a restart must be equal "
        "(use `pgvbench compare` for those).\n\n"
        "Per metric (QPS, p50, p99 over rounds as a paired ratio; recall over the recall "
        "queries as a paired difference; blocks/query from pg_stat_statements) it reports "
        "B vs A with an interval; a metric regressed when the interval lies wholly on the "
        "bad side AND the change is at least the metric's minimum effect.\n\n"
        "Exit codes: 0 no regression; 1 regression, a plan that does not use its index, or "
        "a server fault; 2 bad usage or specs that cannot be paired.",
    )
    ab.add_argument("a", type=Path, metavar="A.toml", help="the base variant's spec")
    ab.add_argument("b", type=Path, metavar="B.toml", help="the changed variant's spec")
    ab.add_argument(
        "--dsn",
        help="measure on this PostgreSQL server instead of the embedded one (libpq URL or "
        "key=value); only session-level settings are applied there",
    )
    ab.add_argument(
        "--data-dir",
        type=Path,
        help="embedded server data directory (default: per-user cache dir)",
    )
    ab.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="where ab.json and ab.md go (default reports/ab-<label A>-vs-<label B>/)",
    )
    ab.add_argument(
        "--rounds",
        type=int,
        help=f"rounds of A+B windows (default [ab] rounds, else {DEFAULT_ROUNDS})",
    )
    ab.add_argument(
        "--window",
        type=float,
        metavar="SECONDS",
        help=f"measured seconds per window (default [ab] window_seconds, else "
        f"{DEFAULT_WINDOW_S:g}); each window starts with a warm-up of a quarter of it (at most "
        "0.2 s). Short windows pair better: a machine's speed can change within a second",
    )
    ab.add_argument(
        "--clients",
        type=int,
        help="concurrent clients per window (default [ab] clients, else 1)",
    )
    ab.add_argument(
        "--seed",
        type=int,
        help="seed of the per-round order (default: A's [experiment] seed)",
    )
    ab.add_argument(
        "--alpha",
        type=float,
        default=DEFAULT_ALPHA,
        help=f"1 - the intervals' confidence level (default {DEFAULT_ALPHA:g}: 99%% intervals)",
    )
    ab.add_argument(
        "--min-effect",
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help=f"override a metric's minimum effect (repeatable). Metrics: {min_effects_help()}",
    )
    ab.add_argument("--markdown", metavar="FILE", help="also write the Markdown (a PR comment)")
    ab.add_argument("--json", metavar="FILE", help="also write the JSON record (as ab.json)")
    ab.add_argument("--junit", metavar="FILE", help="write JUnit XML: one test case per metric")
    ab.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")


def run_ab(args: argparse.Namespace) -> int:
    from ..plan.shape import dataset_shape
    from ..spec.parse import load_spec
    from .record import write_record
    from .report import junit_xml, print_table, refusal, to_markdown, write_text

    alpha = _alpha(args.alpha)
    rules = rules_with(parse_min_effects(args.min_effect, RULES))
    for option, number in (("--rounds", args.rounds), ("--clients", args.clients)):
        if number is not None and number < (2 if option == "--rounds" else 1):
            raise SpecError(f"{option} {number} is too small (at least 2 rounds, 1 client)")
    if args.window is not None and not (math.isfinite(args.window) and args.window >= 0.1):
        raise SpecError(f"--window {args.window:g} must be at least 0.1 seconds")
    spec_a, spec_b = load_spec(args.a), load_spec(args.b)
    if spec_a.server.limits != spec_b.server.limits:  # one server runs both arms
        raise SpecError(
            f"[server] memory_limit / cpus differ between {args.a} and {args.b}; `pgvbench ab` "
            "runs both variants on one server. Give both files the same limits, or run each "
            "file with `pgvbench run` and compare the results."
        )
    pairing = pair_specs(
        spec_a, spec_b, rounds=args.rounds, window_s=args.window, clients=args.clients
    )
    out_dir = (
        args.output or Path("reports") / f"ab-{slug(pairing.a.label)}-vs-{slug(pairing.b.label)}"
    )
    check_writable_dir(out_dir, what="the A/B record", option="--output")
    extra = _extra_outputs(args)
    dataset_shape(spec_a)
    reporter = Reporter(enabled=not args.quiet)
    with reporter:
        record = _measure(args, pairing, alpha, rules, reporter)
    write_record(record, out_dir / "ab.json")
    markdown = to_markdown(record)
    write_text(out_dir / "ab.md", markdown)
    if "--json" in extra:
        write_record(record, extra["--json"])
    if "--markdown" in extra:
        write_text(extra["--markdown"], markdown)
    if "--junit" in extra:
        write_text(extra["--junit"], junit_xml(record))
    console = Console(stderr=False, highlight=False, width=max(120, Console().width))
    print_table(record, console)
    reporter.summary(f"written: {out_dir / 'ab.json'}  {out_dir / 'ab.md'}")
    if record.verdict == "invalid":
        raise RunFailed(refusal(record))
    return EXIT_REGRESSION if record.verdict == "regression" else EXIT_OK


def _measure(
    args: argparse.Namespace,
    pairing: Pairing,
    alpha: float,
    rules: dict[str, AbRule],
    reporter: Reporter,
) -> AbRecord:
    from ..datasets.prepared import prepare_data
    from ..server import cgroup
    from ..server.embedded import EmbeddedServer
    from ..server.external import check_dsn
    from ..server.handle import EmbeddedHandle, ExternalHandle
    from .measure import measure
    from .record import AbRecord
    from .verdict import judge_ratio, judge_recall

    spec = pairing.spec
    paths = paths_from_env()
    seed = args.seed if args.seed is not None else spec.seed
    server: EmbeddedServer | None = None
    if args.dsn is not None:
        if not args.dsn.strip():
            raise ConnectError("--dsn is empty; give a libpq URL or key=value string")
        if spec.server.limits is not None:
            raise SpecError(cgroup.dsn_refusal(args.a))
        check_dsn(args.dsn, schema=spec.schema, writes=True)
    else:
        forget_libpq_environment()
        cgroup.check_available(spec.server.limits)
        server = EmbeddedServer(
            data_dir=args.data_dir or paths.data_dir,
            lock_dir=paths.cache_dir / "locks",
            notify=reporter.log,
        )
        server.check_data_dir()
    data = prepare_data(spec, cache_dir=paths.groundtruth_dir, reporter=reporter)
    handle: ServerHandle
    if server is None:
        handle = ExternalHandle(args.dsn)
        measured = measure(pairing, handle, data, seed=seed, reporter=reporter)
    else:
        with (
            server.run_lock.hold(purpose="run an A/B comparison on"),
            cgroup.client_beside(spec.server.limits),
        ):
            started = server.ensure_started(owner="run", limits=spec.server.limits)
            try:
                measured = measure(
                    pairing, EmbeddedHandle(server), data, seed=seed, reporter=reporter
                )
            finally:
                if started:
                    server.stop()
    verdicts = []
    trials = measured.trials
    if trials is not None:
        for name, rule in rules.items():
            if name == "recall":
                verdicts.append(
                    judge_recall(
                        rule, measured.recall["A"], measured.recall["B"], alpha=alpha, seed=seed
                    )
                )
            else:
                verdicts.append(
                    judge_ratio(
                        rule,
                        trials.values("A", rule.field),
                        trials.values("B", rule.field),
                        alpha=alpha,
                    )
                )
    return AbRecord(
        created_at=now_iso(),
        variants=tuple(v.to_dict() for v in pairing.variants),
        seed=seed,
        rounds=pairing.rounds,
        window_s=pairing.window_s,
        clients=pairing.clients,
        alpha=alpha,
        min_effects={name: r.min_effect for name, r in rules.items()},
        environment=measured.environment,
        dataset=_dataset(data.info),
        server_settings=measured.server_settings,
        built=tuple(b.to_dict() for b in measured.built),
        plans=tuple(
            {"arm": p.arm, "problem": p.problem, "plan_text": p.plan_text} for p in measured.plans
        ),
        recall=measured.recall,
        recall_rule=spec.query.recall_rule.describe(),
        schedule=trials.schedule if trials else (),
        windows=trials.windows if trials else (),
        blocks_available=trials.blocks_available if trials else False,
        cpu_available=trials.cpu_available if trials else False,
        measured_s=trials.measured_s if trials else 0.0,
        wall_s=trials.wall_s if trials else 0.0,
        verdicts=tuple(verdicts),
        errors={
            arm: sum(w.errors for w in (trials.windows if trials else ()) if w.arm == arm)
            for arm in ARMS
        },
    )


def _dataset(info: DatasetInfo) -> dict[str, Any]:
    return dataclasses.asdict(info)


def _extra_outputs(args: argparse.Namespace) -> dict[str, Path]:
    return check_output_options(args, json_what="the JSON record")


def _alpha(value: float) -> float:
    if not 0.0 < value < 0.5:  # false for nan too
        raise ResultsError(
            f"--alpha {value:g} must be strictly between 0 and 0.5 (e.g. 0.01, the default: "
            "99% intervals)"
        )
    return value
