"""The order of interleaved trials (Randomized Multiple Interleaved Trials).

Each round runs every arm once, in an order drawn afresh per round: a slow drift (a
neighbour starting up, the page cache warming) then lands on all arms alike, and no arm
always runs first or right after another (Abedi & Brecht, ICPE 2017). The draw is
seeded, so a spec and its seed give the same schedule.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def schedule(arms: Sequence[T], rounds: int, *, seed: int) -> list[list[T]]:
    """``rounds`` rounds, each a random permutation of ``arms`` (balanced: once each)."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if not arms:
        raise ValueError("no arms to schedule")
    rng = random.Random(seed)
    out: list[list[T]] = []
    for _ in range(rounds):
        order = list(arms)
        rng.shuffle(order)
        out.append(order)
    return out


def rounds_for(total_seconds: float, window_seconds: float, *, minimum: int = 3) -> int:
    """How many windows of ``window_seconds`` fill ``total_seconds`` per arm (>= minimum)."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    return max(minimum, round(total_seconds / window_seconds))
