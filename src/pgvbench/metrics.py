"""Distance metrics and how each maps to pgvector operators and opclasses."""

from __future__ import annotations

import enum


class Metric(enum.StrEnum):
    """A distance metric; the value is the spelling used in spec files."""

    L2 = "l2"
    COSINE = "cosine"
    INNER_PRODUCT = "ip"

    @property
    def operator(self) -> str:
        """pgvector distance operator (ascending = nearer)."""
        return {"l2": "<->", "cosine": "<=>", "ip": "<#>"}[self.value]

    @property
    def opclass_suffix(self) -> str:
        """Suffix of the opclass, e.g. ``vector_l2_ops``."""
        return {"l2": "l2_ops", "cosine": "cosine_ops", "ip": "ip_ops"}[self.value]

    def opclass(self, vector_type: str = "vector") -> str:
        return f"{vector_type}_{self.opclass_suffix}"


#: ann-benchmarks HDF5 ``distance`` attribute -> Metric
ANN_BENCHMARKS_DISTANCES: dict[str, Metric] = {
    "euclidean": Metric.L2,
    "l2": Metric.L2,
    "angular": Metric.COSINE,
    "cosine": Metric.COSINE,
    "dot": Metric.INNER_PRODUCT,
    "ip": Metric.INNER_PRODUCT,
}
