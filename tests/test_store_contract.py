"""Contract tests of the store and query layer: the same assertions on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from data import queries
from data.maintenance import ensure_reference, load_demo, remove_demo, store_info
from data.schema import Filters
from data.store import StoreError
from tests.conftest import obs

D = dt.date


def _victims() -> pd.DataFrame:
    return obs([
        {"indicator": "victims_identified", "province": "17", "period": "2024-01-01", "sex": "female", "value": 5},
        {"indicator": "victims_identified", "province": "17", "period": "2024-01-01", "sex": "male", "value": 3},
        {"indicator": "victims_identified", "province": "17", "period": "2024-03-01", "sex": "female", "value": 2},
        {"indicator": "victims_identified", "province": "18", "period": "2024-02-01", "sex": "male", "value": 7},
        {"indicator": "victims_identified", "province": "18", "period": "2023-12-01", "sex": "male", "value": 4},
        {"indicator": "victims_identified", "province": "01", "period": "2024-02-01", "sex": "female", "value": 0},
    ])


def test_store_write_batch_is_idempotent(store):
    batch, written = store.write_batch(_victims(), kind="import", file_name="a.csv")
    assert written == 6
    assert store.write_batch(_victims(), kind="import")[1] == 0
    changed = _victims()
    changed.loc[0, "value"] = 6
    with pytest.raises(StoreError, match="already exist"):
        store.write_batch(changed, kind="import")
    assert store.scalar("SELECT SUM(value) FROM observations") == 21
    assert store.write_batch(changed, kind="import", replace=True)[1] == 1
    assert store.scalar("SELECT SUM(value) FROM observations") == 22


def test_store_transaction_rolls_back(store):
    store.write_batch(_victims(), kind="import")
    with pytest.raises(RuntimeError), store.transaction():
        store.execute("DELETE FROM observations")
        raise RuntimeError("boom")
    assert store.scalar("SELECT COUNT(*) FROM observations") == 6


def test_province_totals_keep_no_data_apart_from_zero(store):
    store.write_batch(_victims(), kind="import")
    ensure_reference(store)
    f = Filters("victims_identified", start=D(2024, 1, 1), end=D(2024, 12, 1))
    totals = queries.province_totals(store, f).set_index("province")
    assert len(totals) == 25
    assert totals.loc["17", "value"] == 10
    assert totals.loc["18", "value"] == 7
    assert totals.loc["01", "value"] == 0
    assert math.isnan(totals.loc["02", "value"])
    assert totals.loc["17", "rank"] == 1 and totals.loc["18", "rank"] == 2
    assert totals.loc["17", "rate_100k"] == pytest.approx(10 / 1_014_234 * 100_000)


def test_time_series_shows_gaps_not_zeros(store):
    store.write_batch(_victims(), kind="import")
    f = Filters("victims_identified", provinces=("17",), start=D(2024, 1, 1), end=D(2024, 4, 1))
    ts = queries.time_series(store, f)
    assert ts["period"].dt.strftime("%Y-%m").tolist() == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert ts["value"].tolist()[0] == 8 and math.isnan(ts["value"].tolist()[1]) and ts["value"].tolist()[2] == 2
    quarterly = queries.time_series(store, f.with_(granularity="quarter"))
    assert quarterly["value"].tolist() == [10.0, 0.0] or (quarterly["value"].iloc[0] == 10 and math.isnan(quarterly["value"].iloc[1]))


def test_breakdown_and_flows(store):
    store.write_batch(_victims(), kind="import")
    f = Filters("victims_identified", start=D(2024, 1, 1), end=D(2024, 12, 1))
    by_sex = queries.breakdown(store, f, "sex").set_index("sex")
    assert by_sex.loc["male", "value"] == 10 and by_sex.loc["female", "value"] == 7
    migr = obs([
        {"indicator": "migrants_departed", "province": "14", "period": "2024-02-01", "destination": "THA", "value": 50},
        {"indicator": "migrants_departed", "province": "14", "period": "2024-03-01", "destination": "KOR", "value": 5},
        {"indicator": "migrants_departed", "province": "01", "period": "2024-03-01", "destination": "THA", "value": 80},
        {"indicator": "migrants_departed", "province": "01", "period": "2024-03-01", "value": 9},
    ])
    store.write_batch(migr, kind="import")
    fl = queries.flows(store, Filters("migrants_departed"))
    assert fl.to_dict("records") == [
        {"origin": "01", "destination": "THA", "value": 80.0},
        {"origin": "14", "destination": "THA", "value": 50.0},
        {"origin": "14", "destination": "KOR", "value": 5.0},
    ]


def test_kpi_compares_with_previous_period_of_equal_length(store):
    store.write_batch(_victims(), kind="import")
    k = queries.kpi(store, Filters("victims_identified", start=D(2024, 1, 1), end=D(2024, 2, 1)))
    assert k.value == 15 and k.previous == 4
    assert (k.previous_start, k.previous_end) == (D(2023, 11, 1), D(2023, 12, 1))
    assert k.change == 11 and k.pct_change == pytest.approx(275.0)


def test_ratio_indicator_uses_components(store):
    store.write_batch(obs([
        {"indicator": "households_supported", "province": "09", "period": "2024-01-01", "value": 30},
        {"indicator": "households_supported", "province": "09", "period": "2024-02-01", "value": 20},
        {"indicator": "households_at_risk", "province": "09", "period": "2023-01-01", "value": 900},
        {"indicator": "households_at_risk", "province": "09", "period": "2024-01-01", "value": 1000},
        {"indicator": "female_household_reps", "province": "09", "period": "2024-01-01", "value": 15},
        {"indicator": "female_household_reps", "province": "09", "period": "2024-02-01", "value": 10},
    ]), kind="import")
    f = Filters("livelihood_coverage", start=D(2024, 1, 1), end=D(2024, 12, 1))
    row = queries.province_totals(store, f).set_index("province").loc["09"]
    assert row["value"] == pytest.approx(5.0)  # 50 supported / 1,000 at risk (latest stock) × 100
    pct = queries.province_totals(store, f.with_(indicator="pct_female_household_reps")).set_index("province").loc["09"]
    assert pct["value"] == pytest.approx(50.0)


def test_demo_load_and_remove_keep_real_rows(store):
    ensure_reference(store)
    real = obs([{"indicator": "tip_arrests", "province": "12", "period": "2020-05-01", "value": 3, "source": "police report"}])
    store.write_batch(real, kind="import")
    n = load_demo(store, seed=7)
    assert n > 10_000
    info = store_info(store)
    assert info["demo_loaded"] and info["synthetic_rows"] == n
    assert remove_demo(store) == n
    info = store_info(store)
    assert not info["demo_loaded"]
    assert info["rows_per_indicator"]["tip_arrests"] == 1
    assert info["rows_per_indicator"]["population"] == 25


def test_filters_reject_disaggregation_the_indicator_lacks(store):
    with pytest.raises(queries.QueryError, match="cannot be broken down by destination"):
        queries.breakdown(store, Filters("victims_identified"), "destination")
