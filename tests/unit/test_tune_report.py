"""The tuning section, its figures and the files `pgvbench tune` writes (hand-built
records, no database)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pgvbench.report.document import Bullets, Heading, Image, KeyValues, Paragraph, Table
from pgvbench.studies.tune.outputs import write_tune_outputs
from pgvbench.studies.tune.plots import draw_figures, plot_convergence, plot_tradeoff
from pgvbench.studies.tune.records import Evaluation, Relative
from pgvbench.studies.tune.report import (
    CONVERGENCE_FIGURE,
    TRADEOFF_FIGURE,
    report_blocks,
    validity,
)
from tune_support import config, evaluation, ratio, record, results, trial, two_way


def _table(blocks: list[object], first_header: str) -> Table:
    return next(b for b in blocks if isinstance(b, Table) and b.header[0] == first_header)


def _values(blocks: list[object]) -> dict[str, str]:
    return {k: v for b in blocks if isinstance(b, KeyValues) for k, v in b.items}


def test_section_has_the_answer_the_trials_and_the_time_against_the_grid() -> None:
    rec = two_way(ratio(0.8, 0.75, 0.86))
    images = [Image(TRADEOFF_FIGURE, "t"), Image(CONVERGENCE_FIGURE, "c"), Image("x.png", "x")]
    blocks: list[object] = list(report_blocks(rec, images, results()))
    assert blocks[0] == Heading(2, "Tuning for a target")
    answer = blocks[1]
    assert isinstance(answer, Paragraph) and answer.style == "recommendation"
    assert answer.text.startswith("Use hnsw m=16 efc=64 with hnsw.ef_search = 40")
    assert [b.src for b in blocks if isinstance(b, Image)] == [TRADEOFF_FIGURE, CONVERGENCE_FIGURE]
    trials = _table(blocks, "#")
    assert [row[0] for row in trials.rows] == ["1", "3", "5"]
    assert [row[-1] for row in trials.rows][1:] == ["winner", "runner-up"]
    assert trials.rows[0][3] == "none ≤ 1000"  # the recall bound was met at no knob value
    assert trials.flagged == [True, False, False]
    losers = _table(blocks, "configuration")
    why = {row[0]: row[-1] for row in losers.rows}
    assert why["hnsw m=12 efc=64 at ef_search=48"] == "runner-up: beaten beyond the noise"
    assert "lower bound 0.900 < 0.95 at ef_search=1000" in why["hnsw m=8 efc=32 at ef_search=1000"]
    values = _values(blocks)
    assert values["target"] == "recall@10 ≥ 0.95 (95% lower bound) and p99 ≤ 10 ms at 8 clients"
    assert values["the full grid (estimate)"].startswith("4.0 h: ")
    assert values["share"] == "this session took 0.76% of the grid's estimated time"
    assert values["sampler"] == "TPESampler (optuna 5.1.0)"
    assert values["stopped because"] == "the trial budget was used up"
    confirmation = next(
        b for b in blocks if isinstance(b, Paragraph) and "interleaved rounds" in b.text
    )
    assert "QPS winner / runner-up 1.250 (95% interval 1.163–1.333)" in confirmation.text
    assert validity(rec) == []
    assert "filtered queries" not in values


def test_a_filtered_target_is_named_with_its_selectivity_and_scan_mode() -> None:
    summary = {"predicate": "label", "attribute": "category", "condition": "category = $2",
               "selectivity": 0.021}  # fmt: skip
    rec = record([trial(0, evaluation(iterative_scan="relaxed_order"))], winner=0,
                 filter="label", filter_summary=summary)  # fmt: skip
    blocks: list[object] = list(report_blocks(rec, [], results()))
    assert _values(blocks)["filtered queries"] == (
        "label on category: category = $2, 2.1% of the rows match on average"
    )
    answer = blocks[1]
    assert isinstance(answer, Paragraph)
    assert "with hnsw.ef_search = 40 and hnsw.iterative_scan = relaxed_order:" in answer.text


def test_feasible_losers_say_by_how_much_and_notes_are_worded() -> None:
    slower = evaluation(config(m=24, efc=128), knob=32, qps=900.0)
    rec = two_way(ratio(0.98, 0.93, 1.03), notes=("duplicates_proposed",))
    rec = dataclasses.replace(rec, trials=(*rec.trials, trial(7, slower, at=90.0)))
    blocks: list[object] = list(report_blocks(rec, [], results()))
    why = {row[0]: row[-1] for row in _table(blocks, "configuration").rows}
    assert why["hnsw m=24 efc=128 at ef_search=32"] == (
        "met the target with 900 QPS vs the winner's 1,200 QPS"
    )
    assert "within the noise" in why["hnsw m=12 efc=64 at ef_search=48"]
    notes = next(b for b in blocks if isinstance(b, Bullets) and "already measured" in b.items[-1])
    assert notes.items[-1].startswith("the optimiser proposed configurations")
    assert any("within the noise of the confirmation" in line for line in validity(rec))


def test_a_loser_ranked_on_its_interleaved_value_is_not_said_to_have_lost_a_confirmation() -> None:
    # seen on the 768-d bench: a trial's own window (1,446 QPS) above the winner's (1,146),
    # while the search ranked it below on the build timed against the reference (1,455 vs
    # 1,534); it was never in the confirmation, so the report must not say it lost there
    def on_reference(ev: Evaluation, value: float) -> Evaluation:
        ratio_ = ratio(value / 1000.0, value / 1000.0 * 0.95, value / 1000.0 * 1.05)
        rel = Relative(reference=1, measure="qps", reference_value=1000.0, ratio=ratio_)
        return dataclasses.replace(ev, relative=rel)

    win = on_reference(evaluation(qps=1146.0), 1534.0)
    fast_window = on_reference(evaluation(config(m=24, efc=128), knob=32, qps=1446.0), 1455.0)
    rec = two_way(ratio(0.8, 0.75, 0.86), win=win)
    rec = dataclasses.replace(rec, trials=(*rec.trials, trial(7, fast_window, at=90.0)))
    blocks: list[object] = list(report_blocks(rec, [], results()))
    why = {row[0]: row[-1] for row in _table(blocks, "configuration").rows}
    assert why["hnsw m=24 efc=128 at ef_search=32"] == (
        "met the target; ranked below the winner: 1,460 QPS vs 1,530 QPS, each timed "
        "interleaved with the search's reference build"
    )
    assert not any("lost on confirmation" in text for text in why.values())


def test_unreachable_section_is_a_warning_and_validity_names_an_unconfirmed_winner() -> None:
    bad = evaluation(knob=None, reason="recall_unreachable", timed=False)
    rec = record([trial(0, bad)], winner=None, best_unmet=bad, recall=0.999)
    blocks: list[object] = list(report_blocks(rec, [], results()))
    warning = blocks[1]
    assert isinstance(warning, Paragraph) and warning.style == "warning"
    assert "no configuration in the space reaches recall 0.999" in warning.text
    assert not any(isinstance(b, Heading) and b.text == "Winner" for b in blocks)
    alone = record([trial(0, evaluation())], winner=0)
    assert any("was not rebuilt and re-measured" in line for line in validity(alone))


def test_figures_are_drawn_and_skipped_when_there_is_nothing_to_draw(tmp_path: Path) -> None:
    rec = two_way(ratio(0.8, 0.75, 0.86))
    images = draw_figures(rec, tmp_path)
    assert [i.src for i in images] == [TRADEOFF_FIGURE, CONVERGENCE_FIGURE]
    assert all((tmp_path / i.src).read_bytes().startswith(b"\x89PNG") for i in images)
    # no latency bound: one panel; a grid estimate far off the axis goes into the title
    one = dataclasses.replace(two_way(ratio(0.8, 0.75, 0.86), latency_ms=None),
                              grid_estimate_s=1e6)  # fmt: skip
    assert plot_tradeoff(one, tmp_path / "one.png") is not None
    assert plot_convergence(one, tmp_path / "conv.png") is not None
    nothing = record([trial(0, evaluation(knob=None, reason="recall_unreachable", timed=False))],
                     winner=None)  # fmt: skip
    assert draw_figures(nothing, tmp_path / "empty") == []
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_write_tune_outputs_writes_the_four_files_and_the_images(tmp_path: Path) -> None:
    rec = two_way(ratio(0.8, 0.75, 0.86))
    source = {"table": "public.items", "column": "embedding", "vector_type": "vector"}
    paths = write_tune_outputs(rec, results(table_source=source), tmp_path / "out")
    names = [p.name for p in paths]
    assert names == ["tune.md", "tune.html", "apply.sql", "postgresql.conf", TRADEOFF_FIGURE,
                     CONVERGENCE_FIGURE]  # fmt: skip
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    md = (tmp_path / "out" / "tune.md").read_text(encoding="utf-8")
    assert md.startswith("# pgvbench tune: tune-demo")
    assert f"]({TRADEOFF_FIGURE})" in md and "| # | phase |" in md.replace("\\#", "#")
    html = (tmp_path / "out" / "tune.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2 and 'src="tune_' not in html
    sql = (tmp_path / "out" / "apply.sql").read_text(encoding="utf-8")
    assert "CREATE INDEX CONCURRENTLY items_embedding_hnsw_m16_efc64 ON public.items" in sql
    conf = (tmp_path / "out" / "postgresql.conf").read_text(encoding="utf-8")
    assert "shared_buffers = 256MB" in conf
    # a run without a table source: the placeholder; the same record renders the same bytes
    again = write_tune_outputs(rec, results(), tmp_path / "again")
    assert "your_table" in again[2].read_text(encoding="utf-8")
    assert again[0].read_bytes() == paths[0].read_bytes()
