"""The JSON/CSV API beside the dashboard: health, catalog, boundary layers, observations, risk index.

``register_api(server, get_store)`` adds one Blueprint to the Flask server under Dash. Filter parameters
are decoded by :func:`dashboard.state.parse_state`, the parser the dashboard's URLs use, and rows come
from :func:`data.queries.aggregate`, the core of the dashboard's map, table and series, so the API and
the screen give the same numbers. A bad parameter is a 400 naming it, never a 500.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import importlib.metadata
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import flask
import pandas as pd

from dashboard.access import must_suppress, protect_risk_components, viewer_is_partner
from dashboard.exports import SYNTHETIC_NOTICE, is_synthetic, neutralise_text, period_label, view_window
from dashboard.state import CLASSIFICATIONS, MEASURES, VIEWS, StateError, ViewState, parse_state
from dashboard.viewdata import ViewData, direct
from data.catalog import DOMAINS, THEMES, catalog_records, indicators
from data.catalog import indicator as get_indicator
from data.gazetteer import PROVINCE_CODES, province_name
from data.maintenance import has_demo
from data.privacy import suppression_k
from data.queries import QueryError, aggregate
from data.release import release_for
from data.risk import AGGREGATIONS as RISK_AGGREGATIONS
from data.risk import (
    DIMENSION_KEYS,
    MAX_MONTHS,
    default_period_end,
    load_risk_config,
    methodology,
    parse_weights,
    resolve_dimension_weights,
    resolve_indicator_weights,
    risk_table,
)
from data.schema import ALLOWED_VALUES, DIMENSIONS, GRANULARITIES, NATIONAL, SYNTHETIC_SOURCE
from data.store import Store
from geo.boundaries import ATTRIBUTION, SHIPPED_DIR, context_geojson, provinces_geojson

API_PREFIX = "/api/v1"
FORMATS = ("json", "csv")
GEOJSON_CACHE_CONTROL = "public, max-age=86400"
_CREDENTIALS = re.compile(r"(://)[^@/\s]+@")


def register_api(server: flask.Flask, get_store: Callable[[], Store]) -> None:
    """Register the API routes on ``server``; ``get_store`` returns the store to read (called per request)."""
    bp = flask.Blueprint("ctip_api", __name__)

    @bp.get("/healthz")
    def healthz() -> flask.Response:
        """Store -> liveness and contents summary (503 when the store fails)."""
        try:
            store = get_store()
            rows = int(store.scalar("SELECT COUNT(*) FROM observations") or 0)
            demo = has_demo(store)
            backend = store.backend
        except Exception as exc:  # noqa: BLE001 — any store failure means "not healthy"
            server.logger.warning("health check failed: %s", _redact(str(exc)))
            return _json({"status": "error", "detail": _redact(f"{type(exc).__name__}: {exc}")}, 503)
        return _json(
            {"status": "ok", "backend": backend, "rows": rows, "demo_loaded": demo, "version": _version()}
        )

    @bp.get(f"{API_PREFIX}/indicators")
    def api_indicators() -> flask.Response:
        """Catalog -> indicator records with the domain and theme vocabularies."""
        return _json(
            {
                "domains": list(DOMAINS),
                "themes": list(THEMES),
                "dimensions": list(DIMENSIONS),
                "allowed_values": {k: list(v) for k, v in ALLOWED_VALUES.items()},
                "indicators": catalog_records(),
            }
        )

    @bp.get(f"{API_PREFIX}/provinces.geojson")
    def api_provinces() -> flask.Response:
        """Shipped province layer -> its bytes, cacheable (ETag, 304)."""
        return _layer_response("provinces.geojson")

    @bp.get(f"{API_PREFIX}/context.geojson")
    def api_context() -> flask.Response:
        """Shipped context countries layer -> its bytes, cacheable (ETag, 304)."""
        return _layer_response("context.geojson")

    @bp.get(f"{API_PREFIX}/observations")
    def api_observations() -> flask.Response:
        """Query parameters -> parse_state -> aggregate by province and period -> JSON or CSV rows."""
        try:
            return _observations(get_store(), flask.request.args.to_dict(flat=False))
        except StateError as exc:
            return _bad_request(str(exc), exc.param)
        except QueryError as exc:
            return _bad_request(str(exc), _guess_parameter(str(exc)))
        except ValueError as exc:
            return _bad_request(str(exc), _guess_parameter(str(exc)))
        except Exception:  # noqa: BLE001 — never leak a stack trace to a client
            server.logger.exception("observations request failed: %s", flask.request.query_string[:500])
            return _json({"error": "internal error; the server log has the details"}, 500)

    @bp.get(f"{API_PREFIX}/risk")
    def api_risk() -> flask.Response:
        """Query parameters -> risk_table (index, dimensions, rank range) -> JSON or CSV rows."""
        try:
            return _risk(get_store(), flask.request.args.to_dict(flat=False))
        except StateError as exc:
            return _bad_request(str(exc), exc.param)
        except Exception:  # noqa: BLE001 — never leak a stack trace to a client
            server.logger.exception("risk request failed: %s", flask.request.query_string[:500])
            return _json({"error": "internal error; the server log has the details"}, 500)

    @bp.get(f"{API_PREFIX}/risk/methodology")
    def api_risk_methodology() -> flask.Response:
        """Risk configuration -> methodology (the same dict the Methodology page renders)."""
        return _json(methodology(load_risk_config()))

    @bp.get(f"{API_PREFIX}/openapi.json")
    def api_openapi() -> flask.Response:
        """Catalog -> OpenAPI 3.1 description of these routes."""
        return _json(openapi_document())

    @bp.get("/api/<path:rest>")
    def api_not_found(rest: str) -> flask.Response:
        """Unknown API paths get a JSON 404 (not the dashboard page that Dash serves for other paths)."""
        return _json({"error": "no such API route; see /api/v1/openapi.json", "parameter": None}, 404)

    @server.errorhandler(405)
    def method_not_allowed(exc):  # noqa: ANN001, ANN202
        """A wrong method on an API route is a JSON error too."""
        if flask.request.path.startswith("/api/"):
            return _json({"error": f"{flask.request.method} is not allowed here; the API is read-only (GET)",
                          "parameter": None}, 405)
        return exc

    server.register_blueprint(bp)


# -- observations -----------------------------------------------------------------------------------
def _observations(store: Store, params: dict[str, list[str]]) -> flask.Response:
    if not any(params.get("indicator", [])):
        raise StateError("indicator", "required; see /api/v1/indicators for the ids")
    fmt_values = params.get("format") or ["json"]
    if len(fmt_values) > 1:
        raise StateError("format", "given more than once")
    fmt = fmt_values[0] or "json"
    if fmt not in FORMATS:
        raise StateError("format", f"{fmt!r}; use json or csv")
    state = parse_state(params, known_extra=("format",))
    rows = observation_rows(store, state)
    ind = get_indicator(state.indicator)
    synthetic = is_synthetic(store, state.indicator)
    notice = SYNTHETIC_NOTICE if synthetic else None
    if fmt == "csv":
        start, end = view_window(store, state)
        window = "-".join(f"{d:%Y-%m}" if d else "all" for d in (start, end))
        body = _csv(rows, state, notice)
        response = flask.Response(body, mimetype="text/csv")
        response.headers["Content-Disposition"] = f"attachment; filename=ctip-{state.indicator}-{window}.csv"
        return response
    return _json(
        {
            "indicator": {
                "id": ind.id,
                "name_en": ind.name_en,
                "name_km": ind.name_km,
                "unit": ind.unit,
                "aggregation": ind.aggregation,
            },
            "filters": state.to_params(),
            "synthetic": synthetic,
            "notice": notice,
            "source": ind.source,
            "rows": rows,
        }
    )


def observation_rows(store: Store, state: ViewState) -> list[dict[str, Any]]:
    """State -> aggregated rows ``province, province_name, period, [by], value`` sorted by those keys."""
    by = [state.by] if state.by else []
    dims = ["province", "period", *by]
    frame = protected_cells(store, state, dims)
    frame = frame.sort_values(dims, kind="stable")
    rows = []
    for rec in frame.to_dict("records"):
        code = rec["province"]
        row: dict[str, Any] = {
            "province": code,
            "province_name": province_name(code, "en")
            if code in PROVINCE_CODES or code == NATIONAL
            else code,
            "period": period_label(rec["period"], state.granularity),
        }
        for dim in by:
            row[dim] = rec[dim]
        row["value"] = _number(rec["value"])
        row["suppressed"] = bool(rec["suppressed"])
        rows.append(row)
    return rows


def protected_cells(store: Store, state: ViewState, dims: list[str]) -> pd.DataFrame:
    """Aggregated cells for the state, with small counts of sensitive indicators suppressed for viewers
    without the partner role. Every cell is read from the indicator's one protected release
    (:mod:`data.release`), so every request and every screen sees the same suppression pattern; a table
    the release does not publish raises :class:`data.release.NotPublished` (a 400 naming the fix)."""
    filters = state.filters()
    if not must_suppress(state.indicator):
        frame = aggregate(store, filters, dims)
        frame["suppressed"] = False
        return frame
    if get_indicator(state.indicator).aggregation == "ratio":
        frame = aggregate(store, filters, dims)
        view = ViewData(direct(store), filters, protect=True)
        per_period = "period" in dims
        hidden = view._ratio_mask(frame, [d for d in dims if d != "period"], provinces=filters.provinces, per_period=per_period)
        frame["suppressed"] = hidden
        frame.loc[hidden, ["value", "numerator", "denominator"]] = float("nan")
        return frame
    release = release_for(store, filters.with_(provinces=()))
    where = dict(filters.where)
    if filters.provinces:
        where["province"] = filters.provinces
    cols = [d for d in dims if d != "period"]
    cells = release.cells(cols, where=where, start=filters.start, end=filters.end,
                          granularity=filters.granularity if "period" in dims else None)
    if "period" in cells:
        cells["period"] = pd.to_datetime(cells["period"])
    # Rows are the exact query's rows (same keys, same order), with the release's suppression.
    exact = aggregate(store, filters, dims)
    if "period" in exact:
        exact["period"] = pd.to_datetime(exact["period"])
    merged = exact[dims].merge(cells, on=dims, how="left")
    merged["suppressed"] = merged["suppressed"].fillna(False).astype(bool)
    return merged


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def _csv(rows: list[dict[str, Any]], state: ViewState, notice: str | None) -> str:
    header = ["province", "province_name", "period", *([state.by] if state.by else []), "value", "suppressed"]
    k = suppression_k()
    if notice:
        header.append("notice")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        row = {**row, "value": f"<{k}" if row["suppressed"] else row["value"], "suppressed": str(row["suppressed"]).lower()}
        cells = [neutralise_text(row[c]) if c not in ("value", "suppressed") else row[c] for c in header if c != "notice"]
        cells = ["" if c is None else c for c in cells]
        writer.writerow([*cells, *([notice] if notice else [])])
    return out.getvalue()


def _guess_parameter(message: str) -> str:
    """Name the parameter a data-layer message is about (parse_state catches almost all earlier)."""
    if "broken down" in message:
        return "by"
    match = re.search(r"filtered by (\w+)", message)
    if match:
        return match.group(1)
    if "province" in message:
        return "provinces"
    if "start" in message or "end" in message:
        return "start"
    if "granularity" in message:
        return "granularity"
    return "indicator"


# -- risk index -------------------------------------------------------------------------------------
RISK_PARAMS = ("period_end", "months", "weights", "iweights", "aggregation", "format")
RISK_ROW_COLUMNS = ("province_code", "province_name", "score", "class", "rank", "rank_p05", "rank_p95",
                    *DIMENSION_KEYS, "reliability")
_RISK_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_RISK_MONTHS = re.compile(r"^\d{1,3}$")
#: Weights are relative, so nothing needs more; far larger ones (1e308) overflow the index arithmetic.
MAX_RISK_WEIGHT = 1_000_000.0


def _capped(weights: dict[str, float]) -> dict[str, float]:
    """``weights`` when none is above MAX_RISK_WEIGHT (ValueError otherwise)."""
    for key, value in weights.items():
        if value > MAX_RISK_WEIGHT:
            raise ValueError(f"weight of {key!r} is above the maximum {MAX_RISK_WEIGHT:,.0f}")
    return weights


def _risk_params(store: Store, params: dict[str, list[str]]) -> dict[str, Any]:
    """Validate the /risk query parameters; a bad one raises StateError naming it."""
    for name, values in params.items():
        if name not in RISK_PARAMS:
            raise StateError(name, f"unknown parameter; expected {', '.join(RISK_PARAMS)}")
        if len(values) > 1:
            raise StateError(name, "given more than once")
    given = {name: values[0].strip() for name, values in params.items() if values and values[0].strip()}
    config = load_risk_config()
    fmt = given.get("format", "json")
    if fmt not in FORMATS:
        raise StateError("format", f"{fmt!r}; use json or csv")
    aggregation = given.get("aggregation", config.aggregation)
    if aggregation not in RISK_AGGREGATIONS:
        raise StateError("aggregation", f"{aggregation!r}; use {' or '.join(RISK_AGGREGATIONS)}")
    months = config.default_months
    if "months" in given:
        if not _RISK_MONTHS.match(given["months"]) or not 1 <= int(given["months"]) <= MAX_MONTHS:
            raise StateError("months", f"{given['months']!r}; use a whole number 1–{MAX_MONTHS}")
        months = int(given["months"])
    if "period_end" in given:
        match = _RISK_MONTH.match(given["period_end"])
        if not match or not 1900 <= int(match.group(1)) <= 2200:
            raise StateError("period_end", f"{given['period_end']!r}; use a month YYYY-MM")
        period_end = dt.date(int(match.group(1)), int(match.group(2)), 1)
    else:
        period_end = default_period_end(store, config) or dt.date.today().replace(day=1)
    try:
        weights = resolve_dimension_weights(config, _capped(parse_weights(given.get("weights"))))
    except ValueError as exc:
        raise StateError("weights", str(exc)) from None
    try:
        iweights = resolve_indicator_weights(config, _capped(parse_weights(given.get("iweights"))), weights)
    except ValueError as exc:
        raise StateError("iweights", str(exc)) from None
    return {"format": fmt, "aggregation": aggregation, "months": months, "period_end": period_end,
            "weights": weights, "iweights": iweights}


def _risk_synthetic(store: Store) -> bool:
    """Whether any synthetic row is loaded for an indicator the index reads (or a ratio's parts)."""
    ids: list[str] = []
    for src in load_risk_config().source_ids:
        ind = get_indicator(src)
        ids += [ind.numerator, ind.denominator] if ind.is_ratio else [src]  # type: ignore[list-item]
    if not ids:
        return False
    marks = ", ".join("?" for _ in ids)
    found = store.scalar(
        f"SELECT 1 FROM observations WHERE source = ? AND indicator IN ({marks}) LIMIT 1",
        [SYNTHETIC_SOURCE, *ids],
    )
    return found is not None


def risk_rows(scores: pd.DataFrame) -> list[dict[str, Any]]:
    """risk_table scores -> API rows (``NaN`` -> ``None``), highest risk first."""
    rows = []
    for rec in scores.to_dict("records"):
        row: dict[str, Any] = {
            "province_code": rec["province"],
            "province_name": province_name(rec["province"], "en"),
            "score": _number(rec["score"]),
            "class": rec["class"] if isinstance(rec["class"], str) else None,
        }
        for col in ("rank", "rank_p05", "rank_p95"):
            row[col] = None if pd.isna(rec[col]) else int(rec[col])
        for dim in DIMENSION_KEYS:
            row[dim] = _number(rec[dim])
        row["reliability"] = rec["reliability"]
        rows.append(row)
    return rows


def _risk(store: Store, params: dict[str, list[str]]) -> flask.Response:
    opts = _risk_params(store, params)
    scores, components = risk_table(
        store, period_end=opts["period_end"], months=opts["months"], dimension_weights=opts["weights"],
        indicator_weights=opts["iweights"], aggregation=opts["aggregation"], protected=not viewer_is_partner(),
    )
    components = protect_risk_components(components)
    start, end = scores.attrs["period_start"], scores.attrs["period_end"]
    rows = risk_rows(scores)
    synthetic = _risk_synthetic(store)
    notice = SYNTHETIC_NOTICE if synthetic else None
    if opts["format"] == "csv":
        response = flask.Response(_risk_csv(rows, components, notice), mimetype="text/csv")
        name = f"ctip-risk-{start:%Y-%m}-{end:%Y-%m}.csv"
        response.headers["Content-Disposition"] = f"attachment; filename={name}"
        return response
    return _json(
        {
            "period": {"start": f"{start:%Y-%m}", "end": f"{end:%Y-%m}", "months": scores.attrs["months"]},
            "aggregation": scores.attrs["aggregation"],
            "weights": scores.attrs["dimension_weights"],
            "indicator_weights": scores.attrs["indicator_weights"],
            "methodology_url": f"{API_PREFIX}/risk/methodology",
            "synthetic": synthetic,
            "notice": notice,
            "rows": rows,
        }
    )


def _risk_csv(rows: list[dict[str, Any]], components: pd.DataFrame, notice: str | None) -> str:
    keys = list(load_risk_config().indicator_keys)
    by_cell = {(p, k): (raw, norm) for p, k, raw, norm in components[["province", "key", "raw", "normalised"]]
               .itertuples(index=False)}
    header = [*RISK_ROW_COLUMNS, *(f"{k}_{part}" for k in keys for part in ("raw", "normalised"))]
    if notice:
        header.append("notice")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        cells = [neutralise_text(row[c]) for c in RISK_ROW_COLUMNS]
        for key in keys:
            raw, norm = by_cell.get((row["province_code"], key), (None, None))
            cells += [_number(raw), _number(norm)]
        cells = ["" if c is None else c for c in cells]
        writer.writerow([*cells, *([notice] if notice else [])])
    return out.getvalue()


# -- responses --------------------------------------------------------------------------------------
def _json(payload: Any, status: int = 200) -> flask.Response:
    body = json.dumps(payload, ensure_ascii=False, allow_nan=False)
    return flask.Response(body, status=status, mimetype="application/json")


def _bad_request(message: str, parameter: str) -> flask.Response:
    return _json({"error": message, "parameter": parameter}, 400)


def _redact(text: str) -> str:
    return _CREDENTIALS.sub(r"\1***@", text)


@lru_cache(maxsize=1)
def _version() -> str:
    try:
        return importlib.metadata.version("ctip-atlas")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class ShippedLayer:
    """A shipped layer's bytes, gzipped once, with a strong ETag per encoding."""

    data: bytes
    gzipped: bytes
    etag: str

    @property
    def gzip_etag(self) -> str:
        """ETag of the gzip representation (a different byte sequence needs its own strong tag)."""
        return f"{self.etag}-gz"


@lru_cache(maxsize=2)
def shipped_layer(name: str) -> ShippedLayer:
    """Read a shipped layer once (after geo.boundaries has validated it) and gzip it once."""
    loader = provinces_geojson if name == "provinces.geojson" else context_geojson
    loader()  # raises ShippedLayerError saying how to rebuild a missing or broken file
    data = (SHIPPED_DIR / name).read_bytes()
    return ShippedLayer(
        data, gzip.compress(data, compresslevel=9, mtime=0), hashlib.sha256(data).hexdigest()[:32]
    )


def _layer_response(name: str) -> flask.Response:
    layer = shipped_layer(name)
    # The layers are served often (every map trace loads one) and their MIME type is not in
    # Flask-Compress's list, so the gzip copy made once is sent to clients that accept it.
    use_gzip = flask.request.accept_encodings["gzip"] > 0
    etag = layer.gzip_etag if use_gzip else layer.etag
    sent = flask.request.if_none_match
    # A proxy or Flask-Compress may append ":gzip" to a tag; it still names this representation.
    if sent.star_tag or any(
        tag == etag or tag.startswith(f"{etag}:") for tag in sent.as_set(include_weak=True)
    ):
        response = flask.Response(status=304)
    elif use_gzip:
        response = flask.Response(layer.gzipped, mimetype="application/geo+json")
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = flask.Response(layer.data, mimetype="application/geo+json")
    response.set_etag(etag)
    response.headers["Cache-Control"] = GEOJSON_CACHE_CONTROL
    response.vary.add("Accept-Encoding")
    return response


# -- OpenAPI ----------------------------------------------------------------------------------------
def _csv_enum_pattern(values: tuple[str, ...]) -> str:
    alt = "|".join(re.escape(v) for v in values)
    return f"^({alt})(,({alt}))*$"


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 description of the API (enums from the catalog and the schema)."""
    ids = list(indicators())
    error = {"$ref": "#/components/schemas/Error"}
    geo_response = {
        "200": {
            "description": "GeoJSON FeatureCollection (strong ETag, Cache-Control public max-age=86400)",
            "headers": {
                "ETag": {"schema": {"type": "string"}},
                "Cache-Control": {"schema": {"type": "string"}},
            },
            "content": {"application/geo+json": {"schema": {"type": "object"}}},
        },
        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
    }

    def param(
        name: str, schema: dict[str, Any], description: str, *, required: bool = False
    ) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": required,
            "description": description,
            "schema": schema,
        }

    dim_params = []
    for dim in DIMENSIONS:
        if dim in ALLOWED_VALUES:
            schema = {"type": "string", "pattern": _csv_enum_pattern(ALLOWED_VALUES[dim])}
            hint = f"comma-separated values of {', '.join(ALLOWED_VALUES[dim])}"
        elif dim == "nationality":
            schema = {"type": "string", "pattern": r"^[A-Z]{3}(,[A-Z]{3})*$"}
            hint = "comma-separated ISO 3166-1 alpha-3 codes"
        else:
            schema = {"type": "string", "pattern": r"^([A-Z]{3}|[0-9]{2})(,([A-Z]{3}|[0-9]{2}))*$"}
            hint = "comma-separated ISO alpha-3 country codes or province codes"
        dim_params.append(
            param(dim, schema, f"Keep only {dim} in {hint} (only for indicators disaggregated by {dim})")
        )

    month = {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$", "examples": ["2024-03"]}
    observation_params = [
        param(
            "indicator", {"type": "string", "enum": ids}, "Catalog id (see /api/v1/indicators)", required=True
        ),
        param(
            "provinces",
            {
                "type": "string",
                "pattern": r"^(all|targets|(0?[1-9]|1[0-9]|2[0-5])(,(0?[1-9]|1[0-9]|2[0-5]))*)?$",
            },
            "Comma-separated province codes 01–25, 'targets' or 'all' (default all)",
        ),
        param("start", month, "First month, YYYY-MM (default: first month with data)"),
        param("end", month, "Last month, YYYY-MM (default: last month with data); not before start"),
        param(
            "granularity",
            {"type": "string", "enum": list(GRANULARITIES), "default": "month"},
            "Period bucket",
        ),
        param(
            "by",
            {"type": "string", "enum": list(DIMENSIONS)},
            "Also break rows down by this disaggregation (must be one the indicator carries)",
        ),
        param("format", {"type": "string", "enum": list(FORMATS), "default": "json"}, "Response format"),
        *dim_params,
        param(
            "view",
            {"type": "string", "enum": list(VIEWS)},
            "Dashboard view (accepted for share links; no effect)",
        ),
        param(
            "measure",
            {"type": "string", "enum": list(MEASURES)},
            "Accepted for share links; rows carry counts",
        ),
        param(
            "classes",
            {"type": "string", "enum": list(CLASSIFICATIONS)},
            "Accepted for share links; no effect",
        ),
        param(
            "top", {"type": "integer", "minimum": 1, "maximum": 100}, "Accepted for share links; no effect"
        ),
        param(
            "min_flow",
            {"type": "integer", "minimum": 0, "maximum": 10_000_000},
            "Accepted for share links; no effect",
        ),
    ]
    row_schema = {
        "type": "object",
        "required": ["province", "province_name", "period", "value"],
        "properties": {
            "province": {
                "type": "string",
                "description": "Province code 01–25, or 00 for national-only rows",
            },
            "province_name": {"type": "string"},
            "period": {"type": "string", "description": "2024-03 (month), 2024-Q1 (quarter) or 2024 (year)"},
            "value": {"type": ["number", "null"]},
        },
        "additionalProperties": {"type": "string", "description": "The `by` disaggregation, when given"},
    }
    risk_config = load_risk_config()
    risk_keys = list(risk_config.indicator_keys)
    weight_item = r"[0-9]+(\.[0-9]+)?"

    def weights_pattern(keys: list[str]) -> str:
        item = f"({'|'.join(keys)}):{weight_item}"
        return f"^{item}(,{item})*$"

    risk_params = [
        param("period_end", month, "Last month of the period, YYYY-MM (default: last month with data)"),
        param(
            "months",
            {"type": "integer", "minimum": 1, "maximum": MAX_MONTHS, "default": risk_config.default_months},
            "Length of the period in months, ending with period_end",
        ),
        param(
            "weights",
            {
                "type": "string",
                "pattern": weights_pattern(list(DIMENSION_KEYS)),
                "examples": [",".join(f"{k}:{v:g}" for k, v in risk_config.dimension_weights().items())],
            },
            "Dimension weights key:weight (0–1,000,000, not all 0); dimensions left out keep their default",
        ),
        param(
            "iweights",
            {
                "type": "string",
                "pattern": weights_pattern(risk_keys),
            },
            "Indicator weights key:weight (0–1,000,000; keys in /api/v1/risk/methodology); others keep their default",
        ),
        param(
            "aggregation",
            {"type": "string", "enum": list(RISK_AGGREGATIONS), "default": risk_config.aggregation},
            "Rule across the three dimensions",
        ),
        param("format", {"type": "string", "enum": list(FORMATS), "default": "json"}, "Response format"),
    ]
    number_or_null = {"type": ["number", "null"], "minimum": 0, "maximum": 10}
    rank_or_null = {"type": ["integer", "null"], "minimum": 1}
    risk_row_schema = {
        "type": "object",
        "required": list(RISK_ROW_COLUMNS),
        "properties": {
            "province_code": {"type": "string", "description": "Province code 01–25"},
            "province_name": {"type": "string"},
            "score": {**number_or_null, "description": "Risk index 0–10; null = not scored"},
            "class": {"type": ["string", "null"], "enum": [*(c.key for c in risk_config.classes), None]},
            "rank": {**rank_or_null, "description": "1 = highest risk; ties share the lowest rank"},
            "rank_p05": {**rank_or_null, "description": "5th percentile rank under weight uncertainty"},
            "rank_p95": {**rank_or_null, "description": "95th percentile rank under weight uncertainty"},
            **{dim: {**number_or_null, "description": f"{dim} score 0–10"} for dim in DIMENSION_KEYS},
            "reliability": {"type": "string", "enum": ["full", "partial", "insufficient"]},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CTIP Atlas API",
            "version": _version(),
            "description": (
                "Counter-trafficking data for Cambodia. Synthetic demonstration figures are flagged "
                "(`synthetic`, `notice`). " + ATTRIBUTION["provinces"]
            ),
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Health of the service and its store",
                    "responses": {
                        "200": {
                            "description": "Healthy",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                            },
                        },
                        "503": {
                            "description": "The store failed",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
                            },
                        },
                    },
                }
            },
            f"{API_PREFIX}/indicators": {
                "get": {
                    "summary": "The indicator catalog",
                    "responses": {
                        "200": {
                            "description": "Catalog",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["domains", "themes", "indicators"],
                                        "properties": {
                                            "domains": {
                                                "type": "array",
                                                "items": {"type": "string", "enum": list(DOMAINS)},
                                            },
                                            "themes": {
                                                "type": "array",
                                                "items": {"type": "string", "enum": list(THEMES)},
                                            },
                                            "indicators": {"type": "array", "items": {"type": "object"}},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            f"{API_PREFIX}/provinces.geojson": {
                "get": {
                    "summary": "The 25 provinces (properties.province_code 01–25), ODbL 1.0",
                    "parameters": [
                        {
                            "name": "If-None-Match",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": geo_response,
                }
            },
            f"{API_PREFIX}/context.geojson": {
                "get": {
                    "summary": "Neighbouring and destination countries (Natural Earth, public domain)",
                    "parameters": [
                        {
                            "name": "If-None-Match",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": geo_response,
                }
            },
            f"{API_PREFIX}/observations": {
                "get": {
                    "summary": "Observations by province, period and optionally one disaggregation",
                    "parameters": observation_params,
                    "responses": {
                        "200": {
                            "description": "Rows by province, period, by; CSV adds `notice` if synthetic",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Observations"}},
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": {
                            "description": "A bad parameter",
                            "content": {"application/json": {"schema": error}},
                        },
                    },
                }
            },
            f"{API_PREFIX}/risk": {
                "get": {
                    "summary": "CTIP risk index per province (INFORM-style), with dimensions and rank range",
                    "parameters": risk_params,
                    "responses": {
                        "200": {
                            "description": "Rows highest risk first; CSV adds <key>_raw and <key>_normalised "
                            "per indicator, and `notice` if synthetic",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Risk"}},
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "400": {
                            "description": "A bad parameter",
                            "content": {"application/json": {"schema": error}},
                        },
                    },
                }
            },
            f"{API_PREFIX}/risk/methodology": {
                "get": {
                    "summary": "The risk index configuration: indicators, directions, transforms, caps, "
                    "weights, aggregation, missing-data rule, classes, uncertainty",
                    "responses": {
                        "200": {
                            "description": "Methodology (the Methodology page renders the same document)",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            f"{API_PREFIX}/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "parameter"],
                    "properties": {"error": {"type": "string"}, "parameter": {"type": "string"}},
                },
                "Health": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "error"]},
                        "backend": {"type": "string"},
                        "rows": {"type": "integer"},
                        "demo_loaded": {"type": "boolean"},
                        "version": {"type": "string"},
                        "detail": {"type": "string"},
                    },
                },
                "RiskRow": risk_row_schema,
                "Risk": {
                    "type": "object",
                    "required": ["period", "aggregation", "weights", "indicator_weights", "methodology_url",
                                 "synthetic", "notice", "rows"],
                    "properties": {
                        "period": {
                            "type": "object",
                            "properties": {
                                "start": {"type": "string"},
                                "end": {"type": "string"},
                                "months": {"type": "integer"},
                            },
                        },
                        "aggregation": {"type": "string", "enum": list(RISK_AGGREGATIONS)},
                        "weights": {"type": "object", "additionalProperties": {"type": "number"}},
                        "indicator_weights": {"type": "object", "additionalProperties": {"type": "number"}},
                        "methodology_url": {"type": "string"},
                        "synthetic": {"type": "boolean"},
                        "notice": {"type": ["string", "null"]},
                        "rows": {"type": "array", "items": {"$ref": "#/components/schemas/RiskRow"}},
                    },
                },
                "Observation": row_schema,
                "Observations": {
                    "type": "object",
                    "required": ["indicator", "filters", "synthetic", "notice", "source", "rows"],
                    "properties": {
                        "indicator": {
                            "type": "object",
                            "required": ["id", "name_en", "unit"],
                            "properties": {
                                "id": {"type": "string", "enum": ids},
                                "name_en": {"type": "string"},
                                "unit": {"type": "string"},
                            },
                        },
                        "filters": {"type": "object", "additionalProperties": {"type": "string"}},
                        "synthetic": {"type": "boolean"},
                        "notice": {"type": ["string", "null"]},
                        "source": {"type": "string"},
                        "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Observation"}},
                    },
                },
            }
        },
    }
