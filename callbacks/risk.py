"""Risk view callbacks: view state (weights, aggregation, period) -> index -> map, ranked table, drill-down, export."""

from __future__ import annotations

import io

import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, dcc, html, no_update

from dashboard import figures, ids
from dashboard.access import protect_risk_components, viewer_is_partner
from dashboard.state import ViewState, parse_search
from data.gazetteer import province
from data.risk import load_risk_config, risk_table
from layouts.risk import DIMENSION_LABELS


def risk_for_state(services, state: ViewState) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    """The index for a view state (period end = the state's 'To' month, else the last month with data);
    for viewers without the partner role, victim counts come from their protected releases (a hidden
    count is missing data) and the components built from them are withheld."""
    scores, components = services.cached(
        risk_table, period_end=state.end, months=state.months, dimension_weights=dict(state.weights) or None,
        indicator_weights=dict(state.iweights) or None, aggregation=state.aggregation, protected=not viewer_is_partner(),
    )
    return scores, protect_risk_components(components)


def _fmt(value: float, digits: int = 1) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def ranked_table(scores: pd.DataFrame, class_labels: dict[str, str]) -> dbc.Table:
    """Score, class, the three dimensions, reliability and the rank range under weight uncertainty."""
    head = ["Rank", "Province", "Risk (0–10)", "Class", "Hazard & exposure", "Vulnerability", "Lack of coping", "Reliability",
            "Rank range (5th–95th pct)"]
    rows = []
    for r in scores.to_dict("records"):
        p = province(r["province"])
        scored = not pd.isna(r["score"])
        rows.append(html.Tr([
            html.Td(int(r["rank"]) if scored else "–"),
            html.Td([p.name_en, " ", html.Span(p.name_km, className="km text-muted"), " ★" if p.ctip_target else ""]),
            html.Td(_fmt(r["score"], 2), className="text-end"),
            html.Td(class_labels.get(r["class"], "Not scored") if scored else "Not scored"),
            html.Td(_fmt(r["hazard"]), className="text-end"),
            html.Td(_fmt(r["vulnerability"]), className="text-end"),
            html.Td(_fmt(r["coping"]), className="text-end"),
            html.Td(r["reliability"]),
            html.Td(f"{int(r['rank_p05'])}–{int(r['rank_p95'])}" if scored and not pd.isna(r["rank_p05"]) else "–"),
        ]))
    return dbc.Table([html.Caption("Provinces ranked by the CTIP risk index (★ = CTIP target province)"),
                      html.Thead(html.Tr([html.Th(h) for h in head])), html.Tbody(rows)],
                     bordered=True, hover=True, size="sm", className="ctip-table")


def drilldown(scores: pd.DataFrame, components: pd.DataFrame, code: str, class_labels: dict[str, str]) -> html.Div:
    """Index → dimensions → indicators (raw, normalised, period) for one province."""
    p = province(code)
    row = scores.set_index("province").loc[code]
    parts = [html.H3([f"{p.name_en} ", html.Span(p.name_km, className="km")], className="h5"),
             html.P(f"Risk {_fmt(row['score'], 2)} / 10 · {class_labels.get(row['class'], 'not scored')} · "
                    f"reliability: {row['reliability']}", className="fw-semibold")]
    comp = components[components["province"] == code]
    for dim, label in DIMENSION_LABELS.items():
        sub = comp[comp["dimension"] == dim]
        body = [html.Tr([
            html.Td(r.label_en),
            html.Td("withheld" if r.withheld else _fmt(r.raw, 2), className="text-end"),
            html.Td("withheld" if r.withheld else _fmt(r.normalised, 2), className="text-end"),
            html.Td(f"{r.period_start:%b %Y}–{r.period_end:%b %Y}" if not pd.isna(r.period_start)
                    else ("no data" if pd.isna(r.raw) else "static")),
        ]) for r in sub.itertuples()]
        parts += [html.H4(f"{label}: {_fmt(row[dim])}", className="h6 mt-2"),
                  dbc.Table([html.Thead(html.Tr([html.Th("Indicator"), html.Th("Raw"), html.Th("0–10"), html.Th("Period")])),
                             html.Tbody(body)], bordered=True, size="sm", className="ctip-table")]
    return html.Div(parts)


def export_risk(scores: pd.DataFrame, components: pd.DataFrame, fmt: str, synthetic: bool) -> tuple[str, bytes]:
    """The index with every component: CSV (one row per province, components as columns) or XLSX (sheets)."""
    from dashboard.exports import neutralise

    wide = components.pivot_table(index="province", columns="key", values=["raw", "normalised"], aggfunc="first")
    wide.columns = [f"{key}_{kind}" for kind, key in wide.columns]
    table = scores.drop(columns=[c for c in ("indicators_available", "indicators_used") if c in scores]).merge(
        wide.reset_index(), on="province", how="left")
    table.insert(1, "province_name", [province(c).name_en for c in table["province"]])
    period = scores.attrs.get("period_start"), scores.attrs.get("period_end")
    stem = f"ctip-risk-{period[0]:%Y-%m}_{period[1]:%Y-%m}" if all(period) else "ctip-risk"
    if synthetic:
        table["notice"] = "Synthetic demonstration data — not real figures"
    if fmt == "csv":
        return f"{stem}.csv", neutralise(table).to_csv(index=False).encode("utf-8-sig")
    buffer = io.BytesIO()
    from data.risk import methodology

    meta = pd.DataFrame([(k, str(v)) for k, v in scores.attrs.items()], columns=["setting", "value"])
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        neutralise(table).to_excel(writer, sheet_name="index", index=False)
        neutralise(components).to_excel(writer, sheet_name="components", index=False)
        meta.to_excel(writer, sheet_name="settings", index=False)
        pd.DataFrame([(k, str(v)) for k, v in methodology().items()], columns=["item", "value"]).to_excel(
            writer, sheet_name="methodology", index=False)
        if synthetic:
            pd.DataFrame({"notice": ["SYNTHETIC DEMONSTRATION DATA — generated by a seeded script, not real"]}).to_excel(
                writer, sheet_name="notice", index=False)
    return f"{stem}.xlsx", buffer.getvalue()


def register(app, services) -> None:  # noqa: ANN001
    """Register the risk view callbacks."""
    config = load_risk_config()
    class_labels = {c.key: c.label_en for c in config.classes}

    @app.callback(Output(ids.RISK_MAP, "figure"), Output(ids.RISK_TABLE, "children"), Output(ids.RISK_DRILLDOWN, "children"),
                  Output(ids.RISK_NOTE, "children"), Input(ids.STATE, "data"))
    def update_risk(query):  # noqa: ANN001, ANN202
        """View state -> risk map (five classes), ranked table with rank ranges, drill-down of the selected province."""
        state = parse_search(query)
        if state.view != "risk":
            return (no_update,) * 4
        scores, components = risk_for_state(services, state)
        start, end = scores.attrs["period_start"], scores.attrs["period_end"]
        selected = [c for c in state.provinces][:1]
        focus = selected[0] if selected else scores.dropna(subset=["score"])["province"].iloc[0]
        fig = figures.risk_choropleth(scores, class_keys=[c.key for c in config.classes],
                                      class_labels=[c.label_en for c in config.classes], selected=selected,
                                      subtitle=f"{figures.format_period(start, end)} · "
                                               f"{scores.attrs['aggregation']} mean across dimensions")
        weights = ", ".join(f"{k} {v:g}" for k, v in scores.attrs["dimension_weights"].items())
        note = (f"Weights: {weights}. Grey: not scored (a dimension has fewer than half its indicators). "
                "Click a province for its drill-down." + (" Synthetic demonstration data." if services.meta()["synthetic"] else ""))
        return fig, ranked_table(scores, class_labels), drilldown(scores, components, focus, class_labels), note

    @app.callback(Output(ids.RISK_DOWNLOAD, "data"), Input(ids.RISK_DOWNLOAD_CSV, "n_clicks"),
                  Input(ids.RISK_DOWNLOAD_XLSX, "n_clicks"), State(ids.STATE, "data"), prevent_initial_call=True)
    def on_risk_download(csv_clicks, xlsx_clicks, query):  # noqa: ANN001, ANN202
        """Button -> the index with every component as CSV or XLSX."""
        from dash import ctx

        fmt = "csv" if ctx.triggered_id == ids.RISK_DOWNLOAD_CSV else "xlsx"
        scores, components = risk_for_state(services, parse_search(query))
        name, content = export_risk(scores, components, fmt, services.meta()["synthetic"])
        return dcc.send_bytes(content, name)
