"""The margin helper: decisive vs within the noise, on hand-made samples."""

from __future__ import annotations

import pytest

from pgvbench.advice_margin import (
    from_paired,
    from_recall,
    from_rounds,
    from_samples,
    from_single,
    margin_clause,
    noise_text,
    relative_range,
    versus,
    within_noise,
)
from pgvbench.analysis.paired import paired_ratio


def test_samples_whose_ranges_do_not_overlap_are_decisive() -> None:
    m = from_samples([100, 102, 98], [130, 128, 132])
    assert m.difference == pytest.approx(0.30)
    assert m.noise == pytest.approx((4 + 4) / 2 / 100)  # half-ranges added, relative to A
    assert m.decisive
    assert m.basis == "repeats" and m.n == 3
    assert margin_clause(m) == "margin +30% against noise ±4.0% over 3 repeats"


def test_overlapping_samples_are_within_the_noise() -> None:
    m = from_samples([100, 110, 90], [105, 95, 112])
    assert abs(m.difference) < m.noise  # type: ignore[operator]
    assert not m.decisive
    text = within_noise("psycopg_pool", "direct", m)
    assert text.startswith("psycopg_pool and direct are within the noise of this run (")
    assert "(+4.0%, noise ±18% over 3 repeats)" in text  # (20 + 17) / 2 / 100
    assert text.endswith("pick on other grounds or measure longer")


def test_one_sample_each_has_no_noise_and_never_decides() -> None:
    for m in (from_samples([100], [300]), from_single(100, 300)):
        assert m.noise is None and not m.decisive
        assert m.difference == pytest.approx(2.0)
        assert noise_text(m) == "one measurement each, no spread measured"
        assert "no spread to weigh it against" in within_noise("a", "b", m)


def test_paired_rounds_decide_on_the_interval() -> None:
    clear = from_rounds([100, 100, 100, 100], [120, 121, 119, 122])
    assert clear.decisive and clear.difference == pytest.approx(0.205, abs=0.01)
    assert clear.basis == "paired rounds" and clear.n == 4
    ratio = paired_ratio([100, 100, 100, 100], [120, 121, 119, 122])
    assert ratio.low is not None and ratio.high is not None
    assert clear.noise == pytest.approx(max(ratio.high - ratio.ratio, ratio.ratio - ratio.low))
    noisy = from_rounds([100, 100, 100, 100], [130, 80, 115, 90])
    assert not noisy.decisive  # the interval straddles 1


def test_identical_paired_rounds_are_exact() -> None:
    m = from_paired(paired_ratio([10, 10], [20, 20]))
    assert m.noise == 0.0 and m.decisive and m.difference == pytest.approx(1.0)
    one = from_paired(paired_ratio([10], [20]))
    assert one.noise is None and not one.decisive


def test_recall_margin_is_a_bound_over_queries() -> None:
    a = [0.8, 0.9, 0.7, 0.8, 0.9, 0.8, 0.7, 0.9] * 5
    better = [x + 0.1 for x in a]
    m = from_recall(a, better)
    assert m.scale == "absolute" and m.basis == "queries" and m.n == 40
    assert m.difference == pytest.approx(0.1)
    assert m.decisive and m.noise == pytest.approx(0.0, abs=1e-9)
    mixed = [x + (0.1 if i % 2 else -0.1) for i, x in enumerate(a)]
    tie = from_recall(a, mixed)
    assert not tie.decisive and tie.noise is not None and tie.noise > abs(tie.difference)
    assert "±0.0" in noise_text(tie) and "over 40 queries" in noise_text(tie)


def test_evidence_carries_the_margin() -> None:
    m = from_samples([100, 102, 98], [130, 128, 132])
    ev = m.evidence()
    assert ev["margin_difference"] == pytest.approx(0.3)
    assert ev["margin_noise"] == pytest.approx(0.04)
    assert ev["margin_decisive"] == "yes"
    assert "margin_noise" not in from_single(1.0, 2.0).evidence()


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        from_samples([], [1.0])
    with pytest.raises(ValueError):
        from_samples([0.0, 0.0], [1.0, 1.0])


def test_single_measurements_against_a_measured_spread() -> None:
    steady = [2.0, 2.2, 1.8, 2.0]  # one-second p99s of a steady window
    spread = relative_range(steady)
    assert spread == pytest.approx(0.2)
    clear = from_single(2.0, 3.0, basis="seconds of the warm run", noise=spread, n=len(steady))
    assert clear.decisive and noise_text(clear) == "±20% over 4 seconds of the warm run"
    assert not from_single(2.0, 2.3, noise=spread).decisive
    assert relative_range([1.0]) is None


def test_versus_wording() -> None:
    assert versus(from_samples([100, 102, 98], [130, 128, 132]), "QPS") == (
        "QPS +30%, beyond the noise of ±4.0% over 3 repeats"
    )
    assert versus(from_single(100, 110)) == "+10% in one measurement each, no spread measured"
    same = from_recall([1.0, 0.9, 0.8], [1.0, 0.9, 0.8])
    assert versus(same, "recall") == "recall the same over all 3 queries"
