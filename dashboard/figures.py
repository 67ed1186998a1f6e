"""Figure builders: query frames in, ``go.Figure`` or ``dash.Patch`` out (pure: no I/O, store or callbacks).

Every map references the shipped boundary layers by URL (:data:`PROVINCES_GEOJSON_URL`,
:data:`CONTEXT_GEOJSON_URL`); plotly.js fetches each URL once and caches it, so geometry never travels in
a figure or a Patch. The province map has a fixed trace order (see the ``TRACE_*`` constants) so that
:func:`choropleth_patch` can address traces by index; the figure and the patch are built from one helper
(:func:`_choropleth_values`), so they cannot disagree.

Frames are the outputs of :mod:`data.queries` (``province_totals``, ``time_series``, ``breakdown``,
``flows``, ``kpi``). The ``config`` of each ``dcc.Graph`` (including the local ``topojsonURL``) is set
by the caller, not here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Patch
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from data.catalog import Indicator
from data.catalog import indicator as get_indicator
from data.gazetteer import NATIONAL_NAMES, PROVINCE_CODES, target_codes
from data.gazetteer import province as get_province
from data.schema import NATIONAL, NOT_DISAGGREGATED
from geo.boundaries import country_label_points, province_bounds, province_label_points

if TYPE_CHECKING:
    from data.queries import Kpi

__all__ = [
    "CONTEXT_FEATUREIDKEY",
    "CONTEXT_GEOJSON_URL",
    "COUNTRY_NAMES",
    "DIMENSION_LABELS",
    "OKABE_ITO",
    "PROVINCES_FEATUREIDKEY",
    "PROVINCES_GEOJSON_URL",
    "SEQUENTIAL_SCALE",
    "TRACE_CONTEXT",
    "TRACE_LEGEND_SELECTED",
    "TRACE_LEGEND_TARGETS",
    "TRACE_LEGEND_ZERO",
    "TRACE_NO_DATA",
    "TRACE_SELECTED",
    "TRACE_TARGETS",
    "TRACE_VALUES",
    "TRACE_ZERO",
    "breakdown_bar_figure",
    "breakdown_figure",
    "category_label",
    "choropleth_patch",
    "coverage_figure",
    "empty_figure",
    "flow_map_figure",
    "flow_table",
    "format_period",
    "format_value",
    "kpi_text",
    "province_choropleth",
    "sankey_figure",
    "select_flows",
    "time_series_figure",
]

Lang = Literal["en", "km"]
Measure = Literal["count", "rate"]
Classes = Literal["continuous", "quantile"]

#: Shipped province layer, served by the app; features keyed by ``properties.province_code``.
PROVINCES_GEOJSON_URL = "/api/v1/provinces.geojson"
PROVINCES_FEATUREIDKEY = "properties.province_code"
#: Shipped neighbouring/destination countries layer; features keyed by ``properties.iso3``.
CONTEXT_GEOJSON_URL = "/api/v1/context.geojson"
CONTEXT_FEATUREIDKEY = "properties.iso3"

#: Trace indices of :func:`province_choropleth` (what :func:`choropleth_patch` addresses).
TRACE_CONTEXT = 0
TRACE_NO_DATA = 1
TRACE_VALUES = 2
TRACE_ZERO = 3
TRACE_TARGETS = 4
TRACE_SELECTED = 5
#: Legend-only proxies (empty ``scattergeo`` markers, same ``legendgroup``) for traces 3–5: a
#: choropleth legend swatch shows only the fill, so a white or transparent fill would be invisible.
TRACE_LEGEND_ZERO = 6
TRACE_LEGEND_TARGETS = 7
TRACE_LEGEND_SELECTED = 8
TRACE_SUPPRESSED = 9
TRACE_LEGEND_SUPPRESSED = 10
SUPPRESSED_COLOUR = "#6b6b6b"

#: Base font size in px: readable on a projector.
BASE_FONT_SIZE = 15
FONT_FAMILY = "'Noto Sans', 'Noto Sans Khmer', 'Khmer OS', Arial, sans-serif"
TEXT_COLOUR = "#222222"
NO_DATA_COLOUR = "#d9d9d9"
ZERO_COLOUR = "#ffffff"
CONTEXT_FILL = "#f2f2f2"
CONTEXT_LINE = "#c8c8c8"
TARGET_LINE = "#1a1a1a"
SELECTED_LINE = "#e6007e"
TOTAL_LINE = "#222222"
NOT_DISAGGREGATED_COLOUR = "#9e9e9e"
TRANSPARENT = "rgba(0,0,0,0)"
ZERO_NAME = "0 (none reported)"
TARGETS_NAME = "CTIP target province"
SELECTED_NAME = "Selected"

#: Viridis reversed (light yellow = low, dark purple = high): perceptually uniform and readable with
#: every common colour-vision deficiency; its lightest colour stays distinct from the white "0" fill and
#: the grey "no data" fill.
SEQUENTIAL_SCALE: tuple[str, ...] = (
    "#fde725",
    "#b5de2b",
    "#6ece58",
    "#35b779",
    "#1f9e89",
    "#26828e",
    "#31688e",
    "#3e4989",
    "#482878",
    "#440154",
)
#: Okabe-Ito qualitative palette without black (black is kept for totals), colour-blind safe.
OKABE_ITO: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442")
_DASHES = ("solid", "dot", "dashdot", "longdash")

_N_QUANTILES = 5
_MAP_PAD_DEG = 0.25

#: Country names for ISO 3166-1 alpha-3 codes likely to appear as nationality or destination.
COUNTRY_NAMES: dict[str, str] = {
    "KHM": "Cambodia",
    "THA": "Thailand",
    "VNM": "Viet Nam",
    "LAO": "Lao PDR",
    "MYS": "Malaysia",
    "KOR": "Rep. of Korea",
    "PRK": "DPR Korea",
    "JPN": "Japan",
    "CHN": "China",
    "IDN": "Indonesia",
    "MMR": "Myanmar",
    "PHL": "Philippines",
    "SGP": "Singapore",
    "TWN": "Taiwan",
    "BGD": "Bangladesh",
    "IND": "India",
    "PAK": "Pakistan",
    "NPL": "Nepal",
    "LKA": "Sri Lanka",
    "BTN": "Bhutan",
    "BRN": "Brunei Darussalam",
    "TLS": "Timor-Leste",
    "MNG": "Mongolia",
    "PNG": "Papua New Guinea",
    "HKG": "Hong Kong, China",
    "MAC": "Macao, China",
    "SAU": "Saudi Arabia",
    "ARE": "United Arab Emirates",
    "QAT": "Qatar",
    "KWT": "Kuwait",
    "OMN": "Oman",
    "BHR": "Bahrain",
    "JOR": "Jordan",
    "LBN": "Lebanon",
    "ISR": "Israel",
    "TUR": "Türkiye",
    "RUS": "Russian Federation",
    "AUS": "Australia",
    "NZL": "New Zealand",
    "USA": "United States",
    "CAN": "Canada",
    "GBR": "United Kingdom",
    "FRA": "France",
    "DEU": "Germany",
    "ITA": "Italy",
    "POL": "Poland",
    "UGA": "Uganda",
    "KEN": "Kenya",
    "ETH": "Ethiopia",
    "NGA": "Nigeria",
}

#: Display names of disaggregation dimensions (and the place columns of flows).
DIMENSION_LABELS: dict[str, str] = {
    "sex": "Sex",
    "age_group": "Age group",
    "nationality": "Nationality",
    "exploitation_type": "Form of exploitation",
    "destination": "Destination",
    "channel": "Migration channel",
    "service": "Service",
    "topic": "Training topic",
    "role": "Role",
    "province": "Province",
    "country": "Country",
}

_CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "sex": {"female": "Female", "male": "Male", "other": "Other", "unknown": "Unknown"},
    "age_group": {"child": "Child (under 18)", "adult": "Adult (18+)", "unknown": "Unknown"},
    "exploitation_type": {
        "sexual": "Sexual exploitation",
        "labour": "Labour exploitation",
        "forced_criminality": "Forced criminality (scams)",
        "domestic_servitude": "Domestic servitude",
        "begging": "Forced begging",
        "forced_marriage": "Forced marriage",
        "other": "Other",
        "unknown": "Unknown",
    },
    "channel": {"regular": "Regular (licensed)", "irregular": "Irregular", "unknown": "Unknown"},
    "service": {
        "shelter": "Shelter",
        "legal_aid": "Legal aid",
        "medical": "Medical care",
        "psychosocial": "Psychosocial support",
        "reintegration": "Reintegration support",
        "unknown": "Unknown",
    },
    "topic": {
        "tip_safe_migration": "TIP and safe migration",
        "market_linkage": "Market linkage",
        "livelihood": "Livelihood skills",
        "unknown": "Unknown",
    },
    "role": {
        "police": "Police",
        "prosecutor": "Prosecutor",
        "judge": "Judge",
        "social_worker": "Social worker",
        "other": "Other",
        "unknown": "Unknown",
    },
}
_NOT_DISAGGREGATED_LABEL = "Not disaggregated"
_SERIES_LABELS = {"national": "Cambodia (national)", "targets": "CTIP target provinces (total)"}
_TOTAL_KEYS = frozenset(_SERIES_LABELS)
_PERIOD_AXIS = {"month": "Month", "quarter": "Quarter", "year": "Year"}
_PERIOD_FORMAT = {"month": "%b %Y", "quarter": "Q%q %Y", "year": "%Y"}
_PROVINCE_CODE = re.compile(r"^\d{2}$")
_MINUS = "\u2212"


# --- formatting ------------------------------------------------------------------------------------


def _indicator(ind: Indicator | str) -> Indicator:
    return ind if isinstance(ind, Indicator) else get_indicator(ind)


def _float_or_nan(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
    return out


def _isnan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _num(value: float, decimals: int | None = None) -> str:
    """Thousands separators; integers without decimals unless ``decimals`` is given."""
    if decimals is None:
        decimals = 0 if float(value).is_integer() else 1
    text = f"{abs(value):,.{decimals}f}"
    return f"{_MINUS}{text}" if value < 0 and float(text.replace(",", "")) != 0 else text


def format_value(value: float | None, unit: str, *, rate: bool = False) -> str:
    """Format a value with its unit for hovers, labels and tables.

    Parameters
    ----------
    value
        The number; ``None`` or NaN gives ``"no data"``.
    unit
        Catalog unit (``persons``, ``households``, ``cases``, ``count``, ``percent``, ``USD``).
    rate
        The value is a rate per 100,000 population (one decimal, "per 100,000").

    Returns
    -------
    str
        E.g. ``"1,234 persons"``, ``"45.3 %"``, ``"US$ 12,000"``, ``"12.5 per 100,000"``, ``"17"``.
    """
    if _isnan(value):
        return "no data"
    assert value is not None
    if rate:
        return f"{_num(value, 1)} per 100,000"
    if unit == "percent":
        return f"{_num(value, 1)} %"
    if unit == "USD":
        return f"US$ {_num(value, 0)}"
    if unit == "count":
        return _num(value)
    return f"{_num(value)} {unit}"


def _measure_caption(ind: Indicator, measure: str) -> str:
    """What the numbers are, for axis titles and colorbars: "persons", "per 100,000 population", "%"."""
    if measure == "rate":
        return "per 100,000 population"
    if ind.unit == "percent":
        return "%"
    if ind.aggregation == "mean":
        return f"mean, {ind.unit}"
    return ind.unit


def _colorbar_caption(ind: Indicator, measure: str) -> str:
    """Short, two-line unit-and-measure caption for a colorbar: "Persons<br>(count)"."""
    if measure == "rate":
        return "Rate per<br>100,000"
    if ind.unit == "percent":
        return "Percent"
    if ind.aggregation == "mean":
        return f"Mean<br>({ind.unit})"
    if ind.unit == "count":
        return "Count"
    return f"{ind.unit.capitalize()}<br>(count)" if ind.unit != "USD" else "US$<br>(total)"


def _axis_title(ind: Indicator, measure: str, lang: Lang = "en") -> str:
    return f"{ind.name(lang)} ({_measure_caption(ind, measure)})"


def _d3_format(ind: Indicator, measure: str) -> str:
    if measure == "rate" or ind.unit == "percent" or ind.aggregation in ("mean", "ratio"):
        return ",.1f"
    return ",.0f"


def _check_measure(ind: Indicator, measure: str) -> None:
    if measure not in ("count", "rate"):
        raise ValueError(f"measure must be 'count' or 'rate', not {measure!r}")
    if measure == "rate" and (not ind.per_100k or ind.is_ratio):
        raise ValueError(f"{ind.id} has no rate per 100,000 population; use measure='count'")


def format_period(start: dt.date, end: dt.date) -> str:
    """Label a month range: ``"Mar 2024"``, ``"Jan–Dec 2023"``, ``"Nov 2023–Apr 2024"``."""
    if (start.year, start.month) == (end.year, end.month):
        return f"{start:%b %Y}"
    if start.year == end.year:
        return f"{start:%b}–{end:%b %Y}"
    return f"{start:%b %Y}–{end:%b %Y}"


def _title(main: str, subtitle: str = "") -> dict[str, Any]:
    title: dict[str, Any] = {"text": f"<b>{main}</b>", "x": 0.01, "xanchor": "left", "font": {"size": 20}}
    if subtitle:
        title["subtitle"] = {"text": subtitle, "font": {"size": 15}}
    return title


def _base_layout(title: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "template": "plotly_white",
        "font": {"family": FONT_FAMILY, "size": BASE_FONT_SIZE, "color": TEXT_COLOUR},
        "hoverlabel": {"font": {"size": 14, "family": FONT_FAMILY}},
        "margin": {"l": 60, "r": 20, "t": 80 if title and "subtitle" in title else 60, "b": 50},
    }
    if title is not None:
        layout["title"] = title
    layout.update(extra)
    return layout


def _place_label(code: str, lang: Lang = "en") -> str:
    """A province code ("01"…"25", "00") or an ISO alpha-3 code as a display name."""
    if code == NATIONAL:
        return NATIONAL_NAMES[lang]
    if code in PROVINCE_CODES:
        return get_province(code).name(lang)
    return COUNTRY_NAMES.get(code, code)


def category_label(dim: str, code: object, lang: Lang = "en") -> str:
    """Human label of a disaggregation value (or a place code).

    Parameters
    ----------
    dim
        A dimension of :data:`data.schema.DIMENSIONS`, or ``"province"``/``"country"``/``"origin"``
        for place codes.
    code
        The stored value, e.g. ``"female"``, ``"forced_criminality"``, ``"THA"``, ``"14"``; the empty
        string (not disaggregated) gives ``"Not disaggregated"``.
    lang
        ``"km"`` gives Khmer province names (from the gazetteer); other labels are English.

    Returns
    -------
    str
        E.g. ``"Female"``, ``"Forced criminality (scams)"``, ``"Thailand"``, ``"Prey Veng"``; an unknown
        code is returned readable (``"some_code"`` → ``"Some code"``; ISO codes unchanged).
    """
    if _isnan(code) or code == NOT_DISAGGREGATED:
        return _NOT_DISAGGREGATED_LABEL
    text = str(code)
    if dim in ("nationality", "destination", "province", "country", "origin") or dim not in _CATEGORY_LABELS:
        if text == NATIONAL or text in PROVINCE_CODES or text in COUNTRY_NAMES:
            return _place_label(text, lang)
        if re.fullmatch(r"[A-Z]{3}", text):
            return text
    label = _CATEGORY_LABELS.get(dim, {}).get(text)
    if label is not None:
        return label
    return text.replace("_", " ").capitalize()


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _floats(values: Iterable[Any]) -> list[float | None]:
    """JSON-native list: NaN/NA become ``None`` (a gap), numbers plain floats."""
    return [None if _isnan(v) else float(v) for v in values]


# --- empty ------------------------------------------------------------------------------------------


def empty_figure(message: str, *, title: str | None = None) -> go.Figure:
    """A figure with only a centred message (no axes), for views without data.

    Parameters
    ----------
    message
        What to tell the user, e.g. ``"No data for Prey Veng in 2023"``.
    title
        Optional figure title.
    """
    layout = _base_layout(
        _title(title) if title else None,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
                "showarrow": False,
                "font": {"size": 18, "color": "#555555"},
            }
        ],
        height=320,
    )
    return go.Figure(layout=layout)


# --- province choropleth -------------------------------------------------------------------------


@dataclass(frozen=True)
class _MapValues:
    """Everything of the province map that depends on the data: per-trace properties and the title."""

    traces: dict[int, dict[str, Any]]
    title: dict[str, Any]


def _flat_scale(colour: str) -> list[list[Any]]:
    return [[0.0, colour], [1.0, colour]]


def _quantile_classes(values: np.ndarray, unit: str, rate: bool) -> tuple[list[int], list[str]]:
    """Five quantile classes (fewer when values repeat; one when all are equal), none empty.

    Returns the class index of each value and a label per class giving the members' min–max.
    """
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, _N_QUANTILES + 1)))
    if len(edges) < 2:
        raw = np.zeros(len(values), dtype=int)
    else:
        # class i holds (edges[i], edges[i + 1]]; the lowest class also holds edges[0].
        raw = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, len(edges) - 2)
    used = sorted(set(raw.tolist()))
    renumber = {old: new for new, old in enumerate(used)}
    index = [renumber[int(c)] for c in raw]
    labels = []
    for old in used:
        members = values[raw == old]
        lo, hi = float(members.min()), float(members.max())
        fmt = (lambda v: _num(v, 1)) if rate or unit == "percent" else _num
        labels.append(fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}")
    return index, labels


def _class_colours(k: int) -> list[str]:
    scale = [[i / (len(SEQUENTIAL_SCALE) - 1), c] for i, c in enumerate(SEQUENTIAL_SCALE)]
    points = [0.5] if k == 1 else [0.05 + 0.95 * i / (k - 1) for i in range(k)]
    return sample_colorscale(scale, points)


def _choropleth_values(
    totals: pd.DataFrame,
    *,
    indicator: Indicator | str,
    measure: str,
    classes: str,
    selected: Sequence[str],
    lang: Lang,
    title: str | None,
    period_label: str,
) -> _MapValues:
    """The data-dependent properties of the province map, shared by the figure and the Patch."""
    ind = _indicator(indicator)
    _check_measure(ind, measure)
    if classes not in ("continuous", "quantile"):
        raise ValueError(f"classes must be 'continuous' or 'quantile', not {classes!r}")
    rate = measure == "rate"
    column = "rate_100k" if rate else "value"
    # Plain dicts over the 25 provinces: pandas indexing per province costs more than the map itself.
    codes = [str(c) for c in totals["province"].tolist()] if "province" in totals else []
    first = {c: i for i, c in reversed(list(enumerate(codes)))}  # first row per province

    def col(name: str) -> dict[str, float]:
        values = totals[name].tolist() if name in totals else [None] * len(codes)
        return {c: _float_or_nan(values[first[c]]) if c in first else float("nan") for c in PROVINCE_CODES}

    m, value_d, rates_d = col(column), col("value"), col("rate_100k")
    hidden_list = totals["suppressed"].tolist() if "suppressed" in totals else [False] * len(codes)
    hidden = {c for c in PROVINCE_CODES if c in first and bool(hidden_list[first[c]])}
    k_label = f"<{int(totals.attrs.get('k', 5))}"
    has_parts = ind.is_ratio and {"numerator", "denominator"} <= set(totals.columns)
    nums, dens = (col("numerator"), col("denominator")) if has_parts else ({}, {})
    ranked = [v for v in m.values() if not _isnan(v)]
    ranks_d = {c: (np.nan if _isnan(v) else 1 + sum(1 for o in ranked if o > v)) for c, v in m.items()}
    n_ranked = len(ranked)
    show_rate = ind.per_100k and not ind.is_ratio

    # Short strings (units live in the hovertemplate): the customdata is most of the Patch.
    decimals = 1 if ind.unit == "percent" or ind.aggregation != "sum" else None
    customdata: list[list[str]] = []
    for code in PROVINCE_CODES:
        v = value_d[code]
        if code in hidden:
            customdata.append([f"{k_label} (suppressed to protect identities)", "suppressed" if show_rate else "", "not ranked"])
            continue
        text = "no data" if _isnan(v) else _num(float(v), 0 if ind.unit == "USD" else decimals)
        if has_parts and not _isnan(v):
            num, den = nums.get(code, np.nan), dens.get(code, np.nan)
            if not (_isnan(num) or _isnan(den)):
                text += f" ({_num(float(num))} of {_num(float(den))})"
        rate_text = ("no data" if _isnan(rates_d[code]) else _num(float(rates_d[code]), 1)) if show_rate else ""
        rank = "no data" if _isnan(ranks_d[code]) else f"{int(ranks_d[code])} of {n_ranked}"
        customdata.append([text, rate_text, rank])

    unit = "US$" if ind.unit == "USD" else _measure_caption(ind, "count")
    hovertemplate = "<b>%{text}</b><br>" + f"{ind.name(lang)} ({unit}): " + "%{customdata[0]}"
    if show_rate:
        hovertemplate += "<br>Rate per 100,000: %{customdata[1]}"
    hovertemplate += f"<br>Rank by {'rate' if rate else 'value'}: " + "%{customdata[2]}<extra></extra>"

    nonzero = pd.Series({c: v for c, v in m.items() if not _isnan(v) and v != 0}, dtype="float64")
    zeros = pd.Series({c: v for c, v in m.items() if v == 0}, dtype="float64")
    caption = _colorbar_caption(ind, measure)
    colorbar: dict[str, Any] = {
        "title": {"text": caption, "side": "top"},
        "thickness": 16,
        "len": 0.7,
        "x": 1.0,
        "xanchor": "left",
        "tickfont": {"size": 14},
        "outlinewidth": 0,
    }
    if classes == "quantile" and len(nonzero):
        index, labels = _quantile_classes(nonzero.to_numpy(), ind.unit, rate)
        k = len(labels)
        colours = _class_colours(k)
        colorscale: list[list[Any]] = []
        for i, colour in enumerate(colours):
            colorscale += [[i / k, colour], [(i + 1) / k, colour]]
        z: list[Any] = [float(i) for i in index]
        zmin, zmax = -0.5, k - 0.5
        colorbar.update(tickmode="array", tickvals=[float(i) for i in range(k)], ticktext=labels)
        colorbar["title"]["text"] = caption + "<br>(quantile classes)"
    else:
        colorscale = [[i / (len(SEQUENTIAL_SCALE) - 1), c] for i, c in enumerate(SEQUENTIAL_SCALE)]
        z = [float(f"{v:.6g}") for v in nonzero]  # colour needs no more; keeps the Patch small
        lo = float(min(0.0, nonzero.min())) if len(nonzero) else 0.0
        hi = float(max(0.0, nonzero.max())) if len(nonzero) else 1.0
        zmin, zmax = lo, hi if hi > lo else lo + 1.0
        colorbar["tickformat"] = ",.2~f"

    chosen = [c for c in PROVINCE_CODES if c in set(selected)]
    traces = {
        TRACE_NO_DATA: {
            "customdata": customdata,
            "hovertemplate": hovertemplate,
        },
        TRACE_VALUES: {
            "locations": list(nonzero.index),
            "z": z,
            "zmin": zmin,
            "zmax": zmax,
            "colorscale": colorscale,
            "colorbar": colorbar,
            "showscale": bool(len(nonzero)),
        },
        TRACE_ZERO: {"locations": list(zeros.index), "z": [0.0] * len(zeros)},
        TRACE_SELECTED: {"locations": chosen, "z": [0.0] * len(chosen)},
        TRACE_LEGEND_ZERO: {"showlegend": bool(len(zeros))},
        TRACE_LEGEND_SELECTED: {"showlegend": bool(chosen)},
        TRACE_SUPPRESSED: {"locations": sorted(hidden), "z": [0.0] * len(hidden)},
        TRACE_LEGEND_SUPPRESSED: {"showlegend": bool(hidden), "name": f"{k_label} (suppressed)"},
    }
    what = "rate per 100,000 population" if rate else _measure_caption(ind, measure)
    subtitle = " · ".join(p for p in (what[0].upper() + what[1:], period_label) if p)
    return _MapValues(traces=traces, title=_title(title or ind.name(lang), subtitle))


def _province_trace(index: int, values: Mapping[int, dict[str, Any]], **static: Any) -> go.Choropleth:
    props = {
        "geojson": PROVINCES_GEOJSON_URL,
        "featureidkey": PROVINCES_FEATUREIDKEY,
        "locationmode": "geojson-id",
        **static,
        **values.get(index, {}),
    }
    return go.Choropleth(**props)


def _legend_proxy(
    index: int,
    values: Mapping[int, dict[str, Any]],
    *,
    name: str,
    group: str,
    fill: str,
    line: str,
    width: float,
) -> go.Scattergeo:
    props = {
        "lon": [None],
        "lat": [None],
        "mode": "markers",
        "marker": {"symbol": "square", "size": 15, "color": fill, "line": {"color": line, "width": width}},
        "name": name,
        "legendgroup": group,
        "showlegend": True,
        "hoverinfo": "skip",
        **values.get(index, {}),
    }
    return go.Scattergeo(**props)


def _context_trace(*, hover: bool = True) -> go.Choropleth:
    codes = sorted(country_label_points())
    return go.Choropleth(
        geojson=CONTEXT_GEOJSON_URL,
        featureidkey=CONTEXT_FEATUREIDKEY,
        locationmode="geojson-id",
        locations=codes,
        z=[0.0] * len(codes),
        text=[COUNTRY_NAMES.get(c, c) for c in codes],
        hoverinfo="text" if hover else "skip",
        colorscale=_flat_scale(CONTEXT_FILL),
        showscale=False,
        showlegend=False,
        marker={"line": {"color": CONTEXT_LINE, "width": 0.8}},
        name="Neighbouring countries",
    )


def _geo_layout(bounds: tuple[float, float, float, float], pad: float) -> dict[str, Any]:
    lon_min, lat_min, lon_max, lat_max = bounds
    return {
        "visible": False,
        "projection": {"type": "mercator"},
        # Explicit ranges rather than fitbounds="locations": fitbounds uses every trace, and the
        # context-countries trace would zoom the map out to all of Asia.
        "fitbounds": False,
        "lonaxis": {"range": [lon_min - pad, lon_max + pad]},
        "lataxis": {"range": [max(lat_min - pad, -80.0), min(lat_max + pad, 80.0)]},
        "bgcolor": "rgba(0,0,0,0)",
    }


def province_choropleth(
    totals: pd.DataFrame,
    *,
    indicator: Indicator | str,
    measure: Measure = "count",
    classes: Classes = "continuous",
    selected: Sequence[str] = (),
    lang: Lang = "en",
    title: str | None = None,
    period_label: str = "",
) -> go.Figure:
    """Province map of one indicator (geometry by URL; a few KB).

    Parameters
    ----------
    totals
        :func:`data.queries.province_totals` output: ``province, value, population, rate_100k, rank``
        (ratio indicators add ``numerator, denominator``). ``value`` NaN means no data, 0 a true zero.
        Provinces missing from the frame are shown as no data.
    indicator
        Catalog entry or id.
    measure
        ``"count"`` colours by ``value``; ``"rate"`` by ``rate_100k`` (indicators with ``per_100k``).
    classes
        ``"continuous"`` colour scale or ``"quantile"``: up to five classes with labelled ranges (one
        class when all values are equal).
    selected
        Province codes outlined in magenta.
    lang
        Language of the title (hover always shows English and Khmer province names).
    title
        Main title; defaults to the indicator name.
    period_label
        The period shown, e.g. ``"Jan–Dec 2024"`` (see :func:`format_period`), in the subtitle.

    Returns
    -------
    plotly.graph_objects.Figure
        Traces in the order of the ``TRACE_*`` constants: context countries, "No data" base (carries
        the hover for every province), values, true zeros, CTIP target outline, selection outline, then
        three legend-only proxies (grouped with traces 3–5, so clicking the legend toggles them).
    """
    values = _choropleth_values(
        totals,
        indicator=indicator,
        measure=measure,
        classes=classes,
        selected=selected,
        lang=lang,
        title=title,
        period_label=period_label,
    )
    names = [f"{p.name_en} · {p.name_km}" for p in (get_province(c) for c in PROVINCE_CODES)]
    targets = list(target_codes())
    outline = {"colorscale": _flat_scale(TRANSPARENT), "showscale": False, "hoverinfo": "skip"}
    traces = [
        _context_trace(),
        _province_trace(
            TRACE_NO_DATA,
            values.traces,
            name="No data",
            locations=list(PROVINCE_CODES),
            z=[0.0] * len(PROVINCE_CODES),
            text=names,
            colorscale=_flat_scale(NO_DATA_COLOUR),
            showscale=False,
            showlegend=True,
            marker={"line": {"color": "#ffffff", "width": 0.8}},
        ),
        # Hover lives on the base trace (all 25 provinces, fixed order); plotly.js passes hover through
        # "skip" traces, so the coloured layers above need no customdata of their own.
        _province_trace(
            TRACE_VALUES,
            values.traces,
            name="Value",
            hoverinfo="skip",
            showlegend=False,
            marker={"line": {"color": "#ffffff", "width": 0.8}},
        ),
        _province_trace(
            TRACE_ZERO,
            values.traces,
            name=ZERO_NAME,
            legendgroup="zero",
            showlegend=False,
            colorscale=_flat_scale(ZERO_COLOUR),
            showscale=False,
            hoverinfo="skip",
            marker={"line": {"color": "#9e9e9e", "width": 0.8}},
        ),
        _province_trace(
            TRACE_TARGETS,
            values.traces,
            name=TARGETS_NAME,
            legendgroup="targets",
            showlegend=False,
            locations=targets,
            z=[0.0] * len(targets),
            marker={"line": {"color": TARGET_LINE, "width": 2.5}},
            **outline,
        ),
        _province_trace(
            TRACE_SELECTED,
            values.traces,
            name=SELECTED_NAME,
            legendgroup="selected",
            showlegend=False,
            marker={"line": {"color": SELECTED_LINE, "width": 3.5}},
            **outline,
        ),
        _legend_proxy(
            TRACE_LEGEND_ZERO,
            values.traces,
            name=ZERO_NAME,
            group="zero",
            fill=ZERO_COLOUR,
            line="#9e9e9e",
            width=1,
        ),
        _legend_proxy(
            TRACE_LEGEND_TARGETS,
            values.traces,
            name=TARGETS_NAME,
            group="targets",
            fill=TRANSPARENT,
            line=TARGET_LINE,
            width=2.5,
        ),
        _legend_proxy(
            TRACE_LEGEND_SELECTED,
            values.traces,
            name=SELECTED_NAME,
            group="selected",
            fill=TRANSPARENT,
            line=SELECTED_LINE,
            width=3,
        ),
        # Suppressed small counts: a state of its own, distinct from no data and from zero.
        _province_trace(
            TRACE_SUPPRESSED,
            values.traces,
            name="Suppressed",
            legendgroup="suppressed",
            showlegend=False,
            colorscale=_flat_scale(SUPPRESSED_COLOUR),
            showscale=False,
            hoverinfo="skip",
            marker={"line": {"color": "#ffffff", "width": 0.8}},
        ),
        _legend_proxy(
            TRACE_LEGEND_SUPPRESSED,
            values.traces,
            name="Suppressed",
            group="suppressed",
            fill=SUPPRESSED_COLOUR,
            line="#ffffff",
            width=1,
        ),
    ]
    layout = _base_layout(
        values.title,
        geo=_geo_layout(province_bounds(), _MAP_PAD_DEG),
        uirevision="province-map",
        margin={"l": 5, "r": 5, "t": 80, "b": 5},
        legend={
            "orientation": "h",
            "x": 0.5,
            "xanchor": "center",
            "y": 0.0,
            "yanchor": "top",
            "font": {"size": 14},
        },
        hovermode="closest",
    )
    return go.Figure(data=traces, layout=layout)


def choropleth_patch(
    totals: pd.DataFrame,
    *,
    indicator: Indicator | str,
    measure: Measure = "count",
    classes: Classes = "continuous",
    selected: Sequence[str] = (),
    lang: Lang = "en",
    title: str | None = None,
    period_label: str = "",
) -> Patch:
    """The values of :func:`province_choropleth` as a ``dash.Patch`` (~2 KB; geometry untouched).

    Takes the same arguments as :func:`province_choropleth`. Applied to any map built by that function
    it yields the map of these arguments: it merges the hover customdata and template of the "No data"
    base trace (whose locations, all 25 provinces, never change), the locations, z, colour scale,
    range and colorbar of the value trace, the locations of the zero and selection traces and the
    visibility of their legend entries, and assigns the title. It never carries ``geojson``.
    """
    values = _choropleth_values(
        totals,
        indicator=indicator,
        measure=measure,
        classes=classes,
        selected=selected,
        lang=lang,
        title=title,
        period_label=period_label,
    )
    patch = Patch()
    for index, props in values.traces.items():
        # One shallow "Merge" per trace: replaces exactly the keys of ``props``, keeps geojson & co.
        patch["data"][index].update(props)
    patch["layout"]["title"] = values.title
    return patch


# --- time series ------------------------------------------------------------------------------------


def _series_label(key: str, lang: Lang = "en") -> str:
    if key in _SERIES_LABELS:
        return _SERIES_LABELS[key]
    if key in PROVINCE_CODES or key == NATIONAL:
        return _place_label(key, lang)
    return str(key)


def _period_strings(periods: pd.Series) -> list[str]:
    return [f"{p:%Y-%m-%d}" for p in pd.to_datetime(periods)]


def time_series_figure(
    series: pd.DataFrame,
    *,
    indicator: Indicator | str,
    measure: Measure = "count",
    granularity: str = "month",
    lang: Lang = "en",
    title: str | None = None,
) -> go.Figure:
    """One line per province, plus a thick dashed line for the national (or target) total.

    Parameters
    ----------
    series
        :func:`data.queries.time_series` output (``period, province, value``), possibly several
        concatenated: province codes and/or ``"national"``/``"targets"`` totals. NaN values are
        drawn as gaps (``connectgaps=False``), never as 0.
    indicator
        Catalog entry or id.
    measure
        ``"count"`` or ``"rate"`` (per 100,000 population; the series must already be rates).
    granularity
        ``"month"``, ``"quarter"`` or ``"year"`` (x axis title and date format).
    lang
        Language of the indicator and province names.
    title
        Main title; defaults to the indicator name.
    """
    ind = _indicator(indicator)
    _check_measure(ind, measure)
    if series.empty or series["value"].isna().all():
        return empty_figure(
            f"No {ind.name_en.lower()} data for this selection", title=title or ind.name(lang)
        )
    fmt = _d3_format(ind, measure)
    caption = _measure_caption(ind, measure)
    suffix = "" if caption in ("count", "%") else f" {caption}"
    if caption == "%":
        suffix = " %"
    keys = list(dict.fromkeys(series["province"].astype(str)))
    provinces = sorted(k for k in keys if k not in _TOTAL_KEYS)
    totals = [k for k in keys if k in _TOTAL_KEYS]
    few_points = series["period"].nunique() <= 36
    traces = []
    for i, key in enumerate(provinces + totals):
        part = series[series["province"].astype(str) == key].sort_values("period")
        is_total = key in _TOTAL_KEYS
        colour = TOTAL_LINE if is_total else OKABE_ITO[i % len(OKABE_ITO)]
        line = {"color": colour, "width": 4 if is_total else 2.5}
        line["dash"] = "dash" if is_total else _DASHES[(i // len(OKABE_ITO)) % len(_DASHES)]
        traces.append(
            go.Scatter(
                x=_period_strings(part["period"]),
                y=_floats(part["value"]),
                name=_series_label(key, lang),
                mode="lines+markers" if few_points else "lines",
                line=line,
                marker={"size": 7 if is_total else 6, "color": colour},
                connectgaps=False,
                hovertemplate=f"%{{y:{fmt}}}{suffix}",
            )
        )
    period_fmt = _PERIOD_FORMAT.get(granularity, "%b %Y")
    layout = _base_layout(
        _title(title or ind.name(lang), f"{caption[0].upper() + caption[1:]} by {granularity}"),
        xaxis={
            "title": {"text": _PERIOD_AXIS.get(granularity, "Period")},
            "tickformat": period_fmt,
            "hoverformat": period_fmt,
            "type": "date",
            **({"dtick": "M12"} if granularity == "year" else {}),
        },
        yaxis={
            "title": {"text": _axis_title(ind, measure, lang)},
            "tickformat": ",~f",
            "rangemode": "tozero" if (series["value"].dropna() >= 0).all() else "normal",
        },
        hovermode="x unified",
        legend={"orientation": "h", "x": 0.0, "y": -0.2, "yanchor": "top"},
        margin={"l": 70, "r": 20, "t": 80, "b": 90},
    )
    return go.Figure(data=traces, layout=layout)


# --- breakdowns ---------------------------------------------------------------------------------


def _category_colours(codes: Sequence[Any]) -> dict[Any, str]:
    colours: dict[Any, str] = {}
    i = 0
    for code in codes:
        if _isnan(code) or code == NOT_DISAGGREGATED:
            colours[code] = NOT_DISAGGREGATED_COLOUR
        elif code == "unknown":
            colours[code] = "#cfcfcf"
        else:
            colours[code] = OKABE_ITO[i % len(OKABE_ITO)]
            i += 1
    return colours


def breakdown_figure(
    series_by: pd.DataFrame,
    *,
    indicator: Indicator | str,
    by: str,
    granularity: str = "month",
    lang: Lang = "en",
    title: str | None = None,
) -> go.Figure:
    """Stacked bars over time of one disaggregation.

    Parameters
    ----------
    series_by
        :func:`data.queries.time_series` output with ``by=<dim>``: ``period, province, <by>, value``.
        Several provinces are summed per period and category.
    indicator
        Catalog entry or id. Only summable indicators are stacked; means and ratios are grouped.
    by
        The disaggregation column.
    granularity
        ``"month"``, ``"quarter"`` or ``"year"``.
    lang
        Language of names.
    title
        Main title; defaults to "<indicator> by <dimension>".
    """
    ind = _indicator(indicator)
    dim_label = DIMENSION_LABELS.get(by, by.replace("_", " ").capitalize())
    main = title or f"{ind.name(lang)} by {dim_label.lower()}"
    if series_by.empty or series_by["value"].isna().all():
        return empty_figure(
            f"No {ind.name_en.lower()} data by {dim_label.lower()} for this selection", title=main
        )
    frame = series_by.assign(**{by: series_by[by].fillna(NOT_DISAGGREGATED).astype(str)})
    frame = frame.groupby(["period", by], sort=True)["value"].sum(min_count=1).reset_index()
    order = frame.groupby(by)["value"].sum().sort_values(ascending=False, kind="stable").index.tolist()
    order = [c for c in order if c not in (NOT_DISAGGREGATED, "unknown")] + [
        c for c in ("unknown", NOT_DISAGGREGATED) if c in order
    ]
    colours = _category_colours(order)
    fmt = _d3_format(ind, "count")
    caption = _measure_caption(ind, "count")
    traces = []
    for code in order:
        part = frame[frame[by] == code].sort_values("period")
        traces.append(
            go.Bar(
                x=_period_strings(part["period"]),
                y=_floats(part["value"]),
                name=category_label(by, code, lang),
                marker={"color": colours[code]},
                hovertemplate=f"%{{y:{fmt}}}" + ("" if caption in ("count",) else f" {caption}"),
            )
        )
    period_fmt = _PERIOD_FORMAT.get(granularity, "%b %Y")
    layout = _base_layout(
        _title(main, f"{caption[0].upper() + caption[1:]} by {granularity} and {dim_label.lower()}"),
        barmode="stack" if ind.aggregation == "sum" else "group",
        xaxis={
            "title": {"text": _PERIOD_AXIS.get(granularity, "Period")},
            "tickformat": period_fmt,
            "hoverformat": period_fmt,
            "type": "date",
        },
        yaxis={"title": {"text": _axis_title(ind, "count", lang)}, "tickformat": ",~f"},
        hovermode="x unified",
        legend={"orientation": "h", "x": 0.0, "y": -0.2, "yanchor": "top", "title": {"text": dim_label}},
        margin={"l": 70, "r": 20, "t": 80, "b": 90},
        bargap=0.15,
    )
    return go.Figure(data=traces, layout=layout)


def breakdown_bar_figure(
    frame: pd.DataFrame,
    *,
    indicator: Indicator | str,
    by: str,
    title: str | None = None,
    horizontal: bool = True,
    lang: Lang = "en",
    period_label: str = "",
) -> go.Figure:
    """Totals by category, largest first, with value and share as text and in the hover.

    Parameters
    ----------
    frame
        :func:`data.queries.breakdown` output: ``<by>, value, share`` (share of the shown total, 0–1).
    indicator
        Catalog entry or id.
    by
        The disaggregation column.
    title
        Main title; defaults to "<indicator> by <dimension>".
    horizontal
        Horizontal bars (readable long labels) or vertical columns.
    lang
        Language of names.
    period_label
        The period shown, in the subtitle.
    """
    ind = _indicator(indicator)
    dim_label = DIMENSION_LABELS.get(by, by.replace("_", " ").capitalize())
    main = title or f"{ind.name(lang)} by {dim_label.lower()}"
    if frame.empty or frame["value"].isna().all():
        return empty_figure(
            f"No {ind.name_en.lower()} data by {dim_label.lower()} for this selection", title=main
        )
    data = frame.dropna(subset=["value"]).sort_values("value", ascending=False, kind="stable")
    share = data["share"] if "share" in data else pd.Series(np.nan, index=data.index)
    labels = [category_label(by, c, lang) for c in data[by]]
    values_txt = [format_value(v, ind.unit) for v in data["value"]]
    share_txt = ["" if _isnan(s) else f"{100 * s:.1f} %" for s in share]
    numbers = [
        _num(float(v), 1 if ind.unit == "percent" or ind.aggregation != "sum" else None)
        for v in data["value"]
    ]
    text = [f"{n} ({s})" if s else n for n, s in zip(numbers, share_txt, strict=True)]
    hover = [
        f"<b>{lab}</b><br>{v}" + (f"<br>{s} of total" if s else "")
        for lab, v, s in zip(labels, values_txt, share_txt, strict=True)
    ]
    colours = [
        NOT_DISAGGREGATED_COLOUR if c in (NOT_DISAGGREGATED, "unknown") else OKABE_ITO[0] for c in data[by]
    ]
    values = _floats(data["value"])
    bar: dict[str, Any] = {
        "text": text,
        "textposition": "outside",
        "cliponaxis": False,
        "hovertext": hover,
        "hovertemplate": "%{hovertext}<extra></extra>",
        "marker": {"color": colours},
        "name": ind.name(lang),
    }
    value_axis: dict[str, Any] = {
        "title": {"text": _axis_title(ind, "count", lang)},
        "tickformat": ",~f",
        "rangemode": "tozero",
    }
    top_value = max((v for v in values if v is not None), default=0.0)
    if top_value > 0 and min(v for v in values if v is not None) >= 0:
        value_axis["range"] = [0.0, top_value * (1.3 if horizontal else 1.15)]  # room for the text
    if horizontal:
        trace = go.Bar(x=values, y=labels, orientation="h", **bar)
        axes = {
            "xaxis": value_axis,
            "yaxis": {"autorange": "reversed", "automargin": True},
            "height": max(280, 110 + 42 * len(labels)),
        }
    else:
        trace = go.Bar(x=labels, y=values, **bar)
        axes = {"yaxis": value_axis, "xaxis": {"title": {"text": dim_label}, "automargin": True}}
    subtitle = " · ".join(p for p in ("Total over the period", period_label) if p)
    layout = _base_layout(
        _title(main, subtitle), showlegend=False, margin={"l": 20, "r": 30, "t": 80, "b": 60}, **axes
    )
    return go.Figure(data=[trace], layout=layout)


# --- flows --------------------------------------------------------------------------------------


def select_flows(flows: pd.DataFrame, top: int | None = 15, min_flow: float = 0) -> pd.DataFrame:
    """The flows the flow map, the Sankey and the flow table show (one rule for all three).

    Parameters
    ----------
    flows
        :func:`data.queries.flows` output: ``origin, destination, value``.
    top
        Keep the ``top`` largest flows; ``None`` or ``0`` keeps all.
    min_flow
        Drop flows below this value first.

    Returns
    -------
    pandas.DataFrame
        ``origin, destination, value`` (a new frame), largest first; ties broken by origin then
        destination so the choice is stable.
    """
    frame = flows[["origin", "destination", "value"]].copy()
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    frame = frame[frame["value"].notna() & (frame["value"] >= min_flow) & (frame["value"] > 0)]
    frame = frame.sort_values(
        ["value", "origin", "destination"], ascending=[False, True, True], kind="stable"
    )
    if top:
        frame = frame.head(int(top))
    return frame.reset_index(drop=True)


def _flow_noun(ind: Indicator) -> str:
    for prefix, noun in (("migrants", "migrants"), ("victims", "victims"), ("returnees", "returnees")):
        if ind.id.startswith(prefix):
            return noun
    return "" if ind.unit == "count" else ind.unit


def _flow_note(n_shown: int, n_all: int, top: int | None, min_flow: float, noun: str) -> str:
    parts = [f"Largest {n_shown} of {n_all} flows" if n_shown < n_all else f"All {n_all} flows"]
    if min_flow:
        parts.append(f"of at least {_num(min_flow)} {noun}".rstrip())
    return " ".join(parts)


def _point(code: str) -> tuple[float, float] | None:
    if _PROVINCE_CODE.match(code):
        return province_label_points().get(code)
    return country_label_points().get(code)


def flow_map_figure(
    flows: pd.DataFrame,
    *,
    indicator: Indicator | str,
    origin_kind: Literal["province", "nationality"] = "province",
    dest_kind: Literal["country", "province"] = "country",
    top: int | None = 15,
    min_flow: float = 0,
    lang: Lang = "en",
    title: str | None = None,
    period_label: str = "",
) -> go.Figure:
    """Origin → destination lines on the map, width by value, end markers sized by inflow.

    Parameters
    ----------
    flows
        :func:`data.queries.flows` output (``origin, destination, value``); filtered by
        :func:`select_flows` (``top``, ``min_flow``), like the Sankey and the table.
    indicator
        Catalog entry or id (hover wording and units).
    origin_kind, dest_kind
        What the codes are: province codes or ISO alpha-3 (nationality / country). Places are located
        at the shipped label points; a two-digit code is always read as a province (the
        ``destination`` column mixes countries and provinces). Flows with an end that has no point
        (e.g. Cambodian nationality) are not drawn and counted in an annotation.
    top, min_flow
        See :func:`select_flows`.
    lang
        Language of place names.
    title
        Main title; defaults to the indicator name with "flows".
    period_label
        The period shown, in the subtitle.
    """
    ind = _indicator(indicator)
    main = title or f"{ind.name(lang)}: flows"
    selected = select_flows(flows, top, min_flow)
    if selected.empty:
        return empty_figure("No flows match this selection", title=main)
    noun = _flow_noun(ind)
    drawable = []
    missing = 0
    for row in selected.itertuples(index=False):
        a, b = _point(str(row.origin)), _point(str(row.destination))
        if a is None or b is None:
            missing += 1
        else:
            drawable.append((str(row.origin), str(row.destination), float(row.value), a, b))

    codes = list(PROVINCE_CODES)
    base = go.Choropleth(
        geojson=PROVINCES_GEOJSON_URL,
        featureidkey=PROVINCES_FEATUREIDKEY,
        locationmode="geojson-id",
        locations=codes,
        z=[0.0] * len(codes),
        colorscale=_flat_scale("#e3e3e3"),
        showscale=False,
        showlegend=False,
        text=[_place_label(c, lang) for c in codes],
        hoverinfo="text",
        marker={"line": {"color": "#ffffff", "width": 0.8}},
        name="Provinces",
    )
    traces: list[Any] = [_context_trace(), base]
    vmax = max((f[2] for f in drawable), default=1.0)
    for origin, dest, value, (lon0, lat0), (lon1, lat1) in drawable:
        label = f"{_place_label(origin, lang)} → {_place_label(dest, lang)}: {_num(value)} {noun}".rstrip()
        traces.append(
            go.Scattergeo(
                lon=[lon0, (lon0 + lon1) / 2, lon1],
                lat=[lat0, (lat0 + lat1) / 2, lat1],
                mode="lines",
                line={"width": round(1 + 11 * math.sqrt(value / vmax), 2), "color": _rgba("#0072B2", 0.65)},
                text=[label] * 3,
                hovertemplate="%{text}<extra></extra>",
                name=label,
                showlegend=False,
            )
        )
    if drawable:
        inflow: dict[str, float] = {}
        for _, dest, value, _, _ in drawable:
            inflow[dest] = inflow.get(dest, 0.0) + value
        top_in = max(inflow.values())
        points = {dest: b for _, dest, _, _, b in drawable}
        dests = sorted(inflow, key=lambda d: -inflow[d])
        traces.append(
            go.Scattergeo(
                lon=[points[d][0] for d in dests],
                lat=[points[d][1] for d in dests],
                mode="markers",
                marker={
                    "size": [round(8 + 22 * math.sqrt(inflow[d] / top_in), 2) for d in dests],
                    "color": _rgba("#D55E00", 0.85),
                    "line": {"color": "#ffffff", "width": 1},
                },
                text=[
                    f"{_place_label(d, lang)}: {_num(inflow[d])} {noun} in the flows shown".strip()
                    for d in dests
                ],
                hovertemplate="%{text}<extra></extra>",
                name="Destinations",
                showlegend=False,
            )
        )

    lons = [p for f in drawable for p in (f[3][0], f[4][0])]
    lats = [p for f in drawable for p in (f[3][1], f[4][1])]
    cam = province_bounds()
    bounds = (min([cam[0], *lons]), min([cam[1], *lats]), max([cam[2], *lons]), max([cam[3], *lats]))
    pad = max(_MAP_PAD_DEG, 0.08 * max(bounds[2] - bounds[0], bounds[3] - bounds[1]))
    notes = [_flow_note(len(selected), len(flows), top, min_flow, noun)]
    if missing:
        notes.append(f"{missing} flow{'s' if missing != 1 else ''} without a map location not drawn")
    annotation = {
        "text": "<br>".join(notes),
        "x": 0.0,
        "y": 0.0,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "left",
        "yanchor": "bottom",
        "showarrow": False,
        "align": "left",
        "font": {"size": 14, "color": "#444444"},
        "bgcolor": "rgba(255,255,255,0.8)",
    }
    layout = _base_layout(
        _title(main, " · ".join(p for p in (f"Line width by {noun or 'value'}", period_label) if p)),
        geo=_geo_layout(bounds, pad),
        showlegend=False,
        uirevision="flow-map",
        margin={"l": 5, "r": 5, "t": 80, "b": 5},
        annotations=[annotation],
        hovermode="closest",
    )
    return go.Figure(data=traces, layout=layout)


def sankey_figure(
    flows: pd.DataFrame,
    *,
    indicator: Indicator | str | None = None,
    top: int | None = 15,
    min_flow: float = 0,
    lang: Lang = "en",
    title: str | None = None,
) -> go.Figure:
    """The flows of :func:`flow_map_figure` as a Sankey diagram: origins left, destinations right.

    Parameters
    ----------
    flows
        :func:`data.queries.flows` output; filtered by :func:`select_flows`.
    indicator
        Catalog entry or id, for units in the hover (optional).
    top, min_flow
        See :func:`select_flows`.
    lang
        Language of place names.
    title
        Main title.
    """
    ind = _indicator(indicator) if indicator is not None else None
    main = title or (f"{ind.name(lang)}: flows" if ind else "Flows")
    selected = select_flows(flows, top, min_flow)
    if selected.empty:
        return empty_figure("No flows match this selection", title=main)
    origins = list(dict.fromkeys(selected["origin"].astype(str)))
    dests = list(dict.fromkeys(selected["destination"].astype(str)))
    labels = [_place_label(c, lang) for c in origins] + [_place_label(c, lang) for c in dests]
    o_index = {c: i for i, c in enumerate(origins)}
    d_index = {c: len(origins) + i for i, c in enumerate(dests)}
    o_colour = {c: OKABE_ITO[i % len(OKABE_ITO)] for i, c in enumerate(origins)}
    noun = _flow_noun(ind) if ind else ""
    trace = go.Sankey(
        arrangement="snap",
        valueformat=",.0f",
        valuesuffix=f" {noun}" if noun else "",
        node={
            "label": labels,
            "color": [o_colour[c] for c in origins] + ["#6b6b6b"] * len(dests),
            "pad": 14,
            "thickness": 18,
            "line": {"color": "#ffffff", "width": 0.5},
        },
        link={
            "source": [o_index[str(o)] for o in selected["origin"]],
            "target": [d_index[str(d)] for d in selected["destination"]],
            "value": _floats(selected["value"]),
            "color": [_rgba(o_colour[str(o)], 0.4) for o in selected["origin"]],
            "hovertemplate": "%{source.label} → %{target.label}: %{value:,.0f}"
            + (f" {noun}" if noun else "")
            + "<extra></extra>",
        },
    )
    note = _flow_note(len(selected), len(flows), top, min_flow, noun)
    return go.Figure(
        data=[trace], layout=_base_layout(_title(main, note), margin={"l": 20, "r": 20, "t": 80, "b": 20})
    )


def flow_table(
    flows: pd.DataFrame, top: int | None = 15, min_flow: float = 0, *, lang: Lang = "en"
) -> pd.DataFrame:
    """The flows of :func:`flow_map_figure` as a ranked table.

    Returns
    -------
    pandas.DataFrame
        ``origin, destination, value, share``: place names, the value, and the share of the total
        of all ``flows`` (before filtering, 0–1), largest first.
    """
    selected = select_flows(flows, top, min_flow)
    total = pd.to_numeric(flows["value"], errors="coerce").sum()
    return pd.DataFrame(
        {
            "origin": [_place_label(str(c), lang) for c in selected["origin"]],
            "destination": [_place_label(str(c), lang) for c in selected["destination"]],
            "value": selected["value"].astype("float64"),
            "share": selected["value"].astype("float64") / total if total else np.nan,
        }
    )


# --- livelihood coverage ----------------------------------------------------------------------------


def coverage_figure(
    frame: pd.DataFrame, *, title: str | None = None, lang: Lang = "en", period_label: str = ""
) -> go.Figure:
    """Does support go where risk is? Coverage next to victims and migrants, per livelihood province.

    Parameters
    ----------
    frame
        One row per livelihood province with columns ``province`` (code), ``coverage`` (households
        supported / households at risk × 100; NaN when unknown, then computed from the next two
        columns where possible), ``households_supported``, ``households_at_risk``,
        ``victims_identified`` and ``migrants_departed`` (totals over the period; NaN = no data).
    title
        Main title.
    lang
        Language of province names.
    period_label
        The period shown, in the subtitle.

    Returns
    -------
    plotly.graph_objects.Figure
        Three horizontal bar panels sharing the province axis, provinces sorted by coverage (highest
        at the top, no data at the bottom).
    """
    main = title or "Livelihood support and risk by province"
    if frame.empty:
        return empty_figure("No livelihood provinces to show", title=main)
    data = frame.copy()
    for col in (
        "coverage",
        "households_supported",
        "households_at_risk",
        "victims_identified",
        "migrants_departed",
    ):
        data[col] = pd.to_numeric(data[col], errors="coerce").astype("float64") if col in data else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        computed = (
            data["households_supported"]
            / data["households_at_risk"].where(data["households_at_risk"] > 0)
            * 100
        )
    data["coverage"] = data["coverage"].fillna(computed)
    data = data.sort_values("coverage", ascending=True, na_position="first", kind="stable")
    names = [_place_label(str(c), lang) for c in data["province"]]
    fig = make_subplots(
        rows=1,
        cols=3,
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=(
            "Coverage (% of households at risk supported)",
            "Victims identified",
            "Migrants departed",
        ),
    )
    cov_text = ["no data" if _isnan(c) else f"{c:.0f} %" for c in data["coverage"]]
    cov_hover = [
        f"<b>{n}</b><br>Coverage: "
        + ("no data" if _isnan(c) else f"{c:.1f} %")
        + f"<br>{format_value(s, 'households')} supported of {format_value(r, 'households')} at risk"
        for n, c, s, r in zip(
            names, data["coverage"], data["households_supported"], data["households_at_risk"], strict=True
        )
    ]
    fig.add_trace(
        go.Bar(
            x=[0.0 if _isnan(c) else float(c) for c in data["coverage"]],
            y=names,
            orientation="h",
            text=cov_text,
            textposition="outside",
            cliponaxis=False,
            marker={"color": "#009E73"},
            hovertext=cov_hover,
            hovertemplate="%{hovertext}<extra></extra>",
            name="Coverage",
        ),
        row=1,
        col=1,
    )
    for col, (column, label, colour) in enumerate(
        (
            ("victims_identified", "victims identified", "#D55E00"),
            ("migrants_departed", "migrants departed", "#0072B2"),
        ),
        start=2,
    ):
        values = data[column]
        fig.add_trace(
            go.Bar(
                x=[0.0 if _isnan(v) else float(v) for v in values],
                y=names,
                orientation="h",
                text=["no data" if _isnan(v) else _num(float(v)) for v in values],
                textposition="outside",
                cliponaxis=False,
                marker={"color": colour},
                hovertext=[
                    f"<b>{n}</b><br>{format_value(v, 'persons')} {label}"
                    for n, v in zip(names, values, strict=True)
                ],
                hovertemplate="%{hovertext}<extra></extra>",
                name=label.capitalize(),
            ),
            row=1,
            col=col,
        )
    fig.update_layout(
        **_base_layout(
            _title(main, " · ".join(p for p in ("Sorted by coverage", period_label) if p)),
            showlegend=False,
            height=max(320, 130 + 44 * len(names)),
            margin={"l": 20, "r": 60, "t": 100, "b": 50},
        )
    )
    fig.update_xaxes(tickformat=",~f", rangemode="tozero", automargin=True)
    fig.update_xaxes(title_text="%", row=1, col=1)
    fig.update_xaxes(title_text="persons", row=1, col=2)
    fig.update_xaxes(title_text="persons", row=1, col=3)
    fig.update_yaxes(automargin=True)
    fig.update_annotations(font_size=15)
    return fig


# --- KPI cards ----------------------------------------------------------------------------------


def kpi_text(kpi: Kpi, unit: str) -> dict[str, Any]:
    """Display strings of a KPI card.

    Parameters
    ----------
    kpi
        :class:`data.queries.Kpi` (``value``, ``previous``, ``change``, ``pct_change``,
        ``previous_start``, ``previous_end``); ``None`` values mean no data.
    unit
        Catalog unit of the indicator (``percent`` changes are shown in percentage points).

    Returns
    -------
    dict
        ``value`` ("1,234", "45.3 %" or "—"), ``unit``, ``has_data``, ``change`` ("+56", "−2.1 pp",
        "" when not comparable), ``pct`` ("+5.3 %", "new" when the previous value was 0, ""),
        ``arrow`` ("▲", "▼", "▶" or ""), ``direction`` ("up", "down", "flat", "none"), ``comparison``
        ("vs Jan–Dec 2023") and ``text``, one line combining them (e.g. "▲ +56 (+5.3 %) vs Jan–Dec
        2023" or "No data for Jan–Dec 2023").
    """
    comparison = f"vs {format_period(kpi.previous_start, kpi.previous_end)}"
    percent = unit == "percent"

    def amount(v: float) -> str:
        if percent:
            return f"{_num(v, 1)} %"
        if unit == "USD":
            return f"US$ {_num(v, 0)}"
        return _num(v)

    out: dict[str, Any] = {
        "value": "—" if kpi.value is None else amount(kpi.value),
        "unit": "" if percent else unit,
        "has_data": kpi.value is not None,
        "change": "",
        "pct": "",
        "arrow": "",
        "direction": "none",
        "comparison": comparison,
    }
    if kpi.value is None:
        out["text"] = "No data for this period"
        return out
    if kpi.previous is None:
        out["text"] = f"No data for {comparison[3:]}"
        return out
    change = kpi.value - kpi.previous
    sign = "+" if change > 0 else (_MINUS if change < 0 else "±")
    magnitude = _num(abs(change), 1) if percent or not float(change).is_integer() else _num(abs(change))
    out["change"] = f"{sign}{magnitude}" + (" pp" if percent else "")
    if not percent:
        if kpi.previous == 0:
            out["pct"] = "new" if change else ""
        else:
            pct = 100.0 * change / abs(kpi.previous)
            out["pct"] = f"{'+' if pct > 0 else (_MINUS if pct < 0 else '±')}{abs(pct):.1f} %"
    out["direction"] = "up" if change > 0 else ("down" if change < 0 else "flat")
    out["arrow"] = {"up": "▲", "down": "▼", "flat": "▶"}[out["direction"]]
    detail = f" ({out['pct']})" if out["pct"] else ""
    out["text"] = f"{out['arrow']} {out['change']}{detail} {comparison}"
    return out


#: Five risk classes, very low → very high (ColorBrewer YlOrRd, readable for colour-blind viewers).
RISK_CLASS_COLOURS: tuple[str, ...] = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")


def risk_choropleth(
    scores: pd.DataFrame,
    *,
    class_keys: Sequence[str],
    class_labels: Sequence[str],
    selected: Sequence[str] = (),
    title: str = "CTIP risk index",
    subtitle: str = "",
) -> go.Figure:
    """Province map of the risk index in its five classes (geometry by URL).

    Parameters
    ----------
    scores
        ``province, score, class, rank, rank_p05, rank_p95, hazard, vulnerability, coping,
        reliability`` (one row per province; ``score`` NaN = not scored).
    class_keys, class_labels
        The configured classes in order (very low … very high) and their display names.
    selected
        Province codes drawn with the selection outline (the drill-down province).
    """
    frame = scores.set_index("province").reindex(list(PROVINCE_CODES))
    index = {key: i for i, key in enumerate(class_keys)}
    scored = frame[frame["score"].notna()]
    n = len(class_keys)
    scale = []
    for i, colour in enumerate(RISK_CLASS_COLOURS[:n]):
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    names = {c: get_province(c) for c in PROVINCE_CODES}

    def hover(code: str) -> str:
        r = frame.loc[code]
        head = f"<b>{names[code].name_en}</b> · {names[code].name_km}"
        if pd.isna(r["score"]):
            return f"{head}<br>Not scored ({r['reliability']}: a dimension lacks data)"
        dims = " · ".join(f"{d.title()} {r[d]:.1f}" if not pd.isna(r[d]) else f"{d.title()} –"
                          for d in ("hazard", "vulnerability", "coping"))
        return (f"{head}<br>Risk {r['score']:.2f} / 10 · {class_labels[index[r['class']]]}<br>Rank {int(r['rank'])} "
                f"(range {int(r['rank_p05'])}–{int(r['rank_p95'])} under weight uncertainty)<br>{dims}<br>"
                f"Reliability: {r['reliability']}")

    targets = list(target_codes())
    chosen = [c for c in selected if c in PROVINCE_CODES]
    fig = go.Figure([
        _context_trace(),
        _province_trace(1, {}, locations=list(PROVINCE_CODES), z=[0.0] * 25, colorscale=_flat_scale(NO_DATA_COLOUR),
                        showscale=False, name="Not scored", showlegend=False, text=[hover(c) for c in PROVINCE_CODES],
                        hovertemplate="%{text}<extra></extra>", marker={"line": {"color": "#ffffff", "width": 0.8}}),
        _province_trace(2, {}, locations=list(scored.index), z=[float(index[c]) + 0.5 for c in scored["class"]], zmin=0, zmax=n,
                        colorscale=scale, hoverinfo="skip", name="Risk class",
                        colorbar={"title": {"text": "Risk class"}, "tickvals": [i + 0.5 for i in range(n)],
                                  "ticktext": list(class_labels), "len": 0.75},
                        marker={"line": {"color": "#ffffff", "width": 0.8}}),
        _province_trace(3, {}, locations=targets, z=[0.0] * len(targets), colorscale=_flat_scale(TRANSPARENT), showscale=False,
                        hoverinfo="skip", name="CTIP target province", marker={"line": {"color": TARGET_LINE, "width": 2.5}}),
        _province_trace(4, {}, locations=chosen, z=[0.0] * len(chosen), colorscale=_flat_scale(TRANSPARENT), showscale=False,
                        hoverinfo="skip", name="Selected", marker={"line": {"color": SELECTED_LINE, "width": 3.5}}),
    ])
    fig.update_layout(**_base_layout(_title(title, subtitle), margin={"l": 0, "r": 0, "t": 70, "b": 0}),
                      geo=_geo_layout(province_bounds(), _MAP_PAD_DEG), uirevision="risk-map")
    return fig
