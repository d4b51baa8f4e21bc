"""The report's tuning part: server configurations, build tuning, cache states, result
caches, quantization and their recommendations (results.tuning)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..results import Results


def tuning_figures(results: Results, out_dir: Path) -> list[Any]:
    """Draw every tuning figure that has data; return the report Images."""
    if results.tuning is None:
        return []
    from .build_section import build_tuning_figures
    from .cache_section import cache_figures
    from .tuning_sections import tuning_figures as study_figures

    return [
        *build_tuning_figures(results, out_dir),
        *cache_figures(results, out_dir),
        *study_figures(results, out_dir),
    ]


def tuning_blocks(results: Results, images: Sequence[Any]) -> list[Any]:
    """Report blocks of the tuning part, [] when the run had none."""
    tuning = results.tuning
    if tuning is None:
        return []
    from .build_section import build_tuning_blocks
    from .cache_section import cache_blocks
    from .document import Bullets, Heading, Paragraph, Table
    from .tuning_sections import quantization_blocks, result_cache_blocks

    blocks: list[Any] = []
    if tuning.settings_sweep:
        blocks += [
            Heading(2, "Server configurations"),
            Paragraph(
                "Each configuration of [[server.sweep]] was applied in turn on top of "
                "[server.settings]; builds and sweep points above carry its label."
            ),
            Table(
                ["configuration", "requested", "in effect (SHOW)", "not applied", "restarted"],
                [
                    [
                        str(c.get("label", "")),
                        _pairs(c.get("requested", {})),
                        _pairs(c.get("in_effect", {})),
                        _pairs(c.get("not_applied", {})) or "—",
                        "yes" if c.get("restarted") else "no",
                    ]
                    for c in tuning.settings_sweep
                ],
            ),
        ]
    blocks += build_tuning_blocks(results, images)
    blocks += cache_blocks(results, images)
    blocks += result_cache_blocks(results, images)
    blocks += quantization_blocks(results, images)
    if tuning.recommendations:
        blocks += [Heading(2, "Tuning recommendations"), Bullets(list(tuning.recommendations))]
    return blocks


def _pairs(values: Any) -> str:
    if not isinstance(values, dict):
        return ""
    return ", ".join(f"{k} = {v}" for k, v in values.items())
