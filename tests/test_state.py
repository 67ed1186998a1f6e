"""URL state: encoding and decoding round-trip, bad parameters name themselves, controls sync rules."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks.state import quick_range, sanitise, toggle_province
from dashboard.state import StateError, ViewState, parse_search, parse_state
from data.gazetteer import PROVINCE_CODES, target_codes


def test_example_url_from_the_issue_decodes():
    state = parse_search("?view=victims&indicator=victims_identified&provinces=01,02&start=2024-01&end=2024-12")
    assert state.view == "victims" and state.indicator == "victims_identified"
    assert state.provinces == ("01", "02")
    assert (state.start, state.end) == (dt.date(2024, 1, 1), dt.date(2024, 12, 1))
    assert state.to_query() == "?view=victims&indicator=victims_identified&provinces=01,02&start=2024-01&end=2024-12"


def test_targets_shorthand_round_trips():
    state = parse_search("?provinces=targets")
    assert state.provinces == tuple(target_codes())
    assert "provinces=targets" in state.to_query()


states = st.builds(
    ViewState,
    view=st.sampled_from(["overview", "migration", "victims", "livelihood"]),
    indicator=st.sampled_from(["victims_identified", "migrants_departed", "households_supported", "tip_arrests"]),
    provinces=st.lists(st.sampled_from(PROVINCE_CODES), max_size=5, unique=True).map(lambda x: tuple(sorted(x))),
    granularity=st.sampled_from(["month", "quarter", "year"]),
    classes=st.sampled_from(["continuous", "quantile"]),
    top=st.integers(1, 100),
    min_flow=st.integers(0, 1000),
)


@settings(max_examples=100, deadline=None)
@given(states, st.integers(2021, 2026), st.integers(1, 12), st.integers(0, 30))
def test_state_round_trips_through_the_url(state, year, month, length):
    start = dt.date(year, month, 1)
    end_index = year * 12 + month - 1 + length
    state = state.with_(start=start, end=dt.date(end_index // 12, end_index % 12 + 1, 1))
    assert parse_state(parse_qs(state.to_query()[1:])) == state


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ({"indicator": "victim_identified"}, "indicator"),
        ({"provinces": "01,99"}, "provinces"),
        ({"start": "2024-13"}, "start"),
        ({"start": "2024-05", "end": "2024-01"}, "start"),
        ({"granularity": "week"}, "granularity"),
        ({"indicator": "tip_arrests", "by": "sex"}, "by"),
        ({"indicator": "victims_identified", "destination": "THA"}, "destination"),
        ({"sex": "woman"}, "sex"),
        ({"measure": "rate", "indicator": "livelihood_coverage"}, "measure"),
        ({"top": "0"}, "top"),
        ({"colour": "red"}, "colour"),
        ({"view": "secret"}, "view"),
    ],
)
def test_bad_parameters_name_themselves(query, param):
    with pytest.raises(StateError) as info:
        parse_state(query)
    assert info.value.param == param


def test_invalid_url_falls_back_to_the_default_view():
    assert parse_search("?indicator=nope") == ViewState()


def test_sanitise_drops_only_the_bad_parameter():
    state, notes = sanitise({"indicator": "migrants_departed", "provinces": "14", "sex": "woman"})
    assert state.indicator == "migrants_departed" and state.provinces == ("14",) and state.where == ()
    assert len(notes) == 1 and "sex" in notes[0]


def test_map_click_toggles_a_province_and_ignores_countries():
    click = {"points": [{"location": "17"}]}
    assert toggle_province([], click) == ["17"]
    assert toggle_province(["17", "01"], click) == ["01"]
    assert toggle_province(["01"], {"points": [{"location": "THA"}]}) == ["01"]


def test_quick_ranges_are_relative_to_the_last_month_with_data():
    last = dt.date(2026, 9, 1)
    assert quick_range("12", last) == ("2025-10", "2026-09")
    assert quick_range("year", last) == ("2026-01", "2026-09")
    assert quick_range("all", last) == ("", "")
