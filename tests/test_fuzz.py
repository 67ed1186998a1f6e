"""Fuzzing the HTTP surface: the API (driven by its own OpenAPI document), the URL state, the state-sync
callback and the sign-in form. Whatever is sent, the app answers < 500, never shows a traceback, and
never echoes input containing ``<`` unescaped in an HTML response.

Every request goes through the Flask test client of the full app (``create_app``), so the security
headers, error handlers and Dash routes are the production ones. Hypothesis generates, per declared
parameter, valid values (enums, patterns, integer ranges), near-valid mutations of them and hostile text
(markup, traversal, SQL-ish, Khmer, control characters, NUL, 10k strings, percent-encoding junk,
out-of-range numbers), repeats parameters and adds unknown ones. ``test_zz_summary`` prints how many
requests were sent. ``CTIP_FUZZ_SCALE=10`` multiplies the examples for a deeper run.
"""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import json
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from markupsafe import escape
from werkzeug.datastructures import MultiDict

import data.users as users
from dashboard import ids
from dashboard.app import create_app
from dashboard.auth import safe_next
from dashboard.settings import Settings
from dashboard.state import StateError, ViewState, parse_search, parse_state
from data.schema import DIMENSIONS

#: Requests sent, per test area (printed by test_zz_summary).
SENT: collections.Counter[str] = collections.Counter()
#: Status codes seen (printed too: the fuzzers must reach the 200 paths, not only the 400 ones).
STATUSES: collections.defaultdict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


#: ``CTIP_FUZZ_SCALE=10`` runs ten times the examples (a deeper run, e.g. nightly); 1 stays under a minute.
SCALE = float(os.environ.get("CTIP_FUZZ_SCALE", "1"))


def fuzz(examples: int) -> settings:
    """The fuzz settings with ``examples`` examples (times CTIP_FUZZ_SCALE)."""
    return settings(FUZZ, max_examples=max(1, round(examples * SCALE)))


TRACEBACK = "Traceback (most recent call last)"
PASSWORD = "correct horse battery"
CSRF = "c" * 43

# -- hostile values ------------------------------------------------------------------------------------
XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "'><svg/onload=alert(1)>", "</title><b>x")
NASTY = (
    *XSS,
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "/etc/passwd\x00.json",
    "' OR 1=1 --",
    "1; DROP TABLE observations; --",
    '" OR ""="',
    "\x00",
    "a\x00b",
    "\r\nSet-Cookie: x=1",
    "\x1b[31mred",
    "\x7f\x08\x0b\x0c",
    "\u202egnp.exe",
    "\ufeff",
    "\u200b",
    "ជនរងគ្រោះ",
    "ភ្នំពេញ,កំពត",
    "%00",
    "%zz",
    "%",
    "%%41",
    "%u0041",
    "%C0%AE%C0%AE%2F",
    "&",
    "=",
    "?",
    "#",
    ";",
    "{{7*7}}",
    "${7*7}",
    "__proto__",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "1e308",
    "-1",
    "0",
    "-0",
    "1e-320",
    "9" * 400,
    "0x10",
    "1_000",
    "١٢",
    "𝟏𝟐",
    "٢٠٢٤-٠١",
    "2024-13",
    "2024-00",
    "0000-01",
    "9999-12",
    "1899-12",
    "2024-1",
    " 2024-01 ",
    "2024-01\n",
    "",
    " ",
    ",",
    ",,,",
    "null",
    "None",
    "[]",
    "{}",
    "true",
    "hazard:1e308",
    "hazard:1e308,vulnerability:1e308,coping:1e308",
    "victims_per_100k:1e308,departures_per_1000:1e308",
    "hazard:1e-320,vulnerability:0,coping:0",
    "hazard:" + "9" * 300,
    "hazard:1,hazard:2",
    "hazard:nan",
    "hazard:-0",
    "hazard:",
    ":1",
)
LONG = ("A" * 10_000, "<" * 5_000, "🙂" * 3_000, "ក" * 10_000, "%" * 10_000, "01," * 3_000)
UNKNOWN_NAMES = (
    "INDICATOR",
    "Indicator",
    " indicator",
    "indicator ",
    "indicator[]",
    "indicator\x00",
    "format\n",
    "__proto__",
    "constructor",
    "<script>alert(1)</script>",
    "ជនរងគ្រោះ",
    "",
    "x" * 2_000,
)

text_any = st.text(max_size=60)
text_khmer = st.text(st.characters(min_codepoint=0x1780, max_codepoint=0x17FF), min_size=1, max_size=30)
text_control = st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=10)
text_markup = st.lists(st.sampled_from(["<", ">", '"', "'", "&", "/", "script", "img", "=", " ", "a"]), min_size=1,
                       max_size=12).map("".join)
long_text = st.sampled_from(LONG) | st.tuples(st.text(min_size=1, max_size=5), st.integers(500, 4_000)).map(
    lambda t: (t[0] * t[1])[:4_000]  # about what fits in a request line (gunicorn: 4094 bytes)
)
hostile = st.one_of(
    st.sampled_from(NASTY), text_any, text_khmer, text_control, text_markup, long_text,
    st.lists(st.sampled_from(NASTY), min_size=2, max_size=4).map(",".join),
)

MUTATIONS = (
    str.upper,
    str.title,
    lambda v: f" {v} ",
    lambda v: v + ",",
    lambda v: "," + v,
    lambda v: f"{v},{v}",
    lambda v: v[:-1],
    lambda v: v[1:],
    lambda v: v + "x",
    lambda v: v + "\x00",
    lambda v: v + "\u200b",
    lambda v: v + XSS[0],
    lambda v: XSS[1] + v,
    lambda v: quote(v),
    lambda v: quote(quote(v)),
    lambda v: v.replace("-", "/"),
    lambda v: v.replace("_", "-"),
    lambda v: v.replace("0", "٠").replace("1", "١").replace("2", "٢"),
    lambda v: "-" + v,
    lambda v: v * 50,
    lambda v: v + "' OR 1=1 --",
    lambda v: re.sub(r"[0-9]+(\.[0-9]+)?", "1e308", v),  # numbers at the edge of float
    lambda v: re.sub(r"[0-9]+(\.[0-9]+)?", "9" * 300, v),
    lambda v: re.sub(r"[0-9]+(\.[0-9]+)?", "1e-320", v),
    lambda v: re.sub(r"[0-9]+", "-1", v),
)


def _mutated(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(valid, st.sampled_from(MUTATIONS)).map(lambda t: t[1](t[0]))


EDGE_NUMBERS = ("1e308", "9" * 300, "1.7976931348623157e308", "1e-320", "5e-324", "0", "-1", "1e309", "nan", "inf",
                "00000000001", "2147483648", "-9223372036854775809", "1" * 5_000)
_MONTH_EXAMPLE = re.compile(r"\d{4}-\d{2}")


def valid_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """Values the schema allows (what a well-behaved client sends)."""
    if "enum" in schema:
        return st.sampled_from([str(v) for v in schema["enum"] if v is not None])
    if schema.get("type") == "integer":
        return st.integers(schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)).map(str)
    examples = [str(x) for x in schema.get("examples", [])]
    options = [st.sampled_from(examples)] if examples else []
    if examples and all(_MONTH_EXAMPLE.fullmatch(x) for x in examples):  # months near the data, not year 0000
        options.append(st.dates(dt.date(1990, 1, 1), dt.date(2110, 12, 31)).map(lambda d: f"{d:%Y-%m}"))
    if "pattern" in schema:
        options.append(st.from_regex(schema["pattern"], fullmatch=True).map(_first_of_each_key))
    return st.one_of(*options) if options else st.just("x")


def _first_of_each_key(value: str) -> str:
    """``a:1,a:2`` -> ``a:1``: a list pattern allows a key twice, the server (rightly) does not."""
    if ":" not in value:
        return value
    items = {}
    for item in value.split(","):
        items.setdefault(item.partition(":")[0], item)
    return ",".join(items.values())


_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {}


def _cached(key: Any, build: Any) -> st.SearchStrategy[Any]:
    """Strategies are built once per schema (from_regex is costly to build, cheap to draw from)."""
    key = json.dumps(key, sort_keys=True)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = build()
    return _STRATEGIES[key]


def bad_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """Near-valid mutations, numbers at the edges, hostile text."""
    return _cached(["bad", schema], lambda: _bad_value(schema))


def _bad_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    valid = valid_value(schema)
    options = [_mutated(valid), hostile]
    if schema.get("type") == "integer":
        lo, hi = schema.get("minimum", 0), schema.get("maximum", 100)
        options.append(st.sampled_from([lo - 1, hi + 1, -(2**63), 2**63, 10**30, 0, -1]).map(str))
        options.append(st.integers(lo - 1_000, hi + 1_000).map(str))
        options.append(st.floats(allow_nan=True, allow_infinity=True).map(str))
    if schema.get("type") == "integer" or "pattern" in schema:  # each number in a valid value, pushed to an edge
        options.append(st.tuples(valid, st.sampled_from(EDGE_NUMBERS)).map(
            lambda t: re.sub(r"[0-9]+(\.[0-9]+)?", t[1], t[0], count=1)))
    return st.one_of(*options)


def fuzz_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """Valid, near-valid and hostile values for one parameter."""
    return _cached(["value", schema], lambda: st.one_of(valid_value(schema), bad_value(schema)))


def query_pairs(params: list[dict[str, Any]]) -> st.SearchStrategy[tuple[str, list[tuple[str, str]]]]:
    """Query parameters in one of three modes: all valid (reaches the deep paths), valid but one bad value
    (each error path on its own), or chaos (any values, parameters missing, repeated, unknown)."""
    return _cached(["pairs", params], lambda: _query_pairs(params))


def _query_pairs(params: list[dict[str, Any]]) -> st.SearchStrategy[tuple[str, list[tuple[str, str]]]]:
    query_params = [p for p in params if p.get("in") == "query"]
    required = [p for p in query_params if p.get("required")]
    optional = [p for p in query_params if not p.get("required")]
    declared = [st.tuples(st.just(p["name"]), fuzz_value(p["schema"])) for p in query_params]
    unknown = st.tuples(st.sampled_from(UNKNOWN_NAMES) | st.text(min_size=1, max_size=15), hostile | text_any)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
        mode = draw(st.sampled_from(["valid", "valid", "one_bad", "chaos"]), label="mode")
        pairs: list[tuple[str, str]] = []
        if mode != "chaos":
            chosen = required + (draw(st.lists(st.sampled_from(optional), max_size=4, unique_by=lambda p: p["name"]))
                                 if optional else [])
            pairs = [(p["name"], draw(valid_value(p["schema"]))) for p in chosen]
            if mode == "one_bad" and query_params:
                p = draw(st.sampled_from(query_params))
                pairs = [pair for pair in pairs if pair[0] != p["name"]] + [(p["name"], draw(bad_value(p["schema"])))]
            return mode, draw(st.permutations(pairs))
        for p in required:
            if draw(st.integers(0, 9)):  # 1 in 10 leaves a required parameter out
                pairs.append((p["name"], draw(fuzz_value(p["schema"]))))
        if declared:
            pairs += draw(st.lists(st.one_of(*declared), max_size=6))
        if draw(st.integers(0, 2)) == 0:
            pairs += draw(st.lists(unknown, min_size=1, max_size=2))
        if pairs and draw(st.integers(0, 4)) == 0:  # repeat one parameter
            pairs.append(pairs[draw(st.integers(0, len(pairs) - 1))])
        return mode, draw(st.permutations(pairs))

    return build()


RAW_JUNK = ("%", "%z", "%zz", "%%", "%u0041", "%ff%fe", "%C0%80", "%E0%A4", "&&&", "=", "==", ";", "a=1;b=2", "+",
            "%2B", "%26", "%3D", "%00", "a%00=b", "%0d%0a", "?", "#frag")


@st.composite
def query_string(
    draw: st.DrawFn, params: list[dict[str, Any]], catalog: dict[str, dict[str, Any]] | None = None
) -> tuple[str, list[str]]:
    """A query string (properly encoded, or with raw percent-encoding junk mixed in) and the inputs in it.

    ``catalog`` (/api/v1/indicators by id) makes valid queries follow what the OpenAPI document cannot
    say: which breakdowns and filters an indicator allows.
    """
    mode, pairs = draw(query_pairs(params))
    if mode == "valid" and catalog:
        pairs = follow_catalog(pairs, catalog)
    inputs = [s for pair in pairs for s in pair]
    if mode == "valid" or draw(st.integers(0, 3)):
        return urlencode(pairs), inputs
    parts = [urlencode([pair]) for pair in pairs]
    junk = draw(st.lists(st.sampled_from(RAW_JUNK), min_size=1, max_size=3))
    parts += junk
    return "&".join(draw(st.permutations(parts))), inputs + junk


def follow_catalog(pairs: list[tuple[str, str]], catalog: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Drop the breakdown, filters and rate measure the chosen indicator does not allow."""
    record = catalog.get(dict(pairs).get("indicator", ""))
    if record is None:
        return pairs
    allowed = set(record["disaggregations"])
    rate_ok = bool(record["per_100k"]) and record["aggregation"] != "ratio"
    return [(name, value) for name, value in pairs
            if not (name in DIMENSIONS and name not in allowed)
            and not (name == "by" and value not in allowed)
            and not (name == "measure" and value == "rate" and not rate_ok)]


def header_safe(value: str) -> str:
    """A header value as raw bytes on the wire would decode (latin-1), without line breaks."""
    value = value.encode("utf-8").decode("latin-1")
    return re.sub(r"[\r\n\x00]", "", value)[:4_000]


# -- checks ------------------------------------------------------------------------------------------
def body_text(res) -> str:  # noqa: ANN001
    data = res.get_data()
    encoding = res.headers.get("Content-Encoding", "identity")
    if encoding == "gzip":
        data = gzip.decompress(data)
    elif encoding == "deflate":
        data = zlib.decompress(data)
    elif encoding == "br":
        import brotli  # Flask-Compress's own dependency

        data = brotli.decompress(data)
    elif encoding == "zstd":
        try:
            from compression import zstd  # Python 3.14
        except ImportError:
            from backports import zstd  # Flask-Compress's own dependency before 3.14

        data = zstd.decompress(data)
    else:
        assert encoding == "identity", f"unexpected Content-Encoding {encoding!r}"
    return data.decode("utf-8", "replace")


def _no_nan(token: str) -> None:
    raise AssertionError(f"JSON body holds {token}")


def check_common(res, text: str, area: str) -> None:  # noqa: ANN001
    """Rules for every response: no 5xx, no traceback, nosniff."""
    STATUSES[area][res.status_code] += 1
    assert res.status_code < 500, (res.status_code, text[:500])
    assert TRACEBACK not in text
    assert res.headers.get("X-Content-Type-Options") == "nosniff"
    assert res.headers.get("Content-Security-Policy")


def check_html_escaped(text: str, inputs: list[str], baseline: str) -> None:
    """No fuzzed input containing ``<`` appears verbatim (unless the page shows it anyway)."""
    for value in inputs:
        if "<" in value and value in text and value not in baseline:
            raise AssertionError(f"unescaped input {value[:80]!r} echoed in an HTML response")


def check_api(res, op: dict[str, Any], path: str, inputs: list[str]) -> None:  # noqa: ANN001
    """A response of a documented operation: declared status and content type; errors are JSON."""
    text = body_text(res)
    check_common(res, text, "api")
    declared = op["responses"]
    assert str(res.status_code) in declared, f"{path} answered undeclared status {res.status_code}: {text[:300]}"
    if res.status_code == 304:
        return
    assert res.mimetype in declared[str(res.status_code)].get("content", {}), (path, res.status_code, res.mimetype)
    if res.status_code >= 400:
        assert res.mimetype == "application/json"
        body = json.loads(text, parse_constant=_no_nan)
        assert isinstance(body.get("error"), str) and body["error"]
        if res.status_code == 400:
            assert isinstance(body.get("parameter"), str)
    elif res.mimetype in ("application/json", "application/geo+json"):
        json.loads(text, parse_constant=_no_nan)
    elif res.mimetype == "text/csv":
        assert res.headers["Content-Disposition"].startswith("attachment;")
    if res.mimetype == "text/html":  # never for the API, but keep the rule if that changes
        check_html_escaped(text, inputs, "")


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(demo_db: str):  # noqa: ANN201
    return create_app(Settings(database_url=demo_db, secret_key="f" * 48))


@pytest.fixture(scope="module")
def client(app):  # noqa: ANN001, ANN201
    return app.server.test_client()


@pytest.fixture(scope="module")
def openapi(client) -> dict[str, Any]:  # noqa: ANN001
    res = client.get("/api/v1/openapi.json")
    SENT["api"] += 1
    assert res.status_code == 200 and res.mimetype == "application/json"
    return res.get_json()


@pytest.fixture(scope="module")
def catalog(client) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    res = client.get("/api/v1/indicators")
    SENT["api"] += 1
    return {record["id"]: record for record in res.get_json()["indicators"]}


def _operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, item["get"]) for path, item in doc["paths"].items() if "get" in item]


# -- 1. the API, from its OpenAPI document ----------------------------------------------------------------
def test_openapi_document_lists_the_routes(openapi: dict[str, Any]) -> None:
    paths = {path for path, _ in _operations(openapi)}
    assert {"/healthz", "/api/v1/observations", "/api/v1/risk", "/api/v1/openapi.json"} <= paths
    for _, op in _operations(openapi):
        for param in op.get("parameters", []):
            valid_value(param["schema"])  # every declared schema yields a strategy


def _fuzz_operation(client, openapi: dict[str, Any], path: str, data: st.DataObject,  # noqa: ANN001
                    catalog: dict[str, dict[str, Any]] | None = None) -> None:
    op = dict(_operations(openapi))[path]
    params = op.get("parameters", [])
    qs, inputs = data.draw(query_string(params, catalog), label="query")
    headers: dict[str, str] = {}
    if data.draw(st.booleans(), label="gzip"):
        headers["Accept-Encoding"] = data.draw(st.sampled_from(["gzip", "gzip;q=0", "identity", "*", "br, gzip;q=0.5",
                                                                 "x" * 300]), label="accept-encoding")
    if data.draw(st.booleans(), label="accept"):
        headers["Accept"] = data.draw(st.sampled_from(["text/html", "application/json", "*/*", "text/csv;q=0.1", "<>"]))
    for param in params:
        if param.get("in") == "header" and data.draw(st.booleans(), label=param["name"]):
            etag = client.get(path).headers.get("ETag", '"x"')
            SENT["api"] += 1
            value = data.draw(st.sampled_from([etag, "*", f"W/{etag}", f"{etag[:-1]}:gzip\"", f'"{etag}", *', '"']) | hostile,
                              label=param["name"])
            headers[param["name"]] = header_safe(value)
    res = client.get(path, query_string=qs, headers=headers)
    SENT["api"] += 1
    check_api(res, op, path, inputs)


@fuzz(200)
@given(data=st.data())
def test_fuzz_observations(client, openapi, catalog, data) -> None:  # noqa: ANN001
    _fuzz_operation(client, openapi, "/api/v1/observations", data, catalog)


@fuzz(80)
@given(data=st.data())
def test_fuzz_risk(client, openapi, data) -> None:  # noqa: ANN001
    _fuzz_operation(client, openapi, "/api/v1/risk", data)


@fuzz(80)
@given(data=st.data())
def test_fuzz_other_api_routes(client, openapi, data) -> None:  # noqa: ANN001
    """The routes without query parameters still answer any query (and any If-None-Match) sanely."""
    others = sorted(p for p, _ in _operations(openapi) if p not in ("/api/v1/observations", "/api/v1/risk"))
    _fuzz_operation(client, openapi, data.draw(st.sampled_from(others), label="path"), data)


@fuzz(60)
@given(data=st.data())
def test_fuzz_other_methods_and_unknown_paths(client, openapi, data) -> None:  # noqa: ANN001
    """Methods the API does not declare, and paths it does not have: never a 500, nothing echoed raw.

    (Today a POST to an API route is Flask's HTML 405 page, and an unknown /api/ path is the dashboard
    page — Dash serves every unknown path — neither echoes the request.)"""
    paths = [p for p, _ in _operations(openapi)]
    if data.draw(st.booleans(), label="unknown path"):
        segment = data.draw(hostile.filter(bool), label="segment")
        path = data.draw(st.sampled_from(["/api/v1/", "/api/", "/api/v1/risk/", "/"]), label="prefix") + quote(segment)
        method, inputs = "GET", [segment]
    else:
        path = data.draw(st.sampled_from(paths), label="path")
        method = data.draw(st.sampled_from(["POST", "PUT", "DELETE", "PATCH"]), label="method")
        inputs = [data.draw(hostile, label="body")]
    res = client.open(path, method=method, data=inputs[-1].encode() if method != "GET" else None,
                      headers={"Accept": "text/html"})
    SENT["api"] += 1
    text = body_text(res)
    check_common(res, text, "api")
    if res.mimetype == "text/html":
        check_html_escaped(text, inputs, index_baseline_text(client))


_INDEX: list[str] = []


def index_baseline_text(client) -> str:  # noqa: ANN001
    """The dashboard page and the 405 page as served for harmless requests."""
    if not _INDEX:
        _INDEX.append(body_text(client.get("/")) + body_text(client.post("/healthz")))
        SENT["api"] += 2
    return _INDEX[0]


def base_value(schema: dict[str, Any]) -> str | None:
    """One fixed valid value of a parameter holding a number (None when it holds none)."""
    if "enum" in schema:
        value = str(schema["enum"][0])
    elif schema.get("type") == "integer":
        value = str(schema.get("minimum", 1))
    elif schema.get("examples"):
        value = str(schema["examples"][0])
    elif "0-9" in schema.get("pattern", ""):
        try:
            value = find(st.from_regex(schema["pattern"], fullmatch=True), lambda v: re.search(r"[0-9]", v) is not None,
                         settings=settings(database=None, derandomize=True, max_examples=50, phases=[Phase.generate]))
        except NoSuchExample:
            return None
    else:
        return None
    return _first_of_each_key(value) if re.search(r"[0-9]", value) else None


def test_numbers_at_the_edges_for_every_numeric_parameter(client, openapi, catalog) -> None:  # noqa: ANN001
    """A sweep, not a sample: each parameter holding a number gets each edge number in an otherwise valid
    query (this is how ``weights=hazard:1e308`` was found to be a 500: the index arithmetic overflowed)."""
    for path, op in _operations(openapi):
        params = [p for p in op.get("parameters", []) if p.get("in") == "query"]
        required = [(p["name"], base_value(p["schema"]) or str(p["schema"]["enum"][0])) for p in params if p.get("required")]
        for param in params:
            base = base_value(param["schema"])
            if base is None:
                continue
            for edge in EDGE_NUMBERS:
                value = re.sub(r"[0-9]+(\.[0-9]+)?", edge, base, count=1)
                pairs = [pair for pair in required if pair[0] != param["name"]] + [(param["name"], value)]
                res = client.get(path, query_string=urlencode(pairs))
                SENT["api"] += 1
                check_api(res, op, path, [value])


@pytest.mark.parametrize("name", ["weights", "iweights"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_risk_weights_too_large_are_a_400(client, name, fmt) -> None:  # noqa: ANN001
    """Regression: a weight of 1e308 overflowed the index arithmetic (a 500 with warnings as errors, else
    silently null scores); weights are relative, so above 1,000,000 is refused."""
    key = "hazard" if name == "weights" else "victims_per_100k"
    res = client.get("/api/v1/risk", query_string={name: f"{key}:1e308", "format": fmt})
    SENT["api"] += 1
    assert res.status_code == 400 and res.get_json()["parameter"] == name
    assert "above the maximum" in res.get_json()["error"]
    res = client.get("/api/v1/risk", query_string={name: f"{key}:1000000", "format": fmt})
    SENT["api"] += 1
    assert res.status_code == 200


# -- 2. URL state --------------------------------------------------------------------------------------
STATE_PARAMS = ("view", "indicator", "provinces", "start", "end", "granularity", "by", "measure", "classes", "top",
                "min_flow", "weights", "iweights", "aggregation", "months", *DIMENSIONS)


@st.composite
def search_string(
    draw: st.DrawFn, openapi: dict[str, Any], catalog: dict[str, dict[str, Any]] | None = None
) -> tuple[str, list[str]]:
    """``location.search``: the observation parameters plus the risk ones, fuzzed; with or without ``?``."""
    ops = dict(_operations(openapi))
    params = [p for p in ops["/api/v1/observations"]["parameters"] + ops["/api/v1/risk"]["parameters"]
              if p["name"] in STATE_PARAMS]
    qs, inputs = draw(query_string(params, catalog))
    prefix = draw(st.sampled_from(["?", "", "??", "?&"]))
    return prefix + qs, inputs


mapping_values = st.one_of(hostile, st.lists(hostile, max_size=3), st.none(), st.integers(), st.booleans(),
                           st.lists(st.integers(), max_size=2))


@fuzz(200)
@given(params=st.dictionaries(st.sampled_from(STATE_PARAMS) | st.sampled_from(UNKNOWN_NAMES) | text_any,
                              mapping_values, max_size=8))
def test_parse_state_raises_only_state_error(params: dict[str, Any]) -> None:
    try:
        state = parse_state(params)
    except StateError as exc:
        assert isinstance(exc.param, str)
    else:
        assert isinstance(state, ViewState)
        # What it encodes decodes to the same view (weights are written to 6 digits). A blank filter
        # (``sex=%20``) stays in ViewState.where as ``("sex", ())`` although Filters drops it, so compare
        # through filters().where.
        again = parse_state(parse_qs(state.to_query()[1:]))
        assert _normal(again) == _normal(state)


def _normal(state: ViewState) -> str:
    return state.with_(where=state.filters().where).to_query()


@fuzz(150)
@given(data=st.data())
def test_parse_search_never_raises_and_falls_back_to_the_default(openapi, catalog, data) -> None:  # noqa: ANN001
    search, _ = data.draw(search_string(openapi, catalog)) if data.draw(st.booleans()) else (data.draw(hostile), [])
    state = parse_search(search)
    assert isinstance(state, ViewState)
    try:
        parse_state(parse_qs(search.lstrip("?"), keep_blank_values=True))
    except StateError:
        assert state == ViewState()


@pytest.fixture(scope="module")
def index_baseline(client) -> str:  # noqa: ANN001
    return index_baseline_text(client)


@fuzz(60)
@given(data=st.data())
def test_fuzz_dashboard_page_query(client, openapi, catalog, index_baseline, data) -> None:  # noqa: ANN001
    """``/?<anything>`` is the dashboard page, unchanged: the query is read by the browser, never echoed."""
    search, inputs = data.draw(search_string(openapi, catalog))
    res = client.get("/", query_string=search.lstrip("?"), headers={"Accept": "text/html"})
    SENT["page"] += 1
    text = body_text(res)
    check_common(res, text, "page")
    assert res.status_code == 200 and res.mimetype == "text/html"
    check_html_escaped(text, inputs, index_baseline)
    for value in inputs:  # nothing of the query shows up on the page
        assert len(value) < 6 or value in index_baseline or value not in text, value[:80]


# -- the state-sync callback (/_dash-update-component) ---------------------------------------------------
def _decode_id(cid: Any) -> Any:
    return json.loads(cid) if isinstance(cid, str) and cid.startswith("{") else cid


def _split_output(output: str) -> list[tuple[Any, str]]:
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [(_decode_id(cid), prop) for cid, prop in (part.rsplit(".", 1) for part in parts)]


def _prop_key(cid: Any, prop: str) -> str:
    if isinstance(cid, dict):
        cid = json.dumps(cid, sort_keys=True, separators=(",", ":"))
    return f"{cid}.{prop}"


def _components(node: Any, found: list[dict]) -> list[dict]:
    if isinstance(node, list):
        for item in node:
            _components(item, found)
    elif isinstance(node, dict) and "props" in node and "type" in node:
        found.append(node)
        for value in node["props"].values():
            _components(value, found)
    return found


class Callbacks:
    """Builds the bodies the Dash renderer posts, from /_dash-dependencies and /_dash-layout."""

    def __init__(self, client) -> None:  # noqa: ANN001
        self.deps = client.get("/_dash-dependencies").get_json()
        layout = client.get("/_dash-layout").get_json()
        SENT["callback"] += 2
        components = _components(layout, [])
        self.layout_ids = [c["props"]["id"] for c in components if "id" in c["props"]]
        self.initial = {_prop_key(c["props"]["id"], p): v for c in components if "id" in c["props"]
                        for p, v in c["props"].items() if p != "children"}

    def dependency(self, output: str) -> dict:
        [dep] = [d for d in self.deps if output in [_prop_key(c, p) for c, p in _split_output(d["output"])]]
        return dep

    def body(self, dep: dict, values: dict[str, Any], changed: list[str]) -> str:
        values = {**self.initial, **values}

        def expand(cid: Any, prop: str, with_value: bool) -> Any:
            cid = _decode_id(cid)
            if isinstance(cid, dict) and any(isinstance(v, list) for v in cid.values()):
                return [expand(c, prop, with_value) for c in self.layout_ids
                        if isinstance(c, dict) and set(c) == set(cid)
                        and all(isinstance(v, list) or c[k] == v for k, v in cid.items())]
            entry = {"id": cid, "property": prop}
            if with_value:
                entry["value"] = values.get(_prop_key(cid, prop))
            return entry

        outputs = [expand(cid, prop, False) for cid, prop in _split_output(dep["output"])]
        return json.dumps({
            "output": dep["output"],
            "outputs": outputs if dep["output"].startswith("..") else outputs[0],
            "inputs": [expand(i["id"], i["property"], True) for i in dep["inputs"]],
            "changedPropIds": changed,
            "state": [expand(s["id"], s["property"], True) for s in dep["state"]],
        })


@pytest.fixture(scope="module")
def callbacks(client) -> Callbacks:  # noqa: ANN001
    return Callbacks(client)


def _post_callback(client, body: str):  # noqa: ANN001, ANN202
    res = client.post("/_dash-update-component", data=body, content_type="application/json")
    SENT["callback"] += 1
    text = body_text(res)
    check_common(res, text, "callback")
    assert res.status_code in (200, 204), (res.status_code, text[:500])
    if res.status_code == 200:
        assert res.mimetype == "application/json"
    return res, text


def test_state_callback_body_is_what_the_renderer_sends(client, callbacks) -> None:  # noqa: ANN001
    dep = callbacks.dependency(f"{ids.STATE}.data")
    assert dep["inputs"][0] == {"id": ids.URL, "property": "search"}
    res, _ = _post_callback(client, callbacks.body(dep, {f"{ids.URL}.search": "?view=victims&start=2024-01"},
                                                   [f"{ids.URL}.search"]))
    assert res.get_json()["response"][ids.STATE]["data"] == "?view=victims&indicator=victims_identified&start=2024-01"


@fuzz(100)
@given(data=st.data())
def test_fuzz_state_sync_callback(client, openapi, catalog, callbacks, data) -> None:  # noqa: ANN001
    """A fuzzed ``location.search`` gives a valid state; an invalid one the default view, never a 500."""
    search, inputs = data.draw(search_string(openapi, catalog)) if data.draw(st.integers(0, 4)) else (data.draw(hostile), [])
    dep = callbacks.dependency(f"{ids.STATE}.data")
    res, text = _post_callback(client, callbacks.body(dep, {f"{ids.URL}.search": search}, [f"{ids.URL}.search"]))
    query = res.get_json()["response"][ids.STATE]["data"]
    try:
        expected = parse_state(parse_qs(search.lstrip("?"), keep_blank_values=True))
    except StateError:
        expected = ViewState()  # invalid URL: the default view
    assert query == expected.to_query()
    for value in inputs:  # the query is normalised, never passed through
        assert "<" not in value or value not in query


@fuzz(30)
@given(data=st.data())
def test_fuzz_view_callbacks_with_a_raw_state(client, openapi, catalog, callbacks, data) -> None:  # noqa: ANN001
    """The view callbacks read ``app-state-store.data``; a client may post any text there."""
    outputs = [f"{ids.MAP}.figure", f"{ids.SERIES}.figure", f"{ids.KPI_ROW}.children", f"{ids.RANK_TABLE}.children",
               f"{ids.RISK_TABLE}.children"]
    dep = callbacks.dependency(data.draw(st.sampled_from(outputs), label="output"))
    search, _ = data.draw(search_string(openapi, catalog)) if data.draw(st.booleans()) else (data.draw(hostile), [])
    _post_callback(client, callbacks.body(dep, {f"{ids.STATE}.data": search}, [f"{ids.STATE}.data"]))


# -- 3. sign-in ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def auth_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An app with one user (cheap argon2 parameters: the same code path, a fraction of the CPU)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(users, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        mp.setattr(users, "_dummy_hash", None)
        path = tmp_path_factory.mktemp("fuzz-auth") / "auth.duckdb"
        app = create_app(Settings(database_url=f"duckdb:///{path}", secret_key="a" * 48))
        users.add_user(app.server.config["CTIP_SERVICES"].store(), "alice", PASSWORD, "partner")
        yield app.server.test_client()


login_text = st.one_of(hostile, st.sampled_from(["alice", "ALICE", " alice ", "Alice\x00", "alice' --"]))


@st.composite
def login_form(draw: st.DrawFn) -> tuple[MultiDict, str]:
    csrf_mode = draw(st.sampled_from(["missing", "empty", "wrong", "right", "right", "right", "padded", "huge"]))
    fields: list[tuple[str, str]] = []
    if draw(st.integers(0, 9)):
        fields.append(("username", draw(login_text)))
    if draw(st.integers(0, 9)):
        fields.append(("password", draw(st.one_of(hostile, st.just(PASSWORD), st.just("x" * 2_000)))))
    if draw(st.booleans()):
        fields.append(("next", draw(st.one_of(hostile, st.sampled_from(
            ["/", "//evil.example", "https://evil.example/", "/\\evil", "/?view=victims", "javascript:alert(1)",
             '/"><script>alert(1)</script>'])))))
    csrf = {"missing": None, "empty": "", "wrong": CSRF[:-1] + "d", "right": CSRF, "padded": f" {CSRF} ",
            "huge": CSRF * 300}[csrf_mode]
    if csrf is not None:
        fields.append(("csrf_token", csrf))
    fields += draw(st.lists(st.tuples(st.sampled_from(UNKNOWN_NAMES) | text_any, hostile), max_size=2))
    if fields and draw(st.integers(0, 9)) == 0:
        fields.append(fields[draw(st.integers(0, len(fields) - 1))])  # a repeated field
    return MultiDict(draw(st.permutations(fields))), csrf_mode


def _login_baseline(client) -> str:  # noqa: ANN001
    """The sign-in pages as they look for harmless input (markup a fuzzed value may happen to match)."""
    pages = [client.get("/auth/login")]
    pages.append(client.post("/auth/login", data={}))
    with client.session_transaction() as sess:
        sess["csrf"] = CSRF
    pages.append(client.post("/auth/login", data={"csrf_token": CSRF}, environ_base={"REMOTE_ADDR": "192.0.2.1"}))
    SENT["auth"] += len(pages)
    return "\n".join(body_text(page) for page in pages)


@pytest.fixture(scope="module")
def auth_baseline(auth_client) -> str:  # noqa: ANN001
    return _login_baseline(auth_client)


@pytest.fixture(scope="module")
def demo_login_baseline(client) -> str:  # noqa: ANN001
    return _login_baseline(client)


def _post_login(client, form: MultiDict, *, session: bool, ip: str):  # noqa: ANN001, ANN202
    client.delete_cookie("ctip_session")
    if session:
        with client.session_transaction() as sess:
            sess["csrf"] = CSRF
    res = client.post("/auth/login", data=form, environ_base={"REMOTE_ADDR": ip})
    SENT["auth"] += 1
    text = body_text(res)
    check_common(res, text, "auth")
    return res, text


@fuzz(150)
@given(built=login_form(), session=st.integers(0, 9).map(bool), ip=st.ip_addresses(v=4).map(str))
def test_fuzz_sign_in(auth_client, auth_baseline, built, session, ip) -> None:  # noqa: ANN001
    form, csrf_mode = built
    res, text = _post_login(auth_client, form, session=session, ip=ip)
    if not session or csrf_mode != "right":
        assert res.status_code == 400 and "Form expired" in text, res.status_code
        return
    username = form.get("username", "").strip().lower()[:100]
    password = form.get("password", "")
    if res.status_code == 303:
        assert (username, password) == ("alice", PASSWORD)
        assert res.headers["Location"] == safe_next(form.get("next", "/"))
        return
    assert res.status_code in (401, 429), res.status_code
    assert res.mimetype == "text/html"
    if res.status_code == 429:
        assert int(res.headers["Retry-After"]) > 0
    if username:
        assert str(escape(username)) in text  # echoed into the form, escaped
    for value in [username, *form.values()]:
        if re.search(r"[<>\"]", value) and value not in auth_baseline:
            assert value not in text, value[:80]


@fuzz(30)
@given(built=login_form(), ip=st.ip_addresses(v=4).map(str))
def test_fuzz_sign_in_without_users(client, demo_login_baseline, built, ip) -> None:  # noqa: ANN001
    """With no users configured (the demo app), a sign-in is refused: 400 (CSRF) or 403."""
    form, csrf_mode = built
    res, text = _post_login(client, form, session=True, ip=ip)
    assert res.status_code == (403 if csrf_mode == "right" else 400)
    check_html_escaped(text, list(form.values()), demo_login_baseline)


@fuzz(40)
@given(next_url=st.one_of(hostile, st.sampled_from(['/"><script>alert(1)</script>', "/?a=<b>", "//x"])),
       token=st.one_of(hostile, st.just("ctip_0000000000000000_" + "A" * 43)))
def test_fuzz_login_page_and_identity(auth_client, auth_baseline, next_url, token) -> None:  # noqa: ANN001
    res = auth_client.get("/auth/login", query_string={"next": next_url})
    SENT["auth"] += 1
    text = body_text(res)
    check_common(res, text, "auth")
    assert res.status_code == 200 and res.mimetype == "text/html"
    assert f'name="next" value="{escape(safe_next(next_url))}"' in text
    check_html_escaped(text, [next_url], auth_baseline)
    res = auth_client.get("/auth/me", headers={"Authorization": header_safe(f"Bearer {token}")})
    SENT["auth"] += 1
    check_common(res, body_text(res), "auth")
    assert res.status_code == 200 and res.get_json()["user"] is None


def test_sign_in_with_huge_fields_is_refused(auth_client) -> None:  # noqa: ANN001
    """100 kB and 1 MB fields: a wrong sign-in (the name echoed escaped, cut to 100 characters), never a 500."""
    for size in (100_000, 1_000_000):
        form = MultiDict({"username": "<b>" + "u" * size, "password": "p" * size, "csrf_token": CSRF})
        res, text = _post_login(auth_client, form, session=True, ip=f"10.0.0.{size % 251}")
        assert res.status_code in (401, 413), res.status_code  # 413 if a form size limit is configured
        assert "<b>u" not in text and ("&lt;b&gt;" + "u" * 97) in text


# -- summary --------------------------------------------------------------------------------------------
def test_zz_summary(capsys: pytest.CaptureFixture[str]) -> None:
    total = sum(SENT.values())
    with capsys.disabled():
        areas = ", ".join(f"{k} {v}" for k, v in sorted(SENT.items()))
        codes = "; ".join(f"{area} " + ", ".join(f"{k}×{v}" for k, v in sorted(counts.items()))
                          for area, counts in sorted(STATUSES.items()))
        print(f"\nfuzz: {total} requests sent ({areas}); statuses: {codes}")
    assert total > 0


json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | hostile,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile, inner, max_size=3), max_leaves=6)


@fuzz(120)
@given(data=st.data())
def test_fuzz_every_callback_with_values_of_any_type(client, callbacks, data) -> None:  # noqa: ANN001
    """A crafted request can put any JSON value in any input of any callback (a number for the URL's
    search, a dict for a dropdown): the answer is a normal response or a 4xx, never a 500."""
    dep = data.draw(st.sampled_from(callbacks.deps), label="callback")
    names = [_prop_key(i["id"], i["property"]) for i in [*dep["inputs"], *dep["state"]] if not isinstance(i["id"], dict)]
    if not names:
        return
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True), label="inputs")
    values = {name: data.draw(json_values, label=name) for name in chosen}
    res = client.post("/_dash-update-component", data=callbacks.body(dep, values, chosen[:1]), content_type="application/json")
    SENT["callback"] += 1
    text = body_text(res)
    check_common(res, text, "callback")
    assert res.status_code < 500, (dep["output"], values, res.status_code, text[:300])
