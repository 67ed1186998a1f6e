"""Anonymous viewers never get a small victim count, from the API, the screen's queries or an export."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.exports import export_csv
from dashboard.state import parse_search
from dashboard.viewdata import ViewData, direct
from data.queries import aggregate
from data.schema import Filters

K = 5



@pytest.fixture(scope="module")
def client(api_client):  # noqa: ANN001, ANN201
    return api_client


def _exact(store, query: str, dims: list[str]) -> pd.DataFrame:
    return aggregate(store, parse_search("?" + query).filters().with_(provinces=()), dims)


def test_province_breakdowns_by_quarter_or_month_are_refused_signed_out_with_the_fix(client):
    res = client.get("/api/v1/observations?indicator=victims_identified&granularity=quarter&by=sex")
    assert res.status_code == 400
    assert "whole years" in res.get_data(as_text=True)
    # The same table for whole years is published.
    assert client.get("/api/v1/observations?indicator=victims_identified&granularity=year&by=sex").status_code == 200


@pytest.mark.parametrize("query", [
    "indicator=victims_identified&granularity=month",
    "indicator=victims_identified&granularity=month&start=2024-01&end=2024-12",
    "indicator=victims_identified&granularity=year&by=sex",
    "indicator=victims_referred&granularity=year&start=2024-01&end=2025-12&by=age_group",
])
def test_anonymous_observations_hide_small_cells_unrecoverably(client, demo_store, query):
    rows = client.get(f"/api/v1/observations?{query}").get_json()["rows"]
    assert rows and all("suppressed" in r for r in rows)
    shown = [r["value"] for r in rows if not r["suppressed"]]
    assert not any(0 < v < K for v in shown)
    assert any(r["suppressed"] for r in rows), "the demo data has small cells; some must be suppressed"
    frame = pd.DataFrame(rows)
    by = [c for c in ("sex", "age_group") if c in frame]
    dims = ["province", "period", *by]
    # Every group whose total the dashboard shows (a province over the window, a period over the
    # provinces, a category …) has 0 or ≥ 2 suppressed cells, or its exact total is itself below k.
    state = parse_search("?" + query)
    exact = aggregate(demo_store, state.filters().with_(provinces=()), dims)
    from dashboard.exports import period_label

    exact["period"] = [period_label(p, state.granularity) for p in exact["period"]]
    merged = frame.merge(exact.rename(columns={"value": "exact"}), on=dims, how="left")
    assert (merged.loc[~merged["suppressed"], "value"] == merged.loc[~merged["suppressed"], "exact"]).all()
    # Every total the dashboard shows for a group of these cells — a province over the window (the map,
    # filtered to the category when there is a breakdown) or a period over the provinces (the national
    # series) — is suppressed whenever exactly one cell of the group is: nothing can be subtracted out.
    base = state.filters().with_(provinces=())
    for keys in (["province", *by], ["period", *by]):
        for key, group in merged.groupby(keys):
            if int(group["suppressed"].sum()) != 1:
                continue
            key = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
            f = base.with_(where={d: (key[d],) for d in by})
            view = ViewData(direct(demo_store), f, protect=True)
            if "province" in key:
                shown = view.province_totals().set_index("province").loc[key["province"]]
            else:
                series = view.series()
                series["label"] = [period_label(p, state.granularity) for p in series["period"]]
                shown = series.set_index("label").loc[key["period"]]
            assert bool(shown["suppressed"]), (keys, group, shown)


def test_screen_queries_and_export_agree_and_hide_small_counts(demo_store):
    state = parse_search("?view=victims&indicator=victims_identified&start=2024-01&end=2024-03")
    data = ViewData(direct(demo_store), state.filters(), protect=True)
    totals = data.province_totals()
    assert not ((totals["value"] > 0) & (totals["value"] < K)).any()
    assert totals["suppressed"].any()
    national = data.series()
    assert not ((national["value"] > 0) & (national["value"] < K)).any()
    name, content, _ = export_csv(demo_store, state)
    exported = pd.read_csv(pd.io.common.BytesIO(content), encoding="utf-8-sig", dtype={"province_code": str})
    merged = exported.merge(totals, left_on="province_code", right_on="province", suffixes=("_export", "_screen"))
    assert (merged["suppressed_export"] == merged["suppressed_screen"]).all()
    shown = merged[~merged["suppressed_screen"]]
    assert (shown["value_export"].fillna(-1) == shown["value_screen"].fillna(-1)).all()
    assert merged.loc[merged["suppressed_screen"], "value_export"].isna().all()


def test_partners_see_exact_values(demo_store):
    f = Filters("victims_identified", start=pd.Timestamp("2024-01-01").date(), end=pd.Timestamp("2024-03-01").date())
    exact = ViewData(direct(demo_store), f, protect=False).province_totals()
    assert ((exact["value"] > 0) & (exact["value"] < K)).any()


def test_risk_components_from_victim_counts_are_withheld_from_anonymous_viewers(client):
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(client.get("/api/v1/risk?format=csv").data.decode("utf-8-sig"))))
    assert rows and all(r["victims_per_100k_raw"] == "" and r["victims_per_100k_normalised"] == "" for r in rows)
    assert any(r["departures_per_1000_raw"] for r in rows)  # migration is not sensitive
    assert any(r["score"] for r in rows)  # the composite score stays


def test_risk_index_signed_out_rests_only_on_published_victim_counts(client, demo_store):
    """Isolating the victims indicator with one month's window would turn the score into a function of a
    single small count; signed out, a province whose count is hidden has no value for it instead."""
    from data.risk import raw_indicators

    end = pd.Timestamp("2024-06-01").date()
    raw = raw_indicators(demo_store, period_end=end, months=1, protected=True)
    victims = raw[raw["key"] == "victims_per_100k"].set_index("province")["raw"]
    shown = ViewData(direct(demo_store), Filters("victims_identified", start=end, end=end), protect=True).province_totals()
    shown = shown.set_index("province")
    hidden = shown.index[shown["suppressed"]]
    assert len(hidden) and victims.loc[hidden].isna().all()
    visible = shown.index[~shown["suppressed"] & shown["value"].notna()]
    assert (victims.loc[visible] == shown.loc[visible, "value"] / shown.loc[visible, "population"] * 100_000).all()
    exact = raw_indicators(demo_store, period_end=end, months=1)
    assert exact[exact["key"] == "victims_per_100k"]["raw"].notna().sum() > victims.notna().sum()
    # The API signed out answers from the protected counts too (weights isolating victims change nothing).
    res = client.get("/api/v1/risk?period_end=2024-06&months=1&iweights=victims_per_100k:1&format=csv")
    assert res.status_code == 200
