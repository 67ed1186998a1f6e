"""Build the boundary layers shipped in ``geo/shipped/``.

Run as ``python -m geo.build`` (build time only: needs the ``geo`` extra,
geopandas + shapely). The dashboard loads the output with plain ``json`` through
:mod:`geo.boundaries`.

Inputs (read-only, from the shared data folder, ``--shared``):

- ``data/boundaries/khm_adm1_provinces.geojson``: geoBoundaries gbOpen ADM1,
  25 provinces, properties ``shapeName`` and ``shapeISO`` (KH-1 ... KH-25).
- ``data/basemap/naturalearth_countries_50m.topojson``: Natural Earth 1:50m
  admin-0 countries via world-atlas 2.0.2 (object ``countries``, ISO numeric ids).

Outputs (``--out``, default ``geo/shipped/``):

- ``provinces.geojson``: the 25 provinces simplified together with
  :func:`shapely.coverage_simplify` (no gaps or overlaps between neighbours,
  every island kept), coordinates rounded to 4 decimals, exteriors clockwise
  (what plotly *geo* traces need).
- ``context.geojson``: neighbouring and destination countries, simplified,
  rounded to 3 decimals, exteriors clockwise.
- ``LICENSE.md``: what the files are, how they were built, attribution and licences.

The output is deterministic: building twice gives byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import mapping, shape

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO_ROOT.parent / "shared"
DEFAULT_OUT = Path(__file__).resolve().parent / "shipped"

PROVINCES_SRC = Path("data/boundaries/khm_adm1_provinces.geojson")
COUNTRIES_SRC = Path("data/basemap/naturalearth_countries_50m.topojson")

PROVINCES_RELEASE = "KHM-ADM1-37992800"
EQUAL_AREA_CRS = "EPSG:6933"

# Province layer parameters.
PROVINCE_TOLERANCE = 0.005  # degrees (~550 m); 0.004 -> ~138 KB, 0.006 -> ~96 KB
PROVINCE_DECIMALS = 4

# Context layer parameters.
CONTEXT_TOLERANCE = 0.03  # degrees (~3 km): background layer, 0.02 -> ~218 KB
CONTEXT_DECIMALS = 3
CONTEXT_MIN_PART_DEG2 = 0.02  # drop islands smaller than this (~240 km2 at the equator) ...
# ... except that the largest part of every country is always kept (Singapore).

# ISO 3166-1 numeric (world-atlas ids) -> (alpha-3, display name).
# Neighbours, migration destinations and the countries needed so that the
# islands/peninsulas they share do not look cut (Brunei, North Korea, Timor-Leste, PNG).
CONTEXT_COUNTRIES: dict[str, tuple[str, str]] = {
    "764": ("THA", "Thailand"),
    "418": ("LAO", "Lao PDR"),
    "704": ("VNM", "Viet Nam"),
    "104": ("MMR", "Myanmar"),
    "458": ("MYS", "Malaysia"),
    "702": ("SGP", "Singapore"),
    "096": ("BRN", "Brunei Darussalam"),
    "360": ("IDN", "Indonesia"),
    "626": ("TLS", "Timor-Leste"),
    "598": ("PNG", "Papua New Guinea"),
    "608": ("PHL", "Philippines"),
    "158": ("TWN", "Taiwan"),
    "156": ("CHN", "China"),
    "410": ("KOR", "Republic of Korea"),
    "408": ("PRK", "Dem. People's Republic of Korea"),
    "392": ("JPN", "Japan"),
    "050": ("BGD", "Bangladesh"),
    "356": ("IND", "India"),
    "064": ("BTN", "Bhutan"),
    "524": ("NPL", "Nepal"),
    "496": ("MNG", "Mongolia"),
}
# Put a country's label on the part that contains this point instead of its largest part.
LABEL_PART_HINTS: dict[str, tuple[float, float]] = {
    "MYS": (101.69, 3.14),  # Kuala Lumpur: Peninsular Malaysia, not Borneo
}
REQUIRED_CONTEXT = {"THA", "LAO", "VNM", "MMR", "MYS", "SGP", "KOR", "JPN", "CHN", "IDN", "PHL"}

PROVINCES_ATTRIBUTION = (
    "Boundaries: geoBoundaries (www.geoboundaries.org), © OpenStreetMap contributors, ODbL 1.0 — "
    "this derived layer is also under ODbL 1.0 (share-alike)"
)
CONTEXT_ATTRIBUTION = "Natural Earth 1:50m (public domain), via world-atlas 2.0.2"


class BuildError(RuntimeError):
    """The raw inputs or the simplified output failed a check."""


# --------------------------------------------------------------------------- helpers


def _round_geoms(geoms: np.ndarray, decimals: int) -> np.ndarray:
    """Round coordinates and drop the consecutive duplicates rounding creates.

    Rounding is per coordinate, so vertices shared by neighbours stay shared.
    """
    rounded = shapely.transform(geoms, lambda xy: np.round(xy, decimals))
    return shapely.remove_repeated_points(rounded, 0.0)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Keep only the polygonal part of ``geom`` (make_valid may return collections)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    polys = [q for p in parts for q in shapely.get_parts(p)]
    if not polys:
        raise BuildError(f"no polygon left in {geom.geom_type}")
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def _ensure_valid(geoms: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Fix invalid geometries with make_valid (only those that need it) and re-check."""
    out = geoms.copy()
    for i, g in enumerate(out):
        if not g.is_valid:
            print(f"  make_valid: {names[i]} ({shapely.is_valid_reason(g)})", file=sys.stderr)
            out[i] = _polygonal(shapely.make_valid(g))
    bad = [names[i] for i, g in enumerate(out) if not g.is_valid or g.is_empty]
    if bad:
        raise BuildError(f"invalid geometry after make_valid: {bad}")
    return out


def _label_point(
    geom: shapely.Geometry, decimals: int, hint: tuple[float, float] | None = None
) -> tuple[float, float]:
    """A point inside ``geom``, rounded, re-checked to lie inside.

    Taken on the part containing ``hint`` if given (and found), else on the largest part.
    """
    parts = shapely.get_parts(geom)
    part = parts[int(np.argmax(shapely.area(parts)))]
    if hint is not None:
        hinted = [q for q in parts if q.contains(shapely.Point(hint))]
        if not hinted:
            raise BuildError(f"label hint {hint} is not inside any part")
        part = hinted[0]
    p = part.point_on_surface()
    lon, lat = round(p.x, decimals), round(p.y, decimals)
    if not geom.contains(shapely.Point(lon, lat)):
        raise BuildError(f"label point ({lon}, {lat}) falls outside its polygon after rounding")
    return lon, lat


def _areas_km2(geoms: np.ndarray) -> np.ndarray:
    return gpd.GeoSeries(geoms, crs="OGC:CRS84").to_crs(EQUAL_AREA_CRS).area.to_numpy() / 1e6


def _dump(obj: object) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- TopoJSON


def decode_topojson(topo: dict, object_name: str) -> list[tuple[dict, shapely.Geometry | None]]:
    """Decode one TopoJSON object into ``(geometry record, shapely geometry)`` pairs.

    Handles quantised (``transform``: delta-encoded arcs) and plain TopoJSON,
    Polygon and MultiPolygon geometries (other types give ``None``).
    """
    transform = topo.get("transform")
    arcs: list[np.ndarray] = []
    for arc in topo["arcs"]:
        a = np.asarray(arc, dtype=np.float64)[:, :2]
        if transform:
            a = np.cumsum(a, axis=0) * np.asarray(transform["scale"]) + np.asarray(transform["translate"])
        arcs.append(a)

    def ring(indices: list[int]) -> np.ndarray:
        pieces = []
        for k, i in enumerate(indices):
            a = arcs[i] if i >= 0 else arcs[~i][::-1]
            pieces.append(a if k == 0 else a[1:])
        return np.concatenate(pieces)

    def polygon(rings: list[list[int]]) -> shapely.Polygon | None:
        if not rings:
            return None
        shell, *holes = (ring(r) for r in rings)
        return shapely.Polygon(shell, holes)

    out = []
    for rec in topo["objects"][object_name]["geometries"]:
        geom = None
        if rec.get("type") == "Polygon":
            geom = polygon(rec["arcs"])
        elif rec.get("type") == "MultiPolygon":
            polys = [p for p in (polygon(r) for r in rec["arcs"]) if p is not None]
            geom = shapely.MultiPolygon(polys) if polys else None
        out.append((rec, geom))
    return out


# --------------------------------------------------------------------------- provinces


def build_provinces(src: Path, tolerance: float = PROVINCE_TOLERANCE) -> tuple[dict, dict]:
    """Simplify the 25 provinces together; return (FeatureCollection, stats)."""
    raw = json.loads(src.read_text(encoding="utf-8"))
    feats = raw["features"]
    codes = []
    for f in feats:
        iso = f["properties"]["shapeISO"]
        if not iso.startswith("KH-"):
            raise BuildError(f"unexpected shapeISO {iso!r}")
        codes.append(f"{int(iso[3:]):02d}")
    order = np.argsort(codes, kind="stable")
    feats = [feats[i] for i in order]
    codes = [codes[i] for i in order]
    if codes != [f"{i:02d}" for i in range(1, 26)]:
        raise BuildError(f"expected province codes 01..25, got {codes}")

    src_geoms = np.array([shape(f["geometry"]) for f in feats], dtype=object)
    if not shapely.is_valid(src_geoms).all():
        raise BuildError("source provinces are not all valid")
    if not shapely.coverage_is_valid(src_geoms):
        raise BuildError("source provinces do not form a valid coverage (gaps/overlaps)")
    # Degenerate parts (zero-area slivers) would be dropped; everything else is an island we keep.
    src_parts = [int((shapely.area(shapely.get_parts(g)) > 0).sum()) for g in src_geoms]

    simple = shapely.coverage_simplify(src_geoms, tolerance)
    simple = _round_geoms(simple, PROVINCE_DECIMALS)
    simple = _ensure_valid(simple, codes)
    simple = shapely.orient_polygons(simple, exterior_cw=True)

    parts = [len(shapely.get_parts(g)) for g in simple]
    lost = [(c, s, p) for c, s, p in zip(codes, src_parts, parts, strict=True) if p < s]
    if lost:
        raise BuildError(f"islands lost (code, source parts, simplified parts): {lost}")
    if not shapely.coverage_is_valid(simple):
        raise BuildError("simplified provinces have gaps or overlaps; lower the tolerance")

    src_area = _areas_km2(src_geoms)
    area = _areas_km2(simple)

    features = []
    for f, code, geom, a in zip(feats, codes, simple, area, strict=True):
        p = f["properties"]
        lon, lat = _label_point(geom, PROVINCE_DECIMALS)
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": {
                    "province_code": code,
                    "iso": p["shapeISO"],
                    "name": p["shapeName"],
                    "label_lon": lon,
                    "label_lat": lat,
                    "area_km2": round(float(a), 1),
                },
                "geometry": mapping(geom),
            }
        )
    stats = {
        "tolerance": tolerance,
        "source_area_km2": float(src_area.sum()),
        "area_km2": float(area.sum()),
        "area_change_pct": float((area.sum() / src_area.sum() - 1) * 100),
        "max_province_change_pct": float(np.abs(area / src_area - 1).max() * 100),
        "source_parts": sum(src_parts),
        "parts": sum(parts),
        "vertices": int(shapely.get_num_coordinates(simple).sum()),
    }
    return {"type": "FeatureCollection", "features": features}, stats


# --------------------------------------------------------------------------- context


def build_context(src: Path, tolerance: float = CONTEXT_TOLERANCE) -> tuple[dict, dict]:
    """Cut the context countries from Natural Earth; return (FeatureCollection, stats)."""
    topo = json.loads(src.read_text(encoding="utf-8"))
    found: dict[str, shapely.Geometry] = {}
    for rec, geom in decode_topojson(topo, "countries"):
        rid = str(rec.get("id", ""))
        if rid in CONTEXT_COUNTRIES and geom is not None:
            found[rid] = geom
    missing = [CONTEXT_COUNTRIES[i][0] for i in CONTEXT_COUNTRIES if i not in found]
    if REQUIRED_CONTEXT & set(missing):
        absent = sorted(REQUIRED_CONTEXT & set(missing))
        raise BuildError(f"required countries missing from {src.name}: {absent}")
    if missing:
        print(f"  context: not in source, skipped: {missing}", file=sys.stderr)

    ids = sorted(found, key=lambda i: CONTEXT_COUNTRIES[i][0])
    iso3 = [CONTEXT_COUNTRIES[i][0] for i in ids]
    geoms = _ensure_valid(np.array([found[i] for i in ids], dtype=object), iso3)

    # The TopoJSON shares arcs between neighbours: simplify them together when that coverage is
    # valid (shared borders stay shared), country by country otherwise.
    if shapely.coverage_is_valid(geoms):
        simple = shapely.coverage_simplify(geoms, tolerance)
        method = "simplified together with `shapely.coverage_simplify`"
    else:
        simple = shapely.simplify(geoms, tolerance, preserve_topology=True)
        method = "simplified one by one with `shapely.simplify`"

    # Drop small islands, always keeping the largest part of each country.
    kept = []
    for g in simple:
        parts = shapely.get_parts(g)
        areas = shapely.area(parts)
        big = (areas >= CONTEXT_MIN_PART_DEG2) | (areas == areas.max())
        keep = list(parts[big])
        kept.append(keep[0] if len(keep) == 1 else shapely.MultiPolygon(keep))
    simple = _round_geoms(np.array(kept, dtype=object), CONTEXT_DECIMALS)
    simple = _ensure_valid(simple, iso3)
    simple = shapely.orient_polygons(simple, exterior_cw=True)

    features = []
    for code, i, geom in zip(iso3, ids, simple, strict=True):
        lon, lat = _label_point(geom, CONTEXT_DECIMALS, LABEL_PART_HINTS.get(code))
        features.append(
            {
                "type": "Feature",
                "id": code,
                "properties": {
                    "iso3": code,
                    "name": CONTEXT_COUNTRIES[i][1],
                    "label_lon": lon,
                    "label_lat": lat,
                },
                "geometry": mapping(geom),
            }
        )
    stats = {"countries": iso3, "skipped": missing, "tolerance": tolerance, "method": method}
    return {"type": "FeatureCollection", "features": features}, stats


# --------------------------------------------------------------------------- licence


def license_text(prov_sha: str, ctx_sha: str, prov_stats: dict, ctx_stats: dict) -> str:
    """Text of ``LICENSE.md``: the files, how they were built, attribution and licences."""
    countries = ", ".join(ctx_stats["countries"])
    return f"""# geo/shipped — boundary layers shipped with CTIP Atlas

Generated by `python -m geo.build` (geo/build.py). Do not edit by hand: change the build and rerun it.
Loaded at run time with plain `json` by `geo/boundaries.py`.

| file | what | licence |
| --- | --- | --- |
| `provinces.geojson` | Cambodia's 25 provinces (ADM1), keyed by official 2-digit code | ODbL 1.0 |
| `context.geojson` | neighbouring and destination countries | public domain |

## provinces.geojson

- Input: `shared/{PROVINCES_SRC.as_posix()}` (sha256 `{prov_sha}`),
  geoBoundaries gbOpen ADM1, release {PROVINCES_RELEASE}.
- Build: the 25 provinces are simplified together with `shapely.coverage_simplify`
  (tolerance {prov_stats["tolerance"]}°), so neighbours share their borders (no gaps, no overlaps) and every
  island is kept ({prov_stats["parts"]} polygon parts); coordinates rounded to {PROVINCE_DECIMALS} decimals;
  exterior rings clockwise (`shapely.orient_polygons(..., exterior_cw=True)`) as plotly *geo* traces need.
- Feature `id` and `properties.province_code`: "01".."25" (from shapeISO KH-N); `iso`: KH-N; `name`:
  geoBoundaries shapeName (spellings differ from the official gazetteer: join on the code);
  `label_lon`/`label_lat`: a point inside the province; `area_km2`: area of the simplified polygon
  in EPSG:6933 (equal area).

**Attribution:** {PROVINCES_ATTRIBUTION}.
Release {PROVINCES_RELEASE}. Licence: Open Data Commons Open Database License 1.0
(https://opendatacommons.org/licenses/odbl/1-0/). This file is a derived database of the geoBoundaries /
OpenStreetMap data and is made available under the same licence (share-alike).

## context.geojson

- Input: `shared/{COUNTRIES_SRC.as_posix()}` (sha256 `{ctx_sha}`),
  Natural Earth 1:50m admin-0 countries as redistributed by the npm package world-atlas 2.0.2.
- Build: TopoJSON decoded in geo/build.py; countries {countries}
  {ctx_stats["method"]} (tolerance {ctx_stats["tolerance"]}°), islands smaller than
  {CONTEXT_MIN_PART_DEG2} square degrees dropped (largest part always kept), coordinates rounded to
  {CONTEXT_DECIMALS} decimals, exterior rings clockwise.
- Feature `id` and `properties.iso3`: ISO 3166-1 alpha-3; `name`: English short name; `label_lon`/`label_lat`:
  a point inside the country's largest polygon (Malaysia: inside Peninsular Malaysia).

**Attribution:** {CONTEXT_ATTRIBUTION}. Natural Earth data is in the public domain
(https://www.naturalearthdata.com/about/terms-of-use/). Country boundaries are shown as drawn by Natural Earth
and imply no position on disputed territories.
"""


# --------------------------------------------------------------------------- main


def build(shared: Path, out: Path) -> dict:
    """Build every shipped layer from ``shared`` into ``out``; return build statistics."""
    prov_src = shared / PROVINCES_SRC
    ctx_src = shared / COUNTRIES_SRC
    for p in (prov_src, ctx_src):
        if not p.is_file():
            raise BuildError(f"raw input not found: {p} (pass --shared PATH to the shared folder)")

    provinces, prov_stats = build_provinces(prov_src)
    context, ctx_stats = build_context(ctx_src)

    out.mkdir(parents=True, exist_ok=True)
    files = {
        "provinces.geojson": _dump(provinces),
        "context.geojson": _dump(context),
        "LICENSE.md": license_text(_sha256(prov_src), _sha256(ctx_src), prov_stats, ctx_stats).encode(),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {"provinces": prov_stats, "context": ctx_stats, "sizes": {k: len(v) for k, v in files.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geo.build", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=DEFAULT_SHARED, help=f"shared data folder (default {DEFAULT_SHARED})"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    try:
        stats = build(args.shared, args.out)
    except BuildError as exc:
        print(f"geo.build: error: {exc}", file=sys.stderr)
        return 1
    p = stats["provinces"]
    print(
        f"provinces: tolerance {p['tolerance']}, {p['parts']}/{p['source_parts']} parts, "
        f"{p['vertices']} vertices, area {p['area_km2']:.1f} km2 ({p['area_change_pct']:+.4f} %, "
        f"max province {p['max_province_change_pct']:.3f} %)"
    )
    countries = stats["context"]["countries"]
    print(f"context: {len(countries)} countries: {', '.join(countries)}")
    for name, size in stats["sizes"].items():
        print(f"wrote {args.out / name} ({size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
