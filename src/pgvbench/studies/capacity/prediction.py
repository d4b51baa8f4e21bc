"""The capacity fits' records: a prediction with its interval and extrapolation factor, the
held-out check, the rule that carries bytes to another dimension (fits.py fits; these are
what it returns and what results.json keeps)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from .._fields import float_or, int_or, opt_float

DEFAULT_LEVEL = 0.95  # two-sided prediction intervals
EXTRAPOLATION_LIMIT = 100.0  # x the largest measured level: beyond it, flagged
# Bytes per dimension of one stored vector: pgvector's vector is float4, halfvec float2
BYTES_PER_DIM = {"vector": 4, "halfvec": 2}


def extrapolation(n_target: float, n_largest: float) -> float:
    """How far beyond the largest measured level ``n_target`` lies (n_target / n_largest)."""
    if n_largest <= 0:
        raise ValueError(f"the largest measured level must be positive, not {n_largest}")
    return float(n_target) / float(n_largest)


def json_number(value: float) -> float | None:
    """JSON form of a float: infinities and NaN become null."""
    return float(value) if math.isfinite(value) else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Prediction:
    """A predicted value with its prediction interval at ``level`` (low/high may be
    infinite: too few levels to bound it) and how far it extrapolates."""

    value: float
    low: float
    high: float
    level: float = DEFAULT_LEVEL
    extrapolation: float = 1.0  # n / the largest level the fit measured

    @property
    def beyond_limit(self) -> bool:
        """Further than EXTRAPOLATION_LIMIT x the largest measured level."""
        return self.extrapolation > EXTRAPOLATION_LIMIT

    @property
    def bounded(self) -> bool:
        """False when too few levels were left to bound the interval."""
        return math.isfinite(self.high)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": json_number(self.value),
            "low": json_number(self.low),
            "high": json_number(self.high),
            "level": self.level,
            "extrapolation": json_number(self.extrapolation),
            "beyond_limit": self.beyond_limit,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        low, high = opt_float(data, "low"), opt_float(data, "high")
        return cls(
            value=float_or(data, "value", math.nan),
            low=-math.inf if low is None else low,
            high=math.inf if high is None else high,
            level=float_or(data, "level", DEFAULT_LEVEL),
            extrapolation=float_or(data, "extrapolation", 1.0),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class HoldOut:
    """The largest level held out and predicted from the others."""

    rows: int
    predicted: Prediction
    measured: float  # mean of the held-out level's measurements
    tolerance: float  # relative, e.g. 0.15

    @property
    def relative_error(self) -> float:
        """(predicted - measured) / measured: positive when the fit overestimates."""
        return self.predicted.value / self.measured - 1.0 if self.measured else math.inf

    @property
    def within(self) -> bool:
        return abs(self.relative_error) <= self.tolerance

    @property
    def inside_interval(self) -> bool:
        return self.predicted.low <= self.measured <= self.predicted.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "predicted": self.predicted.to_dict(),
            "measured": json_number(self.measured),
            "tolerance": self.tolerance,
            "relative_error": json_number(self.relative_error),
            "within": self.within,
            "inside_interval": self.inside_interval,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HoldOut:
        predicted = data.get("predicted")
        return cls(
            rows=int_or(data, "rows", 0),
            predicted=Prediction.from_dict(predicted if isinstance(predicted, Mapping) else {}),
            measured=float_or(data, "measured", math.nan),
            tolerance=float_or(data, "tolerance", 0.0),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class DimRescale:
    """Bytes measured at one dimension, carried to another: not measured there.

    Each stored copy of a vector takes 8 + BYTES_PER_DIM·dim bytes (varlena header 4, dim
    2, unused 2, then the values); heap rows hold one copy, HNSW element tuples and
    IVFFlat list tuples one copy each. So the fitted bytes per row change by
    ``copies · bytes_per_dim · (target_dim - measured_dim)`` and the intercept stays. Page
    packing is not modelled (heap vectors over ~2 kB move to TOAST, HNSW pages hold fewer
    large elements): measure at the target dimension when the figure matters.
    """

    measured_dim: int
    target_dim: int
    bytes_per_dim: int = BYTES_PER_DIM["vector"]
    copies: int = 1

    @property
    def bytes_per_row(self) -> float:
        """Added to the fitted bytes per row (negative for a smaller dimension)."""
        return float(self.copies * self.bytes_per_dim * (self.target_dim - self.measured_dim))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "bytes_per_row": self.bytes_per_row}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DimRescale:
        return cls(
            measured_dim=int_or(data, "measured_dim", 0),
            target_dim=int_or(data, "target_dim", 0),
            bytes_per_dim=int_or(data, "bytes_per_dim", BYTES_PER_DIM["vector"]),
            copies=int_or(data, "copies", 1),
        )
