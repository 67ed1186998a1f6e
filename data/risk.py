"""CTIP risk index: an INFORM-style, adjustable composite of hazard, vulnerability and coping per province.

Everything the index does is set in ``data/reference/risk.toml`` (read by :func:`load_risk_config`):
which indicators enter each of the three dimensions, how each is computed from the store, its direction,
transform, caps and weight, the aggregation rule, the missing-data rule, the classes and the
weight-uncertainty settings. The Methodology page and ``GET /api/v1/risk/methodology`` render
:func:`methodology`, built from the same configuration object, so the text cannot disagree with the
numbers.

Pipeline
--------
1. :func:`raw_indicators` computes each indicator per province over a period through
   :func:`data.queries.aggregate` and :func:`data.queries.population` (the dashboard's own rules:
   flows summed over the period, stocks at their last month at or before its end). No data is ``NaN``.
2. :func:`normalise` transforms (``log1p`` or ``linear``), caps at the configured percentiles of the
   provinces with data, and scales min–max to 0–10 with 10 = more risk.
3. :func:`compute_index` takes a weighted arithmetic mean within each dimension over the indicators
   with data, then a weighted geometric mean across the dimensions (``exp(Σ w ln(d + 1) / Σ w) − 1``,
   INFORM's rule) or, for comparison, a weighted arithmetic mean; it classifies and ranks.
4. :func:`rank_uncertainty` perturbs every weight and reports the 5th–95th percentile rank.

:func:`risk_table` chains the four for the API and the UI. The module needs pandas and numpy only.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from data.catalog import UnknownIndicatorError
from data.catalog import indicator as get_indicator
from data.gazetteer import PROVINCE_CODES, provinces
from data.queries import aggregate, population
from data.reference import reference_path
from data.schema import ALLOWED_VALUES, NOT_DISAGGREGATED, Filters, add_months, month_start
from data.store import Store

#: The bundled configuration file.
RISK_CONFIG_PATH: Path = reference_path("risk.toml")
#: The three dimensions, in display order (INFORM: hazard & exposure, vulnerability, lack of coping capacity).
DIMENSION_KEYS: tuple[str, ...] = ("hazard", "vulnerability", "coping")
#: Formulas an indicator may use (see :attr:`IndicatorSpec.formula_text`).
FORMULAS: tuple[str, ...] = (
    "value",
    "rate_per_1000",
    "rate_per_100k",
    "share",
    "ratio",
    "gap",
    "static_flag",
)
#: Transforms applied before capping.
TRANSFORMS: tuple[str, ...] = ("log1p", "linear")
#: Rules to combine the dimension scores.
AGGREGATIONS: tuple[str, ...] = ("geometric", "arithmetic")
#: Reliability flags of a province's score, best first.
RELIABILITY: tuple[str, ...] = ("full", "partial", "insufficient")
#: Gazetteer attributes a ``static_flag`` may read.
FLAG_ATTRIBUTES: tuple[str, ...] = ("border", "coastal")
#: Decimals scores are rounded to before ranking, so float noise does not split ties.
RANK_DECIMALS = 9
#: Longest period the index accepts, in months.
MAX_MONTHS = 120

Aggregation = Literal["geometric", "arithmetic"]
Where = tuple[tuple[str, tuple[str, ...]], ...]

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_ALPHA3 = re.compile(r"^[A-Z]{3}$")
_PROVINCE_CODE = re.compile(r"^(0[1-9]|1[0-9]|2[0-5])$")
_RATE_FACTORS = {"rate_per_1000": 1_000.0, "rate_per_100k": 100_000.0}
_SOURCES_NEEDED = {
    "value": 1,
    "rate_per_1000": 1,
    "rate_per_100k": 1,
    "share": 1,
    "ratio": 2,
    "gap": 2,
    "static_flag": 0,
}

# -- rule texts (rendered by the Methodology page and the API from methodology()) -------------------------
NORMALISATION_STEPS: tuple[str, ...] = (
    "Transform: log1p(x) = ln(1 + x) for skewed counts and rates, the value itself for 'linear'.",
    "Cap: the transformed values are clipped to the configured lower and upper percentiles of the "
    "provinces with data (linear interpolation between order statistics; [0, 100] = no capping).",
    "Scale: 10 × (capped − lower cap) ÷ (upper cap − lower cap), so 0–10 across the provinces with data.",
    "Direction: indicators where higher means less risk (direction −1) are reversed: 10 − scaled value.",
)
NORMALISATION_DEGENERATE = (
    "When the two caps coincide (most provinces share one value) the indicator cannot grade provinces: "
    "provinces beyond the caps on the risk side score 10 and all others 0; when every province with data "
    "has the same value, all score 0 (the indicator adds no relative risk)."
)
WITHIN_DIMENSION_RULE = (
    "Weighted arithmetic mean of the normalised indicators of the dimension that have data; the weights "
    "are renormalised over those indicators."
)
GEOMETRIC_RULE = (
    "Weighted geometric mean of the three dimension scores, computed as exp(Σ wᵢ·ln(dᵢ + 1) ÷ Σ wᵢ) − 1 "
    "(INFORM's rule; adding 1 keeps a dimension score of 0 from forcing the index to 0). A low score in "
    "one dimension is not fully offset by high scores in the others."
)
ARITHMETIC_RULE = "Weighted arithmetic mean of the three dimension scores, Σ wᵢ·dᵢ ÷ Σ wᵢ (for comparison)."
RANK_RULE = (
    "Rank 1 = highest score; equal scores (to 9 decimals) share the lowest rank; provinces without a "
    "score have no rank."
)
RELIABILITY_TEXT: dict[str, str] = {
    "full": "Every indicator of every dimension has data.",
    "partial": "Some indicators have no data, but every dimension has at least the required share; the "
    "missing indicators are left out of their dimension's mean (never counted as 0).",
    "insufficient": "At least one dimension has fewer indicators with data than the required share, so "
    "the dimension and the index are not scored (INFORM does not score an incomplete profile).",
}
PERIOD_RULE = (
    "Flows (departures, victims, trainings …) are summed over the period; stocks (households at risk, "
    "watch groups, reference figures) take their last value at or before the end of the period; rates "
    "divide by the 2019 census population. A province that reported an indicator in the period but no "
    "row matching an indicator's filter counts 0 for the filtered part; a province that reported nothing "
    "is missing."
)


class RiskConfigError(ValueError):
    """The risk configuration is malformed; the message names the entry and field at fault."""


# -- configuration ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DimensionSpec:
    """One of the three dimensions.

    Attributes
    ----------
    key
        ``"hazard"``, ``"vulnerability"`` or ``"coping"``.
    label_en
        Display name.
    weight
        Default weight across dimensions (>= 0).
    description
        One sentence on what the dimension measures.
    """

    key: str
    label_en: str
    weight: float
    description: str


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator of the index: how it is computed, normalised and weighted.

    Attributes
    ----------
    key
        Snake_case id (CSV columns ``<key>_raw``, ``<key>_normalised``; API ``iweights``).
    label_en
        Display name.
    dimension
        One of :data:`DIMENSION_KEYS`.
    formula
        One of :data:`FORMULAS`.
    sources
        Catalog indicator ids: ``(a,)`` or ``(a, b)``; empty for ``static_flag``.
    direction
        ``1``: higher means more risk; ``-1``: higher means less risk.
    transform
        ``"log1p"`` or ``"linear"``.
    caps
        Lower and upper percentiles (0–100) at which the transformed values are capped.
    weight
        Default weight within the dimension (>= 0).
    rationale
        Why this indicator, in this direction.
    where, exclude, numerator_where, denominator_where, boost_where
        Disaggregation filters as sorted ``((dimension, (values, ...)), ...)`` tuples.
    boost
        Extra multiple of the ``boost_where`` subset added in a rate.
    factor
        Multiplier of a ``ratio``.
    min_denominator
        A share, ratio or gap with a smaller denominator is missing.
    numerator_missing
        ``"missing"`` or ``"zero"`` (ratio and gap: numerator without data counts 0 when the
        denominator is known).
    attribute, contains
        ``static_flag``: gazetteer attribute and, for ``border``, the ISO3 country.
    """

    key: str
    label_en: str
    dimension: str
    formula: str
    sources: tuple[str, ...]
    direction: int
    transform: str
    caps: tuple[float, float]
    weight: float
    rationale: str
    where: Where = ()
    exclude: Where = ()
    numerator_where: Where = ()
    denominator_where: Where = ()
    boost_where: Where = ()
    boost: float = 0.0
    factor: float = 1.0
    min_denominator: float = 0.0
    numerator_missing: str = "missing"
    attribute: str | None = None
    contains: str | None = None

    @property
    def formula_text(self) -> str:
        """The formula in words and symbols, as the Methodology page shows it."""
        a = self.sources[0] if self.sources else ""
        if self.formula == "value":
            ind = get_indicator(a)
            parts = [get_indicator(p) for p in (ind.numerator, ind.denominator)] if ind.is_ratio else [ind]
            if all(p.time_aggregation == "last" for p in parts):
                when = "latest figure at or before the end of the period"
            elif ind.aggregation == "mean":
                when = "mean over the period"
            else:
                when = "over the period"
            return f"{_term_text(a, self.where, self.exclude)}, {when}"
        if self.formula in _RATE_FACTORS:
            per = "1,000" if self.formula == "rate_per_1000" else "100,000"
            base = _term_text(a, self.where, self.exclude)
            if self.boost and self.boost_where:
                boosted = _term_text(a, _merge_where(self.where, self.boost_where), self.exclude)
                base = f"({base} + {_num(self.boost)} × {boosted})"
            return f"{base} ÷ population (census 2019) × {per}"
        if self.formula == "share":
            num = _term_text(a, _merge_where(self.where, self.numerator_where), self.exclude)
            den = _term_text(a, _merge_where(self.where, self.denominator_where), self.exclude)
            text = f"100 × {num} ÷ {den}"
        elif self.formula == "ratio":
            b = self.sources[1]
            lead = "" if self.factor == 1 else f"{_num(self.factor)} × "
            text = (
                f"{lead}{_term_text(a, self.where, self.exclude)} ÷ {_term_text(b, self.where, self.exclude)}"
            )
        elif self.formula == "gap":
            b = self.sources[1]
            text = (
                f"100 × (1 − {_term_text(a, self.where, self.exclude)} ÷ "
                f"{_term_text(b, self.where, self.exclude)}), kept within 0–100"
            )
        else:  # static_flag
            if self.attribute == "border":
                return f"1 if the province has a land border with {self.contains}, else 0"
            return f"1 if the province is {self.attribute}, else 0"
        if self.min_denominator:
            text += f"; missing when the denominator is below {_num(self.min_denominator)}"
        if self.numerator_missing == "zero":
            text += "; a numerator without data counts 0 when the denominator is known"
        return text


@dataclass(frozen=True)
class RiskClass:
    """One class of the 0–10 score: ``lower <= score < upper`` (``upper`` ``None`` for the last)."""

    key: str
    label_en: str
    lower: float
    upper: float | None


@dataclass(frozen=True)
class RiskConfig:
    """The whole index configuration (see ``data/reference/risk.toml``).

    Attributes
    ----------
    dimensions
        The three dimensions in :data:`DIMENSION_KEYS` order.
    indicators
        Indicator specs, grouped by dimension in file order.
    aggregation
        Default rule across dimensions, ``"geometric"`` or ``"arithmetic"``.
    min_share_available
        A dimension is scored when at least this share of its weighted indicators has data.
    classes
        The five classes, lowest first.
    default_months
        Default period length in months.
    draws, spread, seed, percentiles
        Weight-uncertainty settings: number of draws, relative spread of the uniform factor, random
        seed, and the two percentile ranks reported.
    path
        The file the configuration was read from.
    """

    dimensions: tuple[DimensionSpec, ...]
    indicators: tuple[IndicatorSpec, ...]
    aggregation: str
    min_share_available: float
    classes: tuple[RiskClass, ...]
    default_months: int
    draws: int
    spread: float
    seed: int
    percentiles: tuple[float, float] = (5.0, 95.0)
    path: str = ""

    def dimension(self, key: str) -> DimensionSpec:
        """Return the dimension ``key`` (``KeyError`` if unknown)."""
        for dim in self.dimensions:
            if dim.key == key:
                return dim
        raise KeyError(key)

    def indicator(self, key: str) -> IndicatorSpec:
        """Return the indicator ``key`` (``KeyError`` if unknown)."""
        for spec in self.indicators:
            if spec.key == key:
                return spec
        raise KeyError(key)

    def indicators_in(self, dimension: str) -> tuple[IndicatorSpec, ...]:
        """Return the indicators of ``dimension`` in file order."""
        return tuple(s for s in self.indicators if s.dimension == dimension)

    @property
    def indicator_keys(self) -> tuple[str, ...]:
        """All indicator keys in order."""
        return tuple(s.key for s in self.indicators)

    @property
    def source_ids(self) -> tuple[str, ...]:
        """Catalog ids the index reads, first use first."""
        return tuple(dict.fromkeys(src for s in self.indicators for src in s.sources))

    def dimension_weights(self) -> dict[str, float]:
        """Default dimension weights by key."""
        return {d.key: d.weight for d in self.dimensions}

    def indicator_weights(self) -> dict[str, float]:
        """Default indicator weights by key."""
        return {s.key: s.weight for s in self.indicators}

    def classify(self, score: float | None) -> str | None:
        """Return the class key of ``score`` (``None`` for a missing score)."""
        if score is None or not math.isfinite(score):
            return None
        for cls in self.classes:
            if cls.upper is None or score < cls.upper:
                return cls.key
        return self.classes[-1].key


def _num(value: float) -> str:
    return f"{value:g}"


def _merge_where(a: Where, b: Where) -> Where:
    return tuple(sorted((*a, *b)))


def _term_text(source: str, where: Where, exclude: Where = ()) -> str:
    parts = [f"{dim} = {'/'.join(values)}" for dim, values in where]
    parts += [f"{dim} ≠ {'/'.join(values)}" for dim, values in exclude]
    return f"{source}[{'; '.join(parts)}]" if parts else source


_TOP_KEYS = {
    "schema_version",
    "aggregation",
    "period",
    "missing",
    "classes",
    "uncertainty",
    "dimension",
    "indicator",
}
_DIM_FIELDS = {"key", "label_en", "weight", "description"}
_IND_REQUIRED = (
    "key",
    "label_en",
    "dimension",
    "formula",
    "direction",
    "transform",
    "caps",
    "weight",
    "rationale",
)
_IND_FIELDS = {
    *_IND_REQUIRED,
    "sources",
    "where",
    "exclude",
    "numerator_where",
    "denominator_where",
    "boost_where",
    "boost",
    "factor",
    "min_denominator",
    "numerator_missing",
    "attribute",
    "contains",
}
_WHERE_FIELDS = ("where", "exclude", "numerator_where", "denominator_where", "boost_where")


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_where(raw: Any, fail: Any, name: str, sources: Sequence[str]) -> Where:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise fail(name, "must be a table of dimension = [values]")
    out: list[tuple[str, tuple[str, ...]]] = []
    for dim, values in raw.items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise fail(name, f"{dim!r} must list one or more values")
        for src in sources:
            ind = get_indicator(src)
            if ind.is_ratio:
                raise fail(name, f"{src} is a ratio; use formula 'ratio' with its parts to filter")
            if ind.aggregation != "sum":
                raise fail(name, f"{src} is a mean; only summed indicators can be filtered here")
            if dim not in ind.disaggregations:
                has = ", ".join(ind.disaggregations) or "none"
                raise fail(name, f"{src} is not disaggregated by {dim!r} (it has {has})")
        for value in values:
            if dim in ALLOWED_VALUES:
                ok = value in ALLOWED_VALUES[dim]
            elif dim == "nationality":
                ok = bool(_ALPHA3.match(value))
            else:
                ok = bool(_ALPHA3.match(value) or _PROVINCE_CODE.match(value))
            if not ok:
                raise fail(name, f"{value!r} is not a valid {dim}")
        out.append((dim, tuple(sorted(set(values)))))
    return tuple(sorted(out))


def _parse_indicator(raw: Any, n: int, path: Path, dims: set[str]) -> IndicatorSpec:
    ident = raw.get("key") if isinstance(raw, Mapping) else None

    def fail(fld: str, problem: str) -> RiskConfigError:
        who = f"indicator {ident!r}" if isinstance(ident, str) and ident else f"indicator #{n}"
        return RiskConfigError(f"{path.name}: {who}, field {fld!r}: {problem}")

    if not isinstance(raw, Mapping):
        raise fail("key", "each [[indicator]] must be a table")
    unknown = sorted(set(raw) - _IND_FIELDS)
    if unknown:
        raise fail(unknown[0], "unknown field")
    for fld in _IND_REQUIRED:
        if fld not in raw:
            raise fail(fld, "missing")
    for fld in ("key", "label_en", "rationale"):
        if not isinstance(raw[fld], str) or not raw[fld].strip():
            raise fail(fld, "must be a non-empty string")
    if not _KEY.match(raw["key"]):
        raise fail("key", "must be snake_case: lower-case letters, digits and underscores")
    if raw["dimension"] not in dims:
        raise fail("dimension", f"{raw['dimension']!r} is not one of {', '.join(DIMENSION_KEYS)}")
    formula = raw["formula"]
    if formula not in FORMULAS:
        raise fail("formula", f"{formula!r} is not one of {', '.join(FORMULAS)}")
    direction = raw["direction"]
    if isinstance(direction, bool) or direction not in (1, -1):
        raise fail(
            "direction", f"must be 1 (higher = more risk) or -1 (higher = less risk), not {direction!r}"
        )
    if raw["transform"] not in TRANSFORMS:
        raise fail("transform", f"{raw['transform']!r} is not one of {', '.join(TRANSFORMS)}")
    caps = raw["caps"]
    if (
        not isinstance(caps, list)
        or len(caps) != 2
        or not all(_real(c) for c in caps)
        or not 0 <= caps[0] < caps[1] <= 100
    ):
        raise fail("caps", f"must be [lower, upper] percentiles with 0 <= lower < upper <= 100, not {caps!r}")
    weight = raw["weight"]
    if not _real(weight) or weight < 0:
        raise fail("weight", f"must be a finite number >= 0, not {weight!r}")

    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise fail("sources", "must be a list of catalog indicator ids")
    if len(sources) != _SOURCES_NEEDED[formula]:
        raise fail(
            "sources", f"formula {formula!r} needs {_SOURCES_NEEDED[formula]} source(s), got {len(sources)}"
        )
    for src in sources:
        try:
            ind = get_indicator(src)
        except UnknownIndicatorError as exc:
            raise fail("sources", str(exc)) from exc
        if ind.is_ratio and formula != "value":
            raise fail("sources", f"{src} is a ratio; use formula 'value' for it or its parts here")
    if formula in ("value", *_RATE_FACTORS) and sources:
        higher_is = get_indicator(sources[0]).higher_is
        if (higher_is == "worse" and direction == -1) or (higher_is == "better" and direction == 1):
            raise fail(
                "direction", f"{direction} contradicts the catalog: higher {sources[0]} is {higher_is}"
            )

    wheres: dict[str, Where] = {}
    for fld in _WHERE_FIELDS:
        wheres[fld] = _parse_where(raw.get(fld), fail, fld, sources)
    if formula == "share" and not wheres["numerator_where"]:
        raise fail("numerator_where", "required for formula 'share'")
    if formula != "share":
        for fld in ("numerator_where", "denominator_where"):
            if wheres[fld]:
                raise fail(fld, "only allowed for formula 'share'")
    for fld in ("numerator_where", "denominator_where", "boost_where"):
        overlap = {d for d, _ in wheres[fld]} & {d for d, _ in wheres["where"]}
        if overlap:
            raise fail(fld, f"filters {', '.join(sorted(overlap))} already filtered by 'where'")
    if formula == "static_flag" and any(wheres.values()):
        raise fail("where", "a static_flag reads the gazetteer, not the store")

    boost = raw.get("boost", 0.0)
    if "boost" in raw or wheres["boost_where"]:
        if formula not in _RATE_FACTORS:
            raise fail("boost", "only allowed for rate formulas")
        if not _real(boost) or boost < 0 or not wheres["boost_where"]:
            raise fail("boost", "needs boost_where and a finite number >= 0")
    factor = raw.get("factor", 1.0)
    if "factor" in raw and (formula != "ratio" or not _real(factor) or factor <= 0):
        raise fail("factor", "only allowed for formula 'ratio', as a positive number")
    min_den = raw.get("min_denominator", 0.0)
    if "min_denominator" in raw and (
        formula not in ("share", "ratio", "gap") or not _real(min_den) or min_den < 0
    ):
        raise fail("min_denominator", "only allowed for share, ratio and gap, as a number >= 0")
    numerator_missing = raw.get("numerator_missing", "missing")
    if numerator_missing not in ("missing", "zero") or (
        "numerator_missing" in raw and formula not in ("ratio", "gap")
    ):
        raise fail("numerator_missing", "must be 'missing' or 'zero', for ratio and gap only")

    attribute, contains = raw.get("attribute"), raw.get("contains")
    if formula == "static_flag":
        if attribute not in FLAG_ATTRIBUTES:
            raise fail("attribute", f"must be one of {', '.join(FLAG_ATTRIBUTES)}, not {attribute!r}")
        if attribute == "border" and not (isinstance(contains, str) and _ALPHA3.match(contains)):
            raise fail("contains", "must be an ISO 3166-1 alpha-3 code for attribute 'border'")
        if attribute != "border" and contains is not None:
            raise fail("contains", "only allowed for attribute 'border'")
    elif attribute is not None or contains is not None:
        raise fail("attribute", "only allowed for formula 'static_flag'")

    return IndicatorSpec(
        key=raw["key"],
        label_en=raw["label_en"].strip(),
        dimension=raw["dimension"],
        formula=formula,
        sources=tuple(sources),
        direction=int(direction),
        transform=raw["transform"],
        caps=(float(caps[0]), float(caps[1])),
        weight=float(weight),
        rationale=" ".join(raw["rationale"].split()),
        where=wheres["where"],
        exclude=wheres["exclude"],
        numerator_where=wheres["numerator_where"],
        denominator_where=wheres["denominator_where"],
        boost_where=wheres["boost_where"],
        boost=float(boost),
        factor=float(factor),
        min_denominator=float(min_den),
        numerator_missing=numerator_missing,
        attribute=attribute,
        contains=contains,
    )


def _parse_config(data: Mapping[str, Any], path: Path) -> RiskConfig:
    def fail(where: str, problem: str) -> RiskConfigError:
        return RiskConfigError(f"{path.name}: {where}: {problem}")

    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(unknown[0], "unknown top-level key")
    if data.get("schema_version", 1) != 1:
        raise fail("schema_version", f"unsupported {data['schema_version']!r}")
    aggregation = data.get("aggregation", "geometric")
    if aggregation not in AGGREGATIONS:
        raise fail("aggregation", f"{aggregation!r} is not one of {', '.join(AGGREGATIONS)}")

    months = data.get("period", {}).get("months", 12)
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise fail("period.months", f"must be a whole number 1–{MAX_MONTHS}, not {months!r}")
    share = data.get("missing", {}).get("min_share_available", 0.5)
    if not _real(share) or not 0 < share <= 1:
        raise fail("missing.min_share_available", f"must be a number in (0, 1], not {share!r}")

    cls = data.get("classes", {})
    thresholds, keys, labels = cls.get("thresholds"), cls.get("keys"), cls.get("labels_en")
    if (
        not isinstance(thresholds, list)
        or not all(_real(t) for t in thresholds)
        or any(b <= a for a, b in zip(thresholds, thresholds[1:], strict=False))
        or not all(0 < t < 10 for t in thresholds)
    ):
        raise fail("classes.thresholds", "must be increasing numbers strictly between 0 and 10")
    if (
        not isinstance(keys, list)
        or not isinstance(labels, list)
        or not len(keys) == len(labels) == len(thresholds) + 1
    ):
        raise fail("classes", "keys and labels_en need one entry more than thresholds")
    if not all(isinstance(k, str) and _KEY.match(k) for k in keys) or len(set(keys)) != len(keys):
        raise fail("classes.keys", "must be distinct snake_case keys")
    bounds = [0.0, *map(float, thresholds), None]
    classes = tuple(
        RiskClass(k, str(lab), bounds[i], bounds[i + 1])  # type: ignore[arg-type]
        for i, (k, lab) in enumerate(zip(keys, labels, strict=True))
    )

    unc = data.get("uncertainty", {})
    draws, spread, seed = unc.get("draws", 300), unc.get("spread", 0.25), unc.get("seed", 0)
    pct = unc.get("percentiles", [5, 95])
    if isinstance(draws, bool) or not isinstance(draws, int) or not 1 <= draws <= 100_000:
        raise fail("uncertainty.draws", f"must be a whole number 1–100000, not {draws!r}")
    if not _real(spread) or not 0 <= spread < 1:
        raise fail("uncertainty.spread", f"must be a number in [0, 1), not {spread!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise fail("uncertainty.seed", f"must be a whole number >= 0, not {seed!r}")
    if (
        not isinstance(pct, list)
        or len(pct) != 2
        or not all(_real(p) for p in pct)
        or not 0 <= pct[0] <= pct[1] <= 100
    ):
        raise fail("uncertainty.percentiles", f"must be [low, high] within 0–100, not {pct!r}")

    raw_dims = data.get("dimension")
    if not isinstance(raw_dims, list):
        raise fail("dimension", "missing [[dimension]] tables")
    dims: dict[str, DimensionSpec] = {}
    for n, raw in enumerate(raw_dims, start=1):
        if not isinstance(raw, Mapping):
            raise fail(f"dimension #{n}", "must be a table")
        extra = sorted(set(raw) - _DIM_FIELDS)
        if extra:
            raise fail(f"dimension #{n}", f"unknown field {extra[0]!r}")
        key = raw.get("key")
        if key not in DIMENSION_KEYS:
            raise fail(f"dimension #{n}", f"key {key!r} is not one of {', '.join(DIMENSION_KEYS)}")
        if key in dims:
            raise fail(f"dimension {key!r}", "listed twice")
        weight = raw.get("weight", 1.0)
        if not _real(weight) or weight < 0:
            raise fail(f"dimension {key!r}", f"weight must be a finite number >= 0, not {weight!r}")
        label, desc = raw.get("label_en"), raw.get("description", "")
        if not isinstance(label, str) or not label.strip() or not isinstance(desc, str):
            raise fail(f"dimension {key!r}", "label_en must be a non-empty string, description a string")
        dims[key] = DimensionSpec(key, label.strip(), float(weight), " ".join(desc.split()))
    if set(dims) != set(DIMENSION_KEYS):
        raise fail("dimension", f"must define exactly {', '.join(DIMENSION_KEYS)}")
    if not any(d.weight > 0 for d in dims.values()):
        raise fail("dimension", "all dimension weights are 0")

    raw_inds = data.get("indicator")
    if not isinstance(raw_inds, list) or not raw_inds:
        raise fail("indicator", "missing [[indicator]] tables")
    specs: list[IndicatorSpec] = []
    for n, raw in enumerate(raw_inds, start=1):
        spec = _parse_indicator(raw, n, path, set(DIMENSION_KEYS))
        if any(s.key == spec.key for s in specs):
            raise fail(f"indicator {spec.key!r}", "duplicate key")
        specs.append(spec)
    for key in DIMENSION_KEYS:
        mine = [s for s in specs if s.dimension == key]
        if not mine:
            raise fail(f"dimension {key!r}", "has no indicator")
        if dims[key].weight > 0 and not any(s.weight > 0 for s in mine):
            raise fail(f"dimension {key!r}", "all its indicator weights are 0")
    ordered = tuple(s for key in DIMENSION_KEYS for s in specs if s.dimension == key)
    return RiskConfig(
        dimensions=tuple(dims[k] for k in DIMENSION_KEYS),
        indicators=ordered,
        aggregation=aggregation,
        min_share_available=float(share),
        classes=classes,
        default_months=months,
        draws=draws,
        spread=float(spread),
        seed=seed,
        percentiles=(float(pct[0]), float(pct[1])),
        path=str(path),
    )


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> RiskConfig:
    file = Path(path)
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise RiskConfigError(f"{file.name}: not valid TOML: {exc}") from exc
    return _parse_config(data, file)


def load_risk_config(path: str | Path = RISK_CONFIG_PATH) -> RiskConfig:
    """Read and validate a risk configuration (cached while the file is unchanged).

    Parameters
    ----------
    path
        A TOML file like the bundled ``data/reference/risk.toml``.

    Returns
    -------
    RiskConfig

    Raises
    ------
    RiskConfigError
        On invalid TOML, an unknown or missing field, an unknown formula, transform or dimension, a
        source that is not in the catalog, a direction other than 1 / -1 (or contradicting the
        catalog's ``higher_is``), bad caps, weights, classes or uncertainty settings.
    FileNotFoundError
        If ``path`` does not exist.
    """
    file = Path(path).resolve()
    stat = file.stat()
    return _load_cached(str(file), stat.st_mtime_ns, stat.st_size)


# -- weights -----------------------------------------------------------------------------------------------
def parse_weights(text: str | None) -> dict[str, float]:
    """Parse ``"hazard:1,vulnerability:1,coping:1"`` into ``{"hazard": 1.0, ...}``.

    Keys are not checked here (see :func:`resolve_weights`); blanks around items are ignored and an
    empty text gives ``{}``.

    Raises
    ------
    ValueError
        Naming the bad item: not ``key:number``, a key given twice, or a weight that is not a finite
        number >= 0.
    """
    out: dict[str, float] = {}
    if text is None or not text.strip():
        return out
    for item in text.split(","):
        item = item.strip()
        key, sep, value = item.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ValueError(f"weight item {item!r} is not key:number")
        if key in out:
            raise ValueError(f"weight item {item!r}: {key!r} given twice")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"weight item {item!r}: {value!r} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"weight item {item!r}: the weight must be a finite number >= 0")
        out[key] = number
    return out


def format_weights(weights: Mapping[str, float]) -> str:
    """Inverse of :func:`parse_weights`: ``"hazard:1,vulnerability:2,coping:1"``."""
    return ",".join(f"{k}:{_num(float(v))}" for k, v in weights.items())


def _check_weight(kind: str, key: str, value: Any) -> float:
    if not _real(value) or value < 0:
        raise ValueError(f"{kind} weight {key!r} must be a finite number >= 0, not {value!r}")
    return float(value)


def resolve_dimension_weights(
    config: RiskConfig, weights: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Config defaults updated with ``weights``; validated.

    Raises
    ------
    ValueError
        For an unknown dimension, a weight that is not a finite number >= 0, or all weights 0.
    """
    out = config.dimension_weights()
    for key, value in (weights or {}).items():
        if key not in out:
            raise ValueError(f"unknown dimension weight {key!r}; expected {', '.join(DIMENSION_KEYS)}")
        out[key] = _check_weight("dimension", key, value)
    if not any(v > 0 for v in out.values()):
        raise ValueError("dimension weights are all 0; at least one must be positive")
    return out


def resolve_indicator_weights(
    config: RiskConfig,
    weights: Mapping[str, float] | None = None,
    dimension_weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Config defaults updated with ``weights``; validated.

    Raises
    ------
    ValueError
        For an unknown indicator key, a weight that is not a finite number >= 0, or a dimension with a
        positive weight whose indicator weights are all 0.
    """
    out = config.indicator_weights()
    for key, value in (weights or {}).items():
        if key not in out:
            raise ValueError(f"unknown indicator weight {key!r}; expected one of {', '.join(out)}")
        out[key] = _check_weight("indicator", key, value)
    dims = dict(dimension_weights) if dimension_weights is not None else config.dimension_weights()
    for dim in DIMENSION_KEYS:
        if dims.get(dim, 0) > 0 and not any(out[s.key] > 0 for s in config.indicators_in(dim)):
            raise ValueError(f"indicator weights of dimension {dim!r} are all 0; give one a positive weight")
    return out


# -- raw indicators from the store -------------------------------------------------------------------------
def risk_window(period_end: dt.date, months: int = 12) -> tuple[dt.date, dt.date]:
    """First and last month of the ``months``-month period ending in ``period_end``'s month.

    Raises
    ------
    ValueError
        If ``months`` is not a whole number 1–120.
    """
    if isinstance(months, bool) or not isinstance(months, (int, np.integer)) or not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be a whole number 1–{MAX_MONTHS}, not {months!r}")
    end = month_start(period_end)
    return add_months(end, -(int(months) - 1)), end


def default_period_end(store: Store, config: RiskConfig | None = None) -> dt.date | None:
    """The last month with data of any store indicator the index reads (``None`` for none)."""
    config = config or load_risk_config()
    ids: list[str] = []
    for src in config.source_ids:
        ind = get_indicator(src)
        ids += [ind.numerator, ind.denominator] if ind.is_ratio else [src]  # type: ignore[list-item]
    if not ids:
        return None
    marks = ", ".join("?" for _ in ids)
    last = store.scalar(f"SELECT MAX(period) FROM observations WHERE indicator IN ({marks})", ids)
    if last is None or pd.isna(last):
        return None
    return month_start(pd.Timestamp(last).date())


class _Reader:
    """Per-call cache of store terms for one period (each distinct query runs once).

    Sum-aggregated sources are fetched once, grouped by province and every disaggregation any term of
    the index filters them by; a filtered term then sums the matching groups, which is what
    :func:`data.queries.aggregate` returns for the filter itself (a sum of the same cells; for stocks,
    the latest month of each cell). Ratio and mean sources are read unfiltered, by their own rule.
    """

    def __init__(
        self, store: Store, start: dt.date, end: dt.date, plan: Mapping[str, tuple[str, ...]], *, protected: bool = False
    ) -> None:
        self.store, self.start, self.end = store, start, end
        self.plan = plan
        self.protected = protected
        self._pos = {code: i for i, code in enumerate(PROVINCE_CODES)}
        self._frames: dict[str, pd.DataFrame] = {}
        self._terms: dict[tuple[str, Where, Where], np.ndarray] = {}
        self._population: np.ndarray | None = None

    def _by_province(self, frame: pd.DataFrame, mask: np.ndarray | None = None) -> np.ndarray:
        """Sum ``value`` per province code into a 25-vector (``NaN`` where no row or a ``NaN`` value)."""
        out = np.full(len(PROVINCE_CODES), np.nan)
        if frame.empty:
            return out
        pos = frame["province"].map(self._pos).to_numpy()
        values = frame["value"].to_numpy(dtype="float64")
        keep = ~pd.isna(pos)
        if mask is not None:
            keep &= mask
        if keep.any():
            idx = pos[keep].astype(int)
            total = np.zeros(len(PROVINCE_CODES))
            np.add.at(total, idx, values[keep])  # a NaN (ratio with no denominator) stays NaN
            seen = np.zeros(len(PROVINCE_CODES), dtype=bool)
            seen[idx] = True
            out = np.where(seen, total, np.nan)
        return out

    def _frame(self, source: str) -> pd.DataFrame:
        if source not in self._frames:
            self._frames[source] = aggregate(
                self.store,
                Filters(source, start=self.start, end=self.end),
                ["province", *self.plan.get(source, ())],
            )
        return self._frames[source]

    def _protected_term(self, source: str, where: Where, exclude: Where) -> np.ndarray:
        """:meth:`term` of a sensitive count for a viewer without the partner role: read from the
        indicator's protected release (:mod:`data.release`), a province with any hidden part is missing
        (``NaN``), so the index tells nothing the published tables do not."""
        from data.release import NotPublished, release_for

        extra = [dim for dim, _ in exclude]
        try:
            cells = release_for(self.store, Filters(source)).cells(
                ["province", *extra], where=dict(where), start=self.start, end=self.end)
        except NotPublished:
            return np.full(len(PROVINCE_CODES), np.nan)
        for dim, values in exclude:
            cells = cells[~cells[dim].isin(values) & (cells[dim] != NOT_DISAGGREGATED)]
        hidden = set(cells.loc[cells["suppressed"], "province"])
        out = self._by_province(cells[~cells["province"].isin(hidden)])
        if where or exclude:  # reported the source in the period, nothing matching the filter: 0
            reported = ~np.isnan(self.term(source))  # cached: the unfiltered protected term
            out = np.where(reported & np.isnan(out), 0.0, out)
        for code in hidden:
            if code in self._pos:
                out[self._pos[code]] = np.nan
        return out

    def term(self, source: str, where: Where = (), exclude: Where = ()) -> np.ndarray:
        """Value of ``source`` per province (25-vector in code order) over the period, filtered.

        ``NaN`` = no data; a province that reported ``source`` in the period but nothing matching the
        filter gets 0.
        """
        key = (source, where, exclude)
        if key in self._terms:
            return self._terms[key]
        ind = get_indicator(source)
        if self.protected and ind.sensitive:
            self._terms[key] = self._protected_term(source, where, exclude)
            return self._terms[key]
        if not where and not exclude:
            if ind.aggregation == "sum":
                out = self._by_province(self._frame(source))
            else:  # ratio or mean: the catalog's own rule, asked for directly
                filters = Filters(source, start=self.start, end=self.end)
                out = self._by_province(aggregate(self.store, filters, ["province"]))
        else:  # filters are only allowed on summed indicators (checked by the loader)
            frame = self._frame(source)
            mask = np.ones(len(frame), dtype=bool)
            for dim, values in where:
                mask &= frame[dim].isin(values).to_numpy()
            for dim, values in exclude:
                mask &= (~frame[dim].isin(values) & (frame[dim] != NOT_DISAGGREGATED)).to_numpy()
            out = self._by_province(frame, mask)
            reported = ~np.isnan(self.term(source))
            out = np.where(reported & np.isnan(out), 0.0, out)
        self._terms[key] = out
        return out

    def population(self) -> np.ndarray:
        """Census population per province (``NaN`` where unknown or 0)."""
        if self._population is None:
            pop = population(self.store).reindex(list(PROVINCE_CODES)).to_numpy(dtype="float64")
            self._population = np.where(pop > 0, pop, np.nan)
        return self._population

    def periods(self, sources: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """First and last month of the data each source contributes, per province (one query)."""
        parts: dict[str, list[str]] = {}
        flows: list[str] = []
        stocks: list[str] = []
        for src in sources:
            ind = get_indicator(src)
            ids = [ind.numerator, ind.denominator] if ind.is_ratio else [src]
            parts[src] = ids  # type: ignore[assignment]
            for i in ids:
                (stocks if get_indicator(i).time_aggregation == "last" else flows).append(i)
        clauses, params = [], []
        if flows:
            clauses.append(f"(indicator IN ({', '.join('?' for _ in flows)}) AND period >= ?)")
            params += [*flows, self.start]
        if stocks:
            clauses.append(f"indicator IN ({', '.join('?' for _ in stocks)})")
            params += stocks
        found: dict[str, dict[str, tuple[Any, Any]]] = {}
        if clauses:
            rows = self.store.query(
                "SELECT indicator, province, MIN(period) AS first_period, MAX(period) AS last_period "
                f"FROM observations WHERE period <= ? AND ({' OR '.join(clauses)}) "
                "GROUP BY indicator, province",
                [self.end, *params],
            )
            stock_set = set(stocks)
            for ind_id, prov, first, last in rows.itertuples(index=False):
                found.setdefault(ind_id, {})[prov] = (last if ind_id in stock_set else first, last)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for src, ids in parts.items():
            firsts, lasts = [], []
            for code in PROVINCE_CODES:
                hits = [found[i][code] for i in ids if code in found.get(i, {})]
                firsts.append(min(h[0] for h in hits) if hits else pd.NaT)
                lasts.append(max(h[1] for h in hits) if hits else pd.NaT)
            out[src] = (
                np.array(pd.to_datetime(firsts), dtype="datetime64[ns]"),
                np.array(pd.to_datetime(lasts), dtype="datetime64[ns]"),
            )
        return out


def _plan(config: RiskConfig) -> dict[str, tuple[str, ...]]:
    """Disaggregations each sum-aggregated source is grouped by (all dims any of its terms filters on)."""
    plan: dict[str, set[str]] = {}
    for spec in config.indicators:
        dims = {
            d
            for w in (
                spec.where,
                spec.exclude,
                spec.numerator_where,
                spec.denominator_where,
                spec.boost_where,
            )
            for d, _ in w
        }
        for src in spec.sources:
            plan.setdefault(src, set()).update(dims)
    return {src: tuple(sorted(dims)) for src, dims in plan.items()}


def _safe_divide(num: np.ndarray, den: np.ndarray, minimum: float = 0.0) -> np.ndarray:
    ok = ~np.isnan(den) & (np.nan_to_num(den) > 0) & (np.nan_to_num(den) >= minimum)
    return np.where(ok, num / np.where(ok, den, 1.0), np.nan)


def _flag_values(spec: IndicatorSpec) -> np.ndarray:
    out = []
    for p in provinces():
        hit = (
            spec.contains in p.border
            if spec.attribute == "border"
            else bool(getattr(p, spec.attribute or ""))
        )
        out.append(1.0 if hit else 0.0)
    return np.array(out)


def _indicator_values(spec: IndicatorSpec, reader: _Reader) -> np.ndarray:
    """The raw values of one indicator, a 25-vector in province code order (``NaN`` = no data)."""
    if spec.formula == "static_flag":
        return _flag_values(spec)
    a = spec.sources[0]
    if spec.formula == "value":
        return reader.term(a, spec.where, spec.exclude)
    if spec.formula in _RATE_FACTORS:
        value = reader.term(a, spec.where, spec.exclude)
        if spec.boost and spec.boost_where:
            value = value + spec.boost * reader.term(
                a, _merge_where(spec.where, spec.boost_where), spec.exclude
            )
        return _safe_divide(value, reader.population()) * _RATE_FACTORS[spec.formula]
    if spec.formula == "share":
        num = reader.term(a, _merge_where(spec.where, spec.numerator_where), spec.exclude)
        den = reader.term(a, _merge_where(spec.where, spec.denominator_where), spec.exclude)
        return 100.0 * _safe_divide(num, den, spec.min_denominator)
    num = reader.term(a, spec.where, spec.exclude)
    den = reader.term(spec.sources[1], spec.where, spec.exclude)
    if spec.numerator_missing == "zero":
        num = np.where(np.isnan(num) & ~np.isnan(den), 0.0, num)
    ratio = _safe_divide(num, den, spec.min_denominator)
    if spec.formula == "ratio":
        return spec.factor * ratio
    return np.clip(100.0 * (1.0 - ratio), 0.0, 100.0)  # gap


def raw_indicators(
    store: Store, *, period_end: dt.date, months: int = 12, config: RiskConfig | None = None, protected: bool = False
) -> pd.DataFrame:
    """Compute every configured indicator for the 25 provinces over a period.

    Parameters
    ----------
    store
        The observation store.
    period_end
        Any day of the last month of the period.
    months
        Period length in months (1–120), ending with ``period_end``'s month.
    config
        The index configuration (default: the bundled one).
    protected
        Read sensitive counts (victims) from their protected releases, as for a viewer without the
        partner role: a province whose count is hidden has no value for that indicator.

    Returns
    -------
    pandas.DataFrame
        ``province, key, raw, period_start, period_end``: one row per province and indicator, 25 ×
        indicators rows in configuration order. ``raw`` is ``NaN`` when the province has no data.
        ``period_start``/``period_end`` are the first and last month of the data the value rests on
        (for stocks, the month of the figure used; ``NaT`` for static flags and missing values).
    """
    config = config or load_risk_config()
    start, end = risk_window(period_end, months)
    reader = _Reader(store, start, end, _plan(config), protected=protected)
    periods = reader.periods(config.source_ids)
    n = len(PROVINCE_CODES)
    nat = np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    raws, firsts, lasts = [], [], []
    for spec in config.indicators:
        values = _indicator_values(spec, reader)
        first, last = nat, nat
        if spec.sources:
            first = np.fmin.reduce(np.stack([periods[s][0] for s in spec.sources]))
            last = np.fmax.reduce(np.stack([periods[s][1] for s in spec.sources]))
            first = np.where(np.isnan(values), nat, first)
            last = np.where(np.isnan(values), nat, last)
        raws.append(values)
        firsts.append(first)
        lasts.append(last)
    k = len(config.indicators)
    return pd.DataFrame(
        {
            "province": np.tile(np.array(PROVINCE_CODES, dtype=object), k),
            "key": np.repeat(np.array(config.indicator_keys, dtype=object), n),
            "raw": np.concatenate(raws),
            "period_start": np.concatenate(firsts),
            "period_end": np.concatenate(lasts),
        }
    )


# -- normalisation ---------------------------------------------------------------------------------------
def _pivot(
    raw_frame: pd.DataFrame, config: RiskConfig
) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]:
    """Raw frame → provinces, raw P × K, period_start P × K, period_end P × K (configuration order)."""
    missing_cols = {"province", "key", "raw"} - set(raw_frame.columns)
    if missing_cols:
        raise ValueError(f"raw frame lacks column(s) {', '.join(sorted(missing_cols))}")
    keys = list(config.indicator_keys)
    key_pos = {k: i for i, k in enumerate(keys)}
    unknown = sorted(set(raw_frame["key"]) - set(keys))
    if unknown:
        raise ValueError(
            f"raw frame has indicator(s) not in the configuration: {', '.join(map(str, unknown))}"
        )
    provinces_ = list(dict.fromkeys(raw_frame["province"]))
    prov_pos = {p: i for i, p in enumerate(provinces_)}
    rows = raw_frame["province"].map(prov_pos).to_numpy(dtype=int)
    cols = raw_frame["key"].map(key_pos).to_numpy(dtype=int)
    seen = np.zeros((len(provinces_), len(keys)), dtype=bool)
    if len(rows) != len(set(zip(rows.tolist(), cols.tolist(), strict=True))):
        dup = raw_frame[raw_frame.duplicated(["province", "key"])].iloc[0]
        raise ValueError(f"raw frame has two rows for province {dup['province']!r}, indicator {dup['key']!r}")
    raw = np.full(seen.shape, np.nan)
    raw[rows, cols] = pd.to_numeric(raw_frame["raw"], errors="raise").to_numpy(dtype="float64")
    starts = np.full(seen.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    ends = starts.copy()
    if {"period_start", "period_end"} <= set(raw_frame.columns):
        starts[rows, cols] = pd.to_datetime(raw_frame["period_start"]).to_numpy(dtype="datetime64[ns]")
        ends[rows, cols] = pd.to_datetime(raw_frame["period_end"]).to_numpy(dtype="datetime64[ns]")
    return provinces_, raw, starts, ends


def _normalise_column(values: np.ndarray, spec: IndicatorSpec) -> dict[str, Any]:
    """Transform, cap and scale one indicator across provinces (``NaN`` stays ``NaN``)."""
    has = ~np.isnan(values)
    if np.isinf(values).any():
        raise ValueError(f"indicator {spec.key!r}: raw values must be finite")
    if spec.transform == "log1p":
        if (values[has] < 0).any():
            raise ValueError(f"indicator {spec.key!r}: log1p needs raw values >= 0")
        transformed = np.where(has, np.log1p(np.where(has, values, 0.0)), np.nan)
    else:
        transformed = values.copy()
    nan = np.full(values.shape, np.nan)
    if not has.any():
        return {
            "transformed": transformed,
            "capped": nan,
            "normalised": nan,
            "cap_lower": np.nan,
            "cap_upper": np.nan,
        }
    lower, upper = (float(v) for v in np.percentile(transformed[has], spec.caps))
    capped = np.where(has, np.clip(np.where(has, transformed, lower), lower, upper), np.nan)
    if upper > lower:
        scaled = 10.0 * (capped - lower) / (upper - lower)
        normalised = scaled if spec.direction == 1 else 10.0 - scaled
    else:
        # The caps coincide: only provinces beyond them on the risk side are graded (10), others 0.
        with np.errstate(invalid="ignore"):
            beyond = transformed > upper if spec.direction == 1 else transformed < lower
        normalised = np.where(beyond, 10.0, 0.0)
    normalised = np.where(has, np.clip(normalised, 0.0, 10.0), np.nan)
    return {
        "transformed": transformed,
        "capped": capped,
        "normalised": normalised,
        "cap_lower": lower,
        "cap_upper": upper,
    }


@dataclass(frozen=True, eq=False)
class _Normalised:
    """Province × indicator matrices of one raw frame (configuration column order)."""

    provinces: list[Any]
    raw: np.ndarray
    transformed: np.ndarray
    capped: np.ndarray
    normalised: np.ndarray
    cap_lower: np.ndarray  # K
    cap_upper: np.ndarray  # K
    period_start: np.ndarray
    period_end: np.ndarray


def _normalise_matrices(raw_frame: pd.DataFrame, config: RiskConfig) -> _Normalised:
    provinces_, raw, starts, ends = _pivot(raw_frame, config)
    shape = raw.shape
    transformed, capped, normalised = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    lower, upper = np.full(shape[1], np.nan), np.full(shape[1], np.nan)
    for k, spec in enumerate(config.indicators):
        parts = _normalise_column(raw[:, k], spec)
        transformed[:, k], capped[:, k], normalised[:, k] = (
            parts["transformed"],
            parts["capped"],
            parts["normalised"],
        )
        lower[k], upper[k] = parts["cap_lower"], parts["cap_upper"]
    return _Normalised(provinces_, raw, transformed, capped, normalised, lower, upper, starts, ends)


def _long(norm: _Normalised, config: RiskConfig) -> pd.DataFrame:
    """The matrices as a long frame: indicators in configuration order, provinces within."""
    n, k = norm.raw.shape
    flat = lambda m: m.T.reshape(-1)  # noqa: E731 — column-major: indicator by indicator
    return pd.DataFrame(
        {
            "province": np.tile(np.array(norm.provinces, dtype=object), k),
            "key": np.repeat(np.array(config.indicator_keys, dtype=object), n),
            "dimension": np.repeat(np.array([s.dimension for s in config.indicators], dtype=object), n),
            "raw": flat(norm.raw),
            "transformed": flat(norm.transformed),
            "cap_lower": np.repeat(norm.cap_lower, n),
            "cap_upper": np.repeat(norm.cap_upper, n),
            "capped": flat(norm.capped),
            "normalised": flat(norm.normalised),
            "period_start": flat(norm.period_start),
            "period_end": flat(norm.period_end),
        }
    )


def normalise(raw_frame: pd.DataFrame, config: RiskConfig | None = None) -> pd.DataFrame:
    """Transform, cap and scale every indicator to 0–10 (10 = more risk) across the provinces.

    Parameters
    ----------
    raw_frame
        ``province, key, raw`` (and optionally ``period_start, period_end``), e.g. from
        :func:`raw_indicators`; ``NaN`` raw = no data. The provinces are those in the frame; an
        indicator or province absent from the frame is missing.
    config
        The index configuration (default: the bundled one).

    Returns
    -------
    pandas.DataFrame
        One row per configured indicator and province (configuration order, then the frame's province
        order): ``province, key, dimension, raw, transformed, cap_lower, cap_upper, capped,
        normalised, period_start, period_end``. Missing raw values stay ``NaN`` throughout.

    Notes
    -----
    Caps are the configured percentiles (numpy's linear interpolation) of the transformed values of the
    provinces with data; scaling is min–max between the caps. See :data:`NORMALISATION_DEGENERATE`
    for equal values.

    Raises
    ------
    ValueError
        For a malformed frame, infinite raw values or negative values under ``log1p``.
    """
    config = config or load_risk_config()
    return _long(_normalise_matrices(raw_frame, config), config)


# -- index -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RiskResult:
    """The index for one set of weights.

    Attributes
    ----------
    scores
        One row per province, highest risk first: ``province, score, class, rank, hazard,
        vulnerability, coping, reliability, indicators_available, indicators_used,
        missing_indicators``. ``score`` and dimension scores are 0–10 or ``NaN`` (not scored);
        ``class`` is a class key or missing (``NaN``); ``rank`` is ``Int64`` (``<NA>`` when not scored).
    components
        One row per province and indicator: ``province, key, label_en, dimension, direction,
        transform, raw, transformed, cap_lower, cap_upper, capped, normalised, weight,
        effective_weight, period_start, period_end``. ``effective_weight`` is the indicator's share of
        its dimension score for that province (``NaN`` when it has no data or the dimension is not
        scored).
    aggregation
        ``"geometric"`` or ``"arithmetic"``.
    dimension_weights, indicator_weights
        The weights used (defaults merged with the ones given).
    """

    scores: pd.DataFrame
    components: pd.DataFrame
    aggregation: str
    dimension_weights: dict[str, float] = field(default_factory=dict)
    indicator_weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Model:
    """Matrices shared by the central computation and the uncertainty draws."""

    provinces: list[str]
    values: np.ndarray  # P × K normalised, NaN → 0
    available: np.ndarray  # P × K float 0/1
    groups: list[np.ndarray]  # indicator column indices per dimension
    scored: np.ndarray  # P × D bool
    active_dims: np.ndarray  # D bool (dimension weight > 0)
    active_inds: np.ndarray  # K bool (indicator weight > 0)


def _model(norm: _Normalised, config: RiskConfig, dw: Mapping[str, float], iw: Mapping[str, float]) -> _Model:
    values = norm.normalised
    available = (~np.isnan(values)).astype("float64")
    keys = list(config.indicator_keys)
    active_inds = np.array([iw[k] > 0 for k in keys])
    groups = [
        np.array([keys.index(s.key) for s in config.indicators_in(d)], dtype=int) for d in DIMENSION_KEYS
    ]
    scored = np.zeros((len(norm.provinces), len(DIMENSION_KEYS)), dtype=bool)
    for d, idx in enumerate(groups):
        used = idx[active_inds[idx]]
        if used.size == 0:
            continue
        n_avail = available[:, used].sum(axis=1)
        scored[:, d] = (n_avail >= 1) & (n_avail >= config.min_share_available * used.size - 1e-12)
    return _Model(
        provinces=list(norm.provinces),
        values=np.nan_to_num(values, nan=0.0),
        available=available,
        groups=groups,
        scored=scored,
        active_dims=np.array([dw[d] > 0 for d in DIMENSION_KEYS]),
        active_inds=active_inds,
    )


def _dimension_scores(model: _Model, iw: np.ndarray) -> np.ndarray:
    """Weighted means within dimensions for weight rows ``iw`` (S × K) → S × P × D (NaN = not scored)."""
    draws, n_prov = iw.shape[0], model.values.shape[0]
    out = np.full((draws, n_prov, len(model.groups)), np.nan)
    weighted = model.values * model.available
    for d, idx in enumerate(model.groups):
        w = iw[:, idx]
        num = w @ weighted[:, idx].T  # S × P
        den = w @ model.available[:, idx].T
        ok = (den > 0) & model.scored[None, :, d]
        out[:, :, d] = np.where(ok, num / np.where(den > 0, den, 1.0), np.nan)
    return np.clip(out, 0.0, 10.0)


def _combine(dims: np.ndarray, dw: np.ndarray, model: _Model, aggregation: str) -> np.ndarray:
    """Combine S × P × D dimension scores with weight rows ``dw`` (S × D) → S × P (NaN = not scored)."""
    active = model.active_dims
    d = dims[:, :, active]
    w = dw[:, None, active]
    total_w = w.sum(axis=2)
    if aggregation == "geometric":
        score = np.expm1((w * np.log1p(d)).sum(axis=2) / total_w)
    else:
        score = (w * d).sum(axis=2) / total_w
    return np.clip(score, 0.0, 10.0)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Competition ranks (1 = highest, ties share the lowest) per row of S × P scores; NaN unranked."""
    rounded = np.round(scores, RANK_DECIMALS)
    with np.errstate(invalid="ignore"):
        higher = (rounded[:, None, :] > rounded[:, :, None]).sum(axis=2)
    return np.where(np.isnan(scores), np.nan, 1.0 + higher)


def _check_aggregation(config: RiskConfig, aggregation: str | None) -> str:
    aggregation = aggregation or config.aggregation
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, not {aggregation!r}")
    return aggregation


@dataclass(frozen=True, eq=False)
class _Setup:
    config: RiskConfig
    aggregation: str
    dw: dict[str, float]
    iw: dict[str, float]
    norm: _Normalised
    model: _Model


def _setup(
    raw_frame: pd.DataFrame,
    config: RiskConfig | None,
    dimension_weights: Mapping[str, float] | None,
    indicator_weights: Mapping[str, float] | None,
    aggregation: str | None,
) -> _Setup:
    config = config or load_risk_config()
    aggregation = _check_aggregation(config, aggregation)
    dw = resolve_dimension_weights(config, dimension_weights)
    iw = resolve_indicator_weights(config, indicator_weights, dw)
    norm = _normalise_matrices(raw_frame, config)
    return _Setup(config, aggregation, dw, iw, norm, _model(norm, config, dw, iw))


def _result(setup: _Setup) -> RiskResult:
    config, model, iw, dw = setup.config, setup.model, setup.iw, setup.dw
    keys = list(config.indicator_keys)
    iw_row = np.array([[iw[k] for k in keys]])
    dw_row = np.array([[dw[d] for d in DIMENSION_KEYS]])
    dims = _dimension_scores(model, iw_row)
    total = _combine(dims, dw_row, model, setup.aggregation)
    ranks = _ranks(total)[0]
    total, dims = total[0], dims[0]

    used = model.active_inds.copy()
    for d, idx in enumerate(model.groups):
        if not model.active_dims[d]:
            used[idx] = False
    missing = (model.available == 0) & used[None, :]
    insufficient = ~model.scored[:, model.active_dims].all(axis=1)
    reliability = np.where(insufficient, "insufficient", np.where(missing.any(axis=1), "partial", "full"))
    used_keys = np.array(keys, dtype=object)
    scores = pd.DataFrame(
        {
            "province": np.array(model.provinces, dtype=object),
            "score": total,
            "class": np.array([config.classify(s) for s in total], dtype=object),
            "rank": pd.array([pd.NA if np.isnan(r) else int(r) for r in ranks], dtype="Int64"),
            **{d: dims[:, i] for i, d in enumerate(DIMENSION_KEYS)},
            "reliability": reliability.astype(object),
            "indicators_available": (model.available[:, used] > 0).sum(axis=1).astype(int),
            "indicators_used": np.full(len(model.provinces), int(used.sum())),
            "missing_indicators": [",".join(used_keys[row]) for row in missing],
        }
    )
    order = np.lexsort((np.arange(len(total)), np.where(np.isnan(ranks), np.inf, ranks)))
    scores = scores.iloc[order].reset_index(drop=True)

    # Effective weight: the indicator's share of its dimension score, province by province.
    weights = np.array([iw[k] for k in keys])
    eff = np.full(model.values.shape, np.nan)
    for d, idx in enumerate(model.groups):
        den = model.available[:, idx] @ weights[idx]  # P
        share = weights[idx][None, :] / np.where(den > 0, den, np.nan)[:, None]
        ok = model.scored[:, d][:, None] & (model.available[:, idx] > 0)
        eff[:, idx] = np.where(ok, share, np.nan)
    comp = _long(setup.norm, config)
    n = len(model.provinces)
    specs = config.indicators
    comp.insert(2, "label_en", np.repeat(np.array([s.label_en for s in specs], dtype=object), n))
    comp.insert(4, "direction", np.repeat(np.array([s.direction for s in specs]), n))
    comp.insert(5, "transform", np.repeat(np.array([s.transform for s in specs], dtype=object), n))
    comp["weight"] = np.repeat(weights, n)
    comp["effective_weight"] = eff.T.reshape(-1)
    comp = comp[
        [
            "province",
            "key",
            "label_en",
            "dimension",
            "direction",
            "transform",
            "raw",
            "transformed",
            "cap_lower",
            "cap_upper",
            "capped",
            "normalised",
            "weight",
            "effective_weight",
            "period_start",
            "period_end",
        ]
    ]
    return RiskResult(
        scores=scores,
        components=comp,
        aggregation=setup.aggregation,
        dimension_weights=dw,
        indicator_weights=iw,
    )


def compute_index(
    raw_frame: pd.DataFrame,
    config: RiskConfig | None = None,
    *,
    dimension_weights: Mapping[str, float] | None = None,
    indicator_weights: Mapping[str, float] | None = None,
    aggregation: Aggregation | None = None,
) -> RiskResult:
    """Normalise, aggregate, classify and rank.

    Parameters
    ----------
    raw_frame
        ``province, key, raw[, period_start, period_end]`` (see :func:`raw_indicators`).
    config
        The index configuration (default: the bundled one).
    dimension_weights, indicator_weights
        Weights overriding the configured defaults for the keys given (finite, >= 0; a weight of 0
        leaves the dimension or indicator out, including from the missing-data rule).
    aggregation
        ``"geometric"`` or ``"arithmetic"`` across dimensions (default: the configuration's).

    Returns
    -------
    RiskResult

    Notes
    -----
    A dimension is scored when at least ``min_share_available`` of its positively weighted indicators
    have data; a province with any positively weighted dimension not scored gets no score
    (reliability ``"insufficient"``), one with some indicator missing ``"partial"``, otherwise
    ``"full"``. Weights only matter relative to each other: multiplying all dimension weights (or all
    indicator weights) by the same positive number changes nothing.

    Raises
    ------
    ValueError
        For bad weights (naming the weight), an unknown aggregation or a malformed frame.
    """
    return _result(_setup(raw_frame, config, dimension_weights, indicator_weights, aggregation))


def _uncertainty(setup: _Setup, draws: int | None, spread: float | None, seed: int | None) -> pd.DataFrame:
    config, model = setup.config, setup.model
    draws = config.draws if draws is None else draws
    spread = config.spread if spread is None else spread
    seed = config.seed if seed is None else seed
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ValueError(f"draws must be a whole number >= 1, not {draws!r}")
    if not _real(spread) or not 0 <= spread < 1:
        raise ValueError(f"spread must be a number in [0, 1), not {spread!r}")
    rng = np.random.default_rng(seed)
    dw_base = np.array([setup.dw[d] for d in DIMENSION_KEYS])
    iw_base = np.array([setup.iw[k] for k in config.indicator_keys])
    dw_draws = dw_base * rng.uniform(1 - spread, 1 + spread, size=(draws, dw_base.size))
    iw_draws = iw_base * rng.uniform(1 - spread, 1 + spread, size=(draws, iw_base.size))
    ranks = _ranks(_combine(_dimension_scores(model, iw_draws), dw_draws, model, setup.aggregation))
    low, high = config.percentiles
    p05 = pd.array([pd.NA] * len(model.provinces), dtype="Int64")
    p95 = pd.array([pd.NA] * len(model.provinces), dtype="Int64")
    ranked = ~np.isnan(ranks).any(axis=0)
    if ranked.any():
        q = np.percentile(ranks[:, ranked], [low, high], axis=0, method="inverted_cdf")
        p05[ranked] = q[0].astype(int)
        p95[ranked] = q[1].astype(int)
    return pd.DataFrame(
        {"province": np.array(model.provinces, dtype=object), "rank_p05": p05, "rank_p95": p95}
    )


def rank_uncertainty(
    raw_frame: pd.DataFrame,
    config: RiskConfig | None = None,
    *,
    dimension_weights: Mapping[str, float] | None = None,
    indicator_weights: Mapping[str, float] | None = None,
    aggregation: Aggregation | None = None,
    draws: int | None = None,
    spread: float | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """Rank range of each province when every weight is perturbed.

    Each draw multiplies every dimension weight and every indicator weight by an independent factor
    drawn uniformly from ``[1 − spread, 1 + spread]`` and recomputes the ranks; the configured
    percentiles (5th and 95th by default) of each province's ranks over the draws are reported as
    empirical quantiles (inverted CDF), so they are whole ranks. The missing-data rule does not depend
    on the weights, so the provinces scored are the same in every draw.

    Parameters
    ----------
    raw_frame, config, dimension_weights, indicator_weights, aggregation
        As for :func:`compute_index`.
    draws, spread, seed
        Override the configured number of draws, relative spread (0 <= spread < 1) and seed.

    Returns
    -------
    pandas.DataFrame
        ``province, rank_p05, rank_p95`` (``Int64``; ``<NA>`` for provinces without a score), in the
        frame's province order.
    """
    setup = _setup(raw_frame, config, dimension_weights, indicator_weights, aggregation)
    return _uncertainty(setup, draws, spread, seed)


def risk_table(
    store: Store,
    *,
    period_end: dt.date | None = None,
    months: int | None = None,
    dimension_weights: Mapping[str, float] | None = None,
    indicator_weights: Mapping[str, float] | None = None,
    aggregation: Aggregation | None = None,
    config: RiskConfig | None = None,
    protected: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The index with its rank range and components, straight from the store.

    Parameters
    ----------
    store
        The observation store.
    period_end
        Last month of the period (default: :func:`default_period_end`, or this month if the store has
        no data for the index).
    months
        Period length (default: the configuration's, 12).
    dimension_weights, indicator_weights, aggregation, config
        As for :func:`compute_index`.
    protected
        As for :func:`raw_indicators` (viewers without the partner role).

    Returns
    -------
    scores : pandas.DataFrame
        :attr:`RiskResult.scores` plus ``rank_p05, rank_p95``, highest risk first. ``scores.attrs``
        holds ``period_start``, ``period_end`` (dates), ``months``, ``aggregation``,
        ``dimension_weights`` and ``indicator_weights``.
    components : pandas.DataFrame
        :attr:`RiskResult.components`.
    """
    config = config or load_risk_config()
    months = config.default_months if months is None else months
    if period_end is None:
        period_end = default_period_end(store, config) or month_start(dt.date.today())
    start, end = risk_window(period_end, months)
    aggregation = _check_aggregation(config, aggregation)
    resolve_indicator_weights(config, indicator_weights, resolve_dimension_weights(config, dimension_weights))
    raw = raw_indicators(store, period_end=end, months=months, config=config, protected=protected)
    setup = _setup(raw, config, dimension_weights, indicator_weights, aggregation)
    result = _result(setup)
    scores = result.scores.merge(_uncertainty(setup, None, None, None), on="province", how="left")
    scores.attrs = {
        "period_start": start,
        "period_end": end,
        "months": int(months),
        "aggregation": result.aggregation,
        "dimension_weights": dict(result.dimension_weights),
        "indicator_weights": dict(result.indicator_weights),
    }
    return scores, result.components


# -- methodology -------------------------------------------------------------------------------------------
def _where_record(where: Where) -> dict[str, list[str]]:
    return {dim: list(values) for dim, values in where}


def methodology(config: RiskConfig | None = None) -> dict[str, Any]:
    """The configuration as a JSON-serialisable description (the Methodology page and the API render it).

    Returns
    -------
    dict
        ``title, source_file, period, dimensions, indicators, normalisation, aggregation,
        missing_data, classes, ranking, uncertainty``; lists, strings, numbers and ``None`` only.
    """
    config = config or load_risk_config()
    indicators_ = []
    for spec in config.indicators:
        indicators_.append(
            {
                "key": spec.key,
                "label_en": spec.label_en,
                "dimension": spec.dimension,
                "formula": spec.formula,
                "formula_text": spec.formula_text,
                "sources": list(spec.sources),
                "sensitive": any(get_indicator(src).sensitive for src in spec.sources),
                "where": _where_record(spec.where),
                "exclude": _where_record(spec.exclude),
                "numerator_where": _where_record(spec.numerator_where),
                "denominator_where": _where_record(spec.denominator_where),
                "boost_where": _where_record(spec.boost_where),
                "boost": spec.boost,
                "factor": spec.factor,
                "min_denominator": spec.min_denominator,
                "numerator_missing": spec.numerator_missing,
                "direction": spec.direction,
                "direction_text": "higher = more risk"
                if spec.direction == 1
                else "higher = less risk (reversed)",
                "transform": spec.transform,
                "caps": {"lower_percentile": spec.caps[0], "upper_percentile": spec.caps[1]},
                "weight": spec.weight,
                "rationale": spec.rationale,
            }
        )
    share = config.min_share_available
    return {
        "title": "CTIP risk index",
        "source_file": Path(config.path).name if config.path else "",
        "period": {"default_months": config.default_months, "rule": PERIOD_RULE},
        "dimensions": [
            {
                "key": d.key,
                "label_en": d.label_en,
                "description": d.description,
                "weight": d.weight,
                "indicators": [s.key for s in config.indicators_in(d.key)],
            }
            for d in config.dimensions
        ],
        "indicators": indicators_,
        "normalisation": {
            "range": [0, 10],
            "steps": list(NORMALISATION_STEPS),
            "equal_values": NORMALISATION_DEGENERATE,
        },
        "aggregation": {
            "default": config.aggregation,
            "options": list(AGGREGATIONS),
            "within_dimension": WITHIN_DIMENSION_RULE,
            "geometric": GEOMETRIC_RULE,
            "arithmetic": ARITHMETIC_RULE,
        },
        "missing_data": {
            "min_share_available": share,
            "rule": (
                f"A dimension is scored only when at least {share:.0%} of its indicators (those with a "
                "positive weight) have data; otherwise the dimension and the province's index are not "
                "scored. A missing indicator is left out of its dimension's mean, never counted as 0."
            ),
            "reliability": dict(RELIABILITY_TEXT),
        },
        "classes": [
            {"key": c.key, "label_en": c.label_en, "min": c.lower, "max": c.upper} for c in config.classes
        ],
        "ranking": RANK_RULE,
        "uncertainty": {
            "draws": config.draws,
            "spread": config.spread,
            "seed": config.seed,
            "percentiles": list(config.percentiles),
            "rule": (
                f"Over {config.draws} draws, every dimension and indicator weight is multiplied by an "
                f"independent factor uniform in [{1 - config.spread:g}, {1 + config.spread:g}] and the "
                f"provinces are ranked again; rank_p05 and rank_p95 are the {config.percentiles[0]:g}th and "
                f"{config.percentiles[1]:g}th percentile ranks (seed {config.seed}, so reproducible)."
            ),
        },
    }
