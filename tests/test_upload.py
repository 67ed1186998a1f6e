"""Import tab: partner-only uploads checked like ``ctip import``, confirmed writes, undo, size limit (and a browser run)."""

from __future__ import annotations

import base64
import time
from contextlib import contextmanager
from pathlib import Path

import flask
import pytest
from argon2 import PasswordHasher

from callbacks import upload
from callbacks.upload import PendingFiles, on_confirm, on_replace, on_undo, on_upload, update_import_access
from dashboard import ids
from dashboard.app import create_app
from dashboard.settings import Settings
from data import users
from data.maintenance import store_info
from tests.conftest import app_with_partner
from tests.conftest import wait_until as _wait

FIXTURES = Path(__file__).parent / "fixtures"
GOOD = FIXTURES / "partner_khmer_aliases.csv"
BAD = FIXTURES / "import_20_mistakes.csv"
PASSWORD = "a long partner passphrase"


@pytest.fixture
def fast_hasher(monkeypatch):
    monkeypatch.setattr(users, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def app(fast_hasher):
    """An app on an in-memory store with reference data only, and partners nita and dara."""
    app = create_app(Settings(database_url="duckdb:///:memory:", secret_key="u" * 48))
    store = app.server.config["CTIP_SERVICES"].store()
    users.add_user(store, "nita", PASSWORD, "partner")
    users.add_user(store, "dara", PASSWORD, "partner")
    return app


@pytest.fixture
def services(app):
    return app.server.config["CTIP_SERVICES"]


@pytest.fixture
def pending(monkeypatch):
    files = PendingFiles()
    monkeypatch.setattr(upload, "PENDING", files)
    for fn in (on_upload, on_replace, on_confirm):
        monkeypatch.setitem(fn.__kwdefaults__, "pending", files)
    return files


@contextmanager
def request_as(app, username: str | None = None):
    """A request context whose session is signed in as ``username`` (anonymous when ``None``)."""
    with app.server.test_request_context("/_dash-update-component", method="POST"):
        if username:
            flask.session.update({"user": username, "iat": int(time.time())})
        yield


def data_url(raw: bytes, mime: str = "text/csv") -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


def text(component) -> str:
    """All the text of a component tree."""
    if component is None or isinstance(component, bool):
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text(c) for c in component)
    return text(getattr(component, "children", None))


def test_upload_anonymous_is_refused_and_keeps_nothing(app, services, pending):
    before = store_info(services.store())
    with request_as(app):
        panel = on_upload(services, data_url(GOOD.read_bytes()), GOOD.name, False)
        assert "Sign in as a partner" in text(panel.status)
        assert panel.token is None and panel.summary is None and panel.confirm_disabled is True
        assert len(pending) == 0
        gate, hidden, batches, undo_disabled, _question, target = update_import_access(services)
        assert "Sign in as a partner" in text(gate) and hidden is True and batches is None
        assert undo_disabled is True and target is None
        assert "Sign in as a partner" in text(on_confirm(services, "anything").status)
        assert "Sign in as a partner" in text(on_undo(services, None).status)
    assert store_info(services.store()) == before


def test_upload_with_no_users_configured_says_who_can_add_one(fast_hasher):
    app = create_app(Settings(database_url="duckdb:///:memory:", secret_key="u" * 48))
    with request_as(app):
        gate, hidden, *_ = update_import_access(app.server.config["CTIP_SERVICES"])
    assert "ctip user add" in text(gate) and hidden is True


def test_upload_bad_file_lists_problems_and_writes_nothing(app, services, pending):
    before = store_info(services.store())
    with request_as(app, "nita"):
        panel = on_upload(services, data_url(BAD.read_bytes()), BAD.name, False)
        status, problems = text(panel.status), text(panel.problems)
        assert BAD.name in status and "nothing was written" in status
        assert panel.confirm_disabled is True and panel.summary is None
        rows = panel.problems.children[2].children
        assert len(rows) >= 20
        assert "Siem Reab" in problems and "victim_identified" in problems and "2024-13" in problems
        assert [c.children for c in rows[0].children][0] == 2  # spreadsheet row of the first problem
        # Even a forced confirmation of the file re-validates and writes nothing.
        forced = on_confirm(services, panel.token)
        assert "nothing was written" in text(forced.status) and forced.written is upload.no_update
    assert store_info(services.store()) == before


def test_upload_good_file_dry_run_then_import_then_undo(app, services, pending):
    store = services.store()
    before = store_info(store)
    with request_as(app, "nita"):
        version_before = services.data_version()
        panel = on_upload(services, data_url(GOOD.read_bytes()), GOOD.name, False)
        assert GOOD.name in text(panel.status) and "Nothing has been written yet" in text(panel.status)
        summary = text(panel.summary)
        assert "12" in summary and "Migrants departed" in summary and "Siem Reap (17)" in summary
        assert "Jan 2024 – Oct 2024" in summary
        assert panel.confirm_disabled is False and panel.confirm_label == "Import 12 rows"
        assert isinstance(panel.token, str) and len(pending) == 1
        assert store_info(store) == before  # the dry run wrote nothing

        done = on_confirm(services, panel.token)
        assert GOOD.name in text(done.status) and "imported 12 rows" in text(done.status)
        assert done.written.startswith("import-") and done.token is None and done.confirm_disabled is True
        assert len(pending) == 0
        after = store_info(store)
        assert after["rows"] == before["rows"] + 12 and after["batches"] == before["batches"] + 1
        assert services.data_version() != version_before  # the cache sees the write at once

        gate, hidden, batches, undo_disabled, question, target = update_import_access(services)
        assert hidden is False and undo_disabled is False and target == done.written
        assert GOOD.name in text(batches) and done.written in text(batches) and GOOD.name in question

        undone = on_undo(services, target)
        assert "Removed the last import" in text(undone.status) and GOOD.name in text(undone.status)
        assert "12 rows" in text(undone.status)
        assert on_confirm(services, panel.token).confirm_disabled is True  # the token was used up
    assert store_info(store) == before


def test_upload_conflicts_need_replace_and_the_option_rechecks_the_kept_file(app, services, pending):
    changed = GOOD.read_bytes().replace(b";120;", b";121;")
    with request_as(app, "nita"):
        first = on_upload(services, data_url(GOOD.read_bytes()), GOOD.name, False)
        on_confirm(services, first.token)
        again = on_upload(services, data_url(changed), GOOD.name, False)
        assert f"{GOOD.name}: 12 problems" in text(again.status) and "Replace existing values" in text(again.status)
        assert "tick “Replace existing values”" in text(again.problems) and "--replace" not in text(again.problems)
        rechecked = on_replace(services, again.token, True)
        assert rechecked.confirm_disabled is False and rechecked.confirm_label == "Import 12 rows"
        done = on_confirm(services, again.token)
        assert f"{GOOD.name}: imported 1 row (11 rows already stored unchanged)" in text(done.status)
        assert on_replace(services, None, True) is None  # nothing waiting: nothing to recheck


def test_upload_too_big_is_refused_with_the_limit(app, services, pending, monkeypatch):
    monkeypatch.setenv("CTIP_IMPORT_MAX_BYTES", str(1024 * 1024))
    big = b"indicator,province,period,value\n" + b"x" * (1536 * 1024)
    with request_as(app, "nita"):
        panel = on_upload(services, data_url(big), "all-years.csv", False)
        message = text(panel.status)
        assert message.startswith("all-years.csv: the file is 1.5 MB; the limit is 1 MB — split it")
        assert panel.token is None and len(pending) == 0
        monkeypatch.setenv("CTIP_IMPORT_MAX_BYTES", "lots")
        assert "CTIP_IMPORT_MAX_BYTES" in text(on_upload(services, data_url(b"a"), "a.csv", False).status)


def test_upload_token_works_only_for_its_uploader(app, services, pending):
    before = store_info(services.store())
    with request_as(app, "nita"):
        token = on_upload(services, data_url(GOOD.read_bytes()), GOOD.name, False).token
    with request_as(app, "dara"):
        assert "no longer on the server" in text(on_confirm(services, token).status)
    assert store_info(services.store()) == before


def test_undo_refuses_when_the_page_showed_another_batch(app, services, pending):
    with request_as(app, "nita"):
        assert "no import to undo" in text(on_undo(services, None).status)
        done = on_confirm(services, on_upload(services, data_url(GOOD.read_bytes()), GOOD.name, False).token)
        before = store_info(services.store())
        stale = on_undo(services, "import-older")
        assert "Nothing was removed" in text(stale.status) and done.written in text(stale.status)
        assert store_info(services.store()) == before


def test_upload_odd_names_and_garbled_contents(app, services, pending):
    assert upload.clean_filename("C:\\Users\\me\\data.csv") == "data.csv"
    assert upload.clean_filename("../../etc/passwd\x00.csv") == "passwd.csv"
    assert upload.clean_filename(None) == "upload"
    with request_as(app, "nita"):
        assert "garbled" in text(on_upload(services, "data:text/csv;base64,@@@", "x.csv", False).status)
        assert "no file content" in text(on_upload(services, None, "x.csv", False).status)
        pdf = on_upload(services, data_url(b"%PDF-1.4 binary"), "report.csv", False)
        assert "report.csv" in text(pdf.status) and pdf.confirm_disabled is True


def test_pending_files_expire_and_stay_few():
    now = [0.0]
    files = PendingFiles(ttl=900, max_files=2, clock=lambda: now[0])
    a, _ = files.put("nita", "a.csv", b"a", False)
    b, _ = files.put("nita", "b.csv", b"b", False)
    c, entry = files.put("nita", "c.csv", b"c", False)
    assert entry.filename == "c.csv" and entry.data == b"c"
    assert files.get(a, "nita") is None and files.get(b, "nita").filename == "b.csv"
    assert files.get(c, "dara") is None
    now[0] = 901
    assert files.get(c, "nita") is None and len(files) == 0


# -- browser ---------------------------------------------------------------------------------------------
@pytest.fixture
def partner_app(demo_db, tmp_path, fast_hasher):
    return app_with_partner(demo_db, tmp_path, "nita", PASSWORD)




def test_partner_uploads_imports_and_undoes_in_the_browser(dash_duo, partner_app, monkeypatch):
    dash_duo.start_server(partner_app)
    driver = dash_duo.driver

    def shown(cid):
        return dash_duo.find_element(f"#{cid}").text

    def click(cid):
        element = dash_duo.find_element(f"#{cid}")
        # Bootstrap scrolls smoothly: jump instead, so the element is where the click lands.
        driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
        element.click()

    driver.get(dash_duo.server_url + "/?view=import")
    _wait(lambda: "Sign in as a partner" in shown(ids.IMPORT_GATE), message="the sign-in notice")
    assert not dash_duo.find_element(f"#{ids.IMPORT_FORM}").is_displayed()
    driver.get(dash_duo.server_url + "/auth/login")
    dash_duo.find_element("#f-username").send_keys("nita")
    dash_duo.find_element("#f-password").send_keys(PASSWORD)
    dash_duo.find_element("form button[type=submit]").click()
    _wait(lambda: "Signed in as nita" in shown(ids.HEADER_ACCOUNT), message="signed in")

    # The browser refuses a file over the limit and says why (no request is sent).
    monkeypatch.setenv("CTIP_IMPORT_MAX_BYTES", "300")
    driver.get(dash_duo.server_url + "/?view=import")
    _wait(lambda: dash_duo.find_element(f"#{ids.IMPORT_FORM}").is_displayed(), message="the import form")
    dash_duo.find_element(f"#{ids.IMPORT_UPLOAD} input[type=file]").send_keys(str(GOOD.resolve()))
    _wait(lambda: "the limit is 300 bytes" in shown(ids.IMPORT_CLIENT_NOTE), message="the browser's size message")
    assert shown(ids.IMPORT_STATUS) == ""

    monkeypatch.delenv("CTIP_IMPORT_MAX_BYTES")
    driver.get(dash_duo.server_url + "/?view=import")
    _wait(lambda: dash_duo.find_element(f"#{ids.IMPORT_FORM}").is_displayed(), message="the import form")
    dash_duo.find_element(f"#{ids.IMPORT_UPLOAD} input[type=file]").send_keys(str(GOOD.resolve()))
    # The demo store already holds some of these rows: problems first, nothing written.
    _wait(lambda: "already in the store" in shown(ids.IMPORT_PROBLEMS), message="the problems table")
    assert GOOD.name in shown(ids.IMPORT_STATUS)
    assert not dash_duo.find_element(f"#{ids.IMPORT_CONFIRM}").is_enabled()
    click(ids.IMPORT_REPLACE)
    _wait(lambda: "Ready to import" in shown(ids.IMPORT_SUMMARY), message="the summary")
    confirm = dash_duo.find_element(f"#{ids.IMPORT_CONFIRM}")
    assert confirm.text == "Import 12 rows" and confirm.is_enabled()
    click(ids.IMPORT_CONFIRM)
    _wait(lambda: "imported 12 rows" in shown(ids.IMPORT_STATUS), message="the success message")
    _wait(lambda: GOOD.name in shown(ids.IMPORT_BATCHES), message="the batch in the list")
    _wait(lambda: dash_duo.find_element(f"#{ids.IMPORT_UNDO_BUTTON}").is_enabled(), message="undo enabled")
    click(ids.IMPORT_UNDO_BUTTON)
    _wait(lambda: driver.switch_to.alert is not None, message="the confirm dialog")
    assert GOOD.name in driver.switch_to.alert.text
    driver.switch_to.alert.accept()
    _wait(lambda: "Removed the last import" in shown(ids.IMPORT_STATUS), message="the undo message")
    assert GOOD.name in shown(ids.IMPORT_STATUS)
    _wait(lambda: "No files imported yet" in shown(ids.IMPORT_BATCHES), message="an empty batch list")
    assert dash_duo.get_logs() == []
