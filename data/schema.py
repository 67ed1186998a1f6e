"""Shared vocabulary of the data layer: column names, disaggregation values and the typed ``Filters``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Literal

#: Province code used for rows that are national only (not allocated to a province).
NATIONAL = "00"

#: Disaggregation columns of the tidy observation table, in display order.
DIMENSIONS: tuple[str, ...] = (
    "sex",
    "age_group",
    "nationality",
    "exploitation_type",
    "destination",
    "channel",
    "service",
    "topic",
    "role",
)

#: Value stored in a disaggregation column when the row is not broken down by it.
NOT_DISAGGREGATED = ""

#: Closed vocabularies. ``nationality`` is ISO 3166-1 alpha-3 and ``destination`` is alpha-3 or a
#: province code; both are checked by pattern in :mod:`data.ingest`, not listed here.
ALLOWED_VALUES: dict[str, tuple[str, ...]] = {
    "sex": ("female", "male", "other", "unknown"),
    "age_group": ("child", "adult", "unknown"),
    "exploitation_type": (
        "sexual",
        "labour",
        "forced_criminality",
        "domestic_servitude",
        "begging",
        "forced_marriage",
        "other",
        "unknown",
    ),
    "channel": ("regular", "irregular", "unknown"),
    "service": ("shelter", "legal_aid", "medical", "psychosocial", "reintegration", "unknown"),
    "topic": ("tip_safe_migration", "market_linkage", "livelihood", "unknown"),
    "role": ("police", "prosecutor", "judge", "social_worker", "other", "unknown"),
}

#: Source label carried by every synthetic demo row.
SYNTHETIC_SOURCE = "synthetic-demo"

#: Observation columns in storage order.
OBSERVATION_COLUMNS: tuple[str, ...] = (
    "indicator",
    "province",
    "period",
    *DIMENSIONS,
    "value",
    "partner",
    "source",
    "note",
    "batch_id",
)

#: Columns that identify one observation (a duplicate key is an import error).
KEY_COLUMNS: tuple[str, ...] = ("indicator", "province", "period", *DIMENSIONS)

Granularity = Literal["month", "quarter", "year"]
GRANULARITIES: tuple[str, ...] = ("month", "quarter", "year")


def month_start(value: dt.date) -> dt.date:
    """Return the first day of the month of ``value``."""
    return dt.date(value.year, value.month, 1)


def add_months(value: dt.date, months: int) -> dt.date:
    """Return the first day of the month ``months`` after (or before) ``value``'s month."""
    index = value.year * 12 + value.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(start: dt.date, end: dt.date) -> int:
    """Number of months from ``start`` to ``end`` inclusive (both month starts)."""
    return (end.year - start.year) * 12 + end.month - start.month + 1


@dataclass(frozen=True)
class Filters:
    """What a view asks the data layer for.

    Parameters
    ----------
    indicator
        Catalog id, e.g. ``"victims_identified"``.
    provinces
        Province codes to keep; an empty tuple means all 25 provinces.
    start, end
        First and last month (inclusive, any day of the month is accepted and truncated); ``None``
        means unbounded.
    granularity
        Period bucket of time series: month, quarter or year.
    where
        Disaggregation filters, e.g. ``{"sex": ("female",)}``; a dimension absent from the mapping is
        not filtered.
    """

    indicator: str
    provinces: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None
    granularity: Granularity = "month"
    where: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {self.granularity!r}")
        if self.start is not None:
            object.__setattr__(self, "start", month_start(self.start))
        if self.end is not None:
            object.__setattr__(self, "end", month_start(self.end))
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start:%Y-%m} is after end {self.end:%Y-%m}")
        object.__setattr__(self, "provinces", tuple(sorted(set(self.provinces))))
        where = self.where.items() if isinstance(self.where, dict) else self.where
        clean: list[tuple[str, tuple[str, ...]]] = []
        for dim, values in sorted(where):
            if dim not in DIMENSIONS:
                raise ValueError(f"unknown disaggregation {dim!r}; expected one of {', '.join(DIMENSIONS)}")
            if values:
                clean.append((dim, tuple(sorted(set(values)))))
        object.__setattr__(self, "where", tuple(clean))

    @property
    def where_dict(self) -> dict[str, tuple[str, ...]]:
        """Disaggregation filters as a dict."""
        return dict(self.where)

    def with_(self, **changes: object) -> Filters:
        """Return a copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)  # type: ignore[arg-type]
