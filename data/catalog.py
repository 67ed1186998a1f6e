"""Indicator catalog: loads and validates ``data/reference/indicators.toml`` into typed ``Indicator`` records.

The catalog says, for every indicator id, what it counts, how it aggregates over provinces and months,
which disaggregations it carries, whether it is sensitive (small-cell suppression) and who reports it.
The file is read on first use and cached (no I/O at import); a malformed catalog fails loudly, naming
the entry and field at fault.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from data.reference import reference_path
from data.schema import DIMENSIONS

#: The bundled catalog file.
CATALOG_PATH: Path = reference_path("indicators.toml")

#: Programme domains (the four Ps plus context), in display order.
DOMAINS: tuple[str, ...] = ("prevention", "protection", "prosecution", "partnership", "context")
#: UI themes (tabs), in display order.
THEMES: tuple[str, ...] = ("migration", "victims", "livelihood", "prosecution", "partnership", "context")
#: Units an indicator may be expressed in.
UNITS: tuple[str, ...] = ("persons", "households", "cases", "count", "percent", "USD")
#: How values combine across provinces and disaggregations.
AGGREGATIONS: tuple[str, ...] = ("sum", "mean", "ratio")
#: How monthly values combine into a longer period (flows are summed, stocks take the last month).
TIME_AGGREGATIONS: tuple[str, ...] = ("sum", "last", "mean")
#: Direction read by the risk index.
HIGHER_IS: tuple[str, ...] = ("worse", "better", "neutral")

Domain = Literal["prevention", "protection", "prosecution", "partnership", "context"]
Theme = Literal["migration", "victims", "livelihood", "prosecution", "partnership", "context"]
Aggregation = Literal["sum", "mean", "ratio"]
TimeAggregation = Literal["sum", "last", "mean"]
HigherIs = Literal["worse", "better", "neutral"]

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_RATIO_FIELDS = ("numerator", "denominator", "factor")


class CatalogError(ValueError):
    """Raised when the catalog file is malformed; the message names the indicator and field."""


class UnknownIndicatorError(KeyError, ValueError):
    """Raised for an id that is not in the catalog; catchable as ``KeyError`` or ``ValueError``.

    Attributes
    ----------
    id
        The id that was looked up.
    suggestions
        Up to three close catalog ids, best first.
    """

    def __init__(self, id: str, suggestions: list[str]):
        self.id = id
        self.suggestions = suggestions
        if suggestions:
            choice = (
                suggestions[0]
                if len(suggestions) == 1
                else f"{', '.join(suggestions[:-1])} or {suggestions[-1]}"
            )
            hint = f"did you mean {choice}?"
        else:
            hint = "see catalog_records() for the ids, e.g. victims_identified"
        self.message = f"{id!r} is not an indicator — {hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Indicator:
    """One catalog entry.

    Attributes
    ----------
    id
        Unique snake_case id, e.g. ``"victims_identified"``.
    name_en, name_km
        Short display names in English and Khmer.
    domain
        One of :data:`DOMAINS`.
    theme
        One of :data:`THEMES` (the UI tab).
    definition
        What is counted, by whom and when.
    unit
        One of :data:`UNITS`.
    aggregation
        ``"sum"``, ``"mean"`` or ``"ratio"`` (``numerator / denominator * factor``, each part aggregated
        on its own first).
    time_aggregation
        ``"sum"`` (flows), ``"last"`` (stocks: the last month available in the period) or ``"mean"``;
        ``None`` for ratios, whose parts carry their own.
    disaggregations
        Dimensions of :data:`data.schema.DIMENSIONS` the indicator is broken down by.
    sensitive
        Counts or identifies victims: small cells must be suppressed.
    source
        Who reports the figure, or the citation of the published source.
    per_100k
        Whether a rate per 100,000 population makes sense.
    higher_is
        ``"worse"``, ``"better"`` or ``"neutral"`` (read by the risk index).
    numerator, denominator, factor
        Ratio parts (base indicator ids) and multiplier; ``None`` unless ``aggregation == "ratio"``.
    since
        First month with meaningful data, ``"YYYY-MM"``, or ``None``.
    reference
        File in ``data/reference/`` holding real figures for this indicator (value column named like
        the id), or ``None``.
    """

    id: str
    name_en: str
    name_km: str
    domain: Domain
    theme: Theme
    definition: str
    unit: str
    aggregation: Aggregation
    time_aggregation: TimeAggregation | None
    disaggregations: tuple[str, ...]
    sensitive: bool
    source: str
    per_100k: bool
    higher_is: HigherIs
    numerator: str | None = None
    denominator: str | None = None
    factor: float | None = None
    since: str | None = None
    reference: str | None = None

    @property
    def is_ratio(self) -> bool:
        """True for ratio indicators (computed from a numerator and a denominator)."""
        return self.aggregation == "ratio"

    def name(self, lang: Literal["en", "km"] = "en") -> str:
        """Return the display name in ``lang`` (``"en"`` or ``"km"``)."""
        if lang == "en":
            return self.name_en
        if lang == "km":
            return self.name_km
        raise ValueError(f"lang must be 'en' or 'km', not {lang!r}")

    def to_record(self) -> dict[str, Any]:
        """Return the indicator as a JSON-serialisable dict (tuples become lists)."""
        record = dataclasses.asdict(self)
        record["disaggregations"] = list(self.disaggregations)
        return record


_FIELDS = {f.name for f in dataclasses.fields(Indicator)}
_REQUIRED = (
    "id",
    "name_en",
    "name_km",
    "domain",
    "theme",
    "definition",
    "unit",
    "aggregation",
    "sensitive",
    "source",
    "higher_is",
)
_TEXT_FIELDS = ("id", "name_en", "name_km", "definition", "source")


def _entry_error(path: Path, n: int, ident: object, field: str, problem: str) -> CatalogError:
    who = f"indicator {ident!r}" if isinstance(ident, str) and ident else f"indicator #{n}"
    return CatalogError(f"{path.name}: {who}, field {field!r}: {problem}")


def _choice(value: object, allowed: tuple[str, ...], fail: Any, field: str) -> str:
    if value not in allowed:
        raise fail(field, f"{value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _parse_entry(raw: Mapping[str, Any], n: int, path: Path) -> Indicator:
    ident = raw.get("id")

    def fail(field: str, problem: str) -> CatalogError:
        return _entry_error(path, n, ident, field, problem)

    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        field = unknown[0]
        close = difflib.get_close_matches(field, sorted(_FIELDS), n=1)
        raise fail(field, "unknown field" + (f" (did you mean {close[0]!r}?)" if close else ""))
    for field in _REQUIRED:
        if field not in raw:
            raise fail(field, "missing")
    for field in _TEXT_FIELDS:
        if not isinstance(raw[field], str) or not raw[field].strip():
            raise fail(field, "must be a non-empty string")
    if not _ID.match(raw["id"]):
        raise fail("id", "must be snake_case: lower-case letters, digits and underscores")
    for field in ("sensitive", "per_100k"):
        if field in raw and not isinstance(raw[field], bool):
            raise fail(field, f"must be true or false, not {raw[field]!r}")

    domain = _choice(raw["domain"], DOMAINS, fail, "domain")
    theme = _choice(raw["theme"], THEMES, fail, "theme")
    unit = _choice(raw["unit"], UNITS, fail, "unit")
    aggregation = _choice(raw["aggregation"], AGGREGATIONS, fail, "aggregation")
    higher_is = _choice(raw["higher_is"], HIGHER_IS, fail, "higher_is")

    dims = raw.get("disaggregations", [])
    if not isinstance(dims, list) or not all(isinstance(d, str) for d in dims):
        raise fail("disaggregations", "must be a list of dimension names")
    for dim in dims:
        if dim not in DIMENSIONS:
            raise fail(
                "disaggregations", f"unknown dimension {dim!r}; expected one of {', '.join(DIMENSIONS)}"
            )
    if len(set(dims)) != len(dims):
        raise fail("disaggregations", "lists a dimension twice")

    time_aggregation: str | None
    numerator = denominator = None
    factor: float | None = None
    if aggregation == "ratio":
        if "time_aggregation" in raw:
            raise fail("time_aggregation", "not allowed on a ratio (its parts carry their own)")
        time_aggregation = None
        for field in _RATIO_FIELDS:
            if field not in raw:
                raise fail(field, "missing (required for aggregation = 'ratio')")
        numerator, denominator = raw["numerator"], raw["denominator"]
        for field, value in (("numerator", numerator), ("denominator", denominator)):
            if not isinstance(value, str) or not value:
                raise fail(field, "must be an indicator id")
        if numerator == denominator:
            raise fail("denominator", "must differ from the numerator")
        value = raw["factor"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise fail("factor", f"must be a positive number, not {value!r}")
        factor = float(value)
        if raw.get("per_100k", False):
            raise fail("per_100k", "a ratio is already a rate")
    else:
        for field in _RATIO_FIELDS:
            if field in raw:
                raise fail(field, f"only allowed when aggregation = 'ratio', not {aggregation!r}")
        default = "mean" if aggregation == "mean" else "sum"
        time_aggregation = _choice(
            raw.get("time_aggregation", default), TIME_AGGREGATIONS, fail, "time_aggregation"
        )

    since = raw.get("since")
    if since is not None and (not isinstance(since, str) or not _MONTH.match(since)):
        raise fail("since", f"must be a month 'YYYY-MM', not {since!r}")
    reference = raw.get("reference")
    if reference is not None:
        if not isinstance(reference, str) or not (path.parent / reference).is_file():
            raise fail("reference", f"{reference!r} is not a file beside {path.name}")

    return Indicator(
        id=raw["id"],
        name_en=raw["name_en"].strip(),
        name_km=raw["name_km"].strip(),
        domain=domain,  # type: ignore[arg-type]
        theme=theme,  # type: ignore[arg-type]
        definition=" ".join(raw["definition"].split()),
        unit=unit,
        aggregation=aggregation,  # type: ignore[arg-type]
        time_aggregation=time_aggregation,  # type: ignore[arg-type]
        disaggregations=tuple(dims),
        sensitive=raw["sensitive"],
        source=raw["source"].strip(),
        per_100k=raw.get("per_100k", False),
        higher_is=higher_is,  # type: ignore[arg-type]
        numerator=numerator,
        denominator=denominator,
        factor=factor,
        since=since,
        reference=reference,
    )


def _check_ratios(catalog: dict[str, Indicator], path: Path) -> None:
    for n, ind in enumerate(catalog.values(), start=1):
        if not ind.is_ratio:
            continue
        parts = []
        for field in ("numerator", "denominator"):
            part_id = getattr(ind, field)
            part = catalog.get(part_id)
            if part is None:
                close = difflib.get_close_matches(part_id, list(catalog), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise _entry_error(
                    path, n, ind.id, field, f"{part_id!r} is not an indicator in the catalog{hint}"
                )
            if part.is_ratio:
                raise _entry_error(
                    path, n, ind.id, field, f"{part_id!r} is itself a ratio; use base indicators"
                )
            parts.append(part)
        shared = set(parts[0].disaggregations) & set(parts[1].disaggregations)
        extra = [d for d in ind.disaggregations if d not in shared]
        if extra:
            raise _entry_error(
                path,
                n,
                ind.id,
                "disaggregations",
                f"{', '.join(extra)} not carried by both {ind.numerator} and {ind.denominator}",
            )
        if any(p.sensitive for p in parts) and not ind.sensitive:
            raise _entry_error(path, n, ind.id, "sensitive", "must be true: a part of the ratio is sensitive")


def load_catalog(path: str | Path = CATALOG_PATH) -> dict[str, Indicator]:
    """Read and validate a catalog file.

    Parameters
    ----------
    path
        A TOML file with one ``[[indicator]]`` table per indicator (see the bundled
        ``data/reference/indicators.toml`` for the fields).

    Returns
    -------
    dict of str to Indicator
        Indicators by id, in file order.

    Raises
    ------
    CatalogError
        If the file cannot be parsed, has an unknown or missing field, an invalid value, a duplicate
        id, an unknown dimension, or a ratio whose parts are missing, ratios, or lack a disaggregation.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"schema_version", "indicator"})
    if unknown:
        raise CatalogError(
            f"{path.name}: unknown top-level key {unknown[0]!r}; expected [[indicator]] tables"
        )
    if data.get("schema_version", 1) != 1:
        raise CatalogError(f"{path.name}: unsupported schema_version {data['schema_version']!r}")
    entries = data.get("indicator")
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{path.name}: no [[indicator]] tables")

    catalog: dict[str, Indicator] = {}
    for n, raw in enumerate(entries, start=1):
        ind = _parse_entry(raw, n, path)
        if ind.id in catalog:
            raise _entry_error(path, n, ind.id, "id", "duplicate id")
        catalog[ind.id] = ind
    _check_ratios(catalog, path)
    return catalog


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Indicator]:
    return load_catalog(CATALOG_PATH)


def indicators() -> dict[str, Indicator]:
    """Return the bundled catalog, by id in file order (a fresh dict over cached records)."""
    return dict(_bundled())


def indicator(id: str) -> Indicator:
    """Return the indicator ``id``.

    Raises
    ------
    UnknownIndicatorError
        If ``id`` is not in the catalog; the message suggests close ids.
    """
    found = _bundled().get(id) if isinstance(id, str) else None
    if found is None:
        raise UnknownIndicatorError(str(id), _suggest_ids(str(id), list(_bundled())))
    return found


def _suggest_ids(text: str, ids: list[str]) -> list[str]:
    """Up to three ids close to ``text``: near-best fuzzy matches, else ids containing it."""
    # Ids are short; matching a long string only costs time (a 10k-character request took ~0.8 s).
    key = text.strip().casefold().replace("-", "_").replace(" ", "_")[:64]
    scored = sorted(((difflib.SequenceMatcher(None, key, i).ratio(), i) for i in ids), reverse=True)
    if scored and scored[0][0] >= 0.6:
        best = scored[0][0]
        return [i for score, i in scored if score >= max(0.6, best - 0.1)][:3]
    return [i for i in ids if key and key in i][:3]


def base_indicators() -> dict[str, Indicator]:
    """Return the non-ratio indicators (the ones observations are stored for), in file order."""
    return {k: v for k, v in _bundled().items() if not v.is_ratio}


def by_domain() -> dict[str, tuple[Indicator, ...]]:
    """Return the indicators grouped by domain, every domain of :data:`DOMAINS` in order."""
    return {d: tuple(i for i in _bundled().values() if i.domain == d) for d in DOMAINS}


def by_theme() -> dict[str, tuple[Indicator, ...]]:
    """Return the indicators grouped by theme, every theme of :data:`THEMES` in order."""
    return {t: tuple(i for i in _bundled().values() if i.theme == t) for t in THEMES}


def catalog_records() -> list[dict[str, Any]]:
    """Return the catalog as JSON-serialisable dicts, in file order (for the API and exports)."""
    return [ind.to_record() for ind in _bundled().values()]
