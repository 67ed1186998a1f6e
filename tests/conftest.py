"""Shared fixtures: stores on both backends, and the skip-or-fail rule for servers and browsers.

Tests that need PostgreSQL or a browser skip with a printed reason on a laptop without them; with
``CI=true`` they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest

from data.store import Store, StoreError, open_store

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("CTIP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def skip_or_fail(reason: str) -> None:
    """Skip (laptop) or fail (CI) with ``reason``."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run)")
    print(f"SKIP: {reason}")
    pytest.skip(reason)


def _postgres_schema_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Store]:
    """A connection to the test PostgreSQL database (skips or fails when unreachable)."""
    try:
        store = Store(POSTGRES_URL)
    except (StoreError, ImportError) as exc:
        skip_or_fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    yield store
    store.close()


def make_store(backend: str, request: pytest.FixtureRequest) -> Store:
    """A fresh, empty store on ``backend`` (dropped at test end)."""
    if backend == "duckdb":
        store = open_store("duckdb:///:memory:")
        request.addfinalizer(store.close)
        return store
    admin = request.getfixturevalue("postgres_admin")
    schema = f"ctip_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    store = open_store(_postgres_schema_url(schema))

    def cleanup() -> None:
        store.close()
        admin.execute(f"DROP SCHEMA {schema} CASCADE")

    request.addfinalizer(cleanup)
    return store


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Store:
    """An empty store with the schema, on each backend (the contract tests run on both)."""
    return make_store(request.param, request)


@pytest.fixture
def duck() -> Iterator[Store]:
    """An empty in-memory DuckDB store."""
    store = open_store("duckdb:///:memory:")
    yield store
    store.close()


def obs(rows: list[dict]) -> pd.DataFrame:
    """Observation frame from short dicts (missing columns default to empty / synthetic)."""
    frame = pd.DataFrame(rows)
    frame["period"] = pd.to_datetime(frame["period"])
    for col in ("partner", "source", "note"):
        if col not in frame:
            frame[col] = ""
    return frame


def have_browser() -> bool:
    """Whether headless Chromium and ChromeDriver are installed."""
    return bool((shutil.which("chromium") or shutil.which("google-chrome")) and shutil.which("chromedriver"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark dash_duo tests as browser tests and skip (or fail in CI) them without a browser."""
    for item in items:
        if "dash_duo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
            if not have_browser() and not IN_CI:
                # In CI the test runs anyway and fails loudly without a browser.
                item.add_marker(pytest.mark.skip(reason="chromium/chromedriver not installed (make browser-deps)"))


def pytest_setup_options():
    """Chromium options for dash_duo: headless, and quiet on a machine with no outside network."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    for arg in ("--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-default-apps", "--disable-extensions", "--window-size=1600,1400"):
        options.add_argument(arg)
    return options


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """URL of a DuckDB file with the reference and seeded demo data (built once per test session)."""
    from data.maintenance import ensure_reference, load_demo

    path = tmp_path_factory.mktemp("store") / "demo.duckdb"
    url = f"duckdb:///{path}"
    store = open_store(url)
    ensure_reference(store)
    load_demo(store)
    store.close()
    return url


def wait_until(predicate, timeout: float = 25, message: str = "condition") -> None:  # noqa: ANN001
    """Poll ``predicate`` (a browser condition) until it is truthy, or fail naming ``message``."""
    import time

    end = time.time() + timeout
    while time.time() < end:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - the DOM may be mid-render
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message}")


def app_with_partner(demo_db: str, tmp_path, username: str, password: str, *, secret: str = "p" * 48):  # noqa: ANN001, ANN201
    """A dashboard on a private copy of the demo store (users added stay there) with one partner."""
    import shutil

    from dashboard.app import create_app
    from dashboard.settings import Settings
    from data import users

    path = tmp_path / f"{username}.duckdb"
    shutil.copy(demo_db.removeprefix("duckdb://"), path)
    app = create_app(Settings(database_url=f"duckdb://{path}", secret_key=secret))
    users.add_user(app.server.config["CTIP_SERVICES"].store(), username, password, "partner")
    return app


@pytest.fixture(scope="module")
def demo_store() -> Iterator[Store]:
    """An in-memory DuckDB store with the reference data and the demo data (seed 3), per test module."""
    from data.maintenance import ensure_reference, load_demo

    store = open_store("duckdb:///:memory:")
    ensure_reference(store)
    load_demo(store, seed=3)
    yield store
    store.close()


@pytest.fixture(scope="module")
def api_client(demo_store: Store):  # noqa: ANN201 - flask.testing.FlaskClient
    """A bare Flask app serving only the API over ``demo_store`` (no Dash, no sign-in)."""
    import flask

    from dashboard.api import register_api

    app = flask.Flask(__name__)
    register_api(app, lambda: demo_store)
    return app.test_client()
