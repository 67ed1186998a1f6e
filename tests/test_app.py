"""The app as a whole without a browser: ids, architecture, callbacks as plain functions, page weight."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dashboard import ids
from dashboard.app import create_app
from dashboard.settings import Settings


@pytest.fixture(scope="module")
def app(demo_db):
    return create_app(Settings(database_url=demo_db))


def _ids(component, found):
    cid = getattr(component, "id", None)
    if cid is not None:
        found.append(json.dumps(cid, sort_keys=True) if isinstance(cid, dict) else cid)
    children = getattr(component, "children", None)
    if isinstance(children, (list, tuple)):
        for child in children:
            _ids(child, found)
    elif children is not None and hasattr(children, "to_plotly_json"):
        _ids(children, found)
    for prop in ("label",):
        value = getattr(component, prop, None)
        if hasattr(value, "to_plotly_json"):
            _ids(value, found)


def test_component_ids_are_unique_and_declared(app):
    found: list[str] = []
    _ids(app.layout(), found)
    assert len(found) == len(set(found)), sorted(x for x in found if found.count(x) > 1)
    declared = {v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str) and k != "DIM_FILTER_TYPE"}
    plain = {x for x in found if not x.startswith("{")}
    assert plain <= declared | {"main"}


def test_every_callback_output_and_input_exists_in_the_layout(app):
    found: list[str] = []
    _ids(app.layout(), found)
    plain = set(found)
    for callback in app.callback_map.values():
        for dep in callback["inputs"] + callback.get("state", []):
            if not str(dep["id"]).startswith("{"):
                assert dep["id"] in plain, dep


def test_data_and_geo_import_without_dash():
    code = "import sys, data.queries, data.ingest, data.demo, geo.boundaries; print('dash' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_page_and_api_respond(app):
    client = app.server.test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert len(page.data) < 20_000  # the layout comes separately; no validation copy in the page
    assert b"cdn." not in page.data and b"https://" not in page.data.replace(b"https://dash-version", b"")
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_map_callback_returns_a_small_patch(app):
    from callbacks.views import map_args
    from dashboard.figures import choropleth_patch
    from dashboard.state import parse_search
    from plotly.utils import PlotlyJSONEncoder

    services = app.server.config["CTIP_SERVICES"]
    patch = choropleth_patch(**map_args(services, parse_search("?indicator=victims_identified&start=2024-01&end=2024-12")))
    body = json.dumps(patch.to_plotly_json(), cls=PlotlyJSONEncoder)
    assert len(body) < 5_000 and "geojson" not in body
