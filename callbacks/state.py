"""URL ⇄ filter controls ⇄ view state: one callback keeps the three in step (back/forward included)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dash import ALL, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from dashboard import ids
from dashboard.state import VIEW_DEFAULT_INDICATOR, StateError, ViewState, format_weights, parse_search, parse_state
from data.catalog import UnknownIndicatorError
from data.catalog import indicator as get_indicator
from data.gazetteer import target_codes
from data.schema import DIMENSIONS, add_months

VIEW_THEMES = {"migration": ("migration",), "victims": ("victims",), "livelihood": ("livelihood",)}
CONTROL_OUTPUTS = (
    (ids.VIEW_TABS, "active_tab"),
    (ids.INDICATOR, "value"),
    (ids.PROVINCES, "value"),
    (ids.START, "value"),
    (ids.END, "value"),
    (ids.GRANULARITY, "value"),
    (ids.BY, "value"),
    (ids.MEASURE, "value"),
    (ids.CLASSES, "value"),
    (ids.TOP, "value"),
    (ids.MIN_FLOW, "value"),
)


def controls_to_params(view: str, indicator: str, provinces: list | None, start: str | None, end: str | None, granularity: str,
                       by: str | None, measure: str, classes: str, top: Any, min_flow: Any, dim_values: list) -> dict[str, str]:
    """Control values → query parameters (before validation)."""
    params = {
        "view": view or "overview",
        "indicator": indicator or "",
        "provinces": ",".join(sorted(provinces or [])),
        "start": start or "",
        "end": end or "",
        "granularity": granularity or "month",
        "by": by or "",
        "measure": measure or "count",
        "classes": classes or "continuous",
        "top": "" if top in (None, "") else str(int(top)),
        "min_flow": "" if min_flow in (None, "") else str(int(min_flow)),
    }
    for dim, values in zip(DIMENSIONS, dim_values, strict=True):
        if values:
            params[dim] = ",".join(values)
    return params


def risk_params(weight_ids: list, weight_values: list, iweight_ids: list, iweight_values: list) -> dict[str, str]:
    """Risk sliders → ``weights`` / ``iweights`` parameters holding only the weights that differ from the defaults."""
    from data.risk import load_risk_config

    config = load_risk_config()
    dims = {d.key: d.weight for d in config.dimensions}
    inds = {i.key: i.weight for i in config.indicators}
    changed = {w["key"]: float(v) for w, v in zip(weight_ids, weight_values, strict=True) if v is not None and float(v) != dims[w["key"]]}
    ichanged = {w["key"]: float(v) for w, v in zip(iweight_ids, iweight_values, strict=True)
                if v is not None and float(v) != inds[w["key"]]}
    params = {}
    if changed:
        full = {**dims, **changed}
        params["weights"] = format_weights(tuple(sorted(full.items())))
    if ichanged:
        params["iweights"] = format_weights(tuple(sorted(ichanged.items())))
    return params


def risk_slider_values(state: ViewState, weight_ids: list, iweight_ids: list) -> tuple[list[float], list[float]]:
    """The slider positions for a state (defaults where the state leaves a weight out)."""
    from data.risk import load_risk_config

    config = load_risk_config()
    dims = {**{d.key: d.weight for d in config.dimensions}, **dict(state.weights)}
    inds = {**{i.key: i.weight for i in config.indicators}, **dict(state.iweights)}
    return [dims[w["key"]] for w in weight_ids], [inds[w["key"]] for w in iweight_ids]


def sanitise(params: dict[str, str]) -> tuple[ViewState, list[str]]:
    """Validate parameters, dropping each invalid one (and saying so) until the rest is a valid state."""
    notes: list[str] = []
    params = {k: v for k, v in params.items() if v != ""}
    for _ in range(len(params) + 1):
        try:
            return parse_state(params), notes
        except StateError as exc:
            notes.append(str(exc))
            if exc.param not in params or exc.param == "view":
                params.pop("view", None)
            params.pop(exc.param, None)
            if exc.param in ("start", "end"):
                params.pop("start", None)
                params.pop("end", None)
    return ViewState(), notes


def quick_range(which: str, last: dt.date | None) -> tuple[str, str]:
    """Quick picks relative to the last month with data: last 12 months, this year, all."""
    if which == "all" or last is None:
        return "", ""
    if which == "12":
        return f"{add_months(last, -11):%Y-%m}", f"{last:%Y-%m}"
    return f"{last.year}-01", f"{last:%Y-%m}"


def toggle_province(provinces: list[str], click: dict | None) -> list[str]:
    """Add the clicked province to the selection, or remove it when it is already selected."""
    if not click or not click.get("points"):
        return provinces
    code = str(click["points"][0].get("location", ""))
    if len(code) != 2 or not code.isdigit():
        return provinces  # a click on a neighbouring country
    return sorted(set(provinces) - {code}) if code in provinces else sorted({*provinces, code})


def register(app, services) -> None:  # noqa: ANN001
    """Register the state-sync callback."""

    @app.callback(
        Output(ids.URL, "search"),
        *[Output(cid, prop) for cid, prop in CONTROL_OUTPUTS],
        Output({"type": ids.DIM_FILTER_TYPE, "dim": ALL}, "value"),
        Output(ids.STATE, "data"),
        Output(ids.MAP, "clickData"),
        Output(ids.FILTER_NOTE, "children"),
        Output({"type": ids.RISK_WEIGHT_TYPE, "key": ALL}, "value"),
        Output({"type": ids.RISK_IWEIGHT_TYPE, "key": ALL}, "value"),
        Output(ids.RISK_AGGREGATION, "value"),
        Output(ids.RISK_MONTHS, "value"),
        Output(ids.RISK_MAP, "clickData"),
        Input(ids.URL, "search"),
        *[Input(cid, prop) for cid, prop in CONTROL_OUTPUTS],
        Input({"type": ids.DIM_FILTER_TYPE, "dim": ALL}, "value"),
        Input(ids.MAP, "clickData"),
        Input(ids.PROVINCES_ALL, "n_clicks"),
        Input(ids.PROVINCES_TARGETS, "n_clicks"),
        Input(ids.QUICK_12, "n_clicks"),
        Input(ids.QUICK_YEAR, "n_clicks"),
        Input(ids.QUICK_ALL, "n_clicks"),
        Input({"type": ids.RISK_WEIGHT_TYPE, "key": ALL}, "value"),
        Input({"type": ids.RISK_IWEIGHT_TYPE, "key": ALL}, "value"),
        Input(ids.RISK_AGGREGATION, "value"),
        Input(ids.RISK_MONTHS, "value"),
        Input(ids.RISK_RESET, "n_clicks"),
        Input(ids.RISK_MAP, "clickData"),
        State({"type": ids.DIM_FILTER_TYPE, "dim": ALL}, "id"),
        State({"type": ids.RISK_WEIGHT_TYPE, "key": ALL}, "id"),
        State({"type": ids.RISK_IWEIGHT_TYPE, "key": ALL}, "id"),
    )
    def update_state(search, view, indicator, provinces, start, end, granularity, by, measure, classes, top, min_flow,
                     dim_values, click, _all, _targets, _q12, _qyear, _qall, weight_values, iweight_values, aggregation,
                     months, _reset, risk_click, dim_ids, weight_ids, iweight_ids):  # noqa: ANN001, ANN202
        """URL or controls -> one validated view state -> URL, controls and the state store."""
        trigger = ctx.triggered_id
        dims_in_order = [d["dim"] for d in dim_ids]
        values_by_dim = dict(zip(dims_in_order, dim_values, strict=True))
        notes: list[str] = []
        if trigger is None or trigger == ids.URL:
            state = parse_search(search)
        else:
            provinces = list(provinces or [])
            if trigger == ids.MAP:
                provinces = toggle_province(provinces, click)
            elif trigger == ids.RISK_MAP:
                provinces = toggle_province(provinces, risk_click)
            elif trigger == ids.PROVINCES_ALL:
                provinces = []
            elif trigger == ids.PROVINCES_TARGETS:
                provinces = list(target_codes())
            elif trigger in (ids.QUICK_12, ids.QUICK_YEAR, ids.QUICK_ALL):
                which = {ids.QUICK_12: "12", ids.QUICK_YEAR: "year", ids.QUICK_ALL: "all"}[trigger]
                start, end = quick_range(which, services.meta()["last"])
            if trigger == ids.VIEW_TABS and view in VIEW_THEMES:
                if get_indicator(indicator).theme not in VIEW_THEMES[view]:
                    indicator = VIEW_DEFAULT_INDICATOR[view]
            params = controls_to_params(view, indicator, provinces, start, end, granularity, by, measure, classes, top, min_flow,
                                        [values_by_dim.get(d) for d in DIMENSIONS])
            if trigger != ids.RISK_RESET:
                params.update(risk_params(weight_ids, weight_values, iweight_ids, iweight_values))
            params["aggregation"] = aggregation or "geometric"
            params["months"] = "" if months in (None, "") else str(int(months))
            if trigger == ids.INDICATOR:
                # A new indicator keeps only the breakdown and filters it allows.
                ind = get_indicator(params["indicator"])
                allowed = set(ind.disaggregations)
                if params.get("by") and params["by"] not in allowed:
                    params.pop("by")
                for dim in DIMENSIONS:
                    if dim not in allowed:
                        params.pop(dim, None)
                if params.get("measure") == "rate" and not (ind.per_100k and ind.aggregation != "ratio"):
                    params["measure"] = "count"
            state, notes = sanitise(params)
        query = state.to_query()
        where = dict(state.where)
        controls = [
            state.view, state.indicator, list(state.provinces), f"{state.start:%Y-%m}" if state.start else None,
            f"{state.end:%Y-%m}" if state.end else None, state.granularity, state.by, state.measure, state.classes, state.top,
            state.min_flow,
        ]
        weights, iweights = risk_slider_values(state, weight_ids, iweight_ids)
        return (
            query if query != (search or "") else no_update,
            *controls,
            [list(where.get(d, ())) or None for d in dims_in_order],
            query,
            None,
            "; ".join(notes),
            weights,
            iweights,
            state.aggregation,
            state.months,
            None,
        )

    @app.callback(
        Output(ids.BY, "options"),
        Output({"type": ids.DIM_FILTER_TYPE, "dim": ALL}, "disabled"),
        Output(ids.MEASURE, "options"),
        Input(ids.INDICATOR, "value"),
        State({"type": ids.DIM_FILTER_TYPE, "dim": ALL}, "id"),
    )
    def update_filter_options(indicator, dim_ids):  # noqa: ANN001, ANN202
        """Indicator -> the breakdowns and filters it allows (others disabled, not silently ignored)."""
        from dashboard.state import _allowed_dims
        from layouts.main import DIM_LABELS

        try:
            ind = get_indicator(indicator or "victims_identified")
        except UnknownIndicatorError:  # only a crafted request sends an id the dropdown does not offer
            raise PreventUpdate from None
        allowed = _allowed_dims(ind)
        by_options = [{"label": DIM_LABELS[d], "value": d} for d in allowed]
        rate_ok = ind.per_100k and ind.aggregation != "ratio"
        measure_options = [
            {"label": "Counts" if ind.aggregation != "ratio" else "Values", "value": "count"},
            {"label": "Rate per 100,000", "value": "rate", "disabled": not rate_ok},
        ]
        return by_options, [d["dim"] not in allowed for d in dim_ids], measure_options

    @app.callback(Output(ids.LINK_TEXT, "children"), Input(ids.STATE, "data"), State(ids.URL, "href"))
    def update_link(query, href):  # noqa: ANN001, ANN202
        """State -> the shareable link shown next to the copy button."""
        base = (href if isinstance(href, str) and href else "/").split("?")[0]
        return f"{base}{query if isinstance(query, str) else ''}"


