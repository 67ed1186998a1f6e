"""Download this view: tables, CSV, XLSX and GeoJSON agree with the queries and say what they are."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator

import numpy as np
import openpyxl
import pandas as pd
import pytest

from dashboard.exports import (
    SYNTHETIC_BANNER,
    SYNTHETIC_NOTICE,
    export_csv,
    export_geojson,
    export_xlsx,
    is_synthetic,
    neutralise,
    view_tables,
)
from dashboard.state import ViewState, parse_search, parse_state
from dashboard.viewdata import ViewData, direct
from data.gazetteer import target_codes
from data.maintenance import ensure_reference
from data.queries import province_totals
from data.store import Store, open_store
from geo.boundaries import ATTRIBUTION
from tests.conftest import obs

STATE = parse_state({"indicator": "victims_identified", "start": "2024-01", "end": "2024-12"})



@pytest.fixture
def small_store() -> Iterator[Store]:
    """Census plus a few real-looking rows, one with a formula planted in a category."""
    store = open_store("duckdb:///:memory:")
    ensure_reference(store)
    store.write_batch(
        obs(
            [
                {
                    "indicator": "migrants_departed",
                    "province": "01",
                    "period": "2024-01-01",
                    "destination": "THA",
                    "value": 5,
                },
                {
                    "indicator": "migrants_departed",
                    "province": "01",
                    "period": "2024-02-01",
                    "destination": '=HYPERLINK("http://evil.example","x")',
                    "value": 2,
                },
                {
                    "indicator": "migrants_departed",
                    "province": "02",
                    "period": "2024-02-01",
                    "destination": "@SUM(A1)",
                    "value": 3,
                },
            ]
        ),
        kind="import",
        source="partner report",
    )
    yield store
    store.close()


def xlsx_sheets(data: bytes) -> dict[str, list[tuple]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in book.worksheets}


def records(rows: list[tuple]) -> list[dict]:
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


# -- view_tables ----------------------------------------------------------------------------------------
def test_view_tables_default_covers_25_provinces(demo_store: Store) -> None:
    tables = view_tables(demo_store, STATE)
    assert set(tables) == {"provinces", "series"}
    prov = tables["provinces"]
    assert list(prov["province_code"]) == [f"{i:02d}" for i in range(1, 26)]
    assert list(prov.columns) == [
        "province_code",
        "province_name_en",
        "province_name_km",
        "value",
        "rate_100k",
        "rank",
        "population",
        "suppressed",
    ]
    # Victim counts are sensitive: exports for anonymous viewers carry the protected values.
    expected = ViewData(direct(demo_store), STATE.filters(), protect=True).province_totals()
    assert (prov["suppressed"].to_numpy() == expected["suppressed"].to_numpy()).all()
    np.testing.assert_allclose(prov["value"], expected["value"])
    np.testing.assert_allclose(prov["rate_100k"], expected["rate_100k"])
    assert prov["population"].notna().all()
    series = tables["series"]
    assert set(series["province"]) == {"national"}
    assert list(series["period_label"]) == [f"2024-{m:02d}" for m in range(1, 13)]
    national = ViewData(direct(demo_store), STATE.filters(), protect=True).series()
    np.testing.assert_allclose(series["value"], national["value"])


def test_view_tables_selection_series_and_breakdown(demo_store: Store) -> None:
    state = STATE.with_(provinces=("01", "18"), granularity="quarter", by="sex")
    tables = view_tables(demo_store, state)
    assert list(tables["provinces"]["province_code"]) == ["01", "18"]
    series = tables["series"]
    assert set(series["province"]) == {"national", "01", "18"}
    assert set(series["period_label"]) == {"2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"}
    data = ViewData(direct(demo_store), state.filters(), protect=True)
    per = data.series(state.provinces, by_province=True)
    np.testing.assert_allclose(series.loc[series["province"] != "national", "value"], per["value"])
    expected = data.breakdown("sex")
    pd.testing.assert_frame_equal(tables["breakdown"], expected)
    shown = tables["breakdown"]["share"].sum()
    assert shown == pytest.approx(1.0) or tables["breakdown"]["suppressed"].any()


def test_view_tables_ratio_carries_parts(demo_store: Store) -> None:
    state = parse_state(
        {"indicator": "assisted_per_identified", "start": "2024-01", "end": "2024-06", "by": "sex"}
    )
    tables = view_tables(demo_store, state)
    assert {"numerator", "denominator"} <= set(tables["provinces"].columns)
    assert "share" not in tables["breakdown"].columns


def test_is_synthetic(demo_store: Store, small_store: Store) -> None:
    assert is_synthetic(demo_store, "victims_identified")
    assert is_synthetic(demo_store, "assisted_per_identified")  # via its parts
    assert not is_synthetic(demo_store, "population")  # census reference rows are real
    assert not is_synthetic(small_store, "migrants_departed")


# -- CSV ------------------------------------------------------------------------------------------------
def test_export_csv_totals_bom_and_notice(demo_store: Store) -> None:
    filename, data, mimetype = export_csv(demo_store, STATE)
    assert filename == "ctip-victims_identified-2024-01_2024-12.csv"
    assert mimetype.startswith("text/csv")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 25
    assert list(rows[0])[-1] == "notice"
    assert all(r["notice"] == SYNTHETIC_NOTICE for r in rows)
    expected = province_totals(demo_store, STATE.filters())
    got = np.array([float(r["value"]) if r["value"] else np.nan for r in rows])
    shown = ~np.isnan(got)  # signed out: a few provinces are withheld to protect small counts
    np.testing.assert_allclose(got[shown], expected["value"].to_numpy()[shown])
    assert shown.sum() >= 20
    assert rows[0]["province_name_km"]  # Khmer survives the round trip


def test_export_csv_real_data_has_no_notice(small_store: Store) -> None:
    state = parse_state({"indicator": "migrants_departed"})
    filename, data, _ = export_csv(small_store, state)
    assert filename == "ctip-migrants_departed-2024-01_2024-02.csv"  # open window -> data range
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert "notice" not in rows[0]
    assert {r["province_code"]: r["value"] for r in rows if r["value"]} == {"01": "7.0", "02": "3.0"}


# -- XLSX -----------------------------------------------------------------------------------------------
def test_export_xlsx_sheets_and_contents(demo_store: Store) -> None:
    state = STATE.with_(by="sex", where=(("age_group", ("child",)),))
    filename, data, mimetype = export_xlsx(demo_store, state)
    assert filename.endswith(".xlsx") and "spreadsheetml" in mimetype
    sheets = xlsx_sheets(data)
    assert list(sheets) == ["data", "series", "breakdown", "filters", "dictionary", "sources", "notice"]

    rows = records(sheets["data"])
    assert len(rows) == 25 and all(r["notice"] == SYNTHETIC_NOTICE for r in rows)
    expected = ViewData(direct(demo_store), state.filters(), protect=True).province_totals()
    got = np.array([np.nan if r["value"] is None else r["value"] for r in rows], dtype=float)
    np.testing.assert_allclose(got, expected["value"])
    assert isinstance(rows[0]["value"], float | int)  # numbers stay numbers

    filters = {r["parameter"]: r["value"] for r in records(sheets["filters"])}
    assert filters["share_link_query"] == state.to_query()
    assert filters["age_group"] == "child" and filters["by"] == "sex" and filters["start"] == "2024-01"
    assert {
        "view",
        "indicator",
        "provinces",
        "end",
        "granularity",
        "measure",
        "classes",
        "top",
        "min_flow",
    } <= set(filters)

    dictionary = records(sheets["dictionary"])
    items = {(r["section"], r["item"]): r["description"] for r in dictionary}
    assert items[("indicator", "unit")] == "persons"
    assert items[("indicator", "sensitive")].startswith("yes")
    assert ("column", "rate_100k") in items and items[("indicator", "definition")]

    sources = " ".join(str(c) for row in sheets["sources"] for c in row)
    assert ATTRIBUTION["provinces"] in sources and "Natural Earth" in sources and "Census" in sources

    notice = {r["item"]: r["value"] for r in records(sheets["notice"])}
    assert notice["notice"] == SYNTHETIC_BANNER
    exported = dt.datetime.fromisoformat(notice["exported_at_utc"])
    assert exported.utcoffset() == dt.timedelta(0)

    breakdown_rows = records(sheets["breakdown"])
    released = ViewData(direct(demo_store), state.filters(), protect=True).breakdown("sex")
    got = sorted((r["sex"], r["value"]) for r in breakdown_rows)
    assert got == sorted((s, None if np.isnan(v) else v) for s, v in zip(released["sex"], released["value"], strict=True))


def test_export_xlsx_without_by_has_no_breakdown(small_store: Store) -> None:
    sheets = xlsx_sheets(export_xlsx(small_store, parse_state({"indicator": "migrants_departed"}))[1])
    assert "breakdown" not in sheets
    notice = {r["item"]: r["value"] for r in records(sheets["notice"])}
    assert "SYNTHETIC" not in notice["notice"]


# -- formula injection ----------------------------------------------------------------------------------
def test_neutralise_prefixes_formula_text_only() -> None:
    frame = pd.DataFrame(
        {
            "text": ["=1+1", "+CMD", "-2", "@SUM(A1)", "\tx", "\rx", "plain", None],
            "number": [-1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0],
        }
    )
    out = neutralise(frame)
    assert list(out["text"][:7]) == ["'=1+1", "'+CMD", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "plain"]
    assert pd.isna(out["text"].iloc[7])
    pd.testing.assert_series_equal(out["number"], frame["number"])
    assert frame["text"].iloc[0] == "=1+1"  # the input is not mutated


def test_export_xlsx_neutralises_formula_from_store(small_store: Store) -> None:
    state = parse_state({"indicator": "migrants_departed", "by": "destination"})
    data = export_xlsx(small_store, state)[1]
    book = openpyxl.load_workbook(io.BytesIO(data))
    cells = [c for row in book["breakdown"].iter_rows() for c in row]
    assert not any(c.data_type == "f" for ws in book.worksheets for row in ws.iter_rows() for c in row)
    texts = {c.value for c in cells if isinstance(c.value, str)}
    assert '\'=HYPERLINK("http://evil.example","x")' in texts and "'@SUM(A1)" in texts
    assert "THA" in texts


# -- GeoJSON --------------------------------------------------------------------------------------------
def test_export_geojson_features_values_and_notice(demo_store: Store) -> None:
    filename, data, mimetype = export_geojson(demo_store, STATE)
    assert filename.endswith(".geojson") and mimetype == "application/geo+json"
    assert b"NaN" not in data
    doc = json.loads(data)
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == 25
    assert doc["attribution"] == ATTRIBUTION["provinces"]
    assert doc["notice"] == SYNTHETIC_NOTICE
    expected = province_totals(demo_store, STATE.filters()).set_index("province")
    shown = {f["properties"]["province_code"] for f in doc["features"] if f["properties"]["value"] is not None}
    # Signed out, ranks are among the shown provinces (a withheld one's place would hint at its value).
    ranks = expected.loc[sorted(shown), "value"].rank(method="min", ascending=False)
    for feature in doc["features"]:
        props = feature["properties"]
        code = props["province_code"]
        assert props["indicator"] == "victims_identified"
        assert (props["period_start"], props["period_end"]) == ("2024-01", "2024-12")
        assert props["synthetic"] is True
        if code not in shown:
            assert props["value"] is None and props["rank"] is None
        else:
            assert props["value"] == pytest.approx(expected.loc[code, "value"])
            assert props["rank"] == ranks[code]
    assert sum(f["properties"]["value"] is not None for f in doc["features"]) > 20


def test_export_geojson_does_not_touch_shared_layer(demo_store: Store) -> None:
    from geo.boundaries import provinces_geojson

    export_geojson(demo_store, STATE)
    assert "value" not in provinces_geojson()["features"][0]["properties"]


def test_exports_of_a_selection(demo_store: Store) -> None:
    state = STATE.with_(provinces=("03", "12"))
    doc = json.loads(export_geojson(demo_store, state)[1])
    assert [f["properties"]["province_code"] for f in doc["features"]] == ["03", "12"]
    rows = list(csv.DictReader(io.StringIO(export_csv(demo_store, state)[1].decode("utf-8-sig"))))
    assert [r["province_code"] for r in rows] == ["03", "12"]


def test_default_state_exports_without_window(demo_store: Store) -> None:
    filename, data, _ = export_csv(demo_store, ViewState())
    assert filename.startswith("ctip-victims_identified-") and "all" not in filename
    assert len(data) > 100


def test_each_view_exports_the_tables_behind_its_answers(demo_store: Store) -> None:
    from data.queries import coverage_table, province_mix

    migration = parse_search("?view=migration&indicator=migrants_departed&provinces=14&start=2024-01&end=2024-12")
    flows = view_tables(demo_store, migration)["flows"]
    assert flows.iloc[0][["origin_name", "destination_name"]].tolist() == ["Prey Veng", "Thailand"]
    assert set(flows["origin_code"]) == {"14"}

    victims = parse_search("?view=victims&indicator=victims_identified&start=2024-01&end=2024-12")
    mix = view_tables(demo_store, victims)["exploitation_by_province"]
    assert set(mix["province"]) <= set(target_codes())
    provinces = view_tables(demo_store, victims)["provinces"].set_index("province_code")
    # Signed out, the mix comes from the protected release: small categories are hidden, shown ones are
    # exact, and a province whose categories are all shown adds up to its total in the provinces table.
    assert mix["suppressed"].any() and mix.loc[mix["suppressed"], "value"].isna().all()
    exact = province_mix(demo_store, victims.panel_filters("victims").with_(provinces=tuple(target_codes())), "exploitation_type")
    shown = mix[~mix["suppressed"]].merge(exact, on=["province", "exploitation_type"], suffixes=("", "_exact"))
    assert len(shown) and (shown["value"] == shown["value_exact"]).all()
    complete = mix.groupby("province")["suppressed"].any().pipe(lambda s: s[~s].index)
    sums = mix[mix["province"].isin(complete)].groupby("province")["value"].sum().to_dict()
    assert sums == provinces.loc[list(sums), "value"].to_dict()

    livelihood = parse_search("?view=livelihood&start=2025-10&end=2026-09")
    coverage = view_tables(demo_store, livelihood)["coverage"]
    assert coverage["coverage"].tolist() == coverage_table(demo_store, coverage["province"].tolist(),
                                                           livelihood.start, livelihood.end)["coverage"].tolist()
    sheets = xlsx_sheets(export_xlsx(demo_store, livelihood)[1])
    assert "coverage" in sheets
