"""The dataset section shows LID and relative contrast, compares them with real
embeddings, and warns when synthetic data is far easier than those."""

from __future__ import annotations

import numpy as np

from pgvbench.analysis.difficulty import measure_difficulty
from pgvbench.metrics import Metric
from pgvbench.report.document import KeyValues, Paragraph
from pgvbench.report.sections.difficulty import REFERENCES
from pgvbench.report.sections.setup import dataset_section
from pgvbench.results import DatasetInfo


def _info(source: str, base: np.ndarray, metric: Metric) -> DatasetInfo:
    record = measure_difficulty(base, metric, max_queries=100, k=20)
    return DatasetInfo(
        name="d",
        source=source,
        n=base.shape[0],
        dim=base.shape[1],
        metric=metric.value,
        seed=1,
        n_queries=10,
        n_recall_queries=10,
        difficulty=record.to_dict(),
    )


def _texts(info: DatasetInfo) -> tuple[dict[str, str], list[Paragraph]]:
    blocks = dataset_section(info)
    rows = dict(next(b for b in blocks if isinstance(b, KeyValues)).items)
    return rows, [b for b in blocks if isinstance(b, Paragraph)]


def test_easy_synthetic_data_is_warned_about() -> None:
    # 2-d data in 32 dimensions: LID about 2, far below real embeddings' 12.6
    rng = np.random.default_rng(0)
    base = (rng.standard_normal((3_000, 2)) @ rng.standard_normal((2, 32))).astype(np.float32)
    rows, paragraphs = _texts(_info("synthetic:clustered", base, Metric.L2))
    assert rows["Local intrinsic dimensionality"].startswith("median ")
    assert "k = 20" in rows["Difficulty measured on"]
    assert str(REFERENCES[0].lid) in paragraphs[0].text
    assert "compare across metrics with care" in paragraphs[0].text  # l2 vs cosine reference
    warning = paragraphs[-1]
    assert warning.style == "warning" and "far easier" in warning.text
    assert "pgvbench twin" in warning.text


def test_easy_agent_memories_get_the_agent_platforms_knob() -> None:
    rng = np.random.default_rng(2)
    base = (rng.standard_normal((3_000, 2)) @ rng.standard_normal((2, 32))).astype(np.float32)
    _, paragraphs = _texts(_info("synthetic:agents", base, Metric.COSINE))
    warning = paragraphs[-1]
    assert warning.style == "warning" and "topic_spread" in warning.text
    assert "intrinsic_dim" not in warning.text  # not a knob of the agent platform


def test_hard_data_and_user_files_get_no_warning() -> None:
    rng = np.random.default_rng(1)
    hard = rng.standard_normal((3_000, 64)).astype(np.float32)  # LID ~ 64: hard
    _, paragraphs = _texts(_info("synthetic:uniform", hard, Metric.COSINE))
    assert [p.style for p in paragraphs] == [""]
    assert "harder than that" in paragraphs[0].text
    easy = (rng.standard_normal((3_000, 2)) @ rng.standard_normal((2, 32))).astype(np.float32)
    _, paragraphs = _texts(_info("npy:/data/x.npy", easy, Metric.L2))
    assert all(p.style != "warning" for p in paragraphs)  # the user's own data: a fact


def test_old_results_without_difficulty_render_as_before() -> None:
    info = DatasetInfo(
        name="d", source="s", n=1, dim=2, metric="l2", seed=None, n_queries=1, n_recall_queries=1
    )
    rows, paragraphs = _texts(info)
    assert "Relative contrast" not in rows and paragraphs == []
