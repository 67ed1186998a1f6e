"""Property tests of the aggregation rules (hypothesis, in-memory DuckDB)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data import queries
from data.gazetteer import PROVINCE_CODES
from data.schema import Filters
from data.store import open_store

MONTHS = [dt.date(2023, m, 1) for m in range(1, 13)]
cells = st.lists(
    st.tuples(
        st.sampled_from(PROVINCE_CODES[:6]),
        st.sampled_from(MONTHS),
        st.sampled_from(["female", "male", "unknown"]),
        st.sampled_from(["child", "adult"]),
        st.integers(min_value=0, max_value=500),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda t: t[:4],
)


def _load(rows):
    store = open_store("duckdb:///:memory:")
    frame = pd.DataFrame(
        [{"indicator": "victims_identified", "province": p, "period": m, "sex": s, "age_group": a, "value": v} for p, m, s, a, v in rows]
    )
    frame["period"] = pd.to_datetime(frame["period"])
    store.write_batch(frame, kind="import")
    return store


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells)
def test_summing_a_disaggregation_gives_the_total(rows):
    store = _load(rows)
    f = Filters("victims_identified")
    total = queries.aggregate(store, f)["value"].iloc[0]
    for dim in ("sex", "age_group"):
        assert queries.breakdown(store, f, dim)["value"].sum() == total
    per_province = queries.province_totals(store, f)["value"].sum()
    assert per_province == total


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells)
def test_quarters_are_sums_of_their_months(rows):
    store = _load(rows)
    f = Filters("victims_identified", start=dt.date(2023, 1, 1), end=dt.date(2023, 12, 1))
    monthly = queries.time_series(store, f)
    quarterly = queries.time_series(store, f.with_(granularity="quarter"))
    expected = monthly.groupby(monthly["period"].dt.to_period("Q"))["value"].sum(min_count=1)
    assert quarterly["value"].fillna(-1).tolist() == expected.fillna(-1).tolist()
    yearly = queries.time_series(store, f.with_(granularity="year"))
    assert yearly["value"].iloc[0] == monthly["value"].sum()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells, st.sampled_from(["month", "quarter"]))
def test_all_provinces_equal_the_national_aggregate(rows, granularity):
    store = _load(rows)
    national = queries.time_series(store, Filters("victims_identified", granularity=granularity))
    explicit = queries.time_series(store, Filters("victims_identified", provinces=PROVINCE_CODES, granularity=granularity))
    assert national["value"].fillna(-1).tolist() == explicit["value"].fillna(-1).tolist()
    per_province = queries.time_series(store, Filters("victims_identified", granularity=granularity), by_province=True)
    summed = per_province.groupby("period")["value"].sum(min_count=1)
    assert summed.fillna(-1).tolist() == national["value"].fillna(-1).tolist()
