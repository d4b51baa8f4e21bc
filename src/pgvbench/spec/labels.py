"""[[dataset.labels]]: attribute columns generated beside synthetic vectors.

Each entry is one column. Labels (kind "int" or "text") and tags ("text[]", "int[]") follow
a Zipf law over ``values`` distinct values, tied to where a row sits in the vector space
(``locality``); timestamps are uniform over a span. The generator is
datasets/synthetic_labels.py; this module only validates the table into records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from .model import IDENT_RE, MAX_IDENTIFIER_BYTES
from .table import Table

LABEL_KINDS = ("int", "text")
TAG_KINDS = ("text[]", "int[]")
KINDS = (*LABEL_KINDS, "timestamp", *TAG_KINDS)
#: how each query gets a value: the value of a row in its own region of the vector space,
#: the value of a row drawn at random (so by frequency), or none
QUERY_MODES = ("own", "frequency", "none")
MAX_COLUMNS = 16
_RESERVED = ("id", "embedding")

# kind -> its keys and their defaults (besides name, kind and queries)
_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "label": {"values": 1000, "skew": 1.1, "locality": 0.8, "queries": "own"},
    "tags": {"values": 200, "skew": 1.0, "locality": 0.8, "per_row": 3, "queries": "own"},
    "timestamp": {"start": "2024-01-01", "days": 365, "queries": "none"},
}


def _family(kind: str) -> str:
    return "label" if kind in LABEL_KINDS else "tags" if kind in TAG_KINDS else "timestamp"


@dataclasses.dataclass(frozen=True, kw_only=True)
class LabelsSpec:
    """One generated column. Keys a kind does not use keep their zero value."""

    name: str
    kind: str = "int"
    values: int = 0  # distinct labels, or the tag vocabulary
    skew: float = 0.0  # Zipf exponent of the value frequencies (0: all equally common)
    locality: float = 0.0  # share of rows whose value follows their region of the space
    per_row: int = 0  # tags: mean tags per row (1 .. 2 x per_row - 1, uniform)
    start: str = ""  # timestamp: ISO start of the span (UTC)
    days: int = 0  # timestamp: length of the span
    queries: str = "none"  # own | frequency | none


def parse_labels(t: Table) -> tuple[LabelsSpec, ...]:
    """The [[dataset.labels]] entries of a synthetic [dataset] (none when absent)."""
    raw = t.data.get("labels", [])
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        t.fail("labels", "must be an array of tables: [[dataset.labels]] name = ... kind = ...")
    if len(raw) > MAX_COLUMNS:
        t.fail("labels", f"has {len(raw)} columns; at most {MAX_COLUMNS} are generated")
    out: list[LabelsSpec] = []
    for i, item in enumerate(raw):
        spec = _one(Table(t.where, f"dataset.labels #{i + 1}", item))
        if spec.name in (s.name for s in out):
            t.fail("labels", f"names the column {spec.name!r} twice")
        out.append(spec)
    return tuple(out)


def _one(t: Table) -> LabelsSpec:
    kind = t.choice("kind", KINDS, default="int")
    family = _family(kind)
    defaults = _DEFAULTS[family]
    t.only(["name", "kind", *defaults])
    name = t.string("name", required=True)
    if not IDENT_RE.fullmatch(name) or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        t.fail(
            "name",
            f"= {name!r} must be a column name: lower-case letters, digits and _, starting "
            f"with a letter, at most {MAX_IDENTIFIER_BYTES} bytes",
        )
    if name in _RESERVED:
        t.fail("name", f'= {name!r} is taken by pgvbench\'s "id" and "embedding" columns')
    modes = QUERY_MODES if family != "timestamp" else ("frequency", "none")
    queries = t.choice("queries", modes, default=defaults["queries"])
    if family == "timestamp":
        return LabelsSpec(
            name=name,
            kind=kind,
            start=_start(t, defaults["start"]),
            days=t.integer("days", default=defaults["days"], minimum=1, maximum=100_000),
            queries=queries,
        )
    return LabelsSpec(
        name=name,
        kind=kind,
        values=t.integer("values", default=defaults["values"], minimum=1, maximum=10_000_000),
        skew=t.number("skew", default=defaults["skew"], minimum=0.0, maximum=5.0),
        locality=t.number("locality", default=defaults["locality"], minimum=0.0, maximum=1.0),
        per_row=(
            t.integer("per_row", default=defaults["per_row"], minimum=1, maximum=64)
            if family == "tags"
            else 0
        ),
        queries=queries,
    )


def _start(t: Table, default: str) -> str:
    """The span's start as an ISO string (UTC): a TOML date, datetime or ISO string."""
    value = t.data.get("start", default)
    moment: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):  # not ISO: refused below
            moment = dt.datetime.fromisoformat(value)
    if moment is None:
        return str(t.fail("start", f"= {value!r} must be a date or time, e.g. 2024-01-01"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat()
