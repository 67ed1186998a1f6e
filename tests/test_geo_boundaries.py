"""Checks of the shipped boundary layers (geo/shipped/) and their run-time loader.

The tests read the SHIPPED files, not a rebuild. Comparisons with the raw inputs need
``../shared`` next to the repository: without it they are skipped, unless ``CI=true``,
in which case they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from geo import boundaries

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
SOURCE_PROVINCES = SHARED / "data/boundaries/khm_adm1_provinces.geojson"
SHIPPED = REPO_ROOT / "geo" / "shipped"
PROVINCES = SHIPPED / "provinces.geojson"
CONTEXT = SHIPPED / "context.geojson"
TOPOJSON_ASSET = REPO_ROOT / "dashboard" / "assets" / "topojson" / "world_110m.json"

CODES = [f"{i:02d}" for i in range(1, 26)]
TINY_PART_DEG2 = 1e-6  # ~0.012 km2: parts smaller than this are not islands worth keeping

_TO_EQUAL_AREA = Transformer.from_crs("OGC:CRS84", "EPSG:6933", always_xy=True)


def _need_shared() -> None:
    if SOURCE_PROVINCES.is_file():
        return
    reason = f"raw inputs not found at {SHARED} (expected the shared folder next to the repository)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    print(f"SKIP: {reason}")
    pytest.skip(reason)


def _km2(geoms) -> np.ndarray:
    projected = shapely.transform(
        np.asarray(geoms, dtype=object), _TO_EQUAL_AREA.transform, interleaved=False
    )
    return shapely.area(projected) / 1e6


def _features(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["features"]


@pytest.fixture(scope="module")
def shipped() -> tuple[list[dict], np.ndarray]:
    feats = _features(PROVINCES)
    return feats, np.array([shape(f["geometry"]) for f in feats], dtype=object)


@pytest.fixture(scope="module")
def source() -> dict[str, shapely.Geometry]:
    _need_shared()
    feats = _features(SOURCE_PROVINCES)
    return {f"{int(f['properties']['shapeISO'][3:]):02d}": shape(f["geometry"]) for f in feats}


@pytest.fixture(scope="module")
def context() -> tuple[list[dict], np.ndarray]:
    feats = _features(CONTEXT)
    return feats, np.array([shape(f["geometry"]) for f in feats], dtype=object)


# --------------------------------------------------------------------------- provinces


def test_25_provinces_keyed_by_code(shipped):
    feats, _ = shipped
    assert [f["properties"]["province_code"] for f in feats] == CODES
    assert [f["id"] for f in feats] == CODES
    assert [f["properties"]["iso"] for f in feats] == [f"KH-{i}" for i in range(1, 26)]
    assert all(f["properties"]["name"] for f in feats)
    assert {f["geometry"]["type"] for f in feats} <= {"Polygon", "MultiPolygon"}


def test_geometries_valid(shipped):
    _, geoms = shipped
    reasons = {i: shapely.is_valid_reason(g) for i, g in enumerate(geoms) if not g.is_valid}
    assert not reasons
    assert not shapely.is_empty(geoms).any()


def test_no_gaps_no_overlaps(shipped):
    _, geoms = shipped
    assert shapely.coverage_is_valid(geoms)
    union = shapely.union_all(geoms)
    total = shapely.area(geoms).sum()
    assert union.area == pytest.approx(total, rel=1e-9)  # no overlaps


def test_union_matches_source(shipped, source):
    _, geoms = shipped
    union = shapely.union_all(geoms)
    src_union = shapely.union_all(list(source.values()))
    # No gap (interior hole) between provinces that the source does not have.
    holes = sum(len(p.interiors) for p in shapely.get_parts(union))
    src_holes = sum(len(p.interiors) for p in shapely.get_parts(src_union))
    assert holes <= src_holes
    assert shapely.symmetric_difference(union, src_union).area < 0.005 * src_union.area


def test_total_area_within_1pct_of_source(shipped, source):
    feats, geoms = shipped
    area = _km2(geoms)
    src_area = _km2([source[c] for c in CODES])
    assert area.sum() == pytest.approx(src_area.sum(), rel=0.01)
    assert np.abs(area / src_area - 1).max() < 0.01  # and every province within 1 %
    # The area_km2 property is the simplified polygon's EPSG:6933 area.
    assert [f["properties"]["area_km2"] for f in feats] == pytest.approx(area, abs=0.1)


def test_islands_kept(shipped, source):
    _, geoms = shipped
    for code, geom in zip(CODES, geoms, strict=True):
        src_parts = shapely.get_parts(source[code])
        n_src = int((shapely.area(src_parts) > TINY_PART_DEG2).sum())
        assert len(shapely.get_parts(geom)) >= n_src, code


def test_island_provinces_have_several_parts(shipped):
    # Counts in geoBoundaries KHM-ADM1-37992800 (Kampot is a single polygon in this release).
    _, geoms = shipped
    parts = dict(zip(CODES, (len(shapely.get_parts(g)) for g in geoms), strict=True))
    assert parts["09"] >= 5  # Koh Kong
    assert parts["18"] >= 12  # Preah Sihanouk
    assert parts["23"] >= 2  # Kep
    assert sum(parts.values()) >= 41


def test_file_sizes():
    assert PROVINCES.stat().st_size <= 150_000
    assert CONTEXT.stat().st_size < 250_000


def test_province_label_points_inside(shipped):
    feats, geoms = shipped
    for f, geom in zip(feats, geoms, strict=True):
        p = f["properties"]
        assert geom.contains(shapely.Point(p["label_lon"], p["label_lat"])), p["province_code"]


def _rings_orientation(geoms) -> tuple[list[bool], list[bool]]:
    polys = shapely.get_parts(geoms)
    exteriors = [shapely.is_ccw(p.exterior) for p in polys]
    interiors = [shapely.is_ccw(r) for p in polys for r in p.interiors]
    return exteriors, interiors


@pytest.mark.parametrize("layer", ["shipped", "context"])
def test_exteriors_clockwise(layer, request):
    _, geoms = request.getfixturevalue(layer)
    exteriors, interiors = _rings_orientation(geoms)
    assert not any(exteriors)  # clockwise exteriors: plotly geo traces fill the frame otherwise
    assert all(interiors)  # holes the other way round


# --------------------------------------------------------------------------- context


def test_context_layer(context):
    feats, geoms = context
    iso3 = [f["properties"]["iso3"] for f in feats]
    assert {"THA", "LAO", "VNM", "MMR", "MYS", "SGP", "KOR", "JPN", "CHN", "IDN", "PHL"} <= set(iso3)
    assert [f["id"] for f in feats] == iso3
    assert shapely.is_valid(geoms).all()
    for f, geom in zip(feats, geoms, strict=True):
        p = f["properties"]
        assert p["name"]
        assert geom.contains(shapely.Point(p["label_lon"], p["label_lat"])), p["iso3"]


# --------------------------------------------------------------------------- loader


def test_loader_does_not_import_heavy_modules():
    code = (
        "import sys, geo.boundaries as b; b.provinces_geojson(); b.context_geojson(); b.province_bounds(); "
        "heavy = [m for m in ('geopandas', 'shapely', 'dash', 'pyproj', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=60)


def test_loader_functions():
    fc = boundaries.provinces_geojson()
    assert fc is boundaries.provinces_geojson()  # cached
    copy = boundaries.provinces_geojson_copy()
    copy["features"].clear()
    assert len(boundaries.provinces_geojson()["features"]) == 25

    lon_min, lat_min, lon_max, lat_max = boundaries.province_bounds()
    assert 102.0 < lon_min < 102.6 and 107.4 < lon_max < 108.0
    assert 9.5 < lat_min < 10.6 and 14.4 < lat_max < 14.8

    labels = boundaries.province_label_points()
    assert list(labels) == CODES
    assert all(lon_min <= lon <= lon_max and lat_min <= lat <= lat_max for lon, lat in labels.values())

    countries = boundaries.country_label_points()
    assert {"THA", "LAO", "VNM", "MYS", "KOR", "JPN"} <= set(countries)
    assert len(boundaries.context_geojson()["features"]) == len(countries)

    assert "geoBoundaries" in boundaries.ATTRIBUTION["provinces"]
    assert "ODbL 1.0" in boundaries.PROVINCES_ATTRIBUTION
    assert "Natural Earth" in boundaries.CONTEXT_ATTRIBUTION
    assert boundaries.SHIPPED_DIR == SHIPPED
    assert "ODbL" in (SHIPPED / "LICENSE.md").read_text(encoding="utf-8")


def test_missing_file_says_how_to_rebuild(monkeypatch, tmp_path):
    monkeypatch.setattr(boundaries, "SHIPPED_DIR", tmp_path)
    boundaries.provinces_geojson.cache_clear()
    try:
        with pytest.raises(boundaries.ShippedLayerError, match=r"python -m geo\.build"):
            boundaries.provinces_geojson()
    finally:
        boundaries.provinces_geojson.cache_clear()


def test_offline_topojson_asset():
    topo = json.loads(TOPOJSON_ASSET.read_text(encoding="utf-8"))
    assert topo["type"] == "Topology"
    assert {"countries", "land", "coastlines"} <= set(topo["objects"])
    assert (TOPOJSON_ASSET.parent / "README.md").is_file()


# --------------------------------------------------------------------------- build


def test_build_is_reproducible(tmp_path):
    _need_shared()
    subprocess.run(
        [sys.executable, "-m", "geo.build", "--shared", str(SHARED), "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    for name in ("provinces.geojson", "context.geojson", "LICENSE.md"):
        assert (tmp_path / name).read_bytes() == (SHIPPED / name).read_bytes(), (
            f"{name} differs from a fresh build: rerun `python -m geo.build`"
        )
