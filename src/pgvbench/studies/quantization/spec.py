"""``[quantization]``: HNSW build parameters and the query grid of every variant, the
k it may ask for (at most [query] k, the depth of the ground truth) and the dimensions
pgvector indexes for each variant's type."""

from __future__ import annotations

import dataclasses

from ...errors import SpecError
from ...spec.model import INDEX_MAX_DIM
from ...spec.table import Table

VARIANTS = ("full", "halfvec", "binary")
VARIANT_TYPES = {"full": "vector", "halfvec": "halfvec", "binary": "bit"}  # the indexed type


@dataclasses.dataclass(frozen=True, kw_only=True)
class QuantizationSpec:
    """``[quantization]``: HNSW build parameters and the query grid of every variant."""

    m: int = 16
    ef_construction: int = 64
    ef_search: tuple[int, ...] = (40,)
    overfetch: tuple[int, ...] = (1, 2, 4, 8)
    variants: tuple[str, ...] = VARIANTS
    k: int = 10


def parse_quantization(t: Table) -> QuantizationSpec:
    """Validate ``[quantization]``; errors name the file, table and key (SpecError)."""
    t.only(["m", "ef_construction", "ef_search", "overfetch", "variants", "k"])
    m = t.integer("m", default=16, minimum=2, maximum=100)
    efc = t.integer("ef_construction", default=64, minimum=4, maximum=1000)
    if efc < 2 * m:
        t.fail("ef_construction", f"= {efc} must be at least 2 x m = {2 * m} (pgvector's rule)")
    variants = t.str_list("variants", default=list(VARIANTS), allowed=VARIANTS)
    return QuantizationSpec(
        m=m,
        ef_construction=efc,
        ef_search=t.int_list("ef_search", default=[40], minimum=1, maximum=1000),
        overfetch=t.int_list("overfetch", default=[1, 2, 4, 8], minimum=1, maximum=100),
        variants=tuple(dict.fromkeys(variants)),
        k=t.integer("k", default=10, minimum=1, maximum=100),
    )


def check_k(spec: QuantizationSpec, *, where: str, query_k: int) -> None:
    """The study's k must not exceed [query] k: the ground truth is that deep."""
    if spec.k > query_k:
        raise SpecError(
            f"{where}: [quantization] k = {spec.k} exceeds [query] k = {query_k}, the "
            "depth of the exact ground truth; raise [query] k or lower [quantization] k"
        )


def dim_problem(spec: QuantizationSpec, dim: int, dim_from: str) -> str | None:
    """Why a variant cannot index ``dim``-dimensional vectors (pgvector's per-type
    limits), or None; ``dim_from`` says where the dimension comes from."""
    for variant in spec.variants:
        vtype = VARIANT_TYPES[variant]
        if dim > INDEX_MAX_DIM[vtype]:
            return (
                f"[quantization] variants includes {variant!r}, an HNSW index on "
                f"{vtype}, which pgvector limits to {INDEX_MAX_DIM[vtype]:,} dimensions "
                f"({dim_from}); remove {variant!r} from variants"
            )
    return None
