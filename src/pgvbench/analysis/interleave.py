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

# warm-up of an arm's later windows: the arm ran a round ago, its caches are warm, only
# its new connections (or pgbench's start) need a moment
LATER_WINDOW_WARMUP_S = 0.3


def schedule(
    arms: Sequence[T],
    rounds: int,
    *,
    seed: int,
    pairs: Sequence[tuple[T, T]] = (),
    mirrored: bool = False,
) -> list[list[T]]:
    """``rounds`` rounds, each a random permutation of ``arms`` (balanced: once each).

    Each of ``pairs`` (two arms whose ratio is reported) runs back to back within every
    round, in a random order, at a random place among the others: with many arms a round
    lasts long enough for the machine to change between its first and last window, and
    a ratio is only as good as its two windows' shared conditions.

    ``mirrored``: rounds come in twos, a drawn order then its reverse (ABBA), so every arm
    holds each position equally often (one round more at most, for an odd count) and an
    effect of running first (a warm cache, the CPU's frequency) cannot lean on one arm;
    pgvbench ab saw chance put B first in 14 of 16 drawn rounds.
    """
    if mirrored:
        drawn = schedule(arms, (rounds + 1) // 2, seed=seed, pairs=pairs)
        return [order for d in drawn for order in (d, d[::-1])][:rounds]
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if not arms:
        raise ValueError("no arms to schedule")
    paired = [arm for pair in pairs for arm in pair]
    if len(set(paired)) != len(paired) or any(arm not in arms for arm in paired):
        raise ValueError("pairs must be distinct arms of the schedule, each in one pair only")
    rng = random.Random(seed)
    out: list[list[T]] = []
    for _ in range(rounds):
        # blocks: each pair is one block, every other arm its own; shuffle the blocks,
        # then each pair's inner order
        blocks: list[list[T]] = [list(pair) for pair in pairs]
        blocks += [[arm] for arm in arms if arm not in paired]
        rng.shuffle(blocks)
        order: list[T] = []
        for block in blocks:
            if len(block) == 2 and rng.random() < 0.5:
                block.reverse()
            order.extend(block)
        out.append(order)
    return out


def rounds_for(total_seconds: float, window_seconds: float, *, minimum: int = 3) -> int:
    """How many windows of ``window_seconds`` fill ``total_seconds`` per arm (>= minimum)."""
    if window_seconds <= 0:
        raise ValueError("window_seconds must be positive")
    return max(minimum, round(total_seconds / window_seconds))
