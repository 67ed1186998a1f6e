"""View callbacks: view state -> queries -> figures, tables and KPI cards (one function per output group)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, html, no_update

from dashboard import figures, ids
from dashboard.access import must_suppress
from dashboard.state import ViewState, parse_search
from dashboard.viewdata import ViewData, kpi_protected
from data import queries
from data.catalog import indicator as get_indicator
from data.gazetteer import livelihood_codes, province, target_codes
from data.release import NotPublished
from data.schema import Filters

HEADLINE = ("victims_identified", "migrants_departed", "households_supported")


def period_label(services, state: ViewState) -> str:  # noqa: ANN001
    """'Jan 2024 – Dec 2024' for the state's window (the data's coverage when open-ended)."""
    meta = services.meta()
    start, end = state.start or meta["first"], state.end or meta["last"]
    if not start or not end:
        return "no data"
    return figures.format_period(start, end)


def _rate_ok(ind) -> bool:  # noqa: ANN001
    return bool(ind.per_100k and ind.aggregation != "ratio")


def map_args(services, state: ViewState) -> dict:  # noqa: ANN001
    """Arguments of the province map for a state (shared by the full figure and the Patch)."""
    ind = get_indicator(state.indicator)
    totals = view_data(services, state).province_totals()
    measure = state.measure if _rate_ok(ind) else "count"
    return {"totals": totals, "indicator": ind, "measure": measure, "classes": state.classes, "selected": state.provinces,
            "period_label": period_label(services, state)}


def view_data(services, state: ViewState, filters=None, by: str | None = None) -> ViewData:  # noqa: ANN001
    """The state's numbers for the current viewer (suppressed unless a partner is signed in)."""
    f = filters or state.filters()
    return ViewData(services.cached, f, protect=must_suppress(f.indicator), by=by)


def suppressed_text(text: dict, hidden: bool, prev_hidden: bool, k: int) -> dict:
    """KPI strings when the value or its comparison is suppressed."""
    if hidden:
        return {**text, "value": f"<{k}", "text": "suppressed to protect identities", "direction": "none"}
    if prev_hidden:
        return {**text, "text": "previous period suppressed", "direction": "none"}
    return text


def kpi_card(label: str, text: dict, *, synthetic: bool) -> html.Div:
    """One KPI card."""
    change_class = {"up": "up", "down": "down"}.get(text.get("direction", ""), "")
    return html.Div(className="col-sm-6 col-xl-3", children=html.Div(className="ctip-kpi", children=[
        html.Div(label, className="kpi-label"),
        html.Div(text["value"], className="kpi-value"),
        html.Div(text.get("text", ""), className=f"kpi-change {change_class}"),
        html.Div("synthetic", className="ctip-note") if synthetic else None,
    ]))


def rank_table(totals: pd.DataFrame, ind, *, caption: str, extra: dict[str, str] | None = None, limit: int = 25) -> dbc.Table:  # noqa: ANN001
    """Ranked provinces (value, rate, rank) as an accessible table."""
    hidden = totals["suppressed"] if "suppressed" in totals else pd.Series(False, index=totals.index)
    frame = totals[totals["value"].notna() | hidden].sort_values(["value", "province"], ascending=[False, True],
                                                                 na_position="last").head(limit)
    k = totals.attrs.get("k", 5)
    rate = "rate_100k" in frame and frame["rate_100k"].notna().any()
    head = [html.Th("Rank"), html.Th("Province"), html.Th(f"{ind.name_en} ({ind.unit})")]
    if rate:
        head.append(html.Th("per 100,000"))
    if extra:
        head.append(html.Th("Most frequent exploitation type"))
    body = []
    for r in frame.itertuples():
        p = province(r.province)
        hidden_row = bool(getattr(r, "suppressed", False))
        cells = [html.Td(int(r.rank) if not pd.isna(r.rank) else "–"),
                 html.Td([p.name_en, " ", html.Span(p.name_km, className="km text-muted")]),
                 html.Td(f"<{k} (suppressed)" if hidden_row else figures.format_value(r.value, ind.unit), className="text-end")]
        if rate:
            cells.append(html.Td("suppressed" if hidden_row else figures.format_value(r.rate_100k, ind.unit, rate=True),
                                 className="text-end"))
        if extra:
            cells.append(html.Td(extra.get(r.province, "–")))
        body.append(html.Tr(cells))
    if not body:
        body = [html.Tr(html.Td("No data for this selection", colSpan=len(head)))]
    return dbc.Table([html.Caption(caption), html.Thead(html.Tr(head)), html.Tbody(body)], bordered=True, hover=True, size="sm",
                     className="ctip-table")


def register(app, services) -> None:  # noqa: ANN001
    """Register the view callbacks."""

    @app.callback(Output(ids.MAP, "figure"), Input(ids.STATE, "data"), prevent_initial_call=True)
    def update_map(query):  # noqa: ANN001, ANN202
        """View state -> province map values (a Patch: the geometry is never resent)."""
        state = parse_search(query)
        # The Patch is a pure function of the state, the data version and whether the viewer gets
        # protected numbers, so a state seen before is answered from the cache.
        return services.cached(_map_patch, state.to_query(), must_suppress(state.indicator))

    def _map_patch(_store, query: str, _protected: bool):  # noqa: ANN001, ANN202
        return figures.choropleth_patch(**map_args(services, parse_search(query)))

    @app.callback(Output(ids.MAP_NOTE, "children"), Input(ids.STATE, "data"))
    def update_map_note(query):  # noqa: ANN001, ANN202
        """View state -> the map's caption (source, synthetic flag, what grey and white mean)."""
        state = parse_search(query)
        ind = get_indicator(state.indicator)
        parts = ["Grey: no data. White: a reported zero. Thick outline: the eight CTIP target provinces."]
        if state.measure == "rate":
            parts.append("Rates use the 2019 census population (NIS).")
        parts.append(f"Source: {ind.source}.")
        if services.meta()["synthetic"]:
            parts.append("Synthetic demonstration data.")
        return " ".join(parts)

    @app.callback(Output(ids.SERIES, "figure"), Input(ids.STATE, "data"))
    def update_series(query):  # noqa: ANN001, ANN202
        """View state -> lines per selected province plus the national (or eight-province) total."""
        state = parse_search(query)
        ind = get_indicator(state.indicator)
        rate = state.measure == "rate" and _rate_ok(ind)
        data = view_data(services, state)
        frames = []
        if state.provinces:
            frames.append(data.series(state.provinces, by_province=True, rate=rate))
        if state.provinces and set(state.provinces) == set(target_codes()):
            # The eight target provinces together, next to each of them.
            frames.append(data.series(state.provinces, rate=rate).assign(province="targets"))
        else:
            frames.append(data.series((), rate=rate))
        series = pd.concat(frames, ignore_index=True)
        if series["value"].notna().sum() == 0:
            return figures.empty_figure(f"No data for {ind.name_en} in {period_label(services, state)}")
        return figures.time_series_figure(series, indicator=ind, measure="rate" if rate else "count", granularity=state.granularity,
                                          title=f"{ind.name_en} over time · {period_label(services, state)}")

    @app.callback(Output(ids.KPI_ROW, "children"), Input(ids.STATE, "data"))
    def update_kpis(query):  # noqa: ANN001, ANN202
        """View state -> KPI cards (selected indicator + headline indicators) with change vs the previous period."""
        state = parse_search(query)
        synthetic = services.meta()["synthetic"]
        cards = []
        shown = [state.indicator] + [i for i in HEADLINE if i != state.indicator][:3]
        for ind_id in shown:
            ind = get_indicator(ind_id)
            where = state.where if ind_id == state.indicator else ()
            f = Filters(ind_id, provinces=state.provinces, start=state.start, end=state.end, where=where)
            if not state.start or not state.end:
                meta = services.meta()
                f = f.with_(start=state.start or meta["first"], end=state.end or meta["last"])
            k, hidden, prev_hidden = kpi_protected(services.cached, f, must_suppress(ind_id))
            scope = "selected provinces" if state.provinces else "all provinces"
            text = suppressed_text(figures.kpi_text(k, ind.unit), hidden, prev_hidden, view_data(services, state, f).k)
            cards.append(kpi_card(f"{ind.name_en} · {scope}", text, synthetic=synthetic))
        return cards

    @app.callback(Output(ids.BREAKDOWN, "figure"), Output(ids.RANK_TABLE, "children"), Input(ids.STATE, "data"))
    def update_overview(query):  # noqa: ANN001, ANN202
        """View state -> breakdown chart and province ranking (Overview tab)."""
        state = parse_search(query)
        if state.view != "overview":
            return no_update, no_update
        ind = get_indicator(state.indicator)
        label = period_label(services, state)
        data = view_data(services, state)
        if state.by and not data.protect:
            series = services.cached(queries.time_series, state.filters(), by=state.by)
            fig = figures.breakdown_figure(series, indicator=ind, by=state.by, granularity=state.granularity,
                                           title=f"{ind.name_en} by {state.by.replace('_', ' ')} · {label}")
        elif state.by or ind.disaggregations:
            # Protected data: totals by category over the window, from the released table.
            dim = state.by or ind.disaggregations[0]
            frame = data.breakdown(dim)
            fig = (figures.empty_figure(frame.attrs["not_published"]) if frame.attrs.get("not_published")
                   else figures.breakdown_bar_figure(frame, indicator=ind, by=dim, period_label=label))
        else:
            fig = figures.empty_figure(f"{ind.name_en} has no disaggregation; choose 'Break down by' for another indicator")
        totals = data.province_totals()
        if state.provinces:
            totals = totals[totals["province"].isin(state.provinces)]
        table = rank_table(totals, ind, caption=f"Provinces ranked by {ind.name_en}, {label} (rank among all 25)")
        return fig, table

    @app.callback(
        Output(ids.FLOW_MAP, "figure"), Output(ids.SANKEY, "figure"), Output(ids.FLOW_TABLE, "children"),
        Output(ids.MIGRATION_BREAKDOWN, "figure"), Output(ids.MIGRATION_CHANNEL, "figure"), Input(ids.STATE, "data"),
    )
    def update_migration(query):  # noqa: ANN001, ANN202
        """View state -> province → country flows (map, Sankey, table) and destination / channel breakdowns."""
        state = parse_search(query)
        if state.view != "migration":
            return (no_update,) * 5
        f = state.panel_filters("migration")
        ind = get_indicator(f.indicator)
        label = period_label(services, state)
        flows = services.cached(queries.flows, f, origin="province", destination="destination")
        flow_map = figures.flow_map_figure(flows, indicator=ind, top=state.top, min_flow=state.min_flow, period_label=label,
                                           title=f"{ind.name_en}: origin province → destination · {label}")
        sankey = figures.sankey_figure(flows, indicator=ind, top=state.top, min_flow=state.min_flow,
                                       title=f"Top {state.top} flows · {label}")
        table = figures.flow_table(flows, state.top, state.min_flow)
        table_el = dbc.Table.from_dataframe(
            table.assign(value=table["value"].map(lambda v: f"{v:,.0f}"), share=table["share"].map(lambda s: f"{s:.1%}"))
            .rename(columns={"origin": "From", "destination": "To", "value": ind.name_en, "share": "Share of all"}),
            bordered=True, size="sm", hover=True, className="ctip-table") if not table.empty else html.P("No flows for this selection.")
        dest = figures.breakdown_bar_figure(services.cached(queries.breakdown, f, "destination"), indicator=ind, by="destination",
                                            period_label=label)
        chan = (figures.breakdown_bar_figure(services.cached(queries.breakdown, f, "channel"), indicator=ind, by="channel",
                                             period_label=label)
                if "channel" in ind.disaggregations else figures.empty_figure(f"{ind.name_en} has no channel breakdown"))
        return flow_map, sankey, table_el, dest, chan

    @app.callback(
        Output(ids.VICTIM_TYPE, "figure"), Output(ids.VICTIM_TABLE, "children"), Output(ids.VICTIM_NATIONALITY, "figure"),
        Output(ids.VICTIM_SEX_AGE, "figure"), Output(ids.VICTIM_FLOW_MAP, "figure"), Input(ids.STATE, "data"),
    )
    def update_victims(query):  # noqa: ANN001, ANN202
        """View state -> victims by exploitation type, nationality, sex and age; target-province ranking; foreign flows."""
        state = parse_search(query)
        if state.view != "victims":
            return (no_update,) * 5
        f = state.panel_filters("victims")
        ind = get_indicator(f.indicator)
        label = period_label(services, state)
        dims = ind.disaggregations

        data = ViewData(services.cached, f, protect=must_suppress(f.indicator))

        def bar(dim: str):  # noqa: ANN202
            if dim not in dims:
                return figures.empty_figure(f"{ind.name_en} is not broken down by {dim.replace('_', ' ')}")
            frame = data.breakdown(dim)
            if frame.attrs.get("not_published"):
                return figures.empty_figure(frame.attrs["not_published"])
            return figures.breakdown_bar_figure(frame, indicator=ind, by=dim, period_label=label)

        def published(fn, *args):  # noqa: ANN001, ANN202 - a protected table, or the reason it is not shown
            try:
                return fn(*args), None
            except NotPublished as exc:
                return None, str(exc)

        by_type = bar("exploitation_type")
        by_nat = bar("nationality")
        if "sex" in dims and "age_group" in dims:
            sex_age, reason = published(data.cross, ("sex", "age_group"), state.provinces)
            if reason:
                sex_age_fig = figures.empty_figure(reason)
            else:
                sex_age["group"] = sex_age["sex"].map(lambda s: figures.category_label("sex", s)) + " · " + \
                    sex_age["age_group"].map(lambda a: figures.category_label("age_group", a))
                total, hidden = data.total(state.provinces)
                frame = sex_age.rename(columns={"group": "sex"})[["sex", "value", "suppressed"]]
                frame["share"] = frame["value"] / total if total and not hidden else float("nan")
                frame = frame.sort_values("value", ascending=False, na_position="last").reset_index(drop=True)
                sex_age_fig = figures.breakdown_bar_figure(frame, indicator=ind, by="sex", period_label=label,
                                                           title=f"{ind.name_en} by sex and age group · {label}")
        else:
            sex_age_fig = bar("sex")
        # Target provinces (or the selection) ranked, with their most frequent exploitation type.
        scope = state.provinces or tuple(target_codes())
        totals = data.province_totals()
        totals = totals[totals["province"].isin(scope)]
        extra = None
        if "exploitation_type" in dims:
            mix, _ = published(data.province_mix, "exploitation_type", scope)
            if mix is not None:
                top = mix.dropna(subset=["value"]).groupby("province").head(1)
                extra = {r.province: f"{figures.category_label('exploitation_type', r.exploitation_type)} ({r.value:,.0f})"
                         for r in top.itertuples()}
        which = "selected provinces" if state.provinces else "the eight CTIP target provinces"
        table = rank_table(totals, ind, caption=f"{ind.name_en} in {which}, {label}", extra=extra)
        if {"nationality", "exploitation_type"} <= set(dims):
            ff = f.with_(where=tuple({**dict(f.where), "exploitation_type": ("forced_criminality",)}.items()))
            reason = None
            if data.protect:
                fdata = ViewData(services.cached, ff.with_(provinces=()), protect=True)
                cells, reason = published(fdata.cross, ("province", "nationality"))
                flows = pd.DataFrame(columns=["origin", "destination", "value"]) if reason else \
                    cells[~cells["suppressed"]].rename(columns={"nationality": "origin", "province": "destination"})
                flows = flows[(flows["destination"] != "00") & (flows["origin"] != "") & (flows["value"] > 0)]
                flows = flows[["origin", "destination", "value"]].sort_values(["value", "origin", "destination"],
                                                                              ascending=[False, True, True])
            else:
                flows = services.cached(queries.flows, ff, origin="nationality", destination="province")
            flows = flows[flows["origin"] != "KHM"]
            flow_map = figures.empty_figure(reason) if reason else figures.flow_map_figure(
                flows, indicator=ind, origin_kind="nationality", dest_kind="province", top=state.top, min_flow=state.min_flow,
                period_label=label, title=f"Foreign victims of forced criminality: nationality → province identified · {label}")
        else:
            flow_map = figures.empty_figure(f"{ind.name_en} has no nationality breakdown")
        return by_type, table, by_nat, sex_age_fig, flow_map

    @app.callback(
        Output(ids.COVERAGE, "figure"), Output(ids.LIVELIHOOD_KPIS, "children"), Output(ids.LIVELIHOOD_TRAINED, "figure"),
        Input(ids.STATE, "data"),
    )
    def update_livelihood(query):  # noqa: ANN001, ANN202
        """View state -> grant coverage against need, next to victims and migrants, for the livelihood provinces."""
        state = parse_search(query)
        if state.view != "livelihood":
            return no_update, no_update, no_update
        label = period_label(services, state)
        codes = tuple(livelihood_codes())
        base = Filters("households_supported", provinces=codes, start=state.start, end=state.end)
        frame = services.cached(queries.coverage_table, codes, state.start, state.end)
        coverage = figures.coverage_figure(frame, period_label=label,
                                           title=f"Grant coverage vs risk, livelihood provinces · {label}")
        synthetic = services.meta()["synthetic"]
        meta = services.meta()
        kpi_filters = base.with_(start=state.start or meta["first"], end=state.end or meta["last"])
        cards = []
        for ind_id in ("households_supported", "pct_female_household_reps", "household_members_trained", "livelihood_grants"):
            ind = get_indicator(ind_id)
            cards.append(kpi_card(f"{ind.name_en} · livelihood provinces",
                                  figures.kpi_text(services.cached(queries.kpi, kpi_filters.with_(indicator=ind_id)), ind.unit),
                                  synthetic=synthetic))
        trained = get_indicator("household_members_trained")
        series = services.cached(queries.time_series, base.with_(indicator="household_members_trained", granularity=state.granularity),
                                 by="topic")
        trained_fig = figures.breakdown_figure(series, indicator=trained, by="topic", granularity=state.granularity,
                                               title=f"Household members trained by topic · {label}")
        return coverage, cards, trained_fig
