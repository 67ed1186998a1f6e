"""GET /api/v1/risk and /api/v1/risk/methodology on a bare Flask app over the seeded demo store."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math

import flask
import pytest

from dashboard.api import openapi_document
from dashboard.exports import SYNTHETIC_NOTICE
from data.risk import DIMENSION_KEYS, load_risk_config, methodology, risk_table
from data.store import Store

RISK = "/api/v1/risk"
ROW_KEYS = [
    "province_code",
    "province_name",
    "score",
    "class",
    "rank",
    "rank_p05",
    "rank_p95",
    "hazard",
    "vulnerability",
    "coping",
    "reliability",
]



@pytest.fixture(scope="module")
def client(api_client):  # noqa: ANN001, ANN201
    return api_client


@pytest.fixture(scope="module")
def default_body(client: flask.testing.FlaskClient) -> dict:
    res = client.get(RISK)
    assert res.status_code == 200, res.get_data(as_text=True)
    return res.get_json()


def test_rows_match_risk_table(default_body: dict, demo_store: Store) -> None:
    body = default_body
    assert body["period"] == {"start": "2025-10", "end": "2026-09", "months": 12}
    assert body["methodology_url"] == "/api/v1/risk/methodology"
    assert body["synthetic"] is True and body["notice"] == SYNTHETIC_NOTICE
    rows = body["rows"]
    assert len(rows) == 25 and all(list(r) == ROW_KEYS for r in rows)
    # Signed out: victim counts come from the protected releases (a hidden count is missing data).
    scores, _ = risk_table(demo_store, period_end=dt.date(2026, 9, 1), months=12, protected=True)
    expected = scores.set_index("province")
    for row in rows:
        ref = expected.loc[row["province_code"]]
        if row["score"] is None:
            assert math.isnan(ref["score"]) and row["rank"] is None and row["class"] is None
            assert row["reliability"] == "insufficient"
            continue
        assert row["score"] == pytest.approx(ref["score"], abs=1e-12)
        assert 0 <= row["score"] <= 10
        assert row["rank"] == ref["rank"] and row["class"] == ref["class"]
        assert row["rank_p05"] == ref["rank_p05"] and row["rank_p95"] == ref["rank_p95"]
        assert row["rank_p05"] <= row["rank_p95"]
        for dim in DIMENSION_KEYS:
            assert row[dim] == pytest.approx(ref[dim], abs=1e-12)
    ranks = [r["rank"] for r in rows if r["rank"] is not None]
    assert ranks == sorted(ranks) and ranks[0] == 1
    assert rows[0]["province_name"]


def test_defaults_echo_the_config(default_body: dict) -> None:
    config = load_risk_config()
    assert default_body["aggregation"] == config.aggregation == "geometric"
    assert default_body["weights"] == config.dimension_weights()
    assert default_body["indicator_weights"] == config.indicator_weights()


def test_methodology_endpoint_equals_methodology(
    client: flask.testing.FlaskClient, default_body: dict
) -> None:
    res = client.get("/api/v1/risk/methodology")
    assert res.status_code == 200
    doc = res.get_json()
    assert doc == methodology(load_risk_config())
    # The page and the numbers describe the same configuration.
    assert {d["key"]: d["weight"] for d in doc["dimensions"]} == default_body["weights"]
    assert {i["key"]: i["weight"] for i in doc["indicators"]} == default_body["indicator_weights"]
    assert doc["aggregation"]["default"] == default_body["aggregation"]


def test_parameters_change_the_result(client: flask.testing.FlaskClient, default_body: dict) -> None:
    res = client.get(
        f"{RISK}?period_end=2025-06&months=6&weights=hazard:2,vulnerability:1,coping:1"
        "&aggregation=arithmetic&iweights=land_border_thailand:0"
    )
    assert res.status_code == 200, res.get_data(as_text=True)
    body = res.get_json()
    assert body["period"] == {"start": "2025-01", "end": "2025-06", "months": 6}
    assert body["aggregation"] == "arithmetic"
    assert body["weights"] == {"hazard": 2.0, "vulnerability": 1.0, "coping": 1.0}
    assert body["indicator_weights"]["land_border_thailand"] == 0.0
    assert [r["score"] for r in body["rows"]] != [r["score"] for r in default_body["rows"]]
    # Weights equal in another scale give the same scores.
    same = client.get(f"{RISK}?weights=hazard:5,vulnerability:5,coping:5").get_json()
    assert [r["province_code"] for r in same["rows"]] == [r["province_code"] for r in default_body["rows"]]
    for a, b in zip(same["rows"], default_body["rows"], strict=True):
        assert (a["score"] is None and b["score"] is None) or a["score"] == pytest.approx(
            b["score"], abs=1e-9
        )


def test_period_without_data_is_not_an_error(client: flask.testing.FlaskClient) -> None:
    res = client.get(f"{RISK}?period_end=2001-01")
    assert res.status_code == 200
    assert all(r["score"] is None and r["reliability"] == "insufficient" for r in res.get_json()["rows"])


def test_csv_has_rows_and_components(client: flask.testing.FlaskClient, default_body: dict) -> None:
    res = client.get(f"{RISK}?format=csv")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    assert "ctip-risk-2025-10-2026-09.csv" in res.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    keys = load_risk_config().indicator_keys
    assert len(table) == 25
    header = list(table[0])
    assert header[: len(ROW_KEYS)] == ROW_KEYS
    assert all(f"{k}_raw" in header and f"{k}_normalised" in header for k in keys)
    assert header[-1] == "notice" and table[0]["notice"] == SYNTHETIC_NOTICE
    assert [r["province_code"] for r in table] == [r["province_code"] for r in default_body["rows"]]
    first = default_body["rows"][0]
    assert float(table[0]["score"]) == pytest.approx(first["score"])
    assert table[0]["land_border_thailand_raw"] in ("0.0", "1.0")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("bogus=1", "bogus"),
        ("period_end=2024-13", "period_end"),
        ("period_end=2024-1", "period_end"),
        ("period_end=March", "period_end"),
        ("months=0", "months"),
        ("months=121", "months"),
        ("months=twelve", "months"),
        ("months=-3", "months"),
        ("weights=hazard=1", "weights"),
        ("weights=hazard:-1", "weights"),
        ("weights=danger:1", "weights"),
        ("weights=hazard:0,vulnerability:0,coping:0", "weights"),
        ("weights=hazard:nan", "weights"),
        ("weights=hazard:1e999", "weights"),
        ("iweights=nope:1", "iweights"),
        (
            "iweights=departures_per_1000:0,victims_per_100k:0,foreign_forced_criminality_per_100k:0,"
            "land_border_thailand:0",
            "iweights",
        ),
        ("aggregation=median", "aggregation"),
        ("format=xml", "format"),
        ("months=12&months=6", "months"),
    ],
)
def test_bad_parameters_are_400(client: flask.testing.FlaskClient, query: str, parameter: str) -> None:
    res = client.get(f"{RISK}?{query}")
    assert res.status_code == 400, res.get_data(as_text=True)
    body = res.get_json()
    assert body["parameter"] == parameter
    assert body["error"]


def test_openapi_describes_the_risk_routes() -> None:
    doc = openapi_document()
    route = doc["paths"]["/api/v1/risk"]["get"]
    names = [p["name"] for p in route["parameters"]]
    assert names == ["period_end", "months", "weights", "iweights", "aggregation", "format"]
    assert set(route["responses"]) == {"200", "400"}
    assert "/api/v1/risk/methodology" in doc["paths"]
    row = doc["components"]["schemas"]["RiskRow"]
    assert row["required"] == ROW_KEYS
    agg = next(p for p in route["parameters"] if p["name"] == "aggregation")
    assert agg["schema"]["default"] == load_risk_config().aggregation
