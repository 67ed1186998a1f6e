"""Run-time access to the boundary layers shipped in ``geo/shipped/``.

Plain ``json`` only: this module must not import geopandas, shapely or dash
(importing geopandas alone costs ~0.4 s). The files are produced at build time
by ``python -m geo.build``; see ``geo/shipped/LICENSE.md`` for their sources and
licences.

The layers are GeoJSON FeatureCollections in lon/lat (CRS84) whose exterior
rings are clockwise, as plotly *geo* traces (``go.Choropleth`` with a custom
``geojson``) need. Provinces are keyed by the official 2-digit code
(``feature["id"]`` and ``properties.province_code``, "01".."25"); countries by
ISO 3166-1 alpha-3 (``feature["id"]`` and ``properties.iso3``).

Examples
--------
>>> from geo.boundaries import provinces_geojson
>>> fig = go.Figure(go.Choropleth(geojson=provinces_geojson(), locations=codes, z=values,
...                               featureidkey="properties.province_code"))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "ATTRIBUTION",
    "CONTEXT_ATTRIBUTION",
    "PROVINCES_ATTRIBUTION",
    "PROVINCES_LICENSE",
    "PROVINCES_RELEASE",
    "SHIPPED_DIR",
    "ShippedLayerError",
    "context_geojson",
    "country_label_points",
    "province_bounds",
    "province_label_points",
    "provinces_geojson",
    "provinces_geojson_copy",
]

SHIPPED_DIR: Path = Path(__file__).parent / "shipped"
"""Folder holding the shipped layers (``provinces.geojson``, ``context.geojson``, ``LICENSE.md``)."""

PROVINCES_FILE = "provinces.geojson"
CONTEXT_FILE = "context.geojson"

PROVINCES_RELEASE = "KHM-ADM1-37992800"
PROVINCES_LICENSE = "ODbL 1.0"

PROVINCES_ATTRIBUTION = (
    "Boundaries: geoBoundaries (www.geoboundaries.org), © OpenStreetMap contributors, ODbL 1.0 — "
    "this derived layer is also under ODbL 1.0 (share-alike)"
)
"""Credit line for the province layer: show it wherever the provinces are drawn or exported."""

CONTEXT_ATTRIBUTION = "Natural Earth 1:50m (public domain), via world-atlas 2.0.2"
"""Credit line for the neighbouring/destination countries layer."""

ATTRIBUTION: dict[str, str] = {
    "provinces": PROVINCES_ATTRIBUTION,
    "context": CONTEXT_ATTRIBUTION,
}
"""Both credit lines, keyed by layer name."""

_N_PROVINCES = 25


class ShippedLayerError(RuntimeError):
    """A shipped boundary file is missing or malformed."""


def _load(name: str) -> dict[str, Any]:
    path = SHIPPED_DIR / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ShippedLayerError(
            f"{path} is missing: run `python -m geo.build` (needs the `geo` extra, "
            "`pip install -e .[geo]`, and the raw inputs in ../shared/data) to rebuild it"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ShippedLayerError(
            f"{path} is not valid JSON ({exc}): rebuild it with `python -m geo.build`"
        ) from exc
    if data.get("type") != "FeatureCollection" or not data.get("features"):
        raise ShippedLayerError(
            f"{path} is not a non-empty FeatureCollection: rebuild it with `python -m geo.build`"
        )
    return data


@lru_cache(maxsize=1)
def provinces_geojson() -> dict[str, Any]:
    """Cambodia's 25 provinces as a GeoJSON FeatureCollection (cached, shared).

    Returns
    -------
    dict
        FeatureCollection sorted by province code. Each feature has ``id`` = code and
        properties ``province_code`` ("01".."25"), ``iso`` ("KH-1".."KH-25"), ``name``
        (geoBoundaries spelling: join on the code, never on the name), ``label_lon``,
        ``label_lat`` (a point inside the province) and ``area_km2``.

    Notes
    -----
    The same cached object is returned on every call: callers must NOT mutate it
    (plotly only reads it). Use :func:`provinces_geojson_copy` to get a private copy.

    Raises
    ------
    ShippedLayerError
        If ``geo/shipped/provinces.geojson`` is missing or malformed.
    """
    data = _load(PROVINCES_FILE)
    codes = [f.get("properties", {}).get("province_code") for f in data["features"]]
    expected = [f"{i:02d}" for i in range(1, _N_PROVINCES + 1)]
    if codes != expected:
        raise ShippedLayerError(
            f"{SHIPPED_DIR / PROVINCES_FILE} has province codes {codes}, expected 01..25 in order: "
            "rebuild it with `python -m geo.build`"
        )
    return data


def provinces_geojson_copy() -> dict[str, Any]:
    """A deep copy of :func:`provinces_geojson` that the caller may modify.

    Returns
    -------
    dict
        Independent copy of the province FeatureCollection.
    """
    return copy.deepcopy(provinces_geojson())


@lru_cache(maxsize=1)
def context_geojson() -> dict[str, Any]:
    """Neighbouring and destination countries as a GeoJSON FeatureCollection (cached, shared).

    Returns
    -------
    dict
        FeatureCollection sorted by ISO alpha-3. Each feature has ``id`` = alpha-3 and
        properties ``iso3`` (e.g. "THA", "LAO", "VNM", "MYS", "KOR", "JPN"), ``name``,
        ``label_lon`` and ``label_lat`` (a point inside the country).

    Notes
    -----
    The same cached object is returned on every call: callers must NOT mutate it;
    use ``copy.deepcopy`` if a modified version is needed.

    Raises
    ------
    ShippedLayerError
        If ``geo/shipped/context.geojson`` is missing or malformed.
    """
    return _load(CONTEXT_FILE)


def _label_points(fc: dict[str, Any], key: str) -> dict[str, tuple[float, float]]:
    return {
        f["properties"][key]: (float(f["properties"]["label_lon"]), float(f["properties"]["label_lat"]))
        for f in fc["features"]
    }


@lru_cache(maxsize=1)
def _province_label_points() -> dict[str, tuple[float, float]]:
    return _label_points(provinces_geojson(), "province_code")


def province_label_points() -> dict[str, tuple[float, float]]:
    """Label anchor of each province.

    Returns
    -------
    dict[str, tuple[float, float]]
        Province code ("01".."25") -> ``(lon, lat)`` of a point guaranteed to lie
        inside the province (not the centroid, which can fall outside or at sea).
        A new dict on every call: safe to modify.
    """
    return dict(_province_label_points())


@lru_cache(maxsize=1)
def province_bounds() -> tuple[float, float, float, float]:
    """Bounding box of Cambodia (all 25 provinces, islands included).

    Returns
    -------
    tuple[float, float, float, float]
        ``(lon_min, lat_min, lon_max, lat_max)`` in degrees.
    """
    lon_min = lat_min = float("inf")
    lon_max = lat_max = float("-inf")
    for feature in provinces_geojson()["features"]:
        geom = feature["geometry"]
        polygons = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for polygon in polygons:
            for lon, lat in polygon[0]:  # the exterior ring bounds the polygon
                lon_min = min(lon_min, lon)
                lon_max = max(lon_max, lon)
                lat_min = min(lat_min, lat)
                lat_max = max(lat_max, lat)
    return (lon_min, lat_min, lon_max, lat_max)


@lru_cache(maxsize=1)
def _country_label_points() -> dict[str, tuple[float, float]]:
    return _label_points(context_geojson(), "iso3")


def country_label_points() -> dict[str, tuple[float, float]]:
    """Label anchor of each context country.

    Returns
    -------
    dict[str, tuple[float, float]]
        ISO alpha-3 -> ``(lon, lat)`` of a point inside the country (on its largest
        polygon; for Malaysia on the peninsula). A new dict on every call.
    """
    return dict(_country_label_points())
