"""Sign-in, roles, API tokens and security headers on the Flask server under Dash (``register_auth``).

Roles: an anonymous visitor sees suppressed data; a signed-in ``partner`` sees unsuppressed data and may
import; an ``admin`` also manages users. With no users configured everyone is anonymous (read-only).
Callers ask :func:`current_identity` / :func:`is_partner` inside any request (Dash callbacks run inside
Flask requests); the identity comes from the session cookie or an ``Authorization: Bearer ctip_…`` token.

Sessions are Flask's signed cookies (key ``CTIP_SECRET_KEY``), HttpOnly, SameSite=Lax, Secure with
``CTIP_COOKIE_SECURE=1``, and end ``CTIP_SESSION_MINUTES`` after sign-in. Every form carries a
per-session CSRF token. Failed sign-ins are rate limited per user name and per client address,
counted in the store (``signin_failures``) so all worker processes share the limit; behind a reverse
proxy the client address is the proxy's unless the deployment applies werkzeug's ``ProxyFix``. Every
response carries a content-security policy the app satisfies (it loads nothing off origin; Dash's
inline renderer script is allowed by hash) and the usual hardening headers; a server error shows a
generic page, never a stack trace.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import flask
from markupsafe import Markup
from werkzeug.exceptions import InternalServerError

from data.users import (
    ROLES,
    UserError,
    add_user,
    create_token,
    get_user,
    has_users,
    list_tokens,
    list_users,
    remove_user,
    revoke_token,
    verify_token,
    verify_user,
)

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
EXTENSION = "ctip_auth"
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 15 * 60
SESSION_COOKIE_NAME = "ctip_session"
_EMPTY = Markup("")
STYLESHEET = "/assets/vendor/bootstrap.min.css"

CSP_TEMPLATE = (
    "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Identity:
    """Who is asking: ``username`` is ``None`` for an anonymous visitor."""

    username: str | None = None
    role: str = ANONYMOUS
    via: str = ""  # "session", "token" or "" (anonymous)

    @property
    def is_partner(self) -> bool:
        """Partners and admins see unsuppressed data and may import."""
        return self.role in ROLES

    @property
    def is_admin(self) -> bool:
        """Admins also manage users."""
        return self.role == "admin"


ANONYMOUS_IDENTITY = Identity()


class LoginRateLimiter:
    """Failed sign-ins per key (``user:<name>``, ``ip:<address>``) in a sliding window, in memory.

    After ``max_failures`` failures within ``window`` seconds a key is refused until the oldest of them
    leaves the window. Per process; the number of keys is capped so a flood cannot exhaust memory.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW_SECONDS,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str]) -> int:
        """Seconds until any of ``keys`` may try again (0: now)."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._prune(key, now)
                if times is not None and len(times) >= self.max_failures:
                    wait = max(wait, times[len(times) - self.max_failures] + self.window - now)
        return math.ceil(wait)

    def record_failure(self, keys: Iterable[str]) -> None:
        """Count one failed sign-in against each key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                times = self._prune(key, now)
                if times is None:
                    times = self._failures[key] = deque(maxlen=self.max_failures * 4)
                times.append(now)
            if len(self._failures) > self.max_keys:
                for key in [k for k in self._failures if self._prune(k, now) is None]:
                    self._failures.pop(key, None)
                while len(self._failures) > self.max_keys:
                    self._failures.pop(next(iter(self._failures)))

    def reset(self, key: str) -> None:
        """Forget the failures of ``key`` (after a successful sign-in)."""
        with self._lock:
            self._failures.pop(key, None)

    def _prune(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times


class StoreLoginRateLimiter(LoginRateLimiter):
    """:class:`LoginRateLimiter`'s rule, counted in the store's ``signin_failures`` table, so every
    worker process (and every server sharing a PostgreSQL store) sees the same failures. Falls back to
    counting in memory when the store is read-only."""

    def __init__(self, store: Callable[[], Any], **kwargs: Any) -> None:
        kwargs.setdefault("clock", time.time)  # wall-clock: shared between processes
        super().__init__(**kwargs)
        self._store = store

    def _shared(self) -> Any:
        from data.users import ensure_user_tables

        store = self._store()
        ensure_user_tables(store)
        return None if store.read_only else store

    def retry_after(self, keys: Iterable[str]) -> int:
        store = self._shared()
        keys = list(keys)
        if store is None or not keys:
            return super().retry_after(keys)
        now = self.clock()
        frame = store.query(f"SELECT key, failed_at FROM signin_failures WHERE key IN ({', '.join('?' for _ in keys)}) AND failed_at > ? "
                            "ORDER BY failed_at", [*keys, now - self.window])
        wait = 0.0
        for _, group in frame.groupby("key"):
            times = group["failed_at"].astype(float).tolist()
            if len(times) >= self.max_failures:
                wait = max(wait, times[len(times) - self.max_failures] + self.window - now)
        return math.ceil(wait)

    def record_failure(self, keys: Iterable[str]) -> None:
        store = self._shared()
        keys = list(keys)
        if store is None:
            super().record_failure(keys)
            return
        now = self.clock()
        with store.transaction() as tx:
            tx.execute("DELETE FROM signin_failures WHERE failed_at <= ?", [now - self.window])
            tx.executemany("INSERT INTO signin_failures (key, failed_at) VALUES (?, ?)", [[key[:300], now] for key in keys])

    def reset(self, key: str) -> None:
        store = self._shared()
        if store is None:
            super().reset(key)
            return
        store.execute("DELETE FROM signin_failures WHERE key = ?", [key[:300]])


@dataclass
class _AuthState:
    services: Any
    lifetime: dt.timedelta
    limiter: LoginRateLimiter
    script_hashes: Callable[[], Sequence[str]] | Sequence[str] | None
    _csp: str | None = None

    def csp(self) -> str:
        if self._csp is None:
            hashes = self.script_hashes() if callable(self.script_hashes) else (self.script_hashes or ())
            self._csp = CSP_TEMPLATE.format(hashes="".join(f" {h}" for h in hashes))
        return self._csp


# -- identity -----------------------------------------------------------------------------------------
def _state() -> _AuthState | None:
    if not flask.has_request_context():
        return None
    return flask.current_app.extensions.get(EXTENSION)


def users_configured(services: Any = None) -> bool:
    """Whether any enabled user exists (memoised per request); ``services`` is needed outside one."""
    state = _state()
    if state is None:
        return services is not None and has_users(services.store())
    if "_ctip_users_configured" not in flask.g:
        flask.g._ctip_users_configured = has_users(state.services.store())
    return flask.g._ctip_users_configured


def current_identity() -> Identity:
    """The identity of the current request (anonymous outside a request or with no users configured)."""
    state = _state()
    if state is None:
        return ANONYMOUS_IDENTITY
    identity = flask.g.get("_ctip_identity")
    if identity is None:
        identity = _resolve_identity(state)
        flask.g._ctip_identity = identity
    return identity


def is_partner() -> bool:
    """Whether the current request may see unsuppressed data and import (partner or admin)."""
    return current_identity().is_partner


def is_admin() -> bool:
    """Whether the current request may manage users."""
    return current_identity().is_admin


def header_account(services: Any = None) -> tuple[str, bool]:
    """``(label, show_sign_in)`` for the page header: ``"alice (partner)"`` when signed in, else ``""``
    and whether a "Sign in" link makes sense (users are configured)."""
    identity = current_identity()
    if identity.username:
        return f"{identity.username} ({identity.role})", False
    return "", users_configured(services)


def _resolve_identity(state: _AuthState) -> Identity:
    # No credentials at all: anonymous without asking the store (the common, hot path).
    if not flask.request.headers.get("Authorization") and not flask.session.get("user"):
        return ANONYMOUS_IDENTITY
    if not users_configured():
        return ANONYMOUS_IDENTITY
    store = state.services.store()
    header = flask.request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        found = verify_token(store, header[7:].strip())
        return Identity(found[0], found[1], "token") if found else ANONYMOUS_IDENTITY
    session = flask.session
    username, issued = session.get("user"), session.get("iat")
    if not username:
        return ANONYMOUS_IDENTITY
    now = time.time()
    if not isinstance(issued, (int, float)) or not (
        now - state.lifetime.total_seconds() < issued <= now + 60
    ):
        _end_session()
        return ANONYMOUS_IDENTITY
    user = get_user(store, str(username))
    if user is None or user["disabled"] or user["role"] not in ROLES:
        _end_session()
        return ANONYMOUS_IDENTITY
    return Identity(user["username"], user["role"], "session")


def _end_session() -> None:
    for key in ("user", "role", "iat"):
        flask.session.pop(key, None)


# -- CSRF -------------------------------------------------------------------------------------------
def csrf_token() -> str:
    """This session's CSRF token (created on first use); forms send it as ``csrf_token``."""
    token = flask.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        flask.session["csrf"] = token
    return token


def _check_csrf() -> None:
    sent = flask.request.form.get("csrf_token", "")
    expected = flask.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(
        sent.encode("utf-8"), expected.encode("utf-8")
    ):
        flask.abort(
            _page(
                "Form expired",
                Markup(
                    '<p>The form expired or did not come from this site. <a href="{}">Go back</a>, '
                    "reload the page and try again.</p>"
                ).format(flask.request.path),
                status=400,
            )
        )


def safe_next(target: Any) -> str:
    """``target`` when it is a same-origin relative path (``/…`` but not ``//…``), else ``"/"``."""
    if (
        not isinstance(target, str)
        or not target.startswith("/")
        or target.startswith("//")
        or len(target) > 2000
    ):
        return "/"
    if "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


# -- HTML -------------------------------------------------------------------------------------------
_PAGE = Markup("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · CTIP Atlas</title>
<link rel="stylesheet" href="{stylesheet}">
</head>
<body>
<main class="container py-4"><div class="row"><div class="col-lg-8 col-xl-6">
<p><a href="/">CTIP Atlas</a></p>
<h1 class="h3 mb-3">{title}</h1>
{body}
</div></div></main>
</body>
</html>
""")


def _page(title: str, body: Markup, status: int = 200) -> flask.Response:
    html = _PAGE.format(title=title, stylesheet=STYLESHEET, body=body)
    response = flask.Response(str(html), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def _form(
    action: str, fields: Markup, submit: str, *, button: str = "btn-primary", inline: bool = False
) -> Markup:
    return Markup(
        '<form method="post" action="{action}" class="{cls}">{fields}'
        '<input type="hidden" name="csrf_token" value="{csrf}">'
        '<button type="submit" class="btn {button}">{submit}</button></form>'
    ).format(
        action=action,
        cls="d-inline" if inline else "mb-3",
        fields=fields,
        csrf=csrf_token(),
        button=button,
        submit=submit,
    )


def _input(
    name: str,
    label: str,
    *,
    kind: str = "text",
    value: str = "",
    autocomplete: str = "off",
    required: bool = True,
    maxlength: int = 200,
) -> Markup:
    return Markup(
        '<div class="mb-3"><label class="form-label" for="f-{name}">{label}</label>'
        '<input class="form-control" id="f-{name}" name="{name}" type="{kind}" value="{value}" '
        'autocomplete="{autocomplete}" maxlength="{maxlength}"{required}></div>'
    ).format(
        name=name,
        label=label,
        kind=kind,
        value=value,
        autocomplete=autocomplete,
        maxlength=maxlength,
        required=Markup(" required") if required else "",
    )


def _alert(message: str, kind: str = "danger") -> Markup:
    return Markup('<div class="alert alert-{}" role="alert">{}</div>').format(kind, message)


def _login_page(
    message: Markup | str = "", *, username: str = "", next_url: str = "/", status: int = 200
) -> flask.Response:
    body = Markup(message) if isinstance(message, Markup) else (_alert(message) if message else Markup(""))
    if not users_configured():
        body += Markup(
            "<p>No users are configured, so the dashboard is read-only for everyone. An administrator "
            "adds users with <code>ctip user add NAME --role partner</code>.</p>"
        )
        return _page("Sign in", body, status=status)
    identity = current_identity()
    if identity.username:
        body += _alert(f"You are signed in as {identity.username} ({identity.role}).", "info")
    fields = (
        _input("username", "User name", value=username, autocomplete="username", maxlength=40)
        + _input("password", "Password", kind="password", autocomplete="current-password", maxlength=1024)
        + Markup('<input type="hidden" name="next" value="{}">').format(safe_next(next_url))
    )
    body += _form("/auth/login", fields, "Sign in")
    return _page("Sign in", body, status=status)


def _fmt_time(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


# -- registration -----------------------------------------------------------------------------------
#: JSON types the renderer sends for properties that start unset in the layout (None: not checked).
CALLBACK_VALUE_TYPES: dict[str, tuple[type, ...]] = {
    "search": (str,), "pathname": (str,), "href": (str,), "hash": (str,), "n_clicks": (int,), "n_intervals": (int,),
    "clickData": (dict,), "selectedData": (dict,), "hoverData": (dict,), "relayoutData": (dict,), "contents": (str,),
    "filename": (str,), "last_modified": (int, float), "active_tab": (str,),
}


#: Kind of ``value`` by component type, for inputs that start unset (a dropdown filled from the URL).
VALUE_KINDS = {"Dropdown": "text", "RadioItems": "text", "Input": "text", "Textarea": "text", "Slider": "number",
               "RangeSlider": "list", "Checklist": "list", "Tabs": "text"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        kinds = {_kind(v) for v in value}
        return "list" if not kinds or kinds == {"text"} or kinds == {"number"} else "list:" + ",".join(sorted(kinds))
    if isinstance(value, dict):
        return "dict"
    return "other"


def _id_key(cid: Any) -> str:
    return json.dumps(cid, sort_keys=True, separators=(",", ":")) if isinstance(cid, dict) else str(cid)


def layout_kinds(layout: Any) -> dict[tuple[str, str], str]:
    """``(component id, property) -> kind of its initial value`` for every set property in a layout."""
    kinds: dict[tuple[str, str], str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, (list, tuple)):
            for item in node:
                walk(item)
            return
        props = getattr(node, "to_plotly_json", None)
        if props is None:
            return
        plotly = props()
        props = plotly.get("props", {})
        cid = props.get("id")
        if cid is not None and props.get("value") is None and plotly.get("type") in VALUE_KINDS:
            kinds[(_id_key(cid), "value")] = VALUE_KINDS[plotly["type"]]
        for prop, value in props.items():
            if cid is not None and value is not None and prop != "children":
                kinds[(_id_key(cid), prop)] = _kind(value)
            if prop == "children" or isinstance(value, (list, tuple)) or hasattr(value, "to_plotly_json"):
                walk(value)

    walk(layout)
    return kinds


def malformed_callback(body: Any, kinds: dict[tuple[str, str], str] | None = None) -> bool:
    """Whether a ``/_dash-update-component`` body is one the Dash renderer cannot send: not an object, or
    an input or state whose value is of another JSON kind than that property ever holds (a number for
    ``search``, a number for a dropdown that holds text, a list of objects where a list of text belongs).
    ``kinds`` are the layout's initial kinds (:func:`layout_kinds`); unset properties use
    :data:`CALLBACK_VALUE_TYPES`."""
    if not isinstance(body, dict):
        return True
    entries: list[Any] = []
    for key in ("inputs", "state"):
        items = body.get(key, [])
        if not isinstance(items, list):
            return True
        for item in items:
            entries.extend(item if isinstance(item, list) else [item])
    for entry in entries:
        if not isinstance(entry, dict):
            return True
        value, prop = entry.get("value"), entry.get("property")
        if value is None or not isinstance(prop, str):
            continue
        got = _kind(value)
        want = (kinds or {}).get((_id_key(entry.get("id")), prop))
        if want is not None:
            # A dropdown may hold one value or a list of them; a list may be empty.
            if got != want and not ({got, want} <= {"text", "list"} or {got, want} <= {"number", "list"}):
                return True
        elif prop in CALLBACK_VALUE_TYPES and (isinstance(value, bool) or not isinstance(value, CALLBACK_VALUE_TYPES[prop])):
            return True
        if got.startswith("list:"):
            return True
    return False


def register_auth(
    server: flask.Flask,
    services: Any,
    csp_script_hashes: Callable[[], Sequence[str]] | Sequence[str] | None = None,
) -> None:
    """Add sign-in, token and user pages, the identity lookup, security headers and error pages.

    Parameters
    ----------
    server
        The Flask server under Dash (``app.server``).
    services
        :class:`dashboard.app.Services` (its ``settings`` and ``store()`` are used).
    csp_script_hashes
        CSP sources for Dash's inline scripts (``app.csp_hashes()``), or a callable returning them on
        first use (``app.csp_hashes``), so scripts registered after this call are covered too.
    """
    settings = services.settings
    secret = getattr(settings, "secret_key", "")
    if not secret:
        log.warning(
            "CTIP_SECRET_KEY is not set: using a random key for this process, so sessions end when "
            "it restarts and are not shared between workers. Set CTIP_SECRET_KEY in production."
        )
        secret = secrets.token_urlsafe(48)
    server.secret_key = secret
    lifetime = dt.timedelta(minutes=max(1, int(getattr(settings, "session_minutes", 120))))
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(getattr(settings, "cookie_secure", False)),
        PERMANENT_SESSION_LIFETIME=lifetime,
    )
    if not getattr(settings, "debug", False):
        server.config["PROPAGATE_EXCEPTIONS"] = False
    state = _AuthState(services, lifetime, StoreLoginRateLimiter(services.store), csp_script_hashes)
    server.extensions[EXTENSION] = state

    @server.after_request
    def security_headers(response: flask.Response) -> flask.Response:
        response.headers["Content-Security-Policy"] = state.csp()
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    def _layout_kinds(app_server: flask.Flask) -> dict[tuple[str, str], str]:
        kinds = app_server.config.get("CTIP_LAYOUT_KINDS")
        if kinds is None:
            layout = app_server.config.get("CTIP_LAYOUT")
            try:
                kinds = layout_kinds(layout() if callable(layout) else layout)
            except Exception:  # noqa: BLE001 - the check is best effort; the 500 stands without it
                kinds = {}
            app_server.config["CTIP_LAYOUT_KINDS"] = kinds
        return kinds

    @server.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError) -> flask.Response:
        # Flask has already logged the original exception with its traceback; the client gets none.
        body = flask.request.get_json(silent=True) if flask.request.path.endswith("/_dash-update-component") else None
        known = server.config.get("CTIP_CALLBACK_MAP")
        if body is not None and (malformed_callback(body, _layout_kinds(server))
                                 or (known is not None and "callback" not in known.get(str(body.get("output")), {}))):
            # Not a bug in a callback: a crafted request the renderer cannot send (a number for the URL's search …).
            return flask.jsonify({"error": "malformed callback request: an input has a value of the wrong type"}), 400
        if _wants_json():
            return flask.jsonify({"error": "internal error; the server log has the details"}), 500
        return _page(
            "Something went wrong",
            Markup(
                "<p>The server could not answer this request. The error was "
                "logged; please try again later.</p>"
            ),
            status=500,
        )

    bp = flask.Blueprint("ctip_auth", __name__)

    @bp.get("/auth/login")
    def login_form() -> flask.Response:
        """Sign-in form (username, password, CSRF token, where to go next)."""
        return _login_page(next_url=flask.request.args.get("next", "/"))

    @bp.post("/auth/login")
    def login() -> flask.Response:
        """Form -> CSRF check -> rate limit -> argon2 verification -> new session -> redirect."""
        _check_csrf()
        form = flask.request.form
        next_url = safe_next(form.get("next", "/"))
        if not users_configured():
            return _login_page(next_url=next_url, status=403)
        username = form.get("username", "").strip().lower()[:100]
        password = form.get("password", "")
        keys = (f"user:{username}", f"ip:{flask.request.remote_addr or '-'}")
        wait = state.limiter.retry_after(keys)
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            response = _login_page(
                f"Too many failed sign-ins; try again in {minutes} minute{'s' * (minutes != 1)}.",
                username=username,
                next_url=next_url,
                status=429,
            )
            response.headers["Retry-After"] = str(wait)
            return response
        role = verify_user(services.store(), username, password)
        if role is None:
            state.limiter.record_failure(keys)
            log.warning("failed sign-in for %r from %s", username, flask.request.remote_addr)
            return _login_page(
                "Wrong user name or password.", username=username, next_url=next_url, status=401
            )
        state.limiter.reset(keys[0])
        session = flask.session
        session.clear()  # a fresh session (and CSRF token) at every sign-in
        session.permanent = True
        session.update(
            {"user": username, "role": role, "iat": int(time.time()), "csrf": secrets.token_urlsafe(32)}
        )
        flask.g.pop("_ctip_identity", None)
        log.info("user %r signed in", username)
        return flask.redirect(next_url, code=303)

    @bp.get("/auth/logout")
    def logout_form() -> flask.Response:
        """A confirmation form (signing out changes state, so it is a POST)."""
        identity = current_identity()
        if not identity.username or identity.via != "session":
            return flask.redirect("/", code=303)
        body = Markup("<p>Signed in as {} ({}).</p>").format(identity.username, identity.role)
        return _page("Sign out", body + _form("/auth/logout", Markup(""), "Sign out"))

    @bp.post("/auth/logout")
    def logout() -> flask.Response:
        """CSRF check -> session cleared -> home page."""
        _check_csrf()
        flask.session.clear()
        flask.g.pop("_ctip_identity", None)
        return flask.redirect("/", code=303)

    @bp.get("/auth/me")
    def me() -> flask.Response:
        """Identity as JSON: ``{"user", "role", "users_configured"}``."""
        identity = current_identity()
        response = flask.jsonify(
            {"user": identity.username, "role": identity.role, "users_configured": users_configured()}
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- API tokens -------------------------------------------------------------------------------
    def signed_in(*, admin: bool = False) -> Identity:
        identity = current_identity()
        if identity.via != "session" or not identity.is_partner:
            path = (
                flask.request.full_path.rstrip("?") if flask.request.method == "GET" else flask.request.path
            )
            flask.abort(flask.redirect("/auth/login?" + urlencode({"next": path}), code=303))
        if admin and not identity.is_admin:
            flask.abort(
                _page("Not allowed", Markup("<p>Only administrators may manage users.</p>"), status=403)
            )
        return identity

    def tokens_page(identity: Identity, notice: Markup = _EMPTY, status: int = 200) -> flask.Response:
        owner = None if identity.is_admin else identity.username
        rows = []
        for t in list_tokens(services.store(), owner):
            if t["revoked_at"] is None:
                action = _form(
                    f"/auth/tokens/{quote(t['token_id'], safe='')}/revoke",
                    Markup(""),
                    "Revoke",
                    button="btn-sm btn-outline-danger",
                    inline=True,
                )
            else:
                action = Markup("revoked {}").format(_fmt_time(t["revoked_at"]))
            rows.append(
                Markup(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"
                ).format(t["token_id"], t["username"], t["label"], _fmt_time(t["created_at"]), action)
            )
        table = (
            Markup(
                '<table class="table table-sm"><thead><tr><th>Id</th><th>User</th><th>Label</th>'
                "<th>Created</th><th></th></tr></thead><tbody>{}</tbody></table>"
            ).format(Markup("").join(rows))
            if rows
            else Markup("<p>No tokens yet.</p>")
        )
        create = _form(
            "/auth/tokens",
            _input("label", "Label (where the token is used)", required=False, maxlength=100),
            "Create token",
        )
        intro = Markup(
            "<p>Signed in as {} ({}). An API token acts with your role: send it as "
            "<code>Authorization: Bearer ctip_…</code>. "
            '<a href="/auth/logout">Sign out</a>{}</p>'
        ).format(
            identity.username,
            identity.role,
            Markup(' · <a href="/auth/users">Users</a>') if identity.is_admin else "",
        )
        return _page(
            "API tokens",
            notice + intro + table + Markup('<h2 class="h5">New token</h2>') + create,
            status=status,
        )

    @bp.get("/auth/tokens")
    def tokens() -> flask.Response:
        """The signed-in user's tokens (all tokens for an admin) and a form to create one."""
        return tokens_page(signed_in())

    @bp.post("/auth/tokens")
    def token_create() -> flask.Response:
        """CSRF check -> new token for the signed-in user, shown once."""
        identity = signed_in()
        _check_csrf()
        try:
            token_id, token = create_token(
                services.store(), identity.username or "", flask.request.form.get("label", "")
            )
        except UserError as exc:
            return tokens_page(identity, _alert(str(exc)), status=400)
        notice = Markup(
            '<div class="alert alert-success" role="status"><p>Token <code>{}</code> created. Copy it now: '
            'it is not stored and cannot be shown again.</p><p class="mb-0"><code class="text-break">{}'
            "</code></p></div>"
        ).format(token_id, token)
        return tokens_page(identity, notice)

    @bp.post("/auth/tokens/<token_id>/revoke")
    def token_revoke(token_id: str) -> flask.Response:
        """CSRF check -> revoke one of the user's tokens (any token for an admin)."""
        identity = signed_in()
        _check_csrf()
        try:
            revoke_token(
                services.store(), token_id, username=None if identity.is_admin else identity.username
            )
        except UserError as exc:
            return tokens_page(identity, _alert(str(exc)), status=404)
        return flask.redirect("/auth/tokens", code=303)

    # -- users (admins) ---------------------------------------------------------------------------
    def users_page(identity: Identity, notice: Markup = _EMPTY, status: int = 200) -> flask.Response:
        rows = []
        for u in list_users(services.store()):
            action = (
                Markup("(you)")
                if u["username"] == identity.username
                else _form(
                    f"/auth/users/{quote(u['username'], safe='')}/remove",
                    Markup(""),
                    "Remove",
                    button="btn-sm btn-outline-danger",
                    inline=True,
                )
            )
            rows.append(
                Markup("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
                    u["username"],
                    u["role"],
                    _fmt_time(u["created_at"]),
                    "disabled" if u["disabled"] else "",
                    action,
                )
            )
        table = Markup(
            '<table class="table table-sm"><thead><tr><th>User</th><th>Role</th><th>Created</th><th></th>'
            "<th></th></tr></thead><tbody>{}</tbody></table>"
        ).format(Markup("").join(rows))
        role_select = Markup(
            '<div class="mb-3"><label class="form-label" for="f-role">Role</label>'
            '<select class="form-select" id="f-role" name="role">{}</select></div>'
        ).format(Markup("").join(Markup('<option value="{0}">{0}</option>').format(r) for r in ROLES))
        fields = (
            _input("username", "User name (a–z, 0–9, _ . -)", maxlength=40)
            + _input(
                "password",
                "Password (at least 12 characters)",
                kind="password",
                autocomplete="new-password",
                maxlength=1024,
            )
            + role_select
        )
        intro = Markup('<p><a href="/auth/tokens">API tokens</a> · <a href="/auth/logout">Sign out</a></p>')
        return _page(
            "Users",
            notice
            + intro
            + table
            + Markup('<h2 class="h5">Add a user</h2>')
            + _form("/auth/users", fields, "Add user"),
            status=status,
        )

    @bp.get("/auth/users")
    def users() -> flask.Response:
        """Admins: the users and a form to add one."""
        return users_page(signed_in(admin=True))

    @bp.post("/auth/users")
    def user_add() -> flask.Response:
        """Admins: CSRF check -> add a user."""
        identity = signed_in(admin=True)
        _check_csrf()
        form = flask.request.form
        try:
            add_user(
                services.store(),
                form.get("username", "").strip(),
                form.get("password", ""),
                form.get("role", ""),
            )
        except UserError as exc:
            return users_page(identity, _alert(str(exc)), status=400)
        log.info("admin %r added user %r", identity.username, form.get("username", "").strip())
        return flask.redirect("/auth/users", code=303)

    @bp.post("/auth/users/<username>/remove")
    def user_remove(username: str) -> flask.Response:
        """Admins: CSRF check -> remove a user (not oneself) and its tokens."""
        identity = signed_in(admin=True)
        _check_csrf()
        if username == identity.username:
            return users_page(
                identity, _alert("You cannot remove your own account while signed in with it."), status=400
            )
        try:
            remove_user(services.store(), username)
        except UserError as exc:
            return users_page(identity, _alert(str(exc)), status=404)
        log.info("admin %r removed user %r", identity.username, username)
        return flask.redirect("/auth/users", code=303)

    server.register_blueprint(bp)


def _wants_json() -> bool:
    path = flask.request.path
    if path.startswith(("/api/", "/_dash-", "/auth/me", "/healthz")):
        return True
    best = flask.request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"
