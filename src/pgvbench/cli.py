"""Command line: ``pgvbench run|tune|plan|report|validate|server|compare|baseline|merge|ab|twin``.

Exit codes: 0 success; 1 a run failed, the server failed or crashed (partial results
written), or ``compare`` found a regression; 2 bad usage or input, nothing changed (spec,
dataset, DSN, privileges, paths, results files); 130 Ctrl-C; 143 SIGTERM; 129 SIGHUP.
docs/errors.md lists every failure class. This module parses, runs the checks that need
no work, and maps errors to one paragraph; the root-cause diagnosis is in diagnosis.py.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

import psycopg

from . import export_cli, plan_cli, tune_cli, twin_cli
from .ab import cli as ab_cli
from .compare import cli as compare_cli
from .config import debug_from_env, forget_libpq_environment, paths_from_env
from .diagnosis import crash_diagnosis, external_diagnosis, first_line
from .errors import (
    ConnectError,
    PgvbenchError,
    SafetyError,
    SpecError,
    Terminated,
)
from .progress import Reporter
from .results import load_results
from .server import cgroup
from .server.cluster import find_cluster
from .server.embedded import EmbeddedServer
from .server.external import check_dsn, session_settings
from .server.handle import EmbeddedHandle, ExternalHandle, ServerHandle
from .server.replicas import ReplicaSet
from .server.runlock import RunLock
from .server.watchdog import PostmasterWatch
from .spec.model import ExperimentSpec

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _path(text: str) -> Path:
    # Path("") is Path("."): an empty --out or --data-dir would silently mean "here"
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; name a directory")
    return Path(text)


def _recall_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a recall: give a value in (0, 1]")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgvbench",
        description="Benchmark and tune PostgreSQL vector workloads (pgvector): IVFFlat vs "
        "HNSW, their parameters, and the server settings around them.",
        epilog="Environment: PGVBENCH_CACHE_DIR (ground truth cache, lock files), "
        "PGVBENCH_DATA_DIR (embedded server data directory), PGVBENCH_DEBUG=1 (tracebacks). "
        "Exit codes: 0 ok; 1 a run failed, the server failed or crashed, or compare found a "
        "regression; 2 bad usage or input (nothing was changed); 130 Ctrl-C; 143 SIGTERM; 129 "
        "SIGHUP. "
        "See docs/errors.md.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the Python traceback behind an error (also: PGVBENCH_DEBUG=1)",
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
    run.add_argument("--out", type=_path, help="output directory (default: reports/<run name>)")
    run.add_argument(
        "--fresh",
        action="store_true",
        help="re-create the embedded server's data directory before the run (only a "
        "directory pgvbench created, i.e. one holding its .pgvbench-owned marker)",
    )
    run.add_argument(
        "--keep-server",
        action="store_true",
        help="leave the embedded server running after the run (see `server url`)",
    )
    run.add_argument(
        "--data-dir",
        type=_path,
        help="embedded server data directory (default: per-user cache dir). A path that "
        "does not exist yet, or one pgvbench created earlier; one run per data directory "
        "at a time (a second run is refused with exit 2)",
    )
    run.add_argument(
        "--no-report",
        action="store_true",
        help="write results.json only; render later with `pgvbench report`",
    )
    run.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress output on stderr (the final summary still goes to stdout)",
    )

    report = sub.add_parser(
        "report",
        help="re-render a report from a results.json",
        description="Render report.md, report.html and charts from a "
        "results file alone (e.g. one produced by CI).",
    )
    report.add_argument("results", type=Path, help="path to a results.json")
    report.add_argument("--out", type=_path, help="output directory (default: beside the file)")
    report.add_argument(
        "--target-recall",
        type=_recall_fraction,
        help="recall the recommendation must reach, above 0 and at most 1 (default: the "
        "spec's, 0.95)",
    )

    validate = sub.add_parser("validate", help="check a spec without running it")
    validate.add_argument("spec", type=Path)
    validate.add_argument(
        "--dsn",
        help='with [dataset] source = "table": also check the table on this server (the '
        "catalog and one row: nothing is written) and plan with its estimated row count and "
        "dimension",
    )

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
    server.add_argument("--data-dir", type=_path, help="data directory (default: per-user cache)")
    server.add_argument(
        "--fresh", action="store_true", help="with start: re-create the data directory"
    )
    compare_cli.add_parsers(sub)
    ab_cli.add_parser(sub)
    twin_cli.add_parser(sub)
    tune_cli.add_parser(sub)
    plan_cli.add_parser(sub)
    export_cli.add_parser(sub)
    _debug_everywhere(sub)
    return parser


def _debug_everywhere(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """--debug after the subcommand too (`pgvbench run x.toml --debug`); SUPPRESS keeps a
    subcommand from resetting a --debug given before it."""
    for command in sub.choices.values():
        command.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _debug_everywhere(action)


def _terminate_on_sigterm(signum: int, frame: object) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    debug = bool(args.debug) or debug_from_env()
    if threading.current_thread() is not threading.main_thread():
        return _dispatch(args, debug=debug)
    # Ctrl-C and `kill` both end a run the same way: partial results written, servers
    # pgvbench started stopped. (SIGINT may arrive ignored from a non-interactive shell.)
    if not debug:  # psycopg's "error ignored terminating ..." would break the paragraph
        logging.getLogger("psycopg").setLevel(logging.ERROR)
    # A crash inside a C library (libpq, OpenMP) would otherwise end the process with
    # nothing on stderr but the shell's "Segmentation fault": print every thread's stack.
    if not faulthandler.is_enabled():
        faulthandler.enable()
    ending = (signal.SIGTERM, signal.SIGHUP)  # kill, or the terminal/SSH session closing
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, *ending)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in ending:
        signal.signal(sig, _terminate_on_sigterm)
    try:
        return _dispatch(args, debug=debug)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _dispatch(args: argparse.Namespace, *, debug: bool) -> int:
    """Run one command; every failure ends in one paragraph on stderr and an exit code."""
    try:
        return _command(args)
    except PgvbenchError as exc:
        return _fail(str(exc), exc.exit_code, debug=debug)
    except Terminated as exc:
        _debug_traceback(debug)
        print(
            f"pgvbench: terminated ({exc.name}); partial results (if any) were written",
            file=sys.stderr,
        )
        return 128 + exc.signum
    except KeyboardInterrupt:
        _debug_traceback(debug)
        print("pgvbench: interrupted; partial results (if any) were written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except psycopg.errors.QueryCanceled as exc:
        return _fail(
            f"the server cancelled a statement ({first_line(exc)}): a statement_timeout set "
            "on the server, the role, the database, in [server.settings] or in the DSN's "
            "options is shorter than this step needs; raise it ([query] statement_timeout_ms "
            "bounds the measured queries only). Partial results (if any) were written.",
            EXIT_FAILED,
            debug=debug,
        )
    except psycopg.OperationalError as exc:
        return _fail(
            f"the connection to the server failed: {first_line(exc)}. The server may have "
            "stopped or restarted, or the network dropped; partial results (if any) were "
            "written.",
            EXIT_FAILED,
            debug=debug,
        )
    except psycopg.Error as exc:
        state = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        return _fail(
            f"the server refused a statement{state}: {first_line(exc)}. Partial results "
            "(if any) were written.",
            EXIT_FAILED,
            debug=debug,
        )
    except MemoryError:
        return _fail(
            "pgvbench ran out of memory (the dataset, its ground truth or the results did not "
            "fit). Lower [dataset] n, dim or queries, or run on a larger machine; partial "
            "results (if any) were written.",
            EXIT_FAILED,
            debug=debug,
        )
    except BrokenPipeError:
        # the reader of our stdout went away (`pgvbench validate x | head -1`): nothing
        # went wrong here, so no message; stdout goes to devnull so the interpreter's own
        # flush at exit cannot fail again (the Python docs' recipe for SIGPIPE)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(
            f"an operating-system error stopped pgvbench{where}: {exc.strerror or exc}. "
            "Check free disk space and permissions; partial results (if any) were written.",
            EXIT_FAILED,
            debug=debug,
        )
    except Exception as exc:
        return _fail(
            f"internal error ({type(exc).__name__}: {first_line(exc)}). This is a bug in "
            "pgvbench; re-run with --debug (or PGVBENCH_DEBUG=1) for the traceback and "
            "report it.",
            EXIT_FAILED,
            debug=debug,
        )


def _command(args: argparse.Namespace) -> int:
    if args.command in ("run", "tune", "plan"):
        return _cmd_run(args)
    if args.command == "report":
        return _cmd_report(args)
    if args.command == "compare":
        return compare_cli.run_compare(args)
    if args.command == "baseline":
        return compare_cli.run_baseline(args)
    if args.command == "merge":
        return compare_cli.run_merge(args)
    if args.command == "ab":
        return ab_cli.run_ab(args)
    if args.command == "twin":
        return twin_cli.run_twin(args)
    if args.command == "export":
        return export_cli.run_export(args)
    if args.command == "validate":
        from .plan.count import format_plan, validate

        plan = validate(args.spec, dsn=args.dsn)  # spec + dataset headers; counts, estimate
        print("\n".join(format_plan(plan)))
        for warning in plan.warnings:
            print(f"pgvbench: warning: {warning}", file=sys.stderr)
        return EXIT_OK
    return _cmd_server(args)


def _fail(message: str, code: int, *, debug: bool) -> int:
    _debug_traceback(debug)
    print(f"pgvbench: error: {_one_paragraph(message)}", file=sys.stderr)
    return code


def _debug_traceback(debug: bool) -> None:
    if debug:
        traceback.print_exc(file=sys.stderr)


def _one_paragraph(message: str) -> str:
    # Log tails and quoted files may hold blank lines: the error stays one paragraph.
    return "\n".join(line for line in message.strip().splitlines() if line.strip())


def _check_cache_dir() -> None:
    from ._outputs import check_writable_dir

    check_writable_dir(
        paths_from_env().cache_dir,
        what="pgvbench's cache (ground truth, lock files)",
        option="PGVBENCH_CACHE_DIR",
    )


def _embedded_server(args: argparse.Namespace, reporter: Reporter | None = None) -> EmbeddedServer:
    paths = paths_from_env()
    notify = reporter.log if reporter is not None else None
    return EmbeddedServer(
        data_dir=args.data_dir or paths.data_dir,
        lock_dir=paths.cache_dir / "locks",
        notify=notify,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from ._outputs import check_writable_dir
    from .plan.shape import dataset_shape

    # Every check that needs no work comes first: spec, output directory, the DSN or the
    # data directory and its lock. A mistake there changes nothing and writes nothing.
    from .spec.parse import load_spec  # every study's parser: only for commands with a spec

    tuning = args.command == "tune"
    if args.command == "plan":  # the spec narrowed to [capacity], the options applied
        spec = plan_cli.plan_spec(args)
    else:
        spec = tune_cli.tune_spec(args) if tuning else load_spec(args.spec)
    dataset_shape(spec)  # dataset file headers: a bad file fails before the server or DSN
    out_dir = args.out or Path("reports") / spec.name
    check_writable_dir(out_dir, what="the results", option="--out")
    if "tune" in spec.study_specs:  # a kept session is continued on request, never replaced
        tune_cli.check_storage(out_dir, resume=tuning and args.resume)
    _check_cache_dir()
    reporter = Reporter(enabled=not args.quiet)
    # Two runs writing one output directory would leave one's results under the other's
    # name: the directory is held for the run like a data directory.
    out_lock = RunLock(
        lock_dir=paths_from_env().cache_dir / "locks",
        data_dir=out_dir.resolve(),
        using="is writing its results to",
        kind="out",
    )
    server: EmbeddedServer | None = None
    if args.dsn is not None:
        if not args.dsn.strip():
            raise ConnectError(
                "--dsn is empty; give a libpq URL or key=value string, e.g. "
                "'postgresql://bench@db.example.com:5432/bench', or leave --dsn out to use "
                "the embedded server."
            )
        # agent specs of [[operation]]s alone may only read: a standby is fine for them
        writes = spec.kind != "agents" or (spec.agents is not None and spec.agents.data is not None)
        if spec.server.limits is not None:
            raise SpecError(cgroup.dsn_refusal(args.spec))
        if spec.server.replicas:  # a multi-host DSN: its primary, and standbys to read from
            cluster = find_cluster(args.dsn, standbys=spec.server.replicas)
            args.dsn, args.replica_dsns = cluster.primary, cluster.standbys
        check_dsn(args.dsn, schema=spec.schema, writes=writes)
        # every settings table, before any work: a refused value is the spec's mistake
        for where, settings in _settings_tables(spec):
            session_settings(args.dsn, settings, source=f"{args.spec}: {where}")
    else:
        forget_libpq_environment()
        cgroup.check_available(spec.server.limits)  # [server] memory_limit / cpus
        server = _embedded_server(args, reporter)
        server.check_data_dir(fresh=args.fresh)
        if _inside(out_dir, server.data_dir):
            raise SafetyError(
                f"--out {out_dir} is inside the embedded server's data directory "
                f"{server.data_dir}, where --fresh would delete the results with the server; "
                "choose an output directory outside it."
            )
    with out_lock.hold(purpose="write into"):
        if server is None:
            return _run_with(args, spec, out_dir, reporter, server)
        limits = spec.server.limits
        with server.run_lock.hold(purpose="run a benchmark on"), cgroup.client_beside(limits):
            return _run_with(args, spec, out_dir, reporter, server)


def _settings_tables(spec: ExperimentSpec) -> list[tuple[str, dict[str, str]]]:
    """[server.settings], then each [[server.sweep]] entry on top of it."""
    base = dict(spec.server.settings)
    tables = [("[server.settings]", base)]
    for i, config in enumerate(spec.server.sweep, start=1):
        tables.append((f"[[server.sweep]] #{i} ({config.label})", {**base, **config.settings}))
    return tables


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError):
        return False


def _run_with(
    args: argparse.Namespace,
    spec: ExperimentSpec,
    out_dir: Path,
    reporter: Reporter,
    server: EmbeddedServer | None,
) -> int:
    # imported here: the runners and the report pull in numpy, faiss and matplotlib, which
    # `pgvbench validate`, `server` and `--help` do not need (and signals during start-up)

    # imported here: the runners and the report pull in numpy, faiss and matplotlib, which
    # `pgvbench validate`, `server` and `--help` do not need
    from .report.render import render_report
    from .runner import AgentRunner, Runner, VectorRunner

    paths = paths_from_env()
    started = False
    watch: PostmasterWatch | None = None
    replicas: ReplicaSet | None = None
    runner: Runner
    if spec.kind == "agents":
        runner = AgentRunner(spec, out_dir=out_dir, reporter=reporter)
    else:
        runner = VectorRunner(
            spec, out_dir=out_dir, cache_dir=paths.groundtruth_dir, reporter=reporter
        )
    failed: BaseException | None = None
    results = None
    with reporter:
        # Bad input (dataset files, k) fails here, before a server starts or a file is written.
        runner.prepare()
        # a GRANT missing mid-run: exit 2 naming it; a server gone mid-run: exit 1
        runner.diagnose = external_diagnosis(runner)
        try:
            handle: ServerHandle
            if server is None:
                handle = ExternalHandle(args.dsn, replicas=getattr(args, "replica_dsns", ()))
            else:
                reporter.log(f"embedded server: {server.data_dir}")
                # the diagnosis first: the server may die while it is being prepared
                watch = PostmasterWatch(server)
                runner.diagnose = crash_diagnosis(server, watch, runner, reporter)
                started = server.ensure_started(
                    fresh=args.fresh, owner="run", limits=spec.server.limits
                )
                watch.__enter__()
                replicas = ReplicaSet(server, count=spec.server.replicas, notify=reporter.log)
                replicas.clean_leftovers()  # standbys a killed run left: stopped, removed
                handle = EmbeddedHandle(server, replicas=replicas)
            results = runner.run(handle)
        except BaseException as exc:  # report what was measured, then re-raise
            results = runner.results
            diagnose = runner.diagnose
            # a crash before the runner recorded anything (server start, settings) is
            # diagnosed here; once it has, it raised the root cause itself
            before = results is None and diagnose is not None
            failed = (diagnose(exc) if diagnose is not None and before else None) or exc
        finally:
            if watch is not None:
                watch.stop()
            try:
                if replicas is not None:  # the run's own, even with --keep-server
                    replicas.stop()
            finally:  # the server stops even when the standbys' clean-up fails
                if server is not None and started:
                    if args.keep_server:
                        server.hand_over()
                    else:
                        server.stop()
    if runner.saved and results is not None:
        if not args.no_report:
            files = render_report(results, out_dir)
            reporter.summary(f"report: {files.md}  {files.html}")
        reporter.summary(f"results: {runner.results_path} ({results.status})")
    if failed is not None:
        raise failed
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from ._outputs import check_writable_dir

    results = load_results(args.results)
    out_dir = args.out or args.results.parent
    check_writable_dir(out_dir, what="the report", option="--out")
    from .report.render import render_report  # matplotlib: only when a report is written

    files = render_report(results, out_dir, target_recall=args.target_recall)
    print(f"wrote {files.md} and {files.html}")
    return EXIT_OK


def _cmd_server(args: argparse.Namespace) -> int:
    forget_libpq_environment()
    if args.fresh and args.action != "start":
        raise PgvbenchError(f"--fresh goes with `server start` only, not `server {args.action}`.")
    if args.action in ("start", "stop"):
        _check_cache_dir()  # where the lock files go
    server = _embedded_server(args)
    if args.action == "start":
        server.check_data_dir(fresh=args.fresh)
        if args.fresh:  # re-creating the directory must not pull it from under a run
            with server.run_lock.hold(purpose="re-create"):
                started = server.ensure_started(fresh=True)
        else:
            started = server.ensure_started()
        print(f"{'started' if started else 'already running'}: {server.url()}")
    elif args.action == "stop":
        with server.run_lock.hold(purpose="stop"):
            ReplicaSet(server, count=0).clean_leftovers()  # a killed run's standbys
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
                "pgvbench: error: the embedded server is not running; start it with "
                "`pgvbench server start`",
                file=sys.stderr,
            )
            return EXIT_USAGE
        print(server.url())
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    from ._leave import leave

    sys.exit(leave(main()))
