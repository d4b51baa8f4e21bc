"""``pgvbench export RESULTS --csv OUT | --parquet OUT``: one table of a results file for
pandas, a spreadsheet or any Parquet reader (the rows and columns: see _frames.py)."""

from __future__ import annotations

import argparse
import io
import textwrap
from pathlib import Path

from ._atomic import write_bytes_atomic
from ._frames import TABLES, frame
from ._outputs import check_not_empty, check_writable_file
from .errors import OutputError
from .results import load_results


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = sub.add_parser(
        "export",
        help="write one table of a results file as CSV or Parquet (for pandas)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs(
            "Write one table of a results file as CSV or Parquet: one row per sweep point "
            "(points: recall, QPS, latency percentiles, the index's build time and size), "
            "per load point (load: engine, pooling, clients, QPS, latency, CPU), or per "
            "measured level and index kind of the capacity study (capacity: the columns "
            "its fits read). Nested records become dotted columns (latency_ms.p99, "
            "query_params.hnsw.ef_search); per-repeat samples, time series, histograms and "
            "plans stay in results.json. In Python, "
            "pgvbench.results.load_results(path).to_frame(table) gives the same DataFrame.",
            "Exit codes: 0 written; 2 bad input (not a results file, or no rows for the "
            "table: the message names the tables the file has) or an output that cannot "
            "be written.",
        ),
    )
    export.add_argument("results", type=Path, help="a results.json (pgvbench run or merge)")
    out = export.add_mutually_exclusive_group(required=True)
    out.add_argument("--csv", metavar="OUT.csv", help="write CSV (UTF-8, a header line)")
    out.add_argument("--parquet", metavar="OUT.parquet", help="write Parquet (pyarrow)")
    export.add_argument(
        "--table",
        metavar="|".join(TABLES),
        help="which rows: points (one per sweep point), load (one per load point) or "
        "capacity (one per level and index kind); default: the first the file has",
    )


def _paragraphs(*texts: str) -> str:
    return "\n\n".join(textwrap.fill(text, width=78) for text in texts)


def run_export(args: argparse.Namespace) -> int:
    option, raw = ("--csv", args.csv) if args.csv is not None else ("--parquet", args.parquet)
    check_not_empty(raw, option)
    target = Path(raw)
    check_writable_file(target, what=f"the {option[2:].upper()} export", option=option)
    if target.exists() and args.results.exists() and target.samefile(args.results):
        raise OutputError(
            f"{option} {target} is the results file being exported; name another file"
        )
    results = load_results(args.results)  # the file's own errors, exactly as `report`'s
    table = frame(results.to_dict(), args.table, source=str(args.results))
    if option == "--csv":
        data = table.to_csv(index=False).encode("utf-8")
    else:
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        data = buffer.getvalue()
    write_bytes_atomic(target, data)
    print(f"pgvbench: wrote {len(table)} rows x {len(table.columns)} columns to {target}")
    return 0
