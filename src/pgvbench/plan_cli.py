"""``pgvbench plan SPEC --target-rows N``: the spec's dataset family measured at several sizes,
each cost fitted against rows, and the answers at the target size.

It is ``pgvbench run`` with the spec narrowed to the capacity study: [[index]], [load] and
the other studies are left out (the sweep builds its own index at every level), a missing
[capacity] table is taken with its defaults, the command line's options replace the
[capacity] keys of the same name, and a synthetic dataset's ``n`` becomes the largest
level (every level is the first n rows of it). Everything else (the embedded server or
--dsn, the dataset sources, the checks before any work) is ``run``'s.
"""

from __future__ import annotations

import argparse
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import SpecError

# command-line option -> [capacity] key (the option overrides the key)
OVERRIDES = {
    "target_rows": "target_rows",
    "target_dim": "target_dim",
    "target_qps": "target_qps",
    "p99_ms": "p99_ms",
    "levels": "levels",
    "clients": "clients",
    "recall": "recall",
    "jobs": "jobs",
}
# tables `plan` does not run: the sweep builds and measures its own indexes
DROPPED = ("index", "load", "ab")
_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}
_COUNT_RE = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*([kmgb]?)\s*$", re.I)


def count(text: str) -> int:
    """A row count as a user types it: 10000000, 10_000_000, 1e7, 10M, 200k."""
    match = _COUNT_RE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a row count (e.g. 10000000, 1e7, 10M)")
    value = float(match.group(1).replace("_", "")) * _SUFFIXES.get(match.group(2).lower(), 1)
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole, positive row count")
    return int(value)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser(
        "plan",
        help="measure at several data sizes and answer for a target size (RAM, build, "
        "disk, restore, cores)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Capacity planning: the spec's dataset at several sizes (the first n "
        "rows of it, n = each level), and at each: load time, index build time (per phase) "
        "and size, heap size, whether the HNSW graph fitted maintenance_work_mem, recall at a "
        "fixed ef_search/probes, the smallest ef_search/probes whose recall lower bound meets "
        "the target, QPS and p99 at --clients, and (backup = true) the time of pg_basebackup, "
        "pg_dump -Fd -j N and pg_restore -j N (which rebuilds the index).\n\n"
        "Each quantity is fitted against rows (build time: n log n or a power law; sizes: "
        "linear; the knob and QPS per core: log or power law). The largest level is held "
        "out, predicted from the others, and that error is printed beside every "
        "extrapolation; beyond 100x the largest level the answers say how uncertain they "
        "are. At --target-rows (and --target-dim) the answers are: RAM and shared_buffers to "
        "keep index + heap resident, the maintenance_work_mem a build needs, build time, "
        "disk, restore time, the ef_search/probes for the recall target and, with "
        "--target-qps, the server cores (or servers) for that throughput.\n\n"
        "The spec needs [experiment] and [dataset]; a [capacity] table sets the levels, the "
        "index (m, ef_construction, kinds), the recall target and backups (defaults when "
        "absent; workloads/capacity.toml is an example). A synthetic dataset's n is set to "
        "the largest level; a file dataset must hold at least that many rows. [[index]], "
        "[load] and other study tables are ignored here. Outputs in --out: plan.md and "
        "plan.html (the answers and their evidence), capacity_<kind>.png, results.json and "
        "report.md/html.\n\n"
        "Exit codes: 0 done; 2 bad input (the spec, an option, a dataset too small for the "
        "levels), nothing changed; 1 a server fault (partial results kept: every finished "
        "level); 130 Ctrl-C (the same, and every table, scratch database, backup directory "
        "and tool process pgvbench started is removed or stopped).",
    )
    plan.add_argument("spec", type=Path, help="a spec with [experiment] and [dataset]")
    plan.add_argument(
        "--target-rows",
        type=count,
        metavar="N",
        help="the data size to answer for, e.g. 10000000, 1e7 or 10M ([capacity] target_rows; "
        "required unless the spec sets it)",
    )
    plan.add_argument(
        "--target-dim",
        type=int,
        metavar="D",
        help="the dimension at the target ([capacity] target_dim; default: the data's). "
        "Sizes are carried to it by bytes per dimension; times stay measured ones",
    )
    plan.add_argument(
        "--target-qps",
        type=float,
        metavar="QPS",
        help="queries per second to serve at the target: answers the cores or servers "
        "([capacity] target_qps)",
    )
    plan.add_argument(
        "--p99-ms",
        type=float,
        metavar="MS",
        help="the p99 bound at --target-qps, in ms ([capacity] p99_ms)",
    )
    plan.add_argument(
        "--levels",
        type=count,
        nargs="+",
        metavar="N",
        help="the data sizes to measure, at least 3, e.g. --levels 25k 50k 100k 200k "
        "([capacity] levels; the largest is held out to check the fits)",
    )
    plan.add_argument(
        "--clients", type=int, help="concurrent clients QPS and p99 are measured at ([capacity] "
        "clients)",
    )  # fmt: skip
    plan.add_argument(
        "--recall", type=float, help="recall@k lower bound the knob must reach ([capacity] recall)"
    )
    plan.add_argument(
        "--jobs", type=int, help="pg_dump -j / pg_restore -j when backups are timed ([capacity] "
        "jobs)",
    )  # fmt: skip
    plan.add_argument(
        "--dsn",
        help="measure on this PostgreSQL server instead of the embedded one (libpq URL or "
        "key=value string); backups are then not timed, and RAM and cores are unknown",
    )
    plan.add_argument("--out", type=Path, help="output directory (default: reports/<run name>)")
    plan.add_argument(
        "--data-dir",
        type=Path,
        help="embedded server data directory (default: per-user cache dir)",
    )
    plan.add_argument(
        "--fresh",
        action="store_true",
        help="re-create the embedded server's data directory first (only one pgvbench made)",
    )
    plan.add_argument(
        "--keep-server", action="store_true", help="leave the embedded server running after"
    )
    plan.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    plan.set_defaults(no_report=False)


def plan_data(args: argparse.Namespace) -> dict[str, Any]:
    """The spec file's tables, narrowed to the capacity study, with the command line's
    overrides and a synthetic dataset sized to the largest level."""
    from .spec.parse import load_spec  # the file's own errors first, exactly as `run`

    try:
        data = tomllib.loads(args.spec.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        load_spec(args.spec)  # raises the message `run` gives for the same file
        raise
    from .studies.registry import REGISTRY

    others = {s.name for s in REGISTRY if s.name != "capacity"}
    narrowed = {k: v for k, v in data.items() if k not in DROPPED and k not in others}
    raw = narrowed.get("capacity", {})
    table = dict(raw) if isinstance(raw, Mapping) else raw
    if isinstance(table, dict):
        for option, key in OVERRIDES.items():
            value = getattr(args, option, None)
            if value is not None:
                table[key] = list(value) if isinstance(value, list) else value
        if "target_rows" not in table:
            raise SpecError(
                f"{args.spec}: no target to plan for: give --target-rows N (e.g. 10M), or "
                "target_rows in the spec's [capacity] table"
            )
        _size_synthetic(narrowed, table)
    narrowed["capacity"] = table
    return narrowed


def _size_synthetic(data: dict[str, Any], capacity: Mapping[str, Any]) -> None:
    """A synthetic dataset gets exactly the rows of the largest level (fewer would fail
    the levels, more would load rows no level uses)."""
    from .studies.capacity.spec import DEFAULT_LEVELS

    dataset = data.get("dataset")
    levels = capacity.get("levels", list(DEFAULT_LEVELS))
    if not isinstance(dataset, Mapping) or dataset.get("source") != "synthetic":
        return
    if isinstance(levels, list) and levels and all(isinstance(v, int) for v in levels):
        data["dataset"] = {**dataset, "n": max(levels)}


def plan_spec(args: argparse.Namespace) -> Any:
    """The ExperimentSpec `plan` runs (errors name the file and key; option values are
    checked as the [capacity] keys they set)."""
    from .spec.parse import parse_spec

    return parse_spec(plan_data(args), source=args.spec)
