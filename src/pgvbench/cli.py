"""Command line: ``pgvbench run|report|validate|server|compare|baseline|merge``.

Exit codes: 0 success; 1 a run failed or was cut short (partial results written), or
``compare`` found a regression; 2 bad usage or input (spec, dataset, DSN, results file,
results that cannot be compared); 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .compare import cli as compare_cli
from .config import paths_from_env
from .errors import PgvbenchError
from .progress import Reporter
from .results import ServerSettingsInfo, load_results
from .server.connection import Target
from .server.embedded import EmbeddedServer
from .server.external import session_settings
from .spec import ExperimentSpec, SweepConfig, load_spec

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgvbench",
        description="Benchmark and tune PostgreSQL vector workloads (pgvector): IVFFlat vs "
        "HNSW, their parameters, and the server settings around them.",
        epilog="Environment: PGVBENCH_CACHE_DIR (ground truth cache), PGVBENCH_DATA_DIR "
        "(embedded server data directory).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run an experiment spec and write results + report",
        description="Run a workload spec (TOML) end to end: dataset, ground truth, load, "
        "index builds, parameter sweeps; writes results.json, report.md, report.html and "
        "charts under the output directory.",
    )
    run.add_argument("spec", type=Path, help="experiment spec, e.g. workloads/quickstart.toml")
    run.add_argument(
        "--dsn",
        help="run against this PostgreSQL server instead of the embedded "
        "one (libpq URL or key=value string); only session-level settings of "
        "[server.settings] are applied there, the server is never restarted",
    )
    run.add_argument("--out", type=Path, help="output directory (default: reports/<run name>)")
    run.add_argument(
        "--fresh",
        action="store_true",
        help="re-create the embedded server's data directory before the run",
    )
    run.add_argument(
        "--keep-server",
        action="store_true",
        help="leave the embedded server running after the run (see `server url`)",
    )
    run.add_argument(
        "--data-dir", type=Path, help="embedded server data directory (default: per-user cache dir)"
    )
    run.add_argument(
        "--no-report",
        action="store_true",
        help="write results.json only; render later with `pgvbench report`",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    report = sub.add_parser(
        "report",
        help="re-render a report from a results.json",
        description="Render report.md, report.html and charts from a "
        "results file alone (e.g. one produced by CI).",
    )
    report.add_argument("results", type=Path, help="path to a results.json")
    report.add_argument("--out", type=Path, help="output directory (default: beside the file)")
    report.add_argument(
        "--target-recall",
        type=float,
        help="recall the recommendation must reach (default: the spec's, 0.95)",
    )

    validate = sub.add_parser("validate", help="check a spec without running it")
    validate.add_argument("spec", type=Path)

    server = sub.add_parser(
        "server",
        help="manage the embedded PostgreSQL server",
        description="Start, stop or inspect the embedded server, e.g. to "
        'look at a run\'s tables with psql: psql "$(pgvbench server url)"',
    )
    server.add_argument(
        "action",
        choices=["start", "stop", "status", "url"],
        help="start: init if needed and start; stop; status; url: print a connection URL",
    )
    server.add_argument("--data-dir", type=Path, help="data directory (default: per-user cache)")
    server.add_argument(
        "--fresh", action="store_true", help="with start: re-create the data directory"
    )
    compare_cli.add_parsers(sub)
    return parser


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if threading.current_thread() is not threading.main_thread():
        return _dispatch(args)
    # Ctrl-C and `kill` both end a run the same way: partial results written, servers
    # pgvbench started stopped. (SIGINT may arrive ignored from a non-interactive shell.)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    try:
        return _dispatch(args)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "compare":
            return compare_cli.run_compare(args)
        if args.command == "baseline":
            return compare_cli.run_baseline(args)
        if args.command == "merge":
            return compare_cli.run_merge(args)
        if args.command == "validate":
            from .plan import format_plan, validate

            plan = validate(args.spec)  # spec + dataset headers; counts and a time estimate
            print("\n".join(format_plan(plan)))
            for warning in plan.warnings:
                print(f"pgvbench: warning: {warning}", file=sys.stderr)
            return EXIT_OK
        return _cmd_server(args)
    except PgvbenchError as exc:
        print(f"pgvbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pgvbench: interrupted; partial results (if any) were written", file=sys.stderr)
        return EXIT_INTERRUPTED


def _cmd_run(args: argparse.Namespace) -> int:
    from .agent_runner import AgentRunner
    from .report.render import render_report
    from .runner import ExperimentRunner

    spec = load_spec(args.spec)
    paths = paths_from_env()
    out_dir = args.out or Path("reports") / spec.name
    reporter = Reporter(enabled=not args.quiet)
    server: EmbeddedServer | None = None
    started = False
    settings_info: ServerSettingsInfo
    runner: ExperimentRunner | AgentRunner
    if spec.kind == "agents":
        runner = AgentRunner(spec, out_dir=out_dir, reporter=reporter)
    else:
        runner = ExperimentRunner(
            spec, out_dir=out_dir, cache_dir=paths.groundtruth_dir, reporter=reporter
        )
    failed: BaseException | None = None
    results = None
    with reporter:
        # Bad input (dataset files, k) fails here, before a server starts or a file is written.
        data = runner.prepare()
        try:
            if args.dsn:
                dsn, settings_info = session_settings(args.dsn, spec.server.settings)
                target = Target(dsn=dsn, kind="external")
            else:
                server = EmbeddedServer(data_dir=args.data_dir or paths.data_dir)
                reporter.log(f"embedded server: {server.data_dir}")
                started = server.ensure_started(fresh=args.fresh)
                applied = server.apply_settings(spec.server.settings, source=str(args.spec))
                settings_info = ServerSettingsInfo(
                    requested=dict(spec.server.settings),
                    in_effect=applied.in_effect,
                    not_applied=applied.not_applied,
                    restarted=applied.restarted,
                    method="ALTER SYSTEM",
                )
                target = Target(
                    dsn=server.dsn(),
                    kind="embedded",
                    bin_dir=server.bin_dir,
                    postmaster_pid=server.postmaster_pid(),
                )
            for name, why in settings_info.not_applied.items():
                reporter.log(f"[yellow]setting {name} not applied: {why}[/yellow]")
            runner.server_settings = settings_info
            if isinstance(runner, ExperimentRunner):
                runner.server = server
            if isinstance(runner, ExperimentRunner) and spec.server.sweep:
                runner.configure = _configurator(spec, server, args.dsn)
            try:
                if isinstance(runner, AgentRunner):
                    results = runner.run(target)
                else:
                    assert data is not None
                    results = runner.run(target, data)
            except BaseException as exc:  # report what was measured, then re-raise
                failed = exc
                results = runner.results
        finally:
            if server is not None and started and not args.keep_server:
                server.stop()
    if runner.saved and results is not None:
        if not args.no_report:
            files = render_report(results, out_dir)
            reporter.log(f"report: {files.md}  {files.html}")
        reporter.log(f"results: {runner.results_path} ({results.status})")
    if failed is not None:
        raise failed
    return EXIT_OK


def _configurator(
    spec: ExperimentSpec, server: EmbeddedServer | None, dsn: str | None
) -> Callable[[SweepConfig], tuple[Target, dict[str, Any]]]:
    """Applies one [[server.sweep]] entry on top of [server.settings], returning the target
    to use (the embedded server may have restarted) and what became of each setting."""

    def configure(config: SweepConfig) -> tuple[Target, dict[str, Any]]:
        wanted = {**spec.server.settings, **config.settings}
        if server is None:
            assert dsn is not None
            new_dsn, info = session_settings(dsn, wanted)
            return Target(dsn=new_dsn, kind="external"), {
                "requested": dict(config.settings),
                "in_effect": info.in_effect,
                "not_applied": info.not_applied,
                "restarted": False,
                "method": "session",
            }
        applied = server.apply_settings(wanted, source=str(spec.source_path))
        target = Target(
            dsn=server.dsn(),
            kind="embedded",
            bin_dir=server.bin_dir,
            postmaster_pid=server.postmaster_pid(),
        )
        return target, {
            "requested": dict(config.settings),
            "in_effect": applied.in_effect,
            "not_applied": applied.not_applied,
            "restarted": applied.restarted,
            "method": "ALTER SYSTEM",
        }

    return configure


def _cmd_report(args: argparse.Namespace) -> int:
    from ._outputs import check_writable_dir
    from .report.render import render_report

    results = load_results(args.results)
    out_dir = args.out or args.results.parent
    check_writable_dir(out_dir, what="the report", option="--out")
    files = render_report(results, out_dir, target_recall=args.target_recall)
    print(f"wrote {files.md} and {files.html}")
    return EXIT_OK


def _cmd_server(args: argparse.Namespace) -> int:
    server = EmbeddedServer(data_dir=args.data_dir or paths_from_env().data_dir)
    if args.action == "start":
        started = server.ensure_started(fresh=args.fresh)
        print(f"{'started' if started else 'already running'}: {server.url()}")
    elif args.action == "stop":
        print("stopped" if server.stop() else "not running")
    elif args.action == "status":
        running = server.is_running()
        print(f"data dir: {server.data_dir}")
        state = "running" if running else "stopped" if server.initialized else "not initialised"
        print(f"status:   {state}")
        if running:
            print(f"url:      {server.url()}")
            print(f"log:      {server.log_file}")
        return EXIT_OK if running else 3
    else:
        if not server.is_running():
            print(
                "pgvbench: the embedded server is not running; start it with "
                "`pgvbench server start`",
                file=sys.stderr,
            )
            return EXIT_USAGE
        print(server.url())
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
