"""``pgvbench tune SPEC``: the spec's data and [tune] target, searched instead of listed.

It is ``pgvbench run`` with the spec narrowed to the tuner: the [[index]] list, [load]
and the other studies are left out (the tuner builds its own indexes), the command
line's target options replace the [tune] keys of the same name, and ``--resume``
continues the session kept in ``<out>/tune.db``. Everything else (the embedded server or
--dsn, the dataset sources, the checks before any work) is ``run``'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import SpecError

# command-line option -> [tune] key (the option overrides the key)
OVERRIDES = {
    "recall": "recall",
    "latency_ms": "latency_ms",
    "latency": "latency",
    "clients": "clients",
    "rate": "rate",
    "objective": "objective",
    "trials": "trials",
    "time_budget": "time_budget_s",
    "subsample": "subsample",
}
# tables `tune` does not run: the tuner builds and measures its own indexes
DROPPED = ("index", "load", "ab")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tune = sub.add_parser(
        "tune",
        help="search index kinds, build parameters and query knobs for a target",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Find the configuration that meets a target on the spec's data: "
        "recall@k's lower bound at least --recall, optionally the p99 (or p95) at most "
        "--latency-ms at --clients (or an arrival --rate), and the best objective (QPS, "
        "p99 or memory) among those.\n\n"
        "How: Optuna (TPE) proposes index builds (kind, m, ef_construction, lists, halfvec "
        "storage, build settings) from a space derived from the data; each build's query "
        "knob (ef_search or probes) is bisected to the smallest value meeting the recall "
        "bound, and latency is measured there. A build that misses the bound at the "
        "largest allowed knob, or breaks a budget, is abandoned at once. The winner is "
        "rebuilt and measured again, interleaved with the runner-up, before it is "
        "recommended.\n\n"
        "The spec needs [experiment], [dataset] and a [tune] table (workloads/tune.toml); "
        "[[index]], [load] and other study tables are ignored here. Outputs in --out: "
        "tune.md and tune.html (the answer and its evidence), apply.sql (CREATE INDEX "
        "CONCURRENTLY and the query setting, each with its evidence), postgresql.conf "
        "(server settings sized from what was measured), results.json, report.md/html and "
        "tune.db (the session, for --resume).\n\n"
        "Exit codes: 0 a configuration meets the target; 2 bad input, or no configuration "
        "in the space meets it (the message names the closest one); 1 a server fault; 130 "
        "Ctrl-C (the measured builds are kept: --resume continues).",
    )
    tune.add_argument(
        "spec", type=Path, help="a spec with a [tune] table, e.g. workloads/tune.toml"
    )
    tune.add_argument(
        "--resume",
        action="store_true",
        help="continue the session kept in <out>/tune.db (builds measured before are not "
        "rebuilt); without it, an existing session there is refused rather than replaced",
    )
    tune.add_argument("--recall", type=float, help="recall@k lower bound to reach ([tune] recall)")
    tune.add_argument(
        "--latency-ms",
        type=float,
        help="bound on the latency percentile, in ms ([tune] latency_ms; default: none)",
    )
    tune.add_argument(
        "--latency", choices=["p99", "p95"], help="which percentile --latency-ms bounds"
    )
    tune.add_argument(
        "--clients", type=int, help="concurrent clients the latency is measured at ([tune] clients)"
    )
    tune.add_argument(
        "--rate",
        type=float,
        help="measure latency in open loop at this many queries/s instead ([tune] rate)",
    )
    tune.add_argument(
        "--objective",
        choices=["qps", "p99", "memory"],
        help="what to optimise among configurations meeting the target ([tune] objective)",
    )
    tune.add_argument(
        "--trials", type=int, help="index builds the optimiser may propose ([tune] trials)"
    )
    tune.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="stop proposing builds after this much tuning time ([tune] time_budget_s)",
    )
    tune.add_argument(
        "--subsample",
        type=int,
        metavar="ROWS",
        help="explore on this many rows, then confirm the best at full size ([tune] subsample)",
    )
    tune.add_argument(
        "--dsn",
        help="tune on this PostgreSQL server instead of the embedded one; server settings "
        "then become recommendations only (postgresql.conf says so)",
    )
    tune.add_argument("--out", type=Path, help="output directory (default: reports/<run name>)")
    tune.add_argument(
        "--data-dir",
        type=Path,
        help="embedded server data directory (default: per-user cache dir)",
    )
    tune.add_argument(
        "--fresh",
        action="store_true",
        help="re-create the embedded server's data directory first (only one pgvbench made)",
    )
    tune.add_argument(
        "--keep-server", action="store_true", help="leave the embedded server running after"
    )
    tune.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    tune.set_defaults(no_report=False)


def tune_data(args: argparse.Namespace) -> dict[str, Any]:
    """The spec file's tables, narrowed to the tuner, with the command line's overrides."""
    from .spec.parse import load_spec  # the file's own errors first, exactly as `run`

    load_spec(args.spec)
    data = tomllib.loads(args.spec.read_text(encoding="utf-8"))
    if "tune" not in data:
        raise SpecError(
            f"{args.spec}: no [tune] table; add one with the target, e.g.\n"
            "  [tune]\n  recall = 0.95\n  latency_ms = 10\n  clients = 4\n"
            "(workloads/tune.toml is a complete example)"
        )
    from .studies.registry import REGISTRY

    others = {s.name for s in REGISTRY if s.name != "tune"}
    narrowed = {k: v for k, v in data.items() if k not in DROPPED and k not in others}
    table = dict(narrowed["tune"]) if isinstance(narrowed["tune"], Mapping) else {}
    for option, key in OVERRIDES.items():
        value = getattr(args, option, None)
        if value is not None:
            table[key] = value
    narrowed["tune"] = table
    return narrowed


def tune_spec(args: argparse.Namespace) -> Any:
    """The ExperimentSpec `tune` runs (errors name the file and key; option values are
    checked as the [tune] keys they set)."""
    from .spec.parse import parse_spec

    spec = parse_spec(tune_data(args), source=args.spec)
    entries = tuple(
        dataclasses.replace(e, spec=dataclasses.replace(e.spec, resume=bool(args.resume)))
        if e.name == "tune" and e.spec is not None
        else e
        for e in spec.studies
    )
    return dataclasses.replace(spec, studies=type(spec.studies)(entries))


def check_storage(out_dir: Path, *, resume: bool) -> None:
    """A new session never replaces a kept one; --resume needs one to continue."""
    from .studies.tune.search import UNREADABLE, held_message, storage_trials
    from .studies.tune.session import storage_path

    path = storage_path(out_dir)
    held = storage_trials(path)
    if held == UNREADABLE:
        raise SpecError(
            f"{path} exists but is not a tuning session pgvbench can read (not an Optuna "
            "SQLite storage); it was left as it is. Move it away or choose another --out."
        )
    if resume and not held:
        raise SpecError(
            f"--resume: {path} holds no tuning session to continue; run without --resume "
            "to start one (or give the --out of the interrupted session)."
        )
    if not resume and held:
        raise SpecError(held_message(path))
