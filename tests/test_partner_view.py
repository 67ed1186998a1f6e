"""A signed-in partner sees exact victim counts; signing out hides the small ones again (browser)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from dashboard import figures, ids
from data import users
from tests.conftest import app_with_partner
from tests.conftest import wait_until as _wait

PASSWORD = "a long partner passphrase"
VIEW = "/?view=overview&indicator=victims_identified&start=2024-01&end=2024-01"


@pytest.fixture
def partner_app(demo_db, tmp_path, monkeypatch):
    monkeypatch.setattr(users, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return app_with_partner(demo_db, tmp_path, "nita", PASSWORD)




def _suppressed_on_map(dash_duo):
    return dash_duo.driver.execute_script(
        f"var g=document.getElementById('{ids.MAP}').querySelector('.js-plotly-plot');"
        f"return g && g.data && g.data.length > {figures.TRACE_SUPPRESSED} && g.data[2].locations.length > 0"
        f" ? g.data[{figures.TRACE_SUPPRESSED}].locations : null;")


def _small_values_in_table(dash_duo):
    cells = [td.text for td in dash_duo.driver.find_elements("css selector", f"#{ids.RANK_TABLE} tbody td:nth-child(3)")]
    return cells, [c for c in cells if c.split(" ")[0].isdigit() and 0 < int(c.split(" ")[0]) < 5]


def test_partner_sees_exact_values_and_sign_out_hides_them(dash_duo, partner_app):
    dash_duo.start_server(partner_app)
    driver = dash_duo.driver
    # Anonymous first: small counts are suppressed on the map and in the table.
    driver.get(dash_duo.server_url + VIEW)
    _wait(lambda: _suppressed_on_map(dash_duo), message="suppressed provinces for anonymous viewers")
    _wait(lambda: any("<5" in c for c in _small_values_in_table(dash_duo)[0]), message="'<5' in the table")
    assert _small_values_in_table(dash_duo)[1] == []
    # Sign in as a partner.
    driver.get(dash_duo.server_url + "/auth/login")
    dash_duo.find_element("#f-username").send_keys("nita")
    dash_duo.find_element("#f-password").send_keys(PASSWORD)
    dash_duo.find_element("form button[type=submit]").click()
    _wait(lambda: "Signed in as nita" in dash_duo.find_element(f"#{ids.HEADER_ACCOUNT}").text, message="signed in")
    driver.get(dash_duo.server_url + VIEW)
    _wait(lambda: _suppressed_on_map(dash_duo) == [], message="no suppression for the partner")
    _wait(lambda: _small_values_in_table(dash_duo)[1], message="exact small counts in the table")
    # Sign out: the small counts are hidden again.
    driver.get(dash_duo.server_url + "/auth/logout")
    dash_duo.find_element("form button[type=submit]").click()
    # Let the sign-out round trip finish before navigating (navigating away could abort the POST).
    _wait(lambda: "/auth/logout" not in driver.current_url
          and "Signed in" not in dash_duo.find_element(f"#{ids.HEADER_ACCOUNT}").text, message="signed out")
    driver.get(dash_duo.server_url + VIEW)
    _wait(lambda: _suppressed_on_map(dash_duo), message="suppression after signing out")
    _wait(lambda: any("<5" in c for c in _small_values_in_table(dash_duo)[0]), message="'<5' again")
    assert _small_values_in_table(dash_duo)[1] == []
    assert dash_duo.get_logs() == []
