"""How hard the dataset is (LID, relative contrast), compared with real embeddings.

The measures come from ``analysis.difficulty`` (stored as ``DatasetInfo.difficulty``);
the comparison and its warning are prose, so they live here, not in measurement code.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ...analysis.difficulty import Difficulty
from ...results import DatasetInfo
from ..document import Block, Paragraph
from ..fmt import format_sig


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reference:
    """Medians measured on real embeddings, the yardstick synthetic data is held to."""

    name: str
    metric: str
    distance: str
    lid: float
    rc: float
    source: str


#: Real embeddings the report compares with (k = 100, as analysis.difficulty measures).
REFERENCES: tuple[Reference, ...] = (
    Reference(
        name="real MiniLM 384-d text embeddings",
        metric="cosine",
        distance="cosine distance (1 - cos)",
        lid=12.6,
        rc=2.05,
        source="measured by the pgvbench team, medians over queries",
    ),
)

#: "Far easier" than real data: median LID below half the reference, or median RC above
#: 1.5x it. Both are well outside the noise: the medians over 500 queries vary by about
#: 1-2% between query samples, and a single dataset's queries spread only about +-20%
#: around the median (p10-p90). A factor 2 in LID is a different regime: the MLE halves
#: when the data lies on a manifold of half the dimension, and ANN indexes reach a
#: recall with far fewer distance computations there. RC is a ratio >= 1, so 1.5x
#: (2.05 -> 3.1) means the nearest neighbour stands out about twice as clearly (RC - 1
#: doubles).
EASIER_LID_FACTOR = 0.5
EASIER_RC_FACTOR = 1.5


def difficulty_rows(dataset: DatasetInfo) -> list[tuple[str, str]]:
    """Key-value rows for the dataset table (none when not measured)."""
    found = _record(dataset)
    if found is None:
        return []
    return [
        ("Local intrinsic dimensionality", _spread(found.lid.to_dict())),
        ("Relative contrast", _spread(found.rc.to_dict())),
        (
            "Difficulty measured on",
            f"{found.queries:,} {'base rows' if found.queries_from == 'base' else 'queries'}, "
            f"LID MLE over k = {found.k} neighbours, RC's mean distance over "
            f"{found.base_sample:,} base rows, {found.distance}, "
            f"{format_sig(found.seconds)} s",
        ),
    ]


def difficulty_blocks(dataset: DatasetInfo) -> list[Block]:
    """One sentence comparing with real embeddings, and a warning when a synthetic set is
    far easier than them."""
    found = _record(dataset)
    if found is None or not (math.isfinite(found.lid.median) and math.isfinite(found.rc.median)):
        return []
    ref = REFERENCES[0]
    relation = ""
    if found.lid.median >= ref.lid and found.rc.median <= ref.rc:
        relation = "; by both this dataset is harder than that"
    elif found.lid.median <= ref.lid and found.rc.median >= ref.rc:
        relation = "; by both this dataset is easier than that"
    text = (
        f"Median LID {format_sig(found.lid.median)} and relative contrast "
        f"{format_sig(found.rc.median)}; {ref.name} measure about {ref.lid:g} and {ref.rc:g} "
        f"({ref.source}). A higher LID and a relative contrast nearer 1 make nearest "
        f"neighbours harder to find{relation}."
    )
    if found.distance != ref.distance:
        text += (
            f" The reference uses the {ref.distance}, this dataset the {found.distance}: on "
            "unit vectors the cosine distance is half the squared Euclidean one, which halves "
            "the LID estimate, so compare across metrics with care."
        )
    blocks: list[Block] = [Paragraph(text)]
    easier = []
    if found.lid.median < EASIER_LID_FACTOR * ref.lid:
        easier.append(f"LID {format_sig(found.lid.median)} < {EASIER_LID_FACTOR:g} x {ref.lid:g}")
    if found.rc.median > EASIER_RC_FACTOR * ref.rc:
        easier.append(f"RC {format_sig(found.rc.median)} > {EASIER_RC_FACTOR:g} x {ref.rc:g}")
    if easier and dataset.source.startswith("synthetic"):
        blocks.append(
            Paragraph(
                f"this synthetic data is far easier than {ref.name} ({'; '.join(easier)}), "
                "so recall and speed measured on it will flatter the indexes: results, and "
                "the recommended index, may not carry over to real data. "
                + _harder(dataset.source),
                lead="Warning:",
                style="warning",
            )
        )
    return blocks


def _harder(source: str) -> str:
    """What makes this generator's data harder (the agent platform has no such knobs)."""
    if source == "synthetic:agents":
        return (
            "The agent platform's memories cluster around each agent's topics: raise "
            "[agents] topic_spread to make them harder, and benchmark a sample of your real "
            'memories (a vector spec with source = "table") before choosing.'
        )
    return (
        "Raise spread or intrinsic_dim (both make it harder), add tail_dof for queries of "
        "uneven difficulty, or fit the generator to a sample of your vectors with "
        "`pgvbench twin`."
    )


def _record(dataset: DatasetInfo) -> Difficulty | None:
    data = dataset.difficulty
    if not isinstance(data, dict):
        return None
    try:
        return Difficulty.from_dict(data)
    except (KeyError, TypeError, ValueError):  # a damaged record is not worth a failed report
        return None


def _spread(values: dict[str, Any]) -> str:
    def show(key: str) -> str:
        value = values.get(key)
        return "n/a" if value is None else format_sig(float(value))

    return f"median {show('median')} (p10 {show('p10')}, p90 {show('p90')}; mean {show('mean')})"
