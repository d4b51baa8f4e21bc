"""The tuner's words: the winner and its margin over the runner-up, the notes on it, and
the paragraph when nothing met the target (hand-built records, no database)."""

from __future__ import annotations

import dataclasses
import json

from pgvbench.studies.tune.advice import recommendations, unreachable_message, winner_margin
from pgvbench.studies.tune.facts import chosen, query_settings
from pgvbench.studies.tune.records import REASONS, Confirmation, TuneRecord
from pgvbench.studies.tune.words import reason_text
from tune_support import config, evaluation, ratio, record, trial, two_way


def test_winner_beyond_the_noise_states_its_lead_and_evidence() -> None:
    # stored runner-up / winner = 0.8, interval 0.75-0.86: the winner is 25% faster
    rec = two_way(ratio(0.8, 0.75, 0.86))
    first = recommendations(rec)[0]
    assert first.text.startswith("Use hnsw m=16 efc=64 with hnsw.ef_search = 40:")
    for figure in ("recall@10 0.962", "lower bound 0.955 over 500 queries", "1,200 QPS",
                   "p99 4.20 ms at 8 clients", "built in 12.3 s", "index 45.0 MB",
                   "memory 195 MB (index + heap)", "0.005 above the 0.95 target"):  # fmt: skip
        assert figure in first.text
    assert "ahead of hnsw m=12 efc=64 at ef_search=48 by +25% QPS" in first.text
    assert "noise ±" in first.text and "6 paired rounds" in first.text
    assert "within the noise" not in first.text
    assert first.evidence["margin_decisive"] == "yes"
    assert first.evidence["recall_low"] == 0.955
    assert first.config_change is not None
    assert first.config_change["hnsw.ef_search"] == "40"
    assert first.config_change["m"] == "16" and first.config_change["ef_construction"] == "64"


def test_winner_within_the_noise_says_so_and_names_what_else_separates_them() -> None:
    run = evaluation(config(m=12, efc=64), knob=48, qps=1180.0, index_mb=20, table_mb=100,
                     build=6.0)  # fmt: skip
    rec = two_way(ratio(0.98, 0.93, 1.03), run=run)
    text = recommendations(rec)[0].text
    assert "are within the noise of this run" in text
    assert "ahead of" not in text
    # the runner-up is lighter and builds faster: the sentence says which and by how much
    assert "hnsw m=12 efc=64 has the smaller memory (index + heap) (120 MB vs 195 MB" in text
    assert "has the smaller build time (6.00 s vs 12.3 s" in text
    assert recommendations(rec)[0].evidence["margin_decisive"] == "no"


def test_margin_follows_the_swap_when_the_runner_up_won_the_confirmation() -> None:
    # the session swapped: the confirmation's "winner" is now the record's runner-up, and its
    # stored ratio (its runner-up / its winner) is the record's winner over its runner-up
    win = evaluation()
    run = evaluation(config(m=12, efc=64), knob=48)
    swapped = Confirmation(winner=run, runner_up=win, qps=ratio(1.25, 1.16, 1.33), p99=None,
                           rounds=6, window_s=2.0, recall_holds=True)  # fmt: skip
    rec = record([trial(3, win), trial(5, run)], winner=3, runner_up=5, confirmation=swapped)
    margin = winner_margin(rec)
    assert margin is not None and margin.decisive
    assert round(margin.difference, 2) == 0.25
    texts = [r.text for r in recommendations(rec)]
    assert "by +25% QPS" in texts[0]
    assert any("The search ranked hnsw m=12 efc=64 first" in t for t in texts)


def test_a_rebuild_needing_a_higher_knob_is_what_apply_uses() -> None:
    rebuilt = evaluation(knob=64, recall_mean=0.958, recall_low=0.952)
    rec = two_way(ratio(0.8, 0.75, 0.86), recall_holds=False, rebuilt=rebuilt)
    assert query_settings(rec) == {"hnsw.ef_search": "64"}
    assert chosen(rec) is rebuilt
    texts = [r.text for r in recommendations(rec)]
    assert texts[0].startswith("Use hnsw m=16 efc=64 with hnsw.ef_search = 64:")
    note = next(t for t in texts if t.startswith("The rebuild of"))
    assert "did not reach the recall bound at ef_search = 40" in note
    assert "apply.sql sets ef_search = 64" in note and "0.952" in note


def test_edges_of_the_space_are_noted() -> None:
    win = evaluation(config(m=32, efc=128), knob=1000)
    rec = record([trial(0, win)], winner=0)
    texts = [r.text for r in recommendations(rec)]
    assert any("ef_search = 1000 is the largest the search allowed" in t for t in texts)
    edge = next(t for t in texts if t.startswith("The best value is at the edge"))
    assert "widen m above 32 (searched 8, 12, 16, 24, 32)" in edge
    assert not any("widen ef_construction" in t for t in texts)  # 128 is inside 32..256
    assert "no runner-up" in texts[0]


def test_external_server_memory_is_a_recommendation_only() -> None:
    rec = two_way(ratio(0.8, 0.75, 0.86), external=True)
    memory = next(r for r in recommendations(rec) if r.config_change and
                  "shared_buffers" in r.config_change)  # fmt: skip
    assert "not applied nor measured here" in memory.text
    # 195 MB x 1.25 = 244 MB, rounded up to a multiple of 128 MB
    assert memory.config_change == {"shared_buffers": "256MB"}


def test_memory_objective_words_the_memory_difference() -> None:
    run = evaluation(config(m=12, efc=64), index_mb=80, table_mb=150)
    rec = two_way(None, run=run, objective="memory")
    assert "it needs 15% less memory than hnsw m=12 efc=64 at ef_search=40 (195 MB vs 230 MB" in (
        recommendations(rec)[0].text
    )


def test_p99_objective_words_the_latency_margin() -> None:
    rec = two_way(ratio(0.8, 0.75, 0.86), objective="p99")
    confirmation = dataclasses.replace(rec.confirmation, p99=ratio(1.3, 1.2, 1.4))
    rec = dataclasses.replace(rec, confirmation=confirmation)
    text = recommendations(rec)[0].text
    assert "its p99 is 23% lower than hnsw m=12 efc=64 at ef_search=48's (noise ±" in text


def test_unreachable_recall_names_the_target_limit_and_the_best_evaluation() -> None:
    best = evaluation(config(m=32, efc=256), knob=None, recall_mean=0.987, recall_low=0.985,
                      reason="recall_unreachable", timed=False)  # fmt: skip
    other = evaluation(config(m=8, efc=32), knob=None, recall_mean=0.95, recall_low=0.94,
                       reason="recall_unreachable", timed=False)  # fmt: skip
    rec = record([trial(0, best), trial(1, other)], winner=None, best_unmet=best, recall=0.999,
                 kinds=("hnsw",))  # fmt: skip
    text = unreachable_message(rec)
    assert text.startswith(
        "no configuration in the space reaches recall 0.999 within ef_search ≤ 1000; best was "
        "0.985 (hnsw m=32 efc=256 at ef_search=1000;"
    )
    assert "Of 2 trials, 2 missed the recall bound." in text
    assert "lower the target to ≤ 0.985" in text
    only = recommendations(rec)
    assert len(only) == 1 and only[0].text.startswith("No configuration in the space reaches")
    assert only[0].evidence["closest"] == "hnsw m=32 efc=256"


def test_unreachable_latency_and_budgets_say_which_bound_failed_and_what_to_change() -> None:
    slow = evaluation(knob=40, p99=7.23, reason="latency_over")
    rec = record([trial(0, slow)], winner=None, best_unmet=slow, latency_ms=5.0)
    text = unreachable_message(rec)
    assert "meets recall@10 ≥ 0.95 (95% lower bound) and p99 ≤ 5 ms at 8 clients" in text
    assert "p99 7.23 ms > 5 ms at ef_search=40" in text
    assert "relax the p99 bound to ≥ 7.23 ms" in text
    big = evaluation(index_mb=130, reason="index_over")
    rec = record([trial(0, big)], winner=None, best_unmet=big, max_index_mb=100)
    text = unreachable_message(rec)
    assert "index ≤ 100 MB" in text and "130 MB > 100 MB" in text
    assert "1 was over the index budget" in text and "raise max_index_mb to ≥ 130" in text
    assert "the session finished no trial" in unreachable_message(record([], winner=None))


def test_every_reason_code_has_words() -> None:
    for code in REASONS:
        words = reason_text(code)
        assert words != code and " " in words
    failed = evaluation(build=None, reason="build_failed", timed=False,
                        error="ERROR: memory required is 600 MB\nDETAIL: more")  # fmt: skip
    rec = record([trial(0, failed)], winner=None, best_unmet=failed)
    assert "memory required is 600 MB" in unreachable_message(rec)
    assert "DETAIL" not in unreachable_message(rec)


def test_records_round_trip() -> None:
    rec = two_way(ratio(0.98, 0.93, 1.03), recall_holds=False, rebuilt=evaluation(knob=64),
                  notes=("swapped_on_confirmation",))  # fmt: skip
    data = json.loads(json.dumps(rec.to_dict()))
    assert TuneRecord.from_dict(data).to_dict() == rec.to_dict()
