"""Task runner: the same commands locally and in CI (``bash .ci/run`` calls these steps).

nox -s tests        unit + integration tests against an embedded PostgreSQL
nox -s lint         ruff check + format check
nox -s typecheck    mypy --strict on the package
nox -s bench        pytest-benchmark suites in bench/ (not run by default: slow)
nox -s quickstart   the README's main job (not run by default)
"""

from __future__ import annotations

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


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: ground truth vs faiss, loader vs server-side COPY (ratios asserted)."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "bench",
        "-p",
        "no:cacheprovider",
        "--benchmark-json",
        "reports/bench.json",
        *session.posargs,
    )


@nox.session(python=PYTHON, default=False)
def quickstart(session: nox.Session) -> None:
    """Run workloads/quickstart.toml on the embedded server; report in reports/quickstart/."""
    session.install("-e", ".")
    session.run("pgvbench", "run", "workloads/quickstart.toml", *session.posargs)
