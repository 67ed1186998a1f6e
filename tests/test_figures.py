"""Unit tests of dashboard.figures: small hand-built frames in, figure/Patch structure and sizes out."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import plotly
import plotly.graph_objects as go
import pytest

from dashboard import figures as F
from data.gazetteer import PROVINCE_CODES, target_codes

ROOT = Path(__file__).resolve().parents[1]
CODES = list(PROVINCE_CODES)


def totals_frame(values: dict[str, float], *, ratio: bool = False) -> pd.DataFrame:
    """A ``province_totals``-shaped frame: all 25 provinces, unspecified ones NaN (no data)."""
    value = pd.Series([values.get(c, np.nan) for c in CODES], dtype="float64")
    population = pd.Series([100_000.0 + 10_000 * i for i in range(25)])
    frame = pd.DataFrame({"province": CODES, "value": value, "population": population})
    frame["rate_100k"] = np.nan if ratio else frame["value"] / frame["population"] * 100_000
    frame["rank"] = frame["value"].rank(method="min", ascending=False).astype("Int64")
    if ratio:
        frame["numerator"] = frame["value"]
        frame["denominator"] = frame["value"].where(frame["value"].isna(), 100.0)
    return frame


STATE_A = dict(values={"01": 120.0, "02": 0.0, "03": 45.0, "14": 800.0, "17": 5.0}, selected=())
STATE_B = dict(values={c: float(10 * i) for i, c in enumerate(CODES) if i % 4}, selected=("14", "20"))


def dumps(obj) -> str:
    return json.dumps(obj, cls=plotly.utils.PlotlyJSONEncoder)


def apply_patch(figure: dict, patch) -> dict:
    """Apply a dash.Patch's operations to a figure dict the way dash-renderer does (Assign, Merge)."""
    out = copy.deepcopy(figure)
    payload = json.loads(dumps(patch.to_plotly_json()))
    for op in payload["operations"]:
        *path, last = op["location"]
        target = out
        for key in path:
            target = target[key]
        if op["operation"] == "Assign":
            target[last] = op["params"]["value"]
        elif op["operation"] == "Merge":
            target[last] = {**target[last], **op["params"]["value"]}
        else:  # pragma: no cover - the builder only assigns and merges
            raise AssertionError(f"unexpected patch operation {op['operation']}")
    return out


def all_keys(obj) -> set[str]:
    if isinstance(obj, dict):
        return set(obj) | {k for v in obj.values() for k in all_keys(v)}
    if isinstance(obj, list):
        return {k for v in obj for k in all_keys(v)}
    return set()


# --- province choropleth ------------------------------------------------------------------------------


def test_province_choropleth_trace_order_and_names():
    fig = F.province_choropleth(
        totals_frame(STATE_A["values"]), indicator="victims_identified", period_label="2024"
    )
    assert [t.type for t in fig.data] == ["choropleth"] * 6 + ["scattergeo"] * 3 + ["choropleth", "scattergeo"]
    names = [t.name for t in fig.data]
    assert names[F.TRACE_NO_DATA] == "No data"
    assert names[F.TRACE_ZERO] == "0 (none reported)"
    assert names[F.TRACE_TARGETS] == "CTIP target province"
    assert names[F.TRACE_SELECTED] == "Selected"
    assert (
        F.TRACE_CONTEXT,
        F.TRACE_NO_DATA,
        F.TRACE_VALUES,
        F.TRACE_ZERO,
        F.TRACE_TARGETS,
        F.TRACE_SELECTED,
    ) == tuple(range(6))
    # legend entries: "No data" natively; zero/target/selected through grouped legend-only proxies
    assert fig.data[F.TRACE_NO_DATA].showlegend is True
    for layer, proxy in (
        (F.TRACE_ZERO, F.TRACE_LEGEND_ZERO),
        (F.TRACE_TARGETS, F.TRACE_LEGEND_TARGETS),
        (F.TRACE_SELECTED, F.TRACE_LEGEND_SELECTED),
    ):
        assert fig.data[proxy].name == names[layer]
        assert fig.data[proxy].legendgroup == fig.data[layer].legendgroup
        assert fig.data[layer].showlegend is False
        assert list(fig.data[proxy].lon) == [None]
    assert fig.data[F.TRACE_LEGEND_TARGETS].showlegend is True
    assert fig.data[F.TRACE_LEGEND_ZERO].showlegend is True  # Battambang is 0
    assert fig.data[F.TRACE_LEGEND_SELECTED].showlegend is False  # nothing selected
    context = fig.data[F.TRACE_CONTEXT]
    assert context.geojson == F.CONTEXT_GEOJSON_URL and context.featureidkey == "properties.iso3"
    assert {"THA", "LAO", "VNM"} <= set(context.locations)
    assert context.showlegend is False and context.showscale is False
    for trace in fig.data[1:6]:
        assert trace.geojson == F.PROVINCES_GEOJSON_URL and trace.featureidkey == "properties.province_code"
    assert list(fig.data[F.TRACE_TARGETS].locations) == list(target_codes())
    assert fig.data[F.TRACE_TARGETS].marker.line.width >= 2.5
    assert fig.data[F.TRACE_TARGETS].hoverinfo == "skip" and fig.data[F.TRACE_SELECTED].hoverinfo == "skip"


def test_province_choropleth_layout_is_offline_and_keeps_zoom():
    fig = F.province_choropleth(
        totals_frame(STATE_A["values"]), indicator="victims_identified", period_label="Jan–Dec 2024"
    )
    layout = fig.layout
    assert layout.geo.visible is False
    assert layout.geo.projection.type == "mercator"
    assert layout.uirevision == "province-map"
    assert layout.legend.orientation == "h"
    assert layout.font.size >= 14
    assert layout.template.layout.paper_bgcolor == "white"  # plotly_white
    assert "Victims identified" in layout.title.text
    assert "Jan–Dec 2024" in layout.title.subtitle.text
    lon = layout.geo.lonaxis.range
    assert lon[0] < 102.4 and lon[1] > 107.6  # Cambodia, not all of Asia
    text = fig.to_json()
    assert "mapbox" not in text and "cdn." not in text and "tile" not in text.lower()


def test_no_trace_embeds_geometry_and_map_is_small():
    fig = F.province_choropleth(
        totals_frame(STATE_B["values"]), indicator="victims_identified", selected=("14",)
    )
    for trace in fig.data:
        if trace.type == "choropleth":
            assert isinstance(trace.geojson, str) and trace.geojson.startswith("/api/v1/")
        else:
            assert getattr(trace, "geojson", None) is None
    size = len(fig.to_json())
    assert size < 20_000, size
    assert '"coordinates"' not in fig.to_json()


def test_zero_no_data_and_values_land_in_their_traces():
    fig = F.province_choropleth(
        totals_frame({"01": 120.0, "02": 0.0, "03": 45.0}),
        indicator="victims_identified",
        selected=("03", "99"),
    )
    values, zero, base = fig.data[F.TRACE_VALUES], fig.data[F.TRACE_ZERO], fig.data[F.TRACE_NO_DATA]
    assert list(values.locations) == ["01", "03"]
    assert list(values.z) == [120.0, 45.0]
    assert list(zero.locations) == ["02"]
    assert fig.data[F.TRACE_LEGEND_ZERO].showlegend is True
    assert list(base.locations) == CODES  # base under everything: the rest shows as "No data"
    assert "04" not in values.locations and "04" not in zero.locations
    assert list(fig.data[F.TRACE_SELECTED].locations) == ["03"]  # unknown codes ignored


def test_hover_has_both_names_value_rate_and_rank():
    fig = F.province_choropleth(totals_frame({"01": 1234.0, "02": 0.0}), indicator="victims_identified")
    base = fig.data[F.TRACE_NO_DATA]
    assert base.text[0] == "Banteay Meanchey · បន្ទាយមានជ័យ"
    first, second, nodata = base.customdata[0], base.customdata[1], base.customdata[3]
    assert first == ["1,234", "1,234.0", "1 of 2"]
    assert second == ["0", "0.0", "2 of 2"]
    assert nodata == ["no data", "no data", "no data"]
    template = base.hovertemplate
    assert "%{text}" in template and "Victims identified (persons): %{customdata[0]}" in template
    assert "Rate per 100,000: %{customdata[1]}" in template
    # The layers above pass hover through to the base trace.
    assert fig.data[F.TRACE_VALUES].hoverinfo == "skip" and fig.data[F.TRACE_ZERO].hoverinfo == "skip"


def test_ratio_hover_shows_parts_and_no_rate():
    fig = F.province_choropleth(totals_frame({"01": 45.0}, ratio=True), indicator="assisted_per_identified")
    base = fig.data[F.TRACE_NO_DATA]
    assert base.customdata[0][0] == "45.0 (45 of 100)"
    assert "identified (%): %{customdata[0]}" in base.hovertemplate
    assert "Rate" not in base.hovertemplate
    with pytest.raises(ValueError, match="no rate per 100,000"):
        F.province_choropleth(
            totals_frame({"01": 45.0}, ratio=True), indicator="assisted_per_identified", measure="rate"
        )


def test_rate_measure_colours_by_rate():
    frame = totals_frame({"01": 100.0, "02": 100.0})
    fig = F.province_choropleth(frame, indicator="victims_identified", measure="rate")
    z = list(fig.data[F.TRACE_VALUES].z)
    assert z == pytest.approx(list(frame["rate_100k"].iloc[:2]))
    assert z[0] > z[1]  # same count, smaller population
    assert "100,000" in fig.layout.title.subtitle.text


def test_quantile_classes_five_labelled_classes():
    values = {c: float(i + 1) for i, c in enumerate(CODES)}
    fig = F.province_choropleth(totals_frame(values), indicator="victims_identified", classes="quantile")
    trace = fig.data[F.TRACE_VALUES]
    assert sorted(set(trace.z)) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert list(trace.colorbar.ticktext) == ["1–5", "6–10", "11–15", "16–20", "21–25"]
    assert (trace.zmin, trace.zmax) == (-0.5, 4.5)
    assert len(trace.colorscale) == 10


@pytest.mark.parametrize("values", [{"01": 7.0, "02": 7.0, "03": 7.0}, {"01": 7.0}])
def test_quantile_classes_with_all_equal_values_make_one_class(values):
    fig = F.province_choropleth(totals_frame(values), indicator="victims_identified", classes="quantile")
    trace = fig.data[F.TRACE_VALUES]
    assert set(trace.z) == {0.0}
    assert list(trace.colorbar.ticktext) == ["7"]
    assert "NaN" not in fig.to_json() and "NaN" not in dumps(fig.to_plotly_json())


def test_continuous_scale_with_equal_values_has_a_valid_range():
    fig = F.province_choropleth(totals_frame({"01": 7.0, "02": 7.0}), indicator="victims_identified")
    trace = fig.data[F.TRACE_VALUES]
    assert trace.zmin < trace.zmax


def test_all_missing_map_has_no_colorbar():
    fig = F.province_choropleth(totals_frame({}), indicator="victims_identified")
    assert list(fig.data[F.TRACE_VALUES].locations) == []
    assert fig.data[F.TRACE_VALUES].showscale is False
    assert fig.data[F.TRACE_LEGEND_ZERO].showlegend is False


def test_choropleth_patch_is_small_and_has_no_geometry():
    patch = F.choropleth_patch(
        totals_frame(STATE_B["values"]),
        indicator="victims_identified",
        measure="rate",
        classes="quantile",
        selected=STATE_B["selected"],
        period_label="Jan–Dec 2024",
    )
    text = dumps(patch.to_plotly_json())
    assert len(text) < 5_000, len(text)
    assert "geojson" not in all_keys(json.loads(text))
    assert "geojson" not in text


@pytest.mark.parametrize(
    ("kwargs_a", "kwargs_b"),
    [
        (
            dict(indicator="victims_identified", measure="count", classes="continuous", period_label="2023"),
            dict(
                indicator="victims_identified",
                measure="rate",
                classes="quantile",
                period_label="2024",
                lang="km",
            ),
        ),
        (
            dict(indicator="migrants_departed", measure="rate", classes="quantile", title="Custom"),
            dict(indicator="awareness_sessions", measure="count", classes="continuous"),
        ),
    ],
)
def test_patch_applied_to_figure_a_gives_figure_b(kwargs_a, kwargs_b):
    frame_a, frame_b = totals_frame(STATE_A["values"]), totals_frame(STATE_B["values"])
    fig_a = json.loads(F.province_choropleth(frame_a, selected=STATE_A["selected"], **kwargs_a).to_json())
    fig_b = json.loads(F.province_choropleth(frame_b, selected=STATE_B["selected"], **kwargs_b).to_json())
    patch = F.choropleth_patch(frame_b, selected=STATE_B["selected"], **kwargs_b)
    patched = apply_patch(fig_a, patch)
    assert patched == fig_b
    # and the patch did change the values
    assert fig_a["data"][F.TRACE_VALUES]["locations"] != fig_b["data"][F.TRACE_VALUES]["locations"]


def test_totals_for_selected_provinces_only():
    frame = totals_frame({"01": 5.0, "02": 3.0}).iloc[:2]
    fig = F.province_choropleth(frame, indicator="victims_identified")
    assert list(fig.data[F.TRACE_VALUES].locations) == ["01", "02"]
    assert fig.data[F.TRACE_NO_DATA].customdata[10][0] == "no data"


def test_province_choropleth_accepts_real_query_output(duck):
    from data import queries
    from data.schema import Filters

    rows = pd.DataFrame(
        {
            "indicator": ["victims_identified"] * 3 + ["population"] * 2,
            "province": ["01", "02", "03", "01", "02"],
            "period": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-02-01", "2019-03-01", "2019-03-01"]),
            "value": [4.0, 0.0, 9.0, 861_883.0, 997_169.0],
        }
    )
    duck.write_batch(rows, kind="import")
    totals = queries.province_totals(duck, Filters("victims_identified"))
    fig = F.province_choropleth(totals, indicator="victims_identified", measure="rate")
    assert list(fig.data[F.TRACE_VALUES].locations) == ["01"]  # 03 has no population: no rate
    assert list(fig.data[F.TRACE_ZERO].locations) == ["02"]


# --- time series and breakdowns --------------------------------------------------------------------


def series_frame() -> pd.DataFrame:
    periods = pd.date_range("2024-01-01", periods=6, freq="MS")
    parts = []
    for code, values in (("14", [1, 2, np.nan, 4, 5, 6]), ("17", [3, np.nan, np.nan, 1, 0, 2])):
        parts.append(pd.DataFrame({"period": periods, "province": code, "value": values}))
    national = pd.DataFrame({"period": periods, "province": "national", "value": [10, 12, np.nan, 15, 11, 9]})
    return pd.concat([*parts, national], ignore_index=True)


def test_time_series_keeps_gaps_and_draws_the_total_dashed():
    fig = F.time_series_figure(
        series_frame(), indicator="victims_identified", measure="count", granularity="month"
    )
    assert [t.name for t in fig.data] == ["Prey Veng", "Siem Reap", "Cambodia (national)"]
    for trace in fig.data:
        assert trace.connectgaps is False
    assert fig.data[0].y[2] is None and fig.data[1].y[1] is None
    assert fig.data[1].y[4] == 0.0  # a true zero stays a zero
    total = fig.data[-1]
    assert total.line.dash == "dash" and total.line.width > fig.data[0].line.width
    assert "null" in fig.to_json()
    assert fig.layout.hovermode == "x unified"
    assert fig.layout.yaxis.title.text == "Victims identified (persons)"
    assert fig.layout.xaxis.title.text == "Month"
    assert fig.layout.font.size >= 14


def test_time_series_rate_axis_and_granularity():
    fig = F.time_series_figure(
        series_frame(), indicator="victims_identified", measure="rate", granularity="quarter"
    )
    assert fig.layout.yaxis.title.text == "Victims identified (per 100,000 population)"
    assert fig.layout.xaxis.title.text == "Quarter"
    with pytest.raises(ValueError):
        F.time_series_figure(series_frame(), indicator="livelihood_coverage", measure="rate")


def test_time_series_without_data_is_an_empty_figure():
    frame = series_frame().assign(value=np.nan)
    fig = F.time_series_figure(frame, indicator="victims_identified")
    assert len(fig.data) == 0 and fig.layout.annotations


def test_breakdown_figure_stacks_categories_with_labels():
    periods = pd.date_range("2024-01-01", periods=3, freq="MS")
    frame = pd.DataFrame(
        {
            "period": list(periods) * 3,
            "province": "national",
            "exploitation_type": ["forced_criminality"] * 3 + ["labour"] * 3 + [""] * 3,
            "value": [5, 6, 7, 1, np.nan, 2, 3, 3, 3],
        }
    )
    fig = F.breakdown_figure(
        frame, indicator="victims_identified", by="exploitation_type", granularity="month"
    )
    assert fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == [
        "Forced criminality (scams)",
        "Labour exploitation",
        "Not disaggregated",
    ]
    assert fig.data[1].y[1] is None
    assert fig.data[-1].marker.color == F.NOT_DISAGGREGATED_COLOUR


def test_breakdown_bar_figure_shows_value_and_share():
    frame = pd.DataFrame(
        {"sex": ["female", "male", ""], "value": [60.0, 30.0, 10.0], "share": [0.6, 0.3, 0.1]}
    )
    fig = F.breakdown_bar_figure(frame, indicator="victims_identified", by="sex", title="By sex")
    trace = fig.data[0]
    assert trace.orientation == "h"
    assert list(trace.y) == ["Female", "Male", "Not disaggregated"]
    assert trace.text[0] == "60 (60.0 %)"
    assert "60.0 % of total" in trace.hovertext[0]
    vertical = F.breakdown_bar_figure(
        frame, indicator="victims_identified", by="sex", title="x", horizontal=False
    )
    assert vertical.data[0].orientation in (None, "v")


@pytest.mark.parametrize(
    ("dim", "code", "label"),
    [
        ("sex", "female", "Female"),
        ("exploitation_type", "forced_criminality", "Forced criminality (scams)"),
        ("nationality", "VNM", "Viet Nam"),
        ("destination", "KOR", "Rep. of Korea"),
        ("destination", "14", "Prey Veng"),
        ("destination", "HKG", "Hong Kong, China"),
        ("province", "17", "Siem Reap"),
        ("sex", "", "Not disaggregated"),
        ("nationality", "", "Not disaggregated"),
        ("nationality", "XYZ", "XYZ"),
        ("service", "legal_aid", "Legal aid"),
        ("topic", "some_new_topic", "Some new topic"),
    ],
)
def test_category_label(dim, code, label):
    assert F.category_label(dim, code) == label


def test_category_label_khmer_province():
    assert F.category_label("province", "14", "km") == "ព្រៃវែង"


# --- flows ------------------------------------------------------------------------------------------


def flows_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "origin": ["14", "14", "01", "20", "03", "17", "02", "14"],
            "destination": ["THA", "KOR", "THA", "THA", "MYS", "THA", "XXX", "JPN"],
            "value": [1234.0, 300.0, 900.0, 50.0, 120.0, 120.0, 500.0, 5.0],
        }
    )


@pytest.mark.parametrize(("top", "min_flow"), [(3, 0), (15, 100), (None, 0), (2, 1000), (5, 10_000)])
def test_flow_filtering_is_identical_across_map_sankey_and_table(top, min_flow):
    flows = flows_frame()
    chosen = F.select_flows(flows, top, min_flow)
    assert (chosen["value"] >= min_flow).all()
    if top:
        assert len(chosen) <= top
    assert list(chosen["value"]) == sorted(chosen["value"], reverse=True)

    table = F.flow_table(flows, top, min_flow)
    assert list(table["value"]) == list(chosen["value"])
    assert list(table["origin"]) == [F.category_label("province", c) for c in chosen["origin"]]

    sankey = F.sankey_figure(flows, indicator="migrants_departed", top=top, min_flow=min_flow, title="s")
    fmap = F.flow_map_figure(flows, indicator="migrants_departed", top=top, min_flow=min_flow, title="m")
    if chosen.empty:
        assert len(sankey.data) == 0 and len(fmap.data) == 0
        return
    assert list(sankey.data[0].link.value) == list(chosen["value"])
    lines = [t for t in fmap.data if t.type == "scattergeo" and t.mode == "lines"]
    drawn = chosen[chosen["destination"] != "XXX"]
    assert [t.line.width for t in lines] == sorted((t.line.width for t in lines), reverse=True)
    assert len(lines) == len(drawn)
    for line, row in zip(lines, drawn.itertuples(), strict=True):
        assert f": {F._num(row.value)} migrants" in line.text[0]


def test_select_flows_top_and_min_and_ties():
    chosen = F.select_flows(flows_frame(), top=4, min_flow=100)
    assert list(zip(chosen["origin"], chosen["destination"], strict=True)) == [
        ("14", "THA"),
        ("01", "THA"),
        ("02", "XXX"),
        ("14", "KOR"),
    ]
    tie = F.select_flows(flows_frame(), top=6, min_flow=100)
    assert list(tie["origin"].iloc[-2:]) == ["03", "17"]  # equal values: by origin


def test_flow_map_layers_widths_hover_and_missing_note():
    fig = F.flow_map_figure(flows_frame(), indicator="migrants_departed", top=15, min_flow=0, title="Flows")
    assert fig.data[0].geojson == F.CONTEXT_GEOJSON_URL
    assert fig.data[1].geojson == F.PROVINCES_GEOJSON_URL
    for trace in fig.data:
        assert not isinstance(getattr(trace, "geojson", None), dict)
    lines = [t for t in fig.data if t.type == "scattergeo" and t.mode == "lines"]
    widths = [t.line.width for t in lines]
    assert max(widths) == 12 and min(widths) >= 1
    assert lines[0].text[0] == "Prey Veng → Thailand: 1,234 migrants"
    markers = [t for t in fig.data if t.type == "scattergeo" and t.mode == "markers"]
    assert len(markers) == 1 and markers[0].text[0].startswith("Thailand: 2,304 migrants")
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "1 flow without a map location not drawn" in notes
    assert fig.layout.showlegend is False
    lon = fig.layout.geo.lonaxis.range
    assert lon[1] > 138  # Japan is in view
    assert len(fig.to_json()) < 20_000


def test_flow_map_nationality_to_province():
    flows = pd.DataFrame({"origin": ["VNM", "KHM"], "destination": ["12", "12"], "value": [40.0, 400.0]})
    fig = F.flow_map_figure(
        flows, indicator="victims_identified", origin_kind="nationality", dest_kind="province", title="t"
    )
    lines = [t for t in fig.data if t.type == "scattergeo" and t.mode == "lines"]
    assert len(lines) == 1 and lines[0].text[0] == "Viet Nam → Phnom Penh: 40 victims"
    assert "1 flow without a map location not drawn" in fig.layout.annotations[0].text


def test_sankey_nodes_origins_then_destinations():
    fig = F.sankey_figure(flows_frame(), top=3, min_flow=0, title="s")
    node = fig.data[0].node
    assert list(node.label) == ["Prey Veng", "Banteay Meanchey", "Battambang", "Thailand", "XXX"]
    assert list(fig.data[0].link.source) == [0, 1, 2]
    assert list(fig.data[0].link.target) == [3, 3, 4]


def test_flow_table_share_of_all_flows():
    table = F.flow_table(flows_frame(), 2, 0)
    assert list(table.columns) == ["origin", "destination", "value", "share"]
    total = flows_frame()["value"].sum()
    assert table["share"].tolist() == pytest.approx([1234 / total, 900 / total])
    assert table["destination"].tolist() == ["Thailand", "Thailand"]


# --- coverage, KPIs, empty ------------------------------------------------------------------------


def test_coverage_figure_sorted_by_coverage_with_three_panels():
    frame = pd.DataFrame(
        {
            "province": ["01", "14", "17", "09"],
            "coverage": [np.nan, 10.0, 50.0, np.nan],
            "households_supported": [30.0, 100.0, 500.0, np.nan],
            "households_at_risk": [100.0, 1000.0, 1000.0, np.nan],
            "victims_identified": [12.0, 40.0, np.nan, 3.0],
            "migrants_departed": [1000.0, 5000.0, 200.0, 10.0],
        }
    )
    fig = F.coverage_figure(frame, title="Coverage")
    assert len(fig.data) == 3
    # coverage of 01 computed (30 %); 09 has none and goes to the bottom; highest at the top
    assert list(fig.data[0].y) == ["Koh Kong", "Prey Veng", "Banteay Meanchey", "Siem Reap"]
    assert list(fig.data[0].x) == [0.0, 10.0, 30.0, 50.0]
    assert fig.data[0].text[0] == "no data"
    assert fig.data[2].text[1] == "5,000"
    assert fig.data[1].text[3] == "no data"
    assert fig.layout.xaxis.title.text == "%"


def kpi(value, previous):
    return SimpleNamespace(
        value=value, previous=previous, previous_start=dt.date(2023, 1, 1), previous_end=dt.date(2023, 12, 1)
    )


def test_kpi_text_normal_change():
    out = F.kpi_text(kpi(1234.0, 1000.0), "persons")
    assert out["value"] == "1,234"
    assert out["change"] == "+234" and out["pct"] == "+23.4 %"
    assert out["arrow"] == "▲" and out["direction"] == "up"
    assert out["comparison"] == "vs Jan–Dec 2023"
    assert out["text"] == "▲ +234 (+23.4 %) vs Jan–Dec 2023"
    down = F.kpi_text(kpi(900.0, 1000.0), "persons")
    assert down["change"] == "\u2212100" and down["direction"] == "down" and down["arrow"] == "▼"


def test_kpi_text_with_no_data():
    out = F.kpi_text(kpi(None, 1000.0), "persons")
    assert out["value"] == "—" and out["has_data"] is False and out["change"] == "" and out["arrow"] == ""
    out = F.kpi_text(kpi(50.0, None), "persons")
    assert out["value"] == "50" and out["change"] == "" and out["text"] == "No data for Jan–Dec 2023"


def test_kpi_text_with_previous_zero():
    out = F.kpi_text(kpi(12.0, 0.0), "persons")
    assert out["change"] == "+12" and out["pct"] == "new" and out["direction"] == "up"
    flat = F.kpi_text(kpi(0.0, 0.0), "persons")
    assert flat["direction"] == "flat" and flat["pct"] == ""


def test_kpi_text_percent_in_points():
    out = F.kpi_text(kpi(45.3, 40.0), "percent")
    assert out["value"] == "45.3 %" and out["change"] == "+5.3 pp" and out["pct"] == ""


def test_format_period():
    assert F.format_period(dt.date(2023, 1, 1), dt.date(2023, 12, 1)) == "Jan–Dec 2023"
    assert F.format_period(dt.date(2024, 3, 1), dt.date(2024, 3, 1)) == "Mar 2024"
    assert F.format_period(dt.date(2023, 11, 1), dt.date(2024, 4, 1)) == "Nov 2023–Apr 2024"


def test_empty_figure_has_message_and_no_axes():
    fig = F.empty_figure("No data for Kep")
    assert isinstance(fig, go.Figure) and len(fig.data) == 0
    assert fig.layout.annotations[0].text == "No data for Kep"
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False


def test_all_figures_use_plotly_white_and_readable_fonts():
    figs = [
        F.province_choropleth(totals_frame(STATE_A["values"]), indicator="victims_identified"),
        F.time_series_figure(series_frame(), indicator="victims_identified"),
        F.flow_map_figure(flows_frame(), indicator="migrants_departed", title="m"),
        F.sankey_figure(flows_frame(), top=5, min_flow=0, title="s"),
        F.empty_figure("x"),
    ]
    for fig in figs:
        assert fig.layout.font.size >= 14
        assert fig.layout.template.layout.paper_bgcolor == "white"
        text = fig.to_json()
        assert "mapbox" not in text and "cdn.plot.ly" not in text


def test_import_does_not_pull_geopandas_or_shapely():
    code = (
        "import sys, dashboard.figures; "
        "bad = [m for m in ('geopandas', 'shapely') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_colorbar_title_says_unit_and_measure():
    frame = totals_frame({"01": 5.0, "02": 9.0})
    count = F.province_choropleth(frame, indicator="victims_identified")
    assert count.data[F.TRACE_VALUES].colorbar.title.text == "Persons<br>(count)"
    rate = F.province_choropleth(frame, indicator="victims_identified", measure="rate", classes="quantile")
    assert rate.data[F.TRACE_VALUES].colorbar.title.text.startswith("Rate per<br>100,000")
    ratio = F.province_choropleth(totals_frame({"01": 5.0}, ratio=True), indicator="assisted_per_identified")
    assert ratio.data[F.TRACE_VALUES].colorbar.title.text == "Percent"


def test_suppressed_provinces_are_a_legend_state_of_their_own():
    totals = totals_frame(STATE_A["values"])
    totals["suppressed"] = False
    code = totals.loc[totals["value"].notna(), "province"].iloc[0]
    totals.loc[totals["province"] == code, ["value", "rate_100k", "suppressed"]] = [float("nan"), float("nan"), True]
    totals.attrs["k"] = 5
    fig = F.province_choropleth(totals, indicator="victims_identified", period_label="2024")
    assert list(fig.data[F.TRACE_SUPPRESSED].locations) == [code]
    assert code not in list(fig.data[F.TRACE_VALUES].locations)
    assert fig.data[F.TRACE_LEGEND_SUPPRESSED].showlegend and fig.data[F.TRACE_LEGEND_SUPPRESSED].name == "<5 (suppressed)"
    hover = fig.data[F.TRACE_NO_DATA].customdata[list(F.PROVINCE_CODES).index(code)]
    assert hover[0].startswith("<5") and "not ranked" in hover[2]
