"""The wording of the notes a result-cache record carries (kept in results.json)."""

from __future__ import annotations


def jittered(jitter: float) -> str:
    """Why the record has no simulated hit rate for an exact LRU on a jittered stream."""
    return (
        f"repeats carry noise of {jitter:g} x |q|: an exact-key LRU cannot hit a "
        "jittered repeat, so no simulation expectation is given for it"
    )
