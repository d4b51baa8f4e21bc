"""Named baselines: results files kept under ``reports/baselines/`` and committed, so a
CI job compares against a known-good run by name."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from ..errors import ResultsError
from ..results import Results, load_results, write_results

DEFAULT_DIR = Path("reports") / "baselines"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclasses.dataclass(frozen=True)
class Baseline:
    name: str
    path: Path
    results: Results


def baseline_path(name: str, directory: Path = DEFAULT_DIR) -> Path:
    if not _NAME_RE.fullmatch(name) or name.endswith(".json"):
        raise ResultsError(
            f"baseline name {name!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(at most 100 characters, no '.json' suffix), e.g. main-2026-11"
        )
    return directory / f"{name}.json"


def save_baseline(
    name: str,
    results: Results,
    *,
    source: str,
    directory: Path = DEFAULT_DIR,
    force: bool = False,
) -> Baseline:
    """Write a complete run (or a merge of runs) to ``directory/NAME.json``."""
    target = baseline_path(name, directory)
    if results.status != "complete":
        raise ResultsError(
            f"{source}: the run is {results.status}"
            + (f" ({results.failure})" if results.failure else "")
            + "; a baseline must be a complete run"
        )
    if target.exists() and not force:
        raise ResultsError(
            f"baseline {name!r} already exists ({target}); pass --force to replace it"
        )
    write_results(results, target)
    return Baseline(name, target, results)


def list_baselines(directory: Path = DEFAULT_DIR) -> list[Baseline | tuple[str, Path, str]]:
    """Saved baselines by name; unreadable files come back as (name, path, problem)."""
    out: list[Baseline | tuple[str, Path, str]] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            out.append(Baseline(path.stem, path, load_results(path)))
        except ResultsError as exc:
            out.append((path.stem, path, str(exc)))
    return out


def resolve(ref: str, directory: Path = DEFAULT_DIR) -> tuple[str, Path]:
    """A results file path, or the name of a saved baseline, to (display name, path)."""
    if not ref.strip():  # Path("") is ".": an empty argument must not mean "here"
        raise ResultsError(
            "a results argument is empty: give a results.json, a run's directory or a baseline name"
        )
    path = Path(ref)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise ResultsError(
            f"{ref}: not a regular file (a FIFO, device or socket); give a results.json"
        )
    if path.is_file():
        return ref, path
    if path.is_dir() and (path / "results.json").is_file():
        return ref, path / "results.json"
    if _NAME_RE.fullmatch(ref) and not ref.endswith(".json"):
        candidate = directory / f"{ref}.json"
        if candidate.is_file():
            return f"baseline {ref}", candidate
    names = sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []
    known = (
        f"saved baselines in {directory}: {', '.join(names)}"
        if names
        else (f"no baselines are saved in {directory} (pgvbench baseline save NAME results.json)")
    )
    raise ResultsError(f"{ref}: no such results file, directory or baseline name; {known}")
