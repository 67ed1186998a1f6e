"""The view state that lives in the URL query string, and its one parser (shared by the UI and the API).

``/?view=victims&indicator=victims_identified&provinces=01,02&start=2024-01&end=2024-12`` decodes to a
:class:`ViewState`; :meth:`ViewState.to_query` encodes it back (defaults are left out, so links stay
short). Every bad parameter raises :class:`StateError` naming the parameter.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode

from data.catalog import UnknownIndicatorError
from data.catalog import indicator as get_indicator
from data.gazetteer import PROVINCE_CODES, target_codes
from data.schema import ALLOWED_VALUES, DIMENSIONS, GRANULARITIES, Filters

VIEWS = ("overview", "migration", "victims", "livelihood", "risk", "about", "import")
DEFAULT_VIEW = "overview"
VIEW_DEFAULT_INDICATOR = {
    "overview": "victims_identified",
    "migration": "migrants_departed",
    "victims": "victims_identified",
    "livelihood": "livelihood_coverage",
    "risk": "victims_identified",
    "about": "victims_identified",
    "import": "victims_identified",
}
MEASURES = ("count", "rate")
AGGREGATIONS = ("geometric", "arithmetic")
RISK_DIMENSIONS = ("hazard", "vulnerability", "coping")
_WEIGHT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
CLASSIFICATIONS = ("continuous", "quantile")
PROVINCE_SETS = {"all": (), "targets": None}  # "targets" resolves at call time (configurable)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_ISO3 = re.compile(r"^[A-Z]{3}$")


class StateError(ValueError):
    """A URL or API parameter is invalid; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(f"parameter {param!r}: {message}")


@dataclass(frozen=True)
class ViewState:
    """Everything that defines what the screen shows."""

    view: str = DEFAULT_VIEW
    indicator: str = "victims_identified"
    provinces: tuple[str, ...] = ()
    start: dt.date | None = None
    end: dt.date | None = None
    granularity: str = "month"
    by: str | None = None
    where: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)
    measure: str = "count"
    classes: str = "continuous"
    top: int = 15
    min_flow: int = 0
    weights: tuple[tuple[str, float], ...] = ()
    iweights: tuple[tuple[str, float], ...] = ()
    aggregation: str = "geometric"
    months: int = 12

    def filters(self, *, provinces: tuple[str, ...] | None = None) -> Filters:
        """The data-layer filters of this state (optionally with other provinces)."""
        return Filters(
            indicator=self.indicator,
            provinces=self.provinces if provinces is None else provinces,
            start=self.start,
            end=self.end,
            granularity=self.granularity,  # type: ignore[arg-type]
            where=self.where,
        )

    def panel_filters(self, panel: str) -> Filters:
        """Filters of a theme panel: the state's indicator when it suits the panel, else the panel's default.

        ``migration`` panels need a ``destination`` breakdown (default ``migrants_departed``); ``victims``
        panels a victims indicator (default ``victims_identified``). Disaggregation filters the chosen
        indicator does not allow are dropped.
        """
        ind = get_indicator(self.indicator)
        suits = {"migration": "destination" in ind.disaggregations, "victims": ind.theme == "victims"}[panel]
        chosen = ind if suits else get_indicator(VIEW_DEFAULT_INDICATOR[panel])
        where = tuple((d, v) for d, v in self.where if d in chosen.disaggregations)
        return self.filters().with_(indicator=chosen.id, where=where)

    def with_(self, **changes: object) -> ViewState:
        """A copy with ``changes``."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_params(self) -> dict[str, str]:
        """Query parameters that differ from the defaults, in a stable order."""
        params: dict[str, str] = {"view": self.view, "indicator": self.indicator}
        if self.provinces:
            params["provinces"] = "targets" if set(self.provinces) == set(target_codes()) else ",".join(self.provinces)
        if self.start:
            params["start"] = f"{self.start:%Y-%m}"
        if self.end:
            params["end"] = f"{self.end:%Y-%m}"
        if self.granularity != "month":
            params["granularity"] = self.granularity
        if self.by:
            params["by"] = self.by
        for dim, values in self.where:
            params[dim] = ",".join(values)
        if self.measure != "count":
            params["measure"] = self.measure
        if self.classes != "continuous":
            params["classes"] = self.classes
        if self.top != 15:
            params["top"] = str(self.top)
        if self.min_flow:
            params["min_flow"] = str(self.min_flow)
        if self.weights:
            params["weights"] = format_weights(self.weights)
        if self.iweights:
            params["iweights"] = format_weights(self.iweights)
        if self.aggregation != "geometric":
            params["aggregation"] = self.aggregation
        if self.months != 12:
            params["months"] = str(self.months)
        return params

    def to_query(self) -> str:
        """``?view=…&indicator=…`` (commas kept readable)."""
        return "?" + urlencode(self.to_params(), safe=",:")


def parse_month(param: str, text: str) -> dt.date:
    """``YYYY-MM`` → first day of the month."""
    m = _MONTH.match(text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise StateError(param, f"{text!r} is not a month; use YYYY-MM, e.g. 2024-03")
    year = int(m.group(1))
    if not 2000 <= year <= 2100:
        raise StateError(param, f"{text!r} is out of range (2000–2100)")
    return dt.date(year, int(m.group(2)), 1)


def parse_provinces(text: str) -> tuple[str, ...]:
    """``01,02`` / ``targets`` / ``all`` / empty → province codes (empty tuple = all)."""
    text = text.strip()
    if text in ("", "all"):
        return ()
    if text == "targets":
        return tuple(target_codes())
    codes = []
    for part in text.split(","):
        code = part.strip().zfill(2)
        if code not in PROVINCE_CODES:
            raise StateError("provinces", f"{part.strip()!r} is not a province code; use 01–25, 'targets' or 'all'")
        codes.append(code)
    return tuple(sorted(set(codes)))


def format_weights(weights: tuple[tuple[str, float], ...]) -> str:
    """``(("hazard", 1.0), ("coping", 0.5))`` → ``hazard:1,coping:0.5``."""
    return ",".join(f"{key}:{value:g}" for key, value in weights)


def parse_weight_list(param: str, text: str, *, keys: tuple[str, ...] | None = None) -> tuple[tuple[str, float], ...]:
    """``hazard:1,coping:0.5`` → sorted ``((key, weight), …)``; weights are finite, 0–10, not all zero."""
    out: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition(":")
        key = key.strip()
        if not sep or not _WEIGHT_KEY.match(key):
            raise StateError(param, f"{item!r} is not key:weight (e.g. hazard:1)")
        if keys is not None and key not in keys:
            raise StateError(param, f"{key!r} is not one of {', '.join(keys)}")
        try:
            value = float(raw)
        except ValueError:
            raise StateError(param, f"{raw.strip()!r} is not a number") from None
        if not (value == value and 0 <= value <= 10):
            raise StateError(param, f"weight of {key} must be between 0 and 10")
        if key in out:
            raise StateError(param, f"{key} is given twice")
        out[key] = value
    if out and not any(out.values()):
        raise StateError(param, "at least one weight must be above 0")
    return tuple(sorted(out.items()))


def _int(param: str, text: str, lo: int, hi: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise StateError(param, f"{text!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise StateError(param, f"{value} is out of range ({lo}–{hi})")
    return value


def parse_state(params: Mapping[str, object], *, known_extra: tuple[str, ...] = ()) -> ViewState:
    """Decode query parameters (a mapping of str → str or list of str) into a :class:`ViewState`.

    Parameters
    ----------
    params
        E.g. ``request.args`` or ``parse_qs(search)``.
    known_extra
        Other parameter names the caller handles itself (e.g. ``format`` in the API); any other unknown
        name is an error.
    """
    flat: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            if len(value) > 1:
                raise StateError(key, "given more than once")
            value = value[0] if value else ""
        if not isinstance(value, str):
            raise StateError(key, "must be text")
        flat[key] = value
    allowed = {"view", "indicator", "provinces", "start", "end", "granularity", "by", "measure", "classes", "top", "min_flow",
               "weights", "iweights", "aggregation", "months", *DIMENSIONS, *known_extra}
    for key in flat:
        if key not in allowed:
            raise StateError(key, f"unknown parameter; known: {', '.join(sorted(allowed))}")
    view = flat.get("view", DEFAULT_VIEW) or DEFAULT_VIEW
    if view not in VIEWS:
        raise StateError("view", f"{view!r} is not a view; use one of {', '.join(VIEWS)}")
    ind_id = flat.get("indicator") or VIEW_DEFAULT_INDICATOR[view]
    try:
        ind = get_indicator(ind_id)
    except (UnknownIndicatorError, KeyError, ValueError) as exc:
        raise StateError("indicator", str(exc.args[0] if exc.args else exc)) from None
    provinces = parse_provinces(flat.get("provinces", ""))
    start = parse_month("start", flat["start"]) if flat.get("start") else None
    end = parse_month("end", flat["end"]) if flat.get("end") else None
    if start and end and start > end:
        raise StateError("start", f"{start:%Y-%m} is after end {end:%Y-%m}")
    granularity = flat.get("granularity") or "month"
    if granularity not in GRANULARITIES:
        raise StateError("granularity", f"{granularity!r}; use month, quarter or year")
    allowed_dims = _allowed_dims(ind)
    by = flat.get("by") or None
    if by is not None and by not in allowed_dims:
        raise StateError("by", f"{ind.id} cannot be broken down by {by!r}; it allows {', '.join(allowed_dims) or 'none'}")
    where = []
    for dim in DIMENSIONS:
        if dim not in flat or not flat[dim]:
            continue
        if dim not in allowed_dims:
            raise StateError(dim, f"{ind.id} cannot be filtered by {dim}; it allows {', '.join(allowed_dims) or 'none'}")
        values = tuple(sorted({v.strip() for v in flat[dim].split(",") if v.strip()}))
        if not values:
            continue  # a blank filter (e.g. "sex= ") filters nothing
        for v in values:
            if dim in ALLOWED_VALUES and v not in ALLOWED_VALUES[dim]:
                raise StateError(dim, f"{v!r} is not a {dim} value; use {'|'.join(ALLOWED_VALUES[dim])}")
            if dim in ("nationality",) and not _ISO3.match(v):
                raise StateError(dim, f"{v!r} is not an ISO alpha-3 code")
            if dim == "destination" and not (_ISO3.match(v) or v in PROVINCE_CODES):
                raise StateError(dim, f"{v!r} is neither an ISO alpha-3 country nor a province code")
        where.append((dim, values))
    measure = flat.get("measure") or "count"
    if measure not in MEASURES:
        raise StateError("measure", f"{measure!r}; use count or rate")
    if measure == "rate" and not (ind.per_100k and ind.aggregation != "ratio"):
        raise StateError("measure", f"{ind.id} has no rate per 100,000")
    classes = flat.get("classes") or "continuous"
    if classes not in CLASSIFICATIONS:
        raise StateError("classes", f"{classes!r}; use continuous or quantile")
    top = _int("top", flat["top"], 1, 100) if flat.get("top") else 15
    min_flow = _int("min_flow", flat["min_flow"], 0, 10_000_000) if flat.get("min_flow") else 0
    weights = parse_weight_list("weights", flat["weights"], keys=RISK_DIMENSIONS) if flat.get("weights") else ()
    iweights = parse_weight_list("iweights", flat["iweights"], keys=_risk_keys()) if flat.get("iweights") else ()
    aggregation = flat.get("aggregation") or "geometric"
    if aggregation not in AGGREGATIONS:
        raise StateError("aggregation", f"{aggregation!r}; use geometric or arithmetic")
    months = _int("months", flat["months"], 1, 120) if flat.get("months") else 12
    return ViewState(view=view, indicator=ind.id, provinces=provinces, start=start, end=end, granularity=granularity, by=by,
                     where=tuple(where), measure=measure, classes=classes, top=top, min_flow=min_flow, weights=weights,
                     iweights=iweights, aggregation=aggregation, months=months)


def _risk_keys() -> tuple[str, ...]:
    from data.risk import load_risk_config

    return tuple(ind.key for ind in load_risk_config().indicators)


def parse_search(search: str | None) -> ViewState:
    """Decode ``location.search`` (``?a=b&…``); an invalid URL — or, from a crafted callback request, a
    value that is not text at all — falls back to the default state."""
    if not isinstance(search, str):
        search = ""
    try:
        return parse_state(parse_qs((search or "").lstrip("?"), keep_blank_values=True))
    except StateError:
        return ViewState()


def _allowed_dims(ind) -> tuple[str, ...]:  # noqa: ANN001
    if ind.aggregation != "ratio":
        return ind.disaggregations
    num, den = get_indicator(ind.numerator), get_indicator(ind.denominator)
    return tuple(d for d in num.disaggregations if d in den.disaggregations)
