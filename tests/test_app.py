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
    from plotly.utils import PlotlyJSONEncoder

    from callbacks.views import map_args
    from dashboard.figures import choropleth_patch
    from dashboard.state import parse_search

    services = app.server.config["CTIP_SERVICES"]
    patch = choropleth_patch(**map_args(services, parse_search("?indicator=victims_identified&start=2024-01&end=2024-12")))
    body = json.dumps(patch.to_plotly_json(), cls=PlotlyJSONEncoder)
    assert len(body) < 5_000 and "geojson" not in body


def _find(component, target_id):
    if getattr(component, "id", None) == target_id:
        return component
    children = getattr(component, "children", None)
    if isinstance(children, (list, tuple)):
        for child in children:
            found = _find(child, target_id)
            if found is not None:
                return found
    elif children is not None and hasattr(children, "to_plotly_json"):
        return _find(children, target_id)
    return None


def _text(component) -> str:
    if isinstance(component, (str, int, float)):
        return str(component)
    children = getattr(component, "children", None)
    if isinstance(children, (list, tuple)):
        return " ".join(_text(c) for c in children if c is not None)
    return _text(children) if children is not None else ""


def test_methodology_page_and_api_describe_the_same_configuration(app):
    page = _text(_find(app.layout(), ids.RISK_METHODOLOGY))
    api = app.server.test_client().get("/api/v1/risk/methodology").get_json()
    for dim in api["dimensions"]:
        assert dim["label_en"] in page and dim["description"] in page
    for ind in api["indicators"]:
        for field in ("key", "label_en", "formula_text", "direction_text", "transform", "rationale"):
            assert str(ind[field]) in page, (ind["key"], field)
        assert f"{ind['caps']['lower_percentile']:g}" in page and f"{ind['weight']:g}" in page
    for cls in api["classes"]:
        assert cls["label_en"] in page
    # And the numbers the API serves come from that configuration.
    risk = app.server.test_client().get("/api/v1/risk").get_json()
    assert risk["aggregation"] == api["aggregation"]["default"]
    assert api["aggregation"]["geometric"] in page
    assert risk["weights"] == {d["key"]: d["weight"] for d in api["dimensions"]}
