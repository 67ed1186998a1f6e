"""Risk view component trees: weight controls, the index map, ranked table, drill-down and methodology."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids

DIMENSION_LABELS = {"hazard": "Hazard & exposure", "vulnerability": "Vulnerability", "coping": "Lack of coping capacity"}


def weight_slider(kind: str, key: str, label: str, default: float) -> html.Div:
    """A labelled 0–3 weight slider (pattern id ``{"type": kind, "key": key}``)."""
    return html.Div([
        html.Div(label, className="form-label mb-0"),
        dcc.Slider(id={"type": kind, "key": key}, min=0, max=3, step=0.25, value=default,
                   marks={0: "0", 1: "1", 2: "2", 3: "3"}, tooltip={"placement": "bottom", "always_visible": False}),
    ], className="mb-2")


def controls(dimensions: list[dict], indicators: list[dict]) -> html.Div:
    """Dimension and indicator weights, aggregation, period length, reset and downloads."""
    per_dimension = []
    for dim in dimensions:
        sliders = [weight_slider(ids.RISK_IWEIGHT_TYPE, ind["key"], ind["label"], ind["weight"])
                   for ind in indicators if ind["dimension"] == dim["key"]]
        per_dimension.append(html.Details([html.Summary(f"{dim['label']}: indicator weights", className="form-label"), *sliders],
                                          className="mb-2"))
    return html.Div(className="ctip-panel", children=[
        html.H3("Weights", className="h5"),
        html.P("Move a weight and the map, ranks and table follow; the link carries the weights.", className="ctip-note"),
        *[weight_slider(ids.RISK_WEIGHT_TYPE, d["key"], d["label"], d["weight"]) for d in dimensions],
        *per_dimension,
        html.Div([
            html.Div("Across dimensions", className="form-label"),
            dbc.RadioItems(id=ids.RISK_AGGREGATION, inline=True, value="geometric", options=[
                {"label": "Geometric mean (INFORM)", "value": "geometric"},
                {"label": "Arithmetic mean", "value": "arithmetic"}]),
        ], className="mb-2"),
        html.Div([
            dbc.Label("Months up to the period end (the filter panel's 'To')", html_for=ids.RISK_MONTHS),
            dcc.Input(id=ids.RISK_MONTHS, type="number", min=1, max=120, step=1, value=12, debounce=True, className="form-control"),
        ], className="mb-2"),
        dbc.Button("Reset weights", id=ids.RISK_RESET, color="secondary", outline=True, size="sm", className="me-2"),
        dbc.Button("Index CSV", id=ids.RISK_DOWNLOAD_CSV, color="primary", size="sm", className="me-2"),
        dbc.Button("Index Excel", id=ids.RISK_DOWNLOAD_XLSX, color="primary", size="sm"),
        dcc.Download(id=ids.RISK_DOWNLOAD),
    ])


def _render(value: Any) -> Any:
    """Generic rendering of the methodology dict: mappings as definition lists, record lists as tables."""
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            items += [html.Dt(str(key).replace("_", " ").capitalize()), html.Dd(_render(item))]
        return html.Dl(items, className="mb-1")
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        columns = list(dict.fromkeys(k for v in value for k in v))
        head = html.Thead(html.Tr([html.Th(c.replace("_", " ")) for c in columns]))
        body = html.Tbody([html.Tr([html.Td(_render(v.get(c, ""))) for c in columns]) for v in value])
        return dbc.Table([head, body], bordered=True, size="sm", className="ctip-table")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def methodology_section(methodology: dict) -> html.Div:
    """The Methodology page, rendered from the same configuration the index is computed with."""
    return html.Div(id=ids.RISK_METHODOLOGY, children=[
        html.H3("Methodology", className="h5"),
        html.P(["Generated from the configuration the index is computed with (",
                html.A("/api/v1/risk/methodology", href="/api/v1/risk/methodology"), "), so it cannot disagree with the numbers."],
               className="ctip-note"),
        _render(methodology),
    ])


def risk_tab(dimensions: list[dict], indicators: list[dict], methodology: dict) -> html.Div:
    """The Risk view."""
    return html.Div([
        dbc.Row([
            dbc.Col(controls(dimensions, indicators), lg=3),
            dbc.Col(html.Div([
                dcc.Graph(id=ids.RISK_MAP, config={"topojsonURL": "/assets/topojson/", "displaylogo": False},
                          style={"height": "520px"}),
                html.Div(id=ids.RISK_NOTE, className="ctip-note"),
            ]), lg=5),
            dbc.Col(html.Div(id=ids.RISK_DRILLDOWN, className="ctip-table"), lg=4),
        ], className="g-3"),
        html.Div(id=ids.RISK_TABLE, className="ctip-table mt-3"),
        html.Details([html.Summary("Methodology", className="h5"), methodology_section(methodology)], className="mt-3", open=False),
    ])
