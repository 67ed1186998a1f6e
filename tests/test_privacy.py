"""Small-cell suppression: primary rule, complementary rule over a table and its margins, no recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data.privacy import check_release, release, suppress, suppression_k


def test_primary_suppression_keeps_zero_and_large_counts():
    frame = pd.DataFrame({"province": ["01", "02", "03", "04"], "value": [0.0, 3.0, 12.0, np.nan]})
    out = suppress(frame, k=5)
    assert out["suppressed"].tolist() == [False, True, False, False]
    assert out["value"].iloc[0] == 0 and np.isnan(out["value"].iloc[1]) and out["value"].iloc[2] == 12
    assert np.isnan(out["value"].iloc[3])  # no data stays no data, not suppressed


def test_a_lonely_suppressed_cell_takes_the_next_smallest_with_it():
    frame = pd.DataFrame({"province": list("abcd"), "value": [2.0, 9.0, 7.0, 30.0]})
    levels = release(frame, ["province"], k=5)
    assert levels[("province",)]["suppressed"].tolist() == [True, False, True, False]  # 7 is the next smallest
    assert levels[()]["value"].iloc[0] == 48  # the national total stays shown


def test_a_singleton_group_hides_its_total():
    # Province a has data in one month only: its total equals that cell.
    frame = pd.DataFrame({"province": ["a", "b", "b"], "period": [1, 1, 2], "value": [3.0, 20.0, 30.0]})
    levels = release(frame, ["province", "period"], k=5)
    cells = levels[("province", "period")]
    assert cells["suppressed"].tolist() == [True, True, False]
    totals = levels[("province",)].set_index("province")
    assert bool(totals.loc["a", "suppressed"])
    assert check_release(frame, levels, ["province", "period"], k=5) == []


def test_rates_of_suppressed_counts_are_suppressed():
    frame = pd.DataFrame({"province": ["a", "b"], "value": [1.0, 0.0], "rate_100k": [0.5, 0.0]})
    out = suppress(frame, k=5, derived=["rate_100k"])
    assert np.isnan(out["rate_100k"].iloc[0]) and out["rate_100k"].iloc[1] == 0


def test_k_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CTIP_SUPPRESSION_K", "11")
    assert suppression_k() == 11
    monkeypatch.setenv("CTIP_SUPPRESSION_K", "one")
    with pytest.raises(ValueError, match="CTIP_SUPPRESSION_K"):
        suppression_k()


cells = st.one_of(st.just(0.0), st.integers(1, 6).map(float), st.integers(5, 60).map(float))
tables2 = st.integers(1, 6).flatmap(lambda r: st.integers(1, 5).flatmap(lambda c: st.lists(cells, min_size=r * c, max_size=r * c).map(
    lambda v: pd.DataFrame({"row": np.repeat(np.arange(r), c), "col": np.tile(np.arange(c), r), "value": v}))))
tables3 = st.integers(1, 4).flatmap(lambda r: st.integers(1, 3).flatmap(lambda c: st.lists(
    cells, min_size=r * c * 2, max_size=r * c * 2).map(
    lambda v: pd.DataFrame({"row": np.repeat(np.arange(r), c * 2), "col": np.tile(np.repeat(np.arange(c), 2), r),
                            "sex": np.tile(["f", "m"], r * c), "value": v}))))


@settings(max_examples=150, deadline=None)
@given(tables2, st.integers(2, 11))
def test_two_way_tables_never_leave_a_recoverable_cell(frame, k):
    dims = ["row", "col"]
    levels = release(frame, dims, k=k)
    assert check_release(frame, levels, dims, k=k) == []
    if not ((frame["value"] > 0) & (frame["value"] < k)).any():
        assert not any(level["suppressed"].any() for level in levels.values())


@settings(max_examples=50, deadline=None)
@given(tables3, st.integers(2, 11))
def test_three_way_tables_never_leave_a_recoverable_cell(frame, k):
    dims = ["row", "col", "sex"]
    assert check_release(frame, release(frame, dims, k=k), dims, k=k) == []
