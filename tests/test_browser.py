"""What only a browser shows: the map draws, a click filters, the URL round-trips, downloads, no off-origin requests."""

from __future__ import annotations

import csv
import glob
import os

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from dashboard import ids
from dashboard.app import create_app
from dashboard.settings import Settings
from tests.conftest import wait_until

MAP_PATHS = f"#{ids.MAP} path.choroplethlocation"


@pytest.fixture
def app(demo_db):
    return create_app(Settings(database_url=demo_db))


def _wait_for(dash_duo, predicate, timeout=20, message="condition"):  # noqa: ARG001 - dash_duo kept for call sites
    wait_until(predicate, timeout=timeout, message=message)


def _js(dash_duo, script, *args):
    return dash_duo.driver.execute_script(script, *args)


def _map_values(dash_duo):
    """z values of the map's value trace as the browser holds them."""
    return _js(dash_duo, f"var g=document.getElementById('{ids.MAP}').querySelector('.js-plotly-plot');"
                         "return g && g.data && g.data[2] ? [g.data[2].locations, g.data[2].z] : null;")


def _series_names(dash_duo):
    return _js(dash_duo, f"var g=document.getElementById('{ids.SERIES}').querySelector('.js-plotly-plot');"
                         "return g && g.data ? g.data.map(t => t.name) : [];")


def _choose(dash_duo, dropdown_id, label):
    """Open a Dash 4 dropdown and click the option with ``label``."""
    dash_duo.find_element(f"#{dropdown_id}").click()
    _wait_for(dash_duo, lambda: dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]"), message="options")
    for option in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]"):
        if option.text.strip() == label:
            dash_duo.driver.execute_script("arguments[0].click();", option)
            return
    raise AssertionError(f"no option {label!r}")


def _search(dash_duo):
    return _js(dash_duo, "return window.location.search;")


def _start(dash_duo, app, path=""):
    dash_duo.start_server(app)
    if path:
        dash_duo.driver.get(dash_duo.server_url + path)
    _wait_for(dash_duo, lambda: len(dash_duo.driver.find_elements(By.CSS_SELECTOR, MAP_PATHS)) >= 25, message="map paths")
    _wait_for(dash_duo, lambda: _map_values(dash_duo) and len(_map_values(dash_duo)[0]) > 0, message="map values")


def test_default_page_draws_map_and_charts_without_errors_or_offsite_requests(dash_duo, app):
    _start(dash_duo, app)
    dash_duo.wait_for_text_to_equal(f"#{ids.HEADER_BADGE}", "Synthetic demonstration data")
    locations, z = _map_values(dash_duo)
    assert len(locations) >= 20 and all(v is not None for v in z)
    _wait_for(dash_duo, lambda: "Cambodia (national)" in _series_names(dash_duo), message="national series")
    assert dash_duo.find_element(f"#{ids.KPI_ROW} .kpi-value").text.replace(",", "").isdigit()
    origin = dash_duo.server_url.rstrip("/")
    resources = _js(dash_duo, "return performance.getEntriesByType('resource').map(e => e.name);")
    assert resources, "the page loaded no resources?"
    off_origin = [r for r in resources if not r.startswith(origin)]
    assert off_origin == []
    assert any(r.endswith("/api/v1/provinces.geojson") for r in resources)
    assert any("/assets/topojson/world_110m.json" in r for r in resources)
    assert dash_duo.get_logs() == []


def test_changing_the_indicator_updates_map_series_and_url(dash_duo, app):
    _start(dash_duo, app)
    before = _map_values(dash_duo)
    _choose(dash_duo, ids.INDICATOR, "Migration · Migrants departed")
    _wait_for(dash_duo, lambda: "indicator=migrants_departed" in _search(dash_duo), message="URL indicator")
    _wait_for(dash_duo, lambda: _map_values(dash_duo) != before, message="map update")
    title = _js(dash_duo, f"return document.getElementById('{ids.SERIES}').querySelector('.gtitle').textContent;")
    assert "Migrants departed" in title
    assert dash_duo.get_logs() == []


def test_clicking_a_province_filters_the_series_and_back_restores(dash_duo, app):
    _start(dash_duo, app, "/?view=overview&indicator=victims_identified&start=2024-01&end=2024-12")
    # Click the province drawn by the values trace whose location is Siem Reap (17).
    index = _js(dash_duo, f"var g=document.getElementById('{ids.MAP}').querySelector('.js-plotly-plot');"
                          "return g.data[2].locations.indexOf('17');")
    assert index >= 0
    paths = dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{ids.MAP} .trace.choropleth")[2].find_elements(
        By.CSS_SELECTOR, "path.choroplethlocation")
    ActionChains(dash_duo.driver).move_to_element(paths[index]).click().perform()
    _wait_for(dash_duo, lambda: "provinces=17" in _search(dash_duo), message="province in URL")
    _wait_for(dash_duo, lambda: "Siem Reap" in _series_names(dash_duo), message="Siem Reap series")
    selected = _js(dash_duo, f"var g=document.getElementById('{ids.MAP}').querySelector('.js-plotly-plot');"
                             "return g.data[5].locations;")
    assert selected == ["17"]
    dash_duo.driver.back()
    _wait_for(dash_duo, lambda: "provinces" not in _search(dash_duo), message="back")
    _wait_for(dash_duo, lambda: "Siem Reap" not in _series_names(dash_duo), message="series restored")
    assert dash_duo.get_logs() == []


def test_url_with_state_reproduces_the_view(dash_duo, app):
    query = "/?view=migration&indicator=migrants_departed&provinces=14&start=2024-01&end=2024-12&granularity=quarter"
    _start(dash_duo, app, query)
    dash_duo.wait_for_text_to_equal(f"#{ids.VIEW_TABS} .nav-link.active", "Migration")
    assert "Prey Veng" in dash_duo.find_element(f"#{ids.PROVINCES}").text
    dash_duo.wait_for_contains_text(f"#{ids.FLOW_TABLE}", "Thailand", timeout=20)
    first_row = dash_duo.find_element(f"#{ids.FLOW_TABLE} tbody tr").text
    assert first_row.startswith("Prey Veng Thailand")
    assert _search(dash_duo) == query[1:]
    assert dash_duo.get_logs() == []


def test_csv_download_has_the_totals_on_screen(dash_duo, app):
    _start(dash_duo, app, "/?view=overview&indicator=victims_identified&provinces=targets&start=2024-01&end=2024-12")
    kpi = dash_duo.find_element(f"#{ids.KPI_ROW} .kpi-value")
    _wait_for(dash_duo, lambda: kpi.text.replace(",", "").isdigit(), message="KPI")
    on_screen = int(dash_duo.find_element(f"#{ids.KPI_ROW} .kpi-value").text.replace(",", ""))
    dash_duo.find_element(f"#{ids.DOWNLOAD_CSV}").click()
    pattern = os.path.join(dash_duo.download_path, "*.csv")
    _wait_for(dash_duo, lambda: glob.glob(pattern) and not glob.glob(pattern + ".crdownload"), message="download")
    with open(glob.glob(pattern)[0], encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8
    assert sum(float(r["value"]) for r in rows) == on_screen
    assert all("Synthetic" in r["notice"] or "SYNTHETIC" in r["notice"] for r in rows)
    assert dash_duo.get_logs() == []


def test_filters_work_from_the_keyboard(dash_duo, app):
    from selenium.webdriver.common.keys import Keys

    _start(dash_duo, app)
    actions = ActionChains(dash_duo.driver)
    for _ in range(2):  # skip link, then the indicator dropdown
        actions.send_keys(Keys.TAB)
    actions.perform()
    assert _js(dash_duo, "return document.activeElement.id;") == ids.INDICATOR
    ActionChains(dash_duo.driver).send_keys(Keys.ENTER).perform()
    _wait_for(dash_duo, lambda: dash_duo.find_element(f"#{ids.INDICATOR}").get_attribute("aria-expanded") == "true", message="open")
    focused = "return document.activeElement.value || '';"
    _wait_for(dash_duo, lambda: _js(dash_duo, focused) == "victims_identified", message="focus on the current option")
    ActionChains(dash_duo.driver).send_keys(Keys.ARROW_DOWN).perform()
    _wait_for(dash_duo, lambda: _js(dash_duo, focused) == "victims_referred", message="focus on the next option")
    ActionChains(dash_duo.driver).send_keys(Keys.ENTER).perform()
    _wait_for(dash_duo, lambda: "indicator=victims_referred" in _search(dash_duo), message="keyboard choice in URL")
    assert dash_duo.get_logs() == []


def _risk_ranking(dash_duo):
    rows = dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{ids.RISK_TABLE} tbody tr")
    return [r.find_elements(By.TAG_NAME, "td")[1].text.split(" ")[0] + ":" + r.find_elements(By.TAG_NAME, "td")[2].text
            for r in rows]


def _risk_map_z(dash_duo):
    return _js(dash_duo, f"var g=document.getElementById('{ids.RISK_MAP}').querySelector('.js-plotly-plot');"
                         "return g && g.data && g.data[2] ? [g.data[2].locations, g.data[2].z] : null;")


def test_moving_a_risk_weight_changes_map_ranks_and_url(dash_duo, app):
    _start(dash_duo, app, "/?view=risk")
    _wait_for(dash_duo, lambda: len(_risk_ranking(dash_duo)) == 25, message="risk table")
    _wait_for(dash_duo, lambda: _risk_map_z(dash_duo) is not None, message="risk map")
    before_rank, before_map = _risk_ranking(dash_duo), _risk_map_z(dash_duo)
    from selenium.webdriver.common.keys import Keys

    thumb = dash_duo.driver.find_element(By.CSS_SELECTOR, f"[id*='{ids.RISK_WEIGHT_TYPE}'][id*='hazard'] [role=slider]")
    # Move the hazard weight to 0 with the keyboard (the slider thumb takes Home/End/arrows).
    thumb.send_keys(Keys.HOME)
    _wait_for(dash_duo, lambda: "weights=" in _search(dash_duo) and "hazard:0" in _search(dash_duo), message="weights in URL")
    _wait_for(dash_duo, lambda: _risk_ranking(dash_duo) != before_rank, message="ranks change")
    _wait_for(dash_duo, lambda: _risk_map_z(dash_duo) != before_map, message="map change")
    # The link reproduces the weighted view.
    dash_duo.driver.get(dash_duo.server_url + "/" + _search(dash_duo))
    _wait_for(dash_duo, lambda: _risk_ranking(dash_duo) != before_rank and len(_risk_ranking(dash_duo)) == 25,
              message="weighted view from link")
    assert dash_duo.get_logs() == []
