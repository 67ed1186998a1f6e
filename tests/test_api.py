"""The API on a bare Flask app over an in-memory DuckDB store with reference and seeded demo data."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math

import flask
import pytest

from dashboard.api import openapi_document, register_api
from dashboard.exports import SYNTHETIC_NOTICE
from dashboard.state import parse_state
from data.catalog import indicators
from data.queries import province_totals, time_series
from data.schema import DIMENSIONS
from data.store import Store
from geo.boundaries import SHIPPED_DIR

OBS = "/api/v1/observations"



@pytest.fixture(scope="module")
def client(api_client):  # noqa: ANN001, ANN201
    return api_client


def no_nan(value: object) -> bool:
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, dict):
        return all(no_nan(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nan(v) for v in value)
    return True


# -- health and catalog -------------------------------------------------------------------------------
def test_healthz_ok(client: flask.testing.FlaskClient, demo_store: Store) -> None:
    res = client.get("/healthz")
    assert res.status_code == 200
    body = res.get_json()
    assert body["status"] == "ok"
    assert body["backend"] == "duckdb"
    assert body["rows"] == demo_store.scalar("SELECT COUNT(*) FROM observations") > 0
    assert body["demo_loaded"] is True
    assert body["version"]


def test_healthz_store_failure_is_503_without_credentials() -> None:
    def broken() -> Store:
        raise RuntimeError("cannot connect to postgresql://ctip:s3cret@db:5432/ctip")

    app = flask.Flask(__name__)
    register_api(app, broken)
    res = app.test_client().get("/healthz")
    assert res.status_code == 503
    body = res.get_json()
    assert body["status"] == "error"
    assert "cannot connect" in body["detail"]
    assert "s3cret" not in body["detail"]


def test_indicators_lists_catalog_with_domains_and_themes(client: flask.testing.FlaskClient) -> None:
    res = client.get("/api/v1/indicators")
    assert res.status_code == 200
    body = res.get_json()
    assert [r["id"] for r in body["indicators"]] == list(indicators())
    assert "protection" in body["domains"] and "victims" in body["themes"]
    victims = next(r for r in body["indicators"] if r["id"] == "victims_identified")
    assert victims["sensitive"] is True and "sex" in victims["disaggregations"]


# -- shipped layers -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["provinces.geojson", "context.geojson"])
def test_layer_served_as_shipped_bytes_with_cache_headers(
    client: flask.testing.FlaskClient, name: str
) -> None:
    res = client.get(f"/api/v1/{name}")
    assert res.status_code == 200
    assert res.mimetype == "application/geo+json"
    assert res.data == (SHIPPED_DIR / name).read_bytes()
    etag, weak = res.get_etag()
    assert etag and not weak
    assert res.headers["Cache-Control"] == "public, max-age=86400"

    again = client.get(f"/api/v1/{name}", headers={"If-None-Match": f'"{etag}"'})
    assert again.status_code == 304
    assert again.data == b""
    assert again.get_etag() == (etag, False)
    assert again.headers["Cache-Control"] == "public, max-age=86400"

    other = client.get(f"/api/v1/{name}", headers={"If-None-Match": '"not-this-one"'})
    assert other.status_code == 200 and other.data == res.data


def test_provinces_layer_has_the_25_codes(client: flask.testing.FlaskClient) -> None:
    body = json.loads(client.get("/api/v1/provinces.geojson").data)
    assert [f["properties"]["province_code"] for f in body["features"]] == [f"{i:02d}" for i in range(1, 26)]


def test_layer_gzip_representation(client: flask.testing.FlaskClient) -> None:
    plain = client.get("/api/v1/provinces.geojson")
    res = client.get("/api/v1/provinces.geojson", headers={"Accept-Encoding": "gzip, br"})
    assert res.status_code == 200
    assert res.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in res.headers["Vary"]
    assert gzip.decompress(res.data) == plain.data
    assert len(res.data) < len(plain.data) / 2
    assert res.get_etag()[0] != plain.get_etag()[0]
    again = client.get(
        "/api/v1/provinces.geojson", headers={"Accept-Encoding": "gzip", "If-None-Match": res.headers["ETag"]}
    )
    assert again.status_code == 304


def test_layer_accepts_compressed_etag_suffix(client: flask.testing.FlaskClient) -> None:
    etag, _ = client.get("/api/v1/provinces.geojson").get_etag()
    res = client.get("/api/v1/provinces.geojson", headers={"If-None-Match": f'"{etag}:gzip"'})
    assert res.status_code == 304


# -- observations ----------------------------------------------------------------------------------------
def test_observations_json_matches_province_totals(
    client: flask.testing.FlaskClient, demo_store: Store
) -> None:
    # Signed out, province figures with a filter are published for whole years: 2024's female victims
    # by province, whose shown values are the province totals on the map.
    query = "indicator=victims_identified&start=2024-01&end=2024-12&sex=female&granularity=year"
    res = client.get(f"{OBS}?{query}")
    assert res.status_code == 200
    body = res.get_json()
    assert body["indicator"]["id"] == "victims_identified"
    assert body["indicator"]["unit"] == "persons"
    assert body["synthetic"] is True and body["notice"] == SYNTHETIC_NOTICE
    assert body["filters"]["sex"] == "female" and body["filters"]["start"] == "2024-01"
    assert body["source"]
    rows = body["rows"]
    assert rows and set(rows[0]) == {"province", "province_name", "period", "value", "suppressed"}
    assert rows == sorted(rows, key=lambda r: (r["province"], r["period"]))
    assert {r["period"] for r in rows} == {"2024"}
    # Anonymous: victims are sensitive, small cells come back as null + suppressed.
    assert all((r["value"] is None) == r["suppressed"] for r in rows)
    assert not any(r["value"] is not None and 0 < r["value"] < 5 for r in rows)
    sums: dict[str, float] = {}
    complete: dict[str, bool] = {}
    for r in rows:
        sums[r["province"]] = sums.get(r["province"], 0.0) + (r["value"] or 0.0)
        complete[r["province"]] = complete.get(r["province"], True) and not r["suppressed"]
    state = parse_state(
        {"indicator": "victims_identified", "start": "2024-01", "end": "2024-12", "sex": "female"}
    )
    totals = province_totals(demo_store, state.filters()).dropna(subset=["value"])
    assert len(totals) > 0 and any(complete.values())
    for code, value in zip(totals["province"], totals["value"], strict=True):
        if complete.get(code):
            assert sums[code] == pytest.approx(value)


def test_observations_series_matches_time_series(
    client: flask.testing.FlaskClient, demo_store: Store
) -> None:
    body = client.get(
        f"{OBS}?indicator=migrants_departed&provinces=01,02&start=2023-01&end=2023-12&granularity=quarter"
    ).get_json()
    assert {r["period"] for r in body["rows"]} == {"2023-Q1", "2023-Q2", "2023-Q3", "2023-Q4"}
    assert {r["province"] for r in body["rows"]} == {"01", "02"}
    state = parse_state(
        {
            "indicator": "migrants_departed",
            "provinces": "01,02",
            "start": "2023-01",
            "end": "2023-12",
            "granularity": "quarter",
        }
    )
    series = time_series(demo_store, state.filters(), by_province=True)
    expected = {(p, f"{t.year}-Q{(t.month - 1) // 3 + 1}"): v for t, p, v in series.itertuples(index=False)}
    assert {(r["province"], r["period"]): r["value"] for r in body["rows"]} == pytest.approx(expected)


def test_observations_by_and_year_labels(client: flask.testing.FlaskClient) -> None:
    body = client.get(
        f"{OBS}?indicator=migrants_departed&provinces=01&start=2022-01&end=2023-12"
        "&granularity=year&by=channel"
    ).get_json()
    rows = body["rows"]
    assert {r["period"] for r in rows} == {"2022", "2023"}
    assert all(set(r) == {"province", "province_name", "period", "channel", "value", "suppressed"} for r in rows)
    assert not any(r["suppressed"] for r in rows)  # migrants_departed is not sensitive
    assert rows == sorted(rows, key=lambda r: (r["province"], r["period"], r["channel"]))
    assert rows[0]["province_name"]


def test_observations_ratio_indicator_has_no_nan(client: flask.testing.FlaskClient) -> None:
    res = client.get(f"{OBS}?indicator=assisted_per_identified&start=2024-01&end=2024-06&by=sex")
    assert res.status_code == 200
    assert b"NaN" not in res.data and b"Infinity" not in res.data
    body = json.loads(res.data)
    assert body["rows"] and no_nan(body)
    assert body["synthetic"] is True


def test_observations_csv_has_notice_and_attachment(client: flask.testing.FlaskClient) -> None:
    res = client.get(
        f"{OBS}?indicator=victims_identified&provinces=01,02&start=2024-01&end=2024-12&granularity=year&by=sex&format=csv"
    )
    assert res.status_code == 200
    assert res.mimetype == "text/csv"
    assert (
        res.headers["Content-Disposition"]
        == "attachment; filename=ctip-victims_identified-2024-01-2024-12.csv"
    )
    rows = list(csv.DictReader(io.StringIO(res.data.decode("utf-8"))))
    assert rows
    assert list(rows[0]) == ["province", "province_name", "period", "sex", "value", "suppressed", "notice"]
    assert all(r["notice"] == SYNTHETIC_NOTICE for r in rows)
    assert {r["province"] for r in rows} == {"01", "02"}
    for r in rows:
        assert (r["value"] == "<5") == (r["suppressed"] == "true")
        if r["suppressed"] == "false":
            assert not 0 < float(r["value"]) < 5


BAD_PARAMS = [
    ("indicator=nope", "indicator"),
    ("", "indicator"),
    ("indicator=", "indicator"),
    ("indicator=victims_identified&provinces=99", "provinces"),
    ("indicator=victims_identified&provinces=01,xx", "provinces"),
    ("indicator=victims_identified&start=2024-13", "start"),
    ("indicator=victims_identified&start=24-01", "start"),
    ("indicator=victims_identified&end=2024-1-1", "end"),
    ("indicator=victims_identified&start=1999-01", "start"),
    ("indicator=victims_identified&start=2024-06&end=2024-01", "start"),
    ("indicator=victims_identified&granularity=week", "granularity"),
    ("indicator=victims_identified&by=channel", "by"),
    ("indicator=victims_identified&by=colour", "by"),
    ("indicator=awareness_sessions&sex=female", "sex"),
    ("indicator=victims_identified&sex=robot", "sex"),
    ("indicator=victims_identified&nationality=thai", "nationality"),
    ("indicator=migrants_departed&destination=Thailand", "destination"),
    ("indicator=victims_identified&colour=red", "colour"),
    ("indicator=victims_identified&format=xml", "format"),
    ("indicator=victims_identified&format=csv&format=json", "format"),
    ("indicator=victims_identified&indicator=hotline_calls", "indicator"),
    ("indicator=victims_identified&view=nowhere", "view"),
    ("indicator=victims_identified&top=many", "top"),
    ("indicator=assisted_per_identified&measure=rate", "measure"),
    ("indicator=victims_identified&min_flow=-1", "min_flow"),
    ("indicator=%00%ff&start=%27;DROP TABLE observations", "indicator"),
]


@pytest.mark.parametrize(("query", "parameter"), BAD_PARAMS)
def test_observations_bad_parameter_is_400(
    client: flask.testing.FlaskClient, query: str, parameter: str
) -> None:
    res = client.get(f"{OBS}?{query}")
    assert res.status_code == 400, res.data
    body = res.get_json()
    assert body["parameter"] == parameter
    assert body["error"]


def test_observations_empty_window_gives_no_rows(client: flask.testing.FlaskClient) -> None:
    res = client.get(f"{OBS}?indicator=victims_identified&start=2001-01&end=2001-02")
    assert res.status_code == 200
    assert res.get_json()["rows"] == []
    csv_res = client.get(f"{OBS}?indicator=victims_identified&start=2001-01&end=2001-02&format=csv")
    assert csv_res.status_code == 200
    assert csv_res.data.decode().splitlines()[0] == "province,province_name,period,value,suppressed,notice"


def test_observations_unexpected_failure_is_generic_500() -> None:
    class Broken:
        backend = "duckdb"

        def query(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("secret internals")

        scalar = query

    app = flask.Flask(__name__)
    app.logger.disabled = True
    register_api(app, lambda: Broken())  # type: ignore[arg-type, return-value]
    res = app.test_client().get(f"{OBS}?indicator=victims_identified")
    assert res.status_code == 500
    assert b"secret" not in res.data and b"Traceback" not in res.data


# -- OpenAPI ---------------------------------------------------------------------------------------------
def test_openapi_lists_routes_and_enums(client: flask.testing.FlaskClient) -> None:
    res = client.get("/api/v1/openapi.json")
    assert res.status_code == 200
    doc = json.loads(res.data)
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/healthz",
        "/api/v1/indicators",
        "/api/v1/provinces.geojson",
        "/api/v1/context.geojson",
        "/api/v1/observations",
        "/api/v1/openapi.json",
        "/api/v1/risk",
        "/api/v1/risk/methodology",
    }
    params = {p["name"]: p for p in doc["paths"]["/api/v1/observations"]["get"]["parameters"]}
    assert params["indicator"]["required"] is True
    assert params["indicator"]["schema"]["enum"] == list(indicators())
    assert params["granularity"]["schema"]["enum"] == ["month", "quarter", "year"]
    assert params["format"]["schema"]["enum"] == ["json", "csv"]
    assert params["by"]["schema"]["enum"] == list(DIMENSIONS)
    assert set(DIMENSIONS) <= set(params)
    assert doc == openapi_document()


def test_openapi_routes_all_exist(client: flask.testing.FlaskClient) -> None:
    for path in openapi_document()["paths"]:
        query = "?indicator=hotline_calls" if path.endswith("observations") else ""
        assert client.get(path + query).status_code == 200, path


def test_unknown_api_paths_and_methods_are_json_errors(client: flask.testing.FlaskClient) -> None:
    res = client.get("/api/v2/nothing-here")
    assert res.status_code == 404 and res.is_json and "openapi" in res.get_json()["error"]
    res = client.post("/api/v1/observations?indicator=victims_identified")
    assert res.status_code == 405 and res.is_json
