"""Measure the regression gate's quality on this machine (issue 6's acceptance).

    python bench/gate_quality.py                # 20 comparisons of each kind, ~35 min
    python bench/gate_quality.py --comparisons 5 --out /tmp/gate-small

Runs ``workloads/regression.toml`` again and again on one embedded server, in the order
A1 S1 R1 A2 S2 R2 ... A(n+1), and compares with ``pgvbench compare`` (the CLI, exit codes
and all):

- A/A: A(i) vs A(i+1), same spec, fresh runs about a minute and a half apart. Any exit 1
  is a false regression.
- slowdown: A(i) vs S(i), where S ran with ``ALTER DATABASE ... SET hnsw.ef_search`` raised
  (the spec leaves ef_search to the server), so the HNSW point's latency grows by ~15-25%
  while nothing in the spec changes. Detected when an HNSW latency/QPS row regresses.
- recall drop: A(i) vs R(i), with hnsw.ef_search lowered so recall falls by ~0.02 or more.
  Detected when the HNSW recall row regresses.

A summary is printed and written to ``OUT/summary.json``; finished runs are reused when
the script is re-run with the same --out (so an interrupted measurement resumes).

``--ab`` measures ``pgvbench ab`` instead (issue 12): 20 comparisons A vs A and 20 A vs B,
alternating, on one embedded server; B costs ~10% QPS through a CPU-only [ab] sql wrapper
calibrated first (see docs/ci.md)::

    python bench/gate_quality.py --ab --out /tmp/pgvbench-gate-ab
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from pgvbench.server.embedded import DATABASE, EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--comparisons", type=int, default=20, help="of each kind (default 20)")
    parser.add_argument("--spec", type=Path, default=ROOT / "workloads" / "regression.toml")
    parser.add_argument("--out", type=Path, default=Path("/tmp/pgvbench-gate-quality"))
    parser.add_argument(
        "--slow-ef", type=int, default=60, help="hnsw.ef_search of the slow runs (base 40)"
    )
    parser.add_argument(
        "--recall-ef", type=int, default=20, help="hnsw.ef_search of the recall-drop runs"
    )
    parser.add_argument(
        "--analyze-only", action="store_true", help="judge the runs already in --out, run none"
    )
    parser.add_argument("--ab", action="store_true", help="measure `pgvbench ab` (gate_ab.py)")
    parser.add_argument("--rounds", type=int, default=96, help="--ab: rounds per comparison")
    parser.add_argument("--window", type=float, default=0.25, help="--ab: seconds per window")
    parser.add_argument(
        "--repeat", type=int, default=0, help="--ab: the md5 repeat count of B (0: calibrate)"
    )
    args = parser.parse_args()
    if args.ab:
        return _ab_bench(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    pgvbench = str(Path(sys.executable).with_name("pgvbench"))
    started = time.monotonic()
    n = args.comparisons
    if not args.analyze_only:
        _run_all(args, out, pgvbench, n)
    return _analyze(args, out, pgvbench, n, started)


def _run_all(args: argparse.Namespace, out: Path, pgvbench: str, n: int) -> None:
    server = EmbeddedServer(data_dir=out / "pgdata")
    server.ensure_started()
    try:
        order: list[tuple[str, int | None]] = []
        for i in range(1, n + 2):
            order.append((f"A{i:02d}", None))
            if i <= n:
                order += [(f"S{i:02d}", args.slow_ef), (f"R{i:02d}", args.recall_ef)]
        for done, (name, ef) in enumerate(order, 1):
            run_dir = out / name
            if _complete(run_dir):
                continue
            _set_ef_search(server, ef)
            t0 = time.monotonic()
            proc = subprocess.run(
                [
                    pgvbench,
                    "run",
                    str(args.spec),
                    "--out",
                    str(run_dir),
                    "-q",
                    "--no-report",
                    "--data-dir",
                    str(server.data_dir),
                ],
                capture_output=True,
                text=True,
            )
            _set_ef_search(server, None)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"{name}: pgvbench run failed (exit {proc.returncode})")
            print(
                f"[{done}/{len(order)}] {name} (ef_search {ef or 'default'}) "
                f"{time.monotonic() - t0:.0f} s",
                flush=True,
            )
    finally:
        _set_ef_search(server, None)
        server.stop()


def _analyze(args: argparse.Namespace, out: Path, pgvbench: str, n: int, started: float) -> int:
    kinds = {
        "aa": [(f"A{i:02d}", f"A{i + 1:02d}") for i in range(1, n + 1)],
        "slowdown": [(f"A{i:02d}", f"S{i:02d}") for i in range(1, n + 1)],
        "recall_drop": [(f"A{i:02d}", f"R{i:02d}") for i in range(1, n + 1)],
    }
    summary: dict[str, Any] = {"spec": str(args.spec), "comparisons": n, "kinds": {}}
    for kind, pairs in kinds.items():
        rows = [_compare(pgvbench, out, base, current) for base, current in pairs]
        summary["kinds"][kind] = _summarise(kind, rows)
    summary["wall_minutes"] = round((time.monotonic() - started) / 60, 1)
    summary["pooled"] = _pooled_recipes(out, n)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print(summary, args)
    return 0


def _pooled_recipes(out: Path, n: int) -> dict[str, Any]:
    """The same runs judged with pooled sides (``pgvbench merge``): the base made of the 3
    A runs nearest in time to the current one (never including it), the current side one
    run or two consecutive runs. Evaluated in-process on the saved results files."""
    from pgvbench.compare import CompareOptions, compare_results
    from pgvbench.compare.merge import merge_results
    from pgvbench.results import load_results

    runs = {p.name: load_results(p / "results.json") for p in sorted(out.glob("[ASR][0-9]*"))}
    a_ids = list(range(1, n + 2))

    def base_for(exclude: set[int], near: int) -> Any:
        others = sorted((i for i in a_ids if i not in exclude), key=lambda i: (abs(i - near), i))
        picked = sorted(others[:base_size])
        return merge_results([(f"A{i:02d}", runs[f"A{i:02d}"]) for i in picked])

    def judge(base: Any, current: Any) -> dict[str, Any]:
        c = compare_results(base, current, options=CompareOptions(noise_k=noise_k))
        hnsw = [r for r in c.rows if r.run.startswith("sweep hnsw")]
        return {
            "regression": c.verdict == "regression",
            "failing": [f"{r.run} {r.metric} {r.change:+.3f}" for r in c.regressions],
            "hnsw_timing": any(
                r.verdict == "regression" and r.metric in ("p50", "p95", "p99", "qps") for r in hnsw
            ),
            "hnsw_recall": any(r.verdict == "regression" and r.metric == "recall" for r in hnsw),
            "recall_rows": [
                f"{r.base:.4f} -> {r.current:.4f}: {r.reason}" for r in hnsw if r.metric == "recall"
            ],
        }

    recipes: dict[str, Any] = {"noise": _noise([runs[f"A{i:02d}"] for i in a_ids])}
    for base_size, size, noise_k in ((3, 1, 3.0), (5, 1, 3.0), (5, 2, 3.0), (5, 1, 2.0)):
        aa, slow, drop = [], [], []
        for i in range(1, n + 1):
            cur = [i, i + 1] if size == 2 else [i + 1]
            if size == 2 and i + 1 > n + 1:
                continue  # (never: A runs go to n + 1)
            base = base_for(set(cur), cur[0])
            pick = [f"A{j:02d}" for j in cur]
            current = runs[pick[0]] if size == 1 else merge_results([(p, runs[p]) for p in pick])
            aa.append(judge(base, current))
            # two slow runs: i and the next one (the last pairs with the first), so there are
            # n comparisons of each kind
            s_ids = [i] if size == 1 else [i, i % n + 1]
            if all(j <= n for j in s_ids):
                base_s = base_for(set(s_ids), s_ids[0])
                for kind, bucket in (("S", slow), ("R", drop)):
                    names = [f"{kind}{j:02d}" for j in s_ids]
                    cur_r = (
                        runs[names[0]]
                        if size == 1
                        else merge_results([(p, runs[p]) for p in names])
                    )
                    bucket.append(judge(base_s, cur_r))
        recipes[f"base {base_size} runs vs current {size} run(s), noise_k {noise_k:g}"] = {
            "aa_false_regressions": [sum(r["regression"] for r in aa), len(aa)],
            "aa_failing": [r["failing"] for r in aa if r["failing"]],
            "slowdown_flagged": [sum(r["regression"] for r in slow), len(slow)],
            "slowdown_hnsw_timing_flagged": [sum(r["hnsw_timing"] for r in slow), len(slow)],
            "recall_drop_flagged": [sum(r["hnsw_recall"] for r in drop), len(drop)],
            "recall_drop_not_flagged": [r["recall_rows"] for r in drop if not r["hnsw_recall"]],
        }
    return recipes


def _noise(a_runs: list[Any]) -> dict[str, Any]:
    """Run-to-run variation of the A runs: CV of per-run medians, spread within runs."""
    out: dict[str, Any] = {}
    kinds = sorted({p.index_kind for r in a_runs for p in r.runs})
    for kind in kinds:
        medians, within, blocks, recall = [], [], [], []
        for r in a_runs:
            point = next(p for p in r.runs if p.index_kind == kind)
            p50 = [s.latency_ms.p50 for s in point.samples]
            medians.append(statistics.median(p50))
            within.append(statistics.stdev(p50) / statistics.fmean(p50))
            blocks.append(statistics.median(s.shared_blks_per_query for s in point.samples))
            recall.append(point.recall.mean)
        out[kind] = {
            "p50_between_runs_cv": round(statistics.stdev(medians) / statistics.fmean(medians), 4),
            "p50_within_run_cv_median": round(statistics.median(within), 4),
            "blocks_between_runs_cv": round(statistics.stdev(blocks) / statistics.fmean(blocks), 4),
            "recall_between_runs_sd": round(statistics.stdev(recall), 4),
        }
    return out


def _complete(run_dir: Path) -> bool:
    path = run_dir / "results.json"
    if not path.is_file():
        return False
    try:
        return bool(json.loads(path.read_text())["status"] == "complete")
    except (ValueError, KeyError):
        return False


def _set_ef_search(server: EmbeddedServer, ef: int | None) -> None:
    """The injected change: a database-level default, outside the spec."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        if ef is None:
            conn.execute(f"ALTER DATABASE {DATABASE} RESET hnsw.ef_search")
        else:
            conn.execute(f"ALTER DATABASE {DATABASE} SET hnsw.ef_search = {int(ef)}")


def _compare(pgvbench: str, out: Path, base: str, current: str) -> dict[str, Any]:
    report = out / "compare" / f"{base}-{current}.json"
    proc = subprocess.run(
        [pgvbench, "compare", str(out / base), str(out / current), "--json", str(report)],
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"compare {base} {current}: exit {proc.returncode}\n{proc.stderr}")
    data = json.loads(report.read_text())
    failing = [r for r in data["rows"] if r["verdict"] in ("regression", "invalid")]
    hnsw = [r for r in data["rows"] if r["run"].startswith("sweep hnsw")]
    return {
        "pair": f"{base}->{current}",
        "exit": proc.returncode,
        "failing": [f"{r['run']} {r['metric']} {r['change']:+.3f}" for r in failing],
        "hnsw_timing_regressed": any(
            r["verdict"] == "regression" and r["metric"] in ("p50", "p95", "p99", "qps")
            for r in hnsw
        ),
        "hnsw_recall_regressed": any(
            r["verdict"] == "regression" and r["metric"] == "recall" for r in hnsw
        ),
        "hnsw_p50_change": next((r["change"] for r in hnsw if r["metric"] == "p50"), None),
        "hnsw_recall_change": next((r["change"] for r in hnsw if r["metric"] == "recall"), None),
    }


def _summarise(kind: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    p50 = [r["hnsw_p50_change"] for r in rows if r["hnsw_p50_change"] is not None]
    recall = [r["hnsw_recall_change"] for r in rows if r["hnsw_recall_change"] is not None]
    return {
        "exit_1": sum(1 for r in rows if r["exit"] == 1),
        "hnsw_timing_flagged": sum(1 for r in rows if r["hnsw_timing_regressed"]),
        "hnsw_recall_flagged": sum(1 for r in rows if r["hnsw_recall_regressed"]),
        "hnsw_p50_change_median": statistics.median(p50) if p50 else None,
        "hnsw_p50_change_range": [min(p50), max(p50)] if p50 else None,
        "hnsw_recall_change_range": [min(recall), max(recall)] if recall else None,
        "pairs": rows,
    }


def _print(summary: dict[str, Any], args: argparse.Namespace) -> None:
    n = summary["comparisons"]
    k = summary["kinds"]
    aa, slow, drop = k["aa"], k["slowdown"], k["recall_drop"]
    print()
    print(f"gate quality over {n} comparisons of each kind ({summary['wall_minutes']} min)")
    print(
        f"  A/A: {aa['exit_1']}/{n} false regressions (exit 1); HNSW p50 change median "
        f"{aa['hnsw_p50_change_median']:+.1%}, range {aa['hnsw_p50_change_range']}"
    )
    for r in aa["pairs"]:
        if r["failing"]:
            print(f"    {r['pair']}: {'; '.join(r['failing'])}")
    print(
        f"  slowdown (hnsw.ef_search {args.slow_ef}): HNSW timing flagged in "
        f"{slow['hnsw_timing_flagged']}/{n}; exit 1 in {slow['exit_1']}/{n}; p50 change "
        f"median {slow['hnsw_p50_change_median']:+.1%}, range {slow['hnsw_p50_change_range']}"
    )
    print(
        f"  recall drop (hnsw.ef_search {args.recall_ef}): recall flagged in "
        f"{drop['hnsw_recall_flagged']}/{n}; recall change range "
        f"{drop['hnsw_recall_change_range']}"
    )
    for kind, noise in summary["pooled"]["noise"].items():
        print(f"  noise over the A runs, {kind}: {noise}")
    for name, r in summary["pooled"].items():
        if name == "noise":
            continue
        aa_n, aa_of = r["aa_false_regressions"]
        s_n, s_of = r["slowdown_flagged"]
        t_n, _ = r["slowdown_hnsw_timing_flagged"]
        d_n, d_of = r["recall_drop_flagged"]
        print(
            f"  pooled, {name}: A/A {aa_n}/{aa_of} false regressions; slowdown flagged "
            f"{s_n}/{s_of} (by HNSW latency/QPS {t_n}/{s_of}); recall drop flagged {d_n}/{d_of}"
        )
        for failing in r["aa_failing"]:
            print(f"    A/A: {'; '.join(failing)}")
        for rows in r["recall_drop_not_flagged"]:
            print(f"    recall drop not flagged: {'; '.join(rows)}")


# ---------------------------------------------------------------- pgvbench ab (issue 12)

AB_SPEC = """[experiment]
name = "gate_ab"
seed = 42

[dataset]
source = "synthetic"
n = 10000
dim = 64
clusters = 32
queries = 1200

[query]
k = 10
recall_queries = 100

[[index]]
kind = "hnsw"
m = 16
ef_construction = 64
ef_search = 40

[ab]
label = "{label}"
{sql}"""
# CPU only: md5 over a repeated string per returned row; the index does the same work
WRAPPER = "SELECT id, length(md5(repeat(id::text, {n}))) FROM ({{knn}}) AS q"
TARGET_RATIO = 0.90


def _ab_spec(out: Path, label: str, repeat: int | None) -> Path:
    sql = "" if repeat is None else f'sql = "{WRAPPER.format(n=repeat)}"\n'
    path = out / f"{label}.toml"
    path.write_text(AB_SPEC.format(label=label, sql=sql))
    return path


def _ab_run(
    pgvbench: str,
    server: EmbeddedServer,
    a: Path,
    b: Path,
    out: Path,
    *,
    rounds: int,
    window: float,
    seed: int,
) -> dict[str, Any]:
    if not (out / "ab.json").is_file():
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                pgvbench,
                "ab",
                str(a),
                str(b),
                "--data-dir",
                str(server.data_dir),
                "--output",
                str(out),
                "--rounds",
                str(rounds),
                "--window",
                str(window),
                "--seed",
                str(seed),
                "-q",
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode not in (0, 1):
            raise SystemExit(f"ab {a.name} {b.name}: exit {proc.returncode}\n{proc.stderr}")
        (out / "exit").write_text(f"{proc.returncode} {time.monotonic() - t0:.1f}\n")
    code, seconds = (out / "exit").read_text().split()
    data = json.loads((out / "ab.json").read_text())
    metrics = {m["metric"]: m for m in data["metrics"]}
    return {
        "exit": int(code),
        "wall_s": float(seconds),
        "measured_s": data["measured_s"],
        "rounds_s": data["wall_s"],
        "flagged": [m for m, v in metrics.items() if v["verdict"] == "regression"],
        "qps_change": metrics["qps"]["change"],
        "qps_interval": [metrics["qps"]["low"], metrics["qps"]["high"]],
        "p50_change": metrics["p50"]["change"],
        "cpu_change": metrics.get("cpu", {}).get("change"),
    }


def _calibrate(server: EmbeddedServer, out: Path, base: Path) -> dict[str, Any]:
    """The repeat count whose wrapper costs 10% QPS. One client, query by query, the plain
    statement and the wrapped ones alternate on the same vectors (the finest interleaving
    there is: a neighbour's burst lands on both), over a few repeat counts; the extra time
    per query grows linearly with the repeat count, so a line through them gives it."""
    import numpy as np
    from pgvector.psycopg import register_vector
    from psycopg import sql

    from pgvbench.ab.pair import pair_specs
    from pgvbench.ab.setup import build_all, drop_all
    from pgvbench.datasets.prepared import prepare_data
    from pgvbench.db import schema as db_schema
    from pgvbench.progress import Reporter
    from pgvbench.spec.parse import load_spec

    spec = load_spec(base)
    quiet = Reporter(enabled=False)
    data = prepare_data(spec, cache_dir=out / "groundtruth", reporter=quiet)
    pairing = pair_specs(spec, spec)
    dsn = server.dsn()
    repeats = (0, 40, 80, 160)
    with psycopg.connect(dsn, autocommit=True) as conn:
        db_schema.ensure_schema(conn, spec.schema)
        built = build_all(
            dsn,
            conn,
            schema=spec.schema,
            prefix="calib",
            variants=pairing.variants,
            dataset=data.dataset,
            reporter=quiet,
        )
        try:
            register_vector(conn)
            conn.execute("SET hnsw.ef_search = 40")
            table = sql.Identifier(spec.schema, built[0].table).as_string(conn)
            knn = f"SELECT id FROM {table} ORDER BY embedding <-> %b LIMIT 10"
            stmts = [knn if n == 0 else WRAPPER.format(n=n).replace("{knn}", knn) for n in repeats]
            vectors = data.sets.load_stream
            times = np.zeros(len(stmts))
            with conn.cursor(binary=True) as cur:
                for warm in (True, False):
                    for q, v in enumerate(vectors if not warm else vectors[:100]):
                        # the first statement of a vector warms the CPU caches for the
                        # others (~15% here): each one goes first equally often
                        for step in range(len(stmts)):
                            i = (q + step) % len(stmts)
                            stmt = stmts[i]
                            t0 = time.perf_counter()
                            cur.execute(stmt, (v,), prepare=True)
                            cur.fetchall()
                            if not warm:
                                times[i] += time.perf_counter() - t0
        finally:
            drop_all(dsn, spec.schema, [b.table for b in built])
    extra = times / times[0] - 1.0
    slope, intercept = np.polyfit(np.array(repeats, dtype=float), extra, 1)
    want = 1.0 / TARGET_RATIO - 1.0
    repeat = max(1, round((want - intercept) / slope)) if slope > 0 else 60
    return {
        "method": "one client, plain and wrapped statements alternating query by query",
        "queries": len(data.sets.load_stream),
        "points": [
            {"repeat": n, "extra_time": round(float(e), 4)}
            for n, e in zip(repeats, extra, strict=True)
        ],
        "repeat": int(repeat),
    }


def _ab_bench(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    pgvbench = str(Path(sys.executable).with_name("pgvbench"))
    started = time.monotonic()
    server = EmbeddedServer(data_dir=out / "pgdata")
    server.ensure_started()
    try:
        base = _ab_spec(out, "base", None)
        again = _ab_spec(out, "base-again", None)
        calibration = {"repeat": args.repeat} if args.repeat else _calibrate(server, out, base)
        print(f"calibration: {calibration}", flush=True)
        slow = _ab_spec(out, "cpu-cost", calibration["repeat"])
        kinds: dict[str, list[dict[str, Any]]] = {"aa": [], "ab": []}
        for i in range(1, args.comparisons + 1):
            for kind, b in (("aa", again), ("ab", slow)):
                r = _ab_run(
                    pgvbench,
                    server,
                    base,
                    b,
                    out / f"{kind}{i:02d}",
                    rounds=args.rounds,
                    window=args.window,
                    seed=1000 + i,
                )
                kinds[kind].append(r)
                print(
                    f"[{i}/{args.comparisons}] {kind}: exit {r['exit']} qps "
                    f"{r['qps_change']:+.1%} flagged {r['flagged']} ({r['wall_s']:.0f} s)",
                    flush=True,
                )
    finally:
        server.stop()
    n = args.comparisons
    aa, ab = kinds["aa"], kinds["ab"]
    summary = {
        "rounds": args.rounds,
        "window_s": args.window,
        "calibration": calibration,
        "wrapper": WRAPPER.format(n=calibration["repeat"]),
        "detections": [sum(r["exit"] == 1 for r in ab), n],
        "false_alarms": [sum(r["exit"] == 1 for r in aa), n],
        "aa_flagged": [r["flagged"] for r in aa if r["flagged"]],
        "ab_missed": [r for r in ab if r["exit"] != 1],
        "ab_qps_change_median": statistics.median(r["qps_change"] for r in ab),
        "ab_qps_change_range": [min(r["qps_change"] for r in ab), max(r["qps_change"] for r in ab)],
        "ab_cpu_change_median": statistics.median(
            r["cpu_change"] for r in ab if r["cpu_change"] is not None
        )
        if any(r["cpu_change"] is not None for r in ab)
        else None,
        "flagged_by_metric": {
            kind: {
                m: sum(m in r["flagged"] for r in rows)
                for m in ("qps", "p50", "p99", "cpu", "blocks", "recall")
            }
            for kind, rows in kinds.items()
        },
        "aa_qps_change_range": [min(r["qps_change"] for r in aa), max(r["qps_change"] for r in aa)],
        "measured_s_median": statistics.median(r["measured_s"] for r in aa + ab),
        "wall_s_median": statistics.median(r["wall_s"] for r in aa + ab),
        "wall_minutes": round((time.monotonic() - started) / 60, 1),
        "load_average_end": list(os.getloadavg()),
    }
    (out / "summary_ab.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "ab_missed"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
