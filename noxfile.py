"""Task runner: the same commands locally and in CI (``bash .ci/run`` calls these steps).

nox -s tests        unit + integration tests against an embedded PostgreSQL
nox -s lint         ruff check + format check
nox -s typecheck    mypy --strict on the package
nox -s bench        pytest-benchmark suites in bench/, autosaved and compared (not default: slow)
nox -s quickstart   the README's main job (not run by default)
nox -s gate_quality the regression gate's false-alarm rate and power (~20 min, not default)
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit and integration tests (real embedded PostgreSQL, no mocks)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and formatting check."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "bench", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/pgvbench."""
    session.install("-e", ".[test]")
    session.run("mypy")


#: pytest-benchmark's saved runs: one sub-folder per machine id (OS, Python, bits).
BENCH_STORAGE = Path("reports/benchmarks")
#: Fail when a benchmark's median is this much slower than in the previous saved run.
#: Between two runs on a quiet 2-core machine the medians (>= 7 rounds) moved 0-5%, the
#: one-round ratio series up to ~12%; shared CI runners add more. The regressions worth
#: stopping for (an unused index, a slower loader or encoder) cost 25% and more. Tighter
#: thresholds flake; looser ones miss real losses.
BENCH_COMPARE_FAIL = "median:20%"


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks in bench/: autosaved, and compared with the previous run on this machine.

    Query latency (HNSW, IVFFlat), ingest, ground truth, plus the ratio-asserting
    suites (ground truth vs faiss, loader vs server-side COPY, engine fidelity,
    collector overhead). Each run is saved under reports/benchmarks/<machine>/; when
    an earlier run exists there, a median regression beyond BENCH_COMPARE_FAIL fails
    the session. The first run on a machine only records.
    """
    session.install("-e", ".[test]")
    args = [
        "bench",
        "-p",
        "no:cacheprovider",
        "--benchmark-json",
        "reports/bench.json",
        "--benchmark-autosave",
        f"--benchmark-storage=file://{BENCH_STORAGE}",
        # Saved runs from another host (e.g. a fresh CI runner) warn that machine_info
        # differs; pyproject turns warnings into errors, which would abort the session.
        "-W",
        "default::pytest_benchmark.logger.PytestBenchmarkWarning",
    ]
    if _has_saved_bench_run(session):
        # Without a saved run, --benchmark-compare warns "Can't compare" (an error here).
        args += ["--benchmark-compare", f"--benchmark-compare-fail={BENCH_COMPARE_FAIL}"]
    else:
        session.log(f"no saved benchmark run in {BENCH_STORAGE} for this machine: recording only")
    session.run("pytest", *args, *session.posargs)


def _has_saved_bench_run(session: nox.Session) -> bool:
    """True when pytest-benchmark has a saved run for the session's interpreter."""
    machine_id = session.run(
        "python",
        "-c",
        "from pytest_benchmark.utils import get_machine_id; print(get_machine_id())",
        silent=True,
    )
    if not isinstance(machine_id, str):  # e.g. nox --install-only
        return False
    return any((BENCH_STORAGE / machine_id.strip()).glob("[0-9][0-9][0-9][0-9]_*.json"))


@nox.session(python=PYTHON, default=False)
def quickstart(session: nox.Session) -> None:
    """Run workloads/quickstart.toml on the embedded server; report in reports/quickstart/."""
    session.install("-e", ".")
    session.run("pgvbench", "run", "workloads/quickstart.toml", *session.posargs)


@nox.session(python=PYTHON, default=False)
def gate_quality(session: nox.Session) -> None:
    """Measure the regression gate: 20 A/A, injected-slowdown and recall-drop comparisons.

    Runs workloads/regression.toml 61 times on one embedded server (~20 min on 2 cores);
    extra arguments go to bench/gate_quality.py (e.g. -- --comparisons 5).
    """
    session.install("-e", ".")
    session.run("python", "bench/gate_quality.py", *session.posargs)
