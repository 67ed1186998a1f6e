"""Users, tokens, sign-in, roles, security headers: data layer on both backends, Flask flows, a browser."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import time

import pytest
from argon2 import PasswordHasher

import data.users as users
from dashboard import ids
from dashboard.app import create_app
from dashboard.auth import LoginRateLimiter, safe_next
from dashboard.cli import main as cli_main
from dashboard.settings import Settings
from data.users import UserError
from tests.conftest import app_with_partner
from tests.conftest import wait_until as _wait

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch):
    """argon2id with small parameters: the same code path, a fraction of the CPU."""
    monkeypatch.setattr(users, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(users, "_dummy_hash", None)


# -- data/users.py on both backends ------------------------------------------------------------------
def test_users_add_list_remove(store):
    assert users.has_users(store) is False
    assert users.list_users(store) == []
    users.add_user(store, "alice", PASSWORD, "partner")
    users.add_user(store, "root.admin", PASSWORD + "!", "admin")
    listed = users.list_users(store)
    assert [(u["username"], u["role"], u["disabled"]) for u in listed] == [
        ("alice", "partner", False),
        ("root.admin", "admin", False),
    ]
    assert all(set(u) == {"username", "role", "created_at", "disabled"} for u in listed)
    assert users.has_users(store) is True
    users.remove_user(store, "alice")
    assert [u["username"] for u in users.list_users(store)] == ["root.admin"]
    with pytest.raises(UserError, match="no user 'alice'"):
        users.remove_user(store, "alice")


def test_users_password_is_stored_as_argon2id_only(store):
    users.add_user(store, "alice", PASSWORD, "partner")
    stored = store.scalar("SELECT password_hash FROM users WHERE username = ?", ["alice"])
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    dump = store.query("SELECT * FROM users").to_string()
    assert PASSWORD not in dump


def test_users_reject_bad_names_passwords_roles_and_duplicates(store):
    for name in ("Al", "UPPER", "a b c", "x" * 41, "../etc", "<script>"):
        with pytest.raises(UserError, match="username"):
            users.add_user(store, name, PASSWORD, "partner")
    with pytest.raises(UserError, match="at least 12"):
        users.add_user(store, "alice", "short", "partner")
    with pytest.raises(UserError, match="role 'owner'"):
        users.add_user(store, "alice", PASSWORD, "owner")
    users.add_user(store, "alice", PASSWORD, "partner")
    with pytest.raises(UserError, match="already exists"):
        users.add_user(store, "alice", PASSWORD, "admin")
    assert users.verify_user(store, "alice", PASSWORD) == "partner"


def test_users_verify_right_wrong_unknown_disabled_and_new_password(store):
    users.add_user(store, "alice", PASSWORD, "admin")
    assert users.verify_user(store, "alice", PASSWORD) == "admin"
    assert users.verify_user(store, "alice", PASSWORD + "x") is None
    assert users.verify_user(store, "mallory", PASSWORD) is None
    assert users.verify_user(store, "ALICE'--", PASSWORD) is None
    users.set_password(store, "alice", "another long password")
    assert users.verify_user(store, "alice", PASSWORD) is None
    assert users.verify_user(store, "alice", "another long password") == "admin"
    users.set_disabled(store, "alice", True)
    assert users.verify_user(store, "alice", "another long password") is None
    assert users.has_users(store) is False


def test_users_old_hash_parameters_are_upgraded_on_sign_in(store, monkeypatch):
    users.add_user(store, "alice", PASSWORD, "partner")
    monkeypatch.setattr(users, "HASHER", PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    assert users.verify_user(store, "alice", PASSWORD) == "partner"
    assert "m=2048,t=2" in store.scalar("SELECT password_hash FROM users WHERE username = 'alice'")


def test_tokens_create_verify_revoke(store):
    users.add_user(store, "alice", PASSWORD, "partner")
    token_id, token = users.create_token(store, "alice", "nightly export")
    assert re.fullmatch(rf"ctip_{token_id}_[A-Za-z0-9_-]{{43}}", token)
    secret = token.split("_", 2)[2]
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    stored = store.scalar("SELECT token_hash FROM api_tokens WHERE token_id = ?", [token_id])
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in store.query("SELECT * FROM api_tokens").to_string()
    assert users.verify_token(store, token) == ("alice", "partner")
    assert users.verify_token(store, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert users.verify_token(store, "ctip_nonsense") is None
    [listed] = users.list_tokens(store)
    assert (
        listed["token_id"] == token_id
        and listed["label"] == "nightly export"
        and listed["revoked_at"] is None
    )
    assert "token_hash" not in listed
    with pytest.raises(UserError, match="no token"):
        users.revoke_token(store, token_id, username="bob")
    users.revoke_token(store, token_id)
    assert users.verify_token(store, token) is None
    assert users.list_tokens(store, "alice")[0]["revoked_at"] is not None
    with pytest.raises(UserError, match="already revoked"):
        users.revoke_token(store, token_id)


def test_tokens_stop_with_a_disabled_or_removed_owner(store):
    users.add_user(store, "alice", PASSWORD, "admin")
    _, token = users.create_token(store, "alice", "")
    assert users.verify_token(store, token) == ("alice", "admin")
    users.set_disabled(store, "alice", True)
    assert users.verify_token(store, token) is None
    with pytest.raises(UserError, match="disabled"):
        users.create_token(store, "alice", "")
    users.set_disabled(store, "alice", False)
    assert users.verify_token(store, token) == ("alice", "admin")
    users.remove_user(store, "alice")
    assert users.verify_token(store, token) is None
    assert users.list_tokens(store) == []
    with pytest.raises(UserError, match="no user"):
        users.create_token(store, "alice", "")


def test_rate_limiter_counts_failures_in_a_sliding_window():
    now = [1000.0]
    limiter = LoginRateLimiter(max_failures=5, window=900, clock=lambda: now[0])
    keys = ("user:alice", "ip:10.0.0.1")
    for _ in range(4):
        limiter.record_failure(keys)
        now[0] += 10
    assert limiter.retry_after(keys) == 0
    limiter.record_failure(keys)
    assert limiter.retry_after(keys) == 900 - 40
    assert limiter.retry_after(["user:bob"]) == 0
    now[0] += 900 - 40
    assert limiter.retry_after(keys) == 0
    limiter.reset("user:alice")
    assert limiter.retry_after(["user:alice"]) == 0


def test_store_rate_limiter_is_shared_by_every_process_using_the_store(store):
    """Two limiters on one store stand for two gunicorn workers: failures counted by one stop the other."""
    from dashboard.auth import StoreLoginRateLimiter

    now = [1_000_000.0]
    worker_a = StoreLoginRateLimiter(lambda: store, max_failures=5, window=900, clock=lambda: now[0])
    worker_b = StoreLoginRateLimiter(lambda: store, max_failures=5, window=900, clock=lambda: now[0])
    keys = ("user:alice", "ip:10.0.0.1")
    for i in range(5):
        (worker_a if i % 2 else worker_b).record_failure(keys)
        now[0] += 10
    assert worker_a.retry_after(keys) == worker_b.retry_after(keys) == 900 - 50
    assert worker_b.retry_after(["user:bob"]) == 0
    worker_a.reset("user:alice")
    assert worker_b.retry_after(["user:alice"]) == 0 and worker_b.retry_after(["ip:10.0.0.1"]) > 0
    now[0] += 900
    worker_b.record_failure(["ip:10.0.0.2"])  # old failures leave the window and the table
    assert worker_a.retry_after(["ip:10.0.0.1"]) == 0
    assert store.scalar("SELECT COUNT(*) FROM signin_failures") == 1


@pytest.mark.parametrize(
    "target,expected",
    [
        ("/", "/"),
        ("/?view=migration&start=2024-01", "/?view=migration&start=2024-01"),
        ("/auth/tokens", "/auth/tokens"),
        ("//evil.example", "/"),
        ("//evil.example/path", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("evil", "/"),
        ("", "/"),
        ("/\r\nSet-Cookie: x=1", "/"),
        (None, "/"),
    ],
)
def test_safe_next_allows_only_same_origin_paths(target, expected):
    assert safe_next(target) == expected


# -- Flask flows -------------------------------------------------------------------------------------
@pytest.fixture
def app(tmp_path):
    return create_app(Settings(database_url=f"duckdb:///{tmp_path / 'auth.duckdb'}", secret_key="k" * 48))


@pytest.fixture
def app_store(app):
    return app.server.config["CTIP_SERVICES"].store()


@pytest.fixture
def client(app):
    return app.server.test_client()


def _csrf(client, path="/auth/login"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _login(client, username="alice", password=PASSWORD, next_url="/", csrf=None):
    token = csrf if csrf is not None else _csrf(client)
    return client.post(
        "/auth/login",
        data={"username": username, "password": password, "next": next_url, "csrf_token": token},
    )


def test_with_no_users_everyone_is_anonymous_and_sign_in_is_off(client):
    assert client.get("/auth/me").json == {"user": None, "role": "anonymous", "users_configured": False}
    page = client.get("/auth/login").get_data(as_text=True)
    assert "No users are configured" in page and 'name="password"' not in page
    with client.session_transaction() as session:
        session["csrf"] = "t" * 43
    assert _login(client, csrf="t" * 43).status_code == 403
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "Sign in" not in layout and "Signed in as" not in layout


def test_sign_in_needs_the_csrf_token(client, app_store):
    users.add_user(app_store, "alice", PASSWORD, "partner")
    assert _login(client, csrf="").status_code == 400
    assert _login(client, csrf="forged-" + "x" * 40).status_code == 400
    assert client.get("/auth/me").json["role"] == "anonymous"


def test_sign_in_sets_a_hardened_session_and_sign_out_clears_it(client, app_store):
    users.add_user(app_store, "alice", PASSWORD, "partner")
    before = _csrf(client)
    res = _login(client, csrf=before)
    assert res.status_code == 303 and res.headers["Location"] == "/"
    cookie = res.headers["Set-Cookie"]
    assert cookie.startswith("ctip_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie and "Secure" not in cookie
    assert client.get("/auth/me").json == {"user": "alice", "role": "partner", "users_configured": True}
    with client.session_transaction() as session:
        assert session["csrf"] != before  # rotated at sign-in
        assert session["user"] == "alice" and session["role"] == "partner" and session["iat"] <= time.time()
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "Signed in as alice (partner)" in layout
    assert "Sign out" in client.get("/auth/logout").get_data(as_text=True)
    assert client.post("/auth/logout", data={"csrf_token": "nope"}).status_code == 400
    assert client.get("/auth/me").json["user"] == "alice"
    res = client.post("/auth/logout", data={"csrf_token": _csrf(client, "/auth/logout")})
    assert res.status_code == 303
    assert client.get("/auth/me").json == {"user": None, "role": "anonymous", "users_configured": True}
    assert '"Sign in"' in client.get("/_dash-layout").get_data(as_text=True)


def test_secure_cookie_and_session_lifetime_come_from_settings(tmp_path):
    app = create_app(
        Settings(
            database_url=f"duckdb:///{tmp_path / 'a.duckdb'}",
            secret_key="s" * 48,
            cookie_secure=True,
            session_minutes=5,
        )
    )
    users.add_user(app.server.config["CTIP_SERVICES"].store(), "alice", PASSWORD, "partner")
    res = _login(app.server.test_client())
    assert "Secure" in res.headers["Set-Cookie"]
    assert app.server.permanent_session_lifetime.total_seconds() == 300
    assert app.server.secret_key == "s" * 48


def test_settings_read_auth_from_the_environment():
    s = Settings.from_env({"CTIP_SECRET_KEY": "abc", "CTIP_COOKIE_SECURE": "1", "CTIP_SESSION_MINUTES": "30"})
    assert (s.secret_key, s.cookie_secure, s.session_minutes) == ("abc", True, 30)
    assert "abc" not in repr(s)
    s = Settings.from_env({})
    assert (s.secret_key, s.cookie_secure, s.session_minutes) == ("", False, 120)


def test_without_a_secret_key_a_random_one_is_used(tmp_path):
    one = create_app(Settings(database_url=f"duckdb:///{tmp_path / 'a.duckdb'}")).server.secret_key
    two = create_app(Settings(database_url=f"duckdb:///{tmp_path / 'b.duckdb'}")).server.secret_key
    assert one and two and one != two and len(one) >= 32


def test_expired_session_is_anonymous(client, app_store):
    users.add_user(app_store, "alice", PASSWORD, "partner")
    _login(client)
    assert client.get("/auth/me").json["role"] == "partner"
    with client.session_transaction() as session:
        session["iat"] = int(time.time()) - 121 * 60
    assert client.get("/auth/me").json == {"user": None, "role": "anonymous", "users_configured": True}
    with client.session_transaction() as session:
        assert "user" not in session


def test_session_of_a_removed_or_demoted_user_follows_the_store(client, app_store):
    users.add_user(app_store, "alice", PASSWORD, "admin")
    _login(client)
    assert client.get("/auth/me").json["role"] == "admin"
    app_store.execute("UPDATE users SET role = 'partner' WHERE username = 'alice'")
    assert client.get("/auth/me").json["role"] == "partner"
    users.set_disabled(app_store, "alice", True)
    users.add_user(app_store, "bob", PASSWORD, "admin")
    assert client.get("/auth/me").json["role"] == "anonymous"


def test_failed_sign_ins_are_rate_limited(client, app_store, tmp_path):
    users.add_user(app_store, "alice", PASSWORD, "partner")
    token = _csrf(client)
    for _ in range(5):
        res = _login(client, password="wrong password!", csrf=token)
        assert res.status_code == 401 and "Wrong user name or password" in res.get_data(as_text=True)
    res = _login(client, csrf=token)  # even the right password waits
    assert res.status_code == 429
    assert "Too many failed sign-ins; try again in 15 minutes" in res.get_data(as_text=True)
    assert 800 < int(res.headers["Retry-After"]) <= 900
    # An unknown name gets the same answers, so they do not tell whether a user exists.
    other = create_app(Settings(database_url=f"duckdb:///{tmp_path / 'other.duckdb'}", secret_key="k" * 48))
    users.add_user(other.server.config["CTIP_SERVICES"].store(), "bob", PASSWORD, "partner")
    client2 = other.server.test_client()
    token2 = _csrf(client2)
    codes = [_login(client2, username="nobody", csrf=token2).status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]


def test_open_redirects_are_blocked(client, app_store):
    users.add_user(app_store, "alice", PASSWORD, "partner")
    assert _login(client, next_url="//evil.example").headers["Location"] == "/"
    assert _login(client, next_url="https://evil.example/x").headers["Location"] == "/"
    assert _login(client, next_url="/?view=migration").headers["Location"] == "/?view=migration"
    page = client.get("/auth/login?next=//evil.example").get_data(as_text=True)
    assert 'name="next" value="/"' in page


def test_bearer_token_acts_with_the_owner_role_until_revoked(client, app_store):
    users.add_user(app_store, "alice", PASSWORD, "partner")
    token_id, token = users.create_token(app_store, "alice", "script")
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/auth/me", headers=auth).json == {
        "user": "alice",
        "role": "partner",
        "users_configured": True,
    }
    assert client.get("/api/v1/indicators", headers=auth).status_code == 200
    assert (
        client.get("/auth/me", headers={"Authorization": "Bearer ctip_0000000000000000_" + "A" * 43}).json[
            "role"
        ]
        == "anonymous"
    )
    users.revoke_token(app_store, token_id)
    assert client.get("/auth/me", headers=auth).json["role"] == "anonymous"


def test_partner_creates_and_revokes_tokens_in_the_browser_pages(client, app_store):
    users.add_user(app_store, "alice", PASSWORD, "partner")
    users.add_user(app_store, "bob", PASSWORD, "partner")
    _, bobs = users.create_token(app_store, "bob", "bob's")
    assert client.get("/auth/tokens").headers["Location"].startswith("/auth/login?next=%2Fauth%2Ftokens")
    _login(client)
    page = client.get("/auth/tokens").get_data(as_text=True)
    assert "No tokens yet" in page and "bob" not in page
    csrf = _csrf(client, "/auth/tokens")
    assert client.post("/auth/tokens", data={"label": "x", "csrf_token": "bad"}).status_code == 400
    res = client.post("/auth/tokens", data={"label": "<b>cron</b>", "csrf_token": csrf})
    assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
    html = res.get_data(as_text=True)
    token = re.search(r"ctip_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", html).group(0)
    assert "&lt;b&gt;cron&lt;/b&gt;" in html and "<b>cron</b>" not in html
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json["user"] == "alice"
    assert token not in client.get("/auth/tokens").get_data(as_text=True)  # shown once
    token_id = token.split("_")[1]
    bob_id = bobs.split("_")[1]
    assert client.post(f"/auth/tokens/{bob_id}/revoke", data={"csrf_token": csrf}).status_code == 404
    res = client.post(f"/auth/tokens/{token_id}/revoke", data={"csrf_token": csrf})
    assert res.status_code == 303
    assert client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json["role"] == "anonymous"
    assert users.verify_token(app_store, bobs) == ("bob", "partner")
    assert client.get("/auth/users").status_code == 403  # partners do not manage users


def test_admin_manages_users_in_the_browser_pages(client, app_store):
    users.add_user(app_store, "root", PASSWORD, "admin")
    _login(client, username="root")
    csrf = _csrf(client, "/auth/users")
    res = client.post(
        "/auth/users", data={"username": "carol", "password": PASSWORD, "role": "partner", "csrf_token": csrf}
    )
    assert res.status_code == 303
    assert users.verify_user(app_store, "carol", PASSWORD) == "partner"
    res = client.post(
        "/auth/users", data={"username": "<x>", "password": PASSWORD, "role": "partner", "csrf_token": csrf}
    )
    assert res.status_code == 400 and "&#39;&lt;x&gt;&#39;" in res.get_data(as_text=True)
    assert client.post("/auth/users/root/remove", data={"csrf_token": csrf}).status_code == 400
    assert client.post("/auth/users/carol/remove", data={"csrf_token": csrf}).status_code == 303
    assert [u["username"] for u in users.list_users(app_store)] == ["root"]


def test_user_text_is_escaped_on_the_sign_in_page(client, app_store):
    users.add_user(app_store, "alice", PASSWORD, "partner")
    html = _login(client, username='"><script>alert(1)</script>').get_data(as_text=True)
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- headers and errors -------------------------------------------------------------------------------
def _inline_script_hashes(html: str) -> list[str]:
    found = []
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)  # e.g. Dash's IE-only notice in a conditional comment
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        if "src=" in attrs or "application/json" in attrs:
            continue
        found.append("'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'")
    return found


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/_dash-layout",
        "/api/v1/indicators",
        "/auth/login",
        "/auth/me",
        "/no/such/page",
        "/assets/vendor/bootstrap.min.css",
    ],
)
def test_security_headers_on_every_response(client, path):
    res = client.get(path)
    csp = res.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
    assert "https:" not in csp and "http:" not in csp and "*" not in csp
    assert "'unsafe-eval'" not in csp
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert res.headers["Referrer-Policy"] == "same-origin"
    assert res.headers["X-Frame-Options"] == "DENY"
    assert res.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_csp_allows_exactly_the_inline_scripts_of_the_index_page(client):
    res = client.get("/")
    csp = res.headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", csp).group(1).split()
    hashes = _inline_script_hashes(res.get_data(as_text=True))
    assert hashes, "Dash's index page has its renderer inline"
    assert set(hashes) <= set(script_src)
    assert "'unsafe-inline'" not in script_src


def test_server_errors_show_no_stack_trace(tmp_path):
    app = create_app(Settings(database_url=f"duckdb:///{tmp_path / 'e.duckdb'}", secret_key="k" * 48))

    @app.server.get("/api/v1/boom")
    def boom():
        raise RuntimeError("secret internals at /srv/app.py line 42")

    @app.server.get("/boom")
    def boom_html():
        raise RuntimeError("secret internals at /srv/app.py line 42")

    assert not app.server.config["PROPAGATE_EXCEPTIONS"]
    client = app.server.test_client()
    res = client.get("/api/v1/boom")
    assert res.status_code == 500 and res.json == {"error": "internal error; the server log has the details"}
    res = client.get("/boom", headers={"Accept": "text/html"})
    body = res.get_data(as_text=True)
    assert res.status_code == 500 and "Something went wrong" in body
    assert "secret internals" not in body and "Traceback" not in body
    assert res.headers["Content-Security-Policy"]


# -- command line -------------------------------------------------------------------------------------
def test_cli_user_and_token_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CTIP_DATABASE_URL", f"duckdb:///{tmp_path / 'cli.duckdb'}")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli_main(["user", "add", "alice", "--role", "partner", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli_main(["user", "add", "bob", "--role", "admin", "--password-stdin"]) == 1
    assert "at least 12" in capsys.readouterr().err
    answers = iter([PASSWORD, PASSWORD + "?"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert cli_main(["user", "add", "bob", "--role", "admin"]) == 1
    assert "differ" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["user", "add", "bob", "--role", "owner", "--password-stdin"])
    capsys.readouterr()
    assert cli_main(["user", "list"]) == 0
    out = capsys.readouterr().out
    assert "alice" in out and "partner" in out and "$argon2" not in out and "bob" not in out
    assert cli_main(["token", "create", "alice", "--label", "etl"]) == 0
    token = re.search(r"ctip_[0-9a-f]{16}_\S+", capsys.readouterr().out).group(0)
    assert cli_main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    token_id = token.split("_")[1]
    assert token_id in listing and "active" in listing and "etl" in listing and token not in listing
    assert cli_main(["token", "revoke", token_id]) == 0
    assert cli_main(["token", "revoke", token_id]) == 1
    assert cli_main(["user", "remove", "alice"]) == 0
    assert cli_main(["user", "remove", "alice"]) == 1
    capsys.readouterr()
    assert cli_main(["user", "list"]) == 0
    assert "no users" in capsys.readouterr().out


# -- browser: the CSP is satisfiable -----------------------------------------------------------------
@pytest.fixture
def csp_app(demo_db, tmp_path):
    """The demo store copied (so users added here stay here) with one partner account."""
    return app_with_partner(demo_db, tmp_path, "alice", PASSWORD, secret="b" * 48)




def test_browser_page_draws_under_the_csp_and_sign_in_works(dash_duo, csp_app):
    driver = dash_duo.driver
    # Record CSP violations from the very first script of every page (they also reach the console log).
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": (
                "window.__csp = []; document.addEventListener('securitypolicyviolation', "
                "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
            )
        },
    )
    dash_duo.start_server(csp_app)
    driver.get(dash_duo.server_url + "/?view=overview")
    map_paths = f"#{ids.MAP} path.choroplethlocation"
    _wait(lambda: len(driver.find_elements("css selector", map_paths)) >= 25, message="map paths")
    csp = driver.execute_async_script(
        "const done = arguments[0]; fetch('/').then(r => done(r.headers.get('Content-Security-Policy')));"
    )
    assert "frame-ancestors 'none'" in csp and "sha256-" in csp
    # Every trace type the views draw: choropleth, scatter, bar (overview); scattergeo and sankey (migration).
    _wait(
        lambda: driver.find_elements("css selector", f"#{ids.SERIES} .scatterlayer .trace"), message="series"
    )
    driver.get(dash_duo.server_url + "/?view=migration&indicator=migrants_departed")
    _wait(lambda: driver.find_elements("css selector", f"#{ids.SANKEY} .sankey-node"), message="sankey")
    _wait(lambda: driver.find_elements("css selector", f"#{ids.FLOW_MAP} .scattergeo"), message="flow map")
    assert driver.execute_script("return window.__csp;") == []
    # Sign in through the server-rendered form, and the header says who is signed in.
    dash_duo.wait_for_text_to_equal(f"#{ids.HEADER_ACCOUNT} a", "Sign in")
    dash_duo.find_element(f"#{ids.HEADER_ACCOUNT} a").click()
    _wait(lambda: driver.find_elements("css selector", "#f-username"), message="sign-in form")
    dash_duo.find_element("#f-username").send_keys("alice")
    dash_duo.find_element("#f-password").send_keys(PASSWORD)
    dash_duo.find_element("form button[type=submit]").click()
    _wait(
        lambda: "Signed in as alice (partner)" in dash_duo.find_element(f"#{ids.HEADER_ACCOUNT}").text,
        message="signed-in header",
    )
    assert driver.execute_script("return window.__csp;") == []
    assert dash_duo.get_logs() == []
