"""Users and API tokens in the store: argon2id password hashes, SHA-256 token hashes, roles.

Two roles exist, ``partner`` (sees unsuppressed data, may import) and ``admin`` (also manages users);
an anonymous visitor is the absence of a user. Passwords are stored only as argon2id hashes
(argon2-cffi's ``PasswordHasher``); an API token is shown once, as ``ctip_<token_id>_<secret>``, and
only the SHA-256 hash of its secret (32 random bytes) is stored. The tables live beside the
observations, in the SQL both backends share, and are created on first use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import weakref
from typing import Any

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from data.store import Store

ROLES = ("partner", "admin")
USERNAME_PATTERN = re.compile(r"^[a-z0-9_.-]{3,40}$")
MIN_PASSWORD_LENGTH = 12
#: argon2 hashes input of any length; the cap stops a megabyte "password" from costing CPU for nothing.
MAX_PASSWORD_LENGTH = 1024
MAX_LABEL_LENGTH = 100
TOKEN_PREFIX = "ctip"
_TOKEN_PATTERN = re.compile(r"^ctip_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")

USER_SCHEMA_SQL: tuple[str, ...] = (
    """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
)""",
    """
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
)""",
    """
CREATE TABLE IF NOT EXISTS signin_failures (
    key TEXT NOT NULL,
    failed_at DOUBLE PRECISION NOT NULL
)""",
)

#: argon2-cffi's defaults (argon2id, t=3, m=64 MiB, p=4: RFC 9106's second recommendation). Tests swap
#: in a cheaper hasher; hashes record their own parameters, so either verifies the other's.
HASHER = PasswordHasher()

_ensured: weakref.WeakSet[Store] = weakref.WeakSet()
_ensure_lock = threading.Lock()
_dummy_hash: str | None = None


class UserError(ValueError):
    """A user or token operation was refused; the message says why and what to do."""


def ensure_user_tables(store: Store) -> None:
    """Create the ``users`` and ``api_tokens`` tables if they do not exist (once per store object).

    Parameters
    ----------
    store
        An open, writable store. A read-only store is left as it is.
    """
    if store in _ensured or store.read_only:
        return
    with _ensure_lock:
        if store not in _ensured:
            for stmt in USER_SCHEMA_SQL:
                store.execute(stmt)
            _ensured.add(store)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_PATTERN.match(username):
        raise UserError(
            f"username {username!r} is not allowed: "
            "use 3–40 characters from a–z, 0–9, '_', '.', '-' (lower case)"
        )
    return username


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not known: use one of {', '.join(ROLES)}")
    return role


# -- users ------------------------------------------------------------------------------------------
def add_user(store: Store, username: str, password: str, role: str) -> None:
    """Create a user with an argon2id hash of ``password``.

    Parameters
    ----------
    store
        The store to write to.
    username
        3–40 characters from ``a-z0-9_.-``.
    password
        At least 12 characters; only its hash is stored.
    role
        ``partner`` or ``admin``.

    Raises
    ------
    UserError
        When a value is not allowed or the user already exists.
    """
    _check_username(username)
    _check_password(password)
    _check_role(role)
    ensure_user_tables(store)
    password_hash = HASHER.hash(password)
    with store.transaction():
        if store.scalar("SELECT COUNT(*) FROM users WHERE username = ?", [username]):
            raise UserError(f"user {username!r} already exists; remove it first or choose another name")
        store.execute(
            "INSERT INTO users (username, password_hash, role, created_at, disabled) VALUES (?, ?, ?, ?, 0)",
            [username, password_hash, role, _now()],
        )


def remove_user(store: Store, username: str) -> None:
    """Delete a user and every API token it owns.

    Raises
    ------
    UserError
        When the user does not exist.
    """
    ensure_user_tables(store)
    with store.transaction():
        if not store.scalar("SELECT COUNT(*) FROM users WHERE username = ?", [username]):
            raise UserError(f"no user {username!r}; `ctip user list` shows the users")
        store.execute("DELETE FROM api_tokens WHERE username = ?", [username])
        store.execute("DELETE FROM users WHERE username = ?", [username])


def list_users(store: Store) -> list[dict[str, Any]]:
    """Users as ``{"username", "role", "created_at", "disabled"}`` dicts, by name (never the hashes)."""
    ensure_user_tables(store)
    frame = store.query("SELECT username, role, created_at, disabled FROM users ORDER BY username")
    return [
        {
            "username": r.username,
            "role": r.role,
            "created_at": _as_datetime(r.created_at),
            "disabled": bool(r.disabled),
        }
        for r in frame.itertuples(index=False)
    ]


def get_user(store: Store, username: str) -> dict[str, Any] | None:
    """One user as :func:`list_users` describes it, or ``None``."""
    ensure_user_tables(store)
    frame = store.query(
        "SELECT username, role, created_at, disabled FROM users WHERE username = ?", [username]
    )
    if frame.empty:
        return None
    r = next(frame.itertuples(index=False))
    return {
        "username": r.username,
        "role": r.role,
        "created_at": _as_datetime(r.created_at),
        "disabled": bool(r.disabled),
    }


def set_password(store: Store, username: str, password: str) -> None:
    """Replace a user's password (hashed with argon2id).

    Raises
    ------
    UserError
        When the password is not allowed or the user does not exist.
    """
    _check_password(password)
    ensure_user_tables(store)
    password_hash = HASHER.hash(password)
    with store.transaction():
        if not store.scalar("SELECT COUNT(*) FROM users WHERE username = ?", [username]):
            raise UserError(f"no user {username!r}; `ctip user list` shows the users")
        store.execute("UPDATE users SET password_hash = ? WHERE username = ?", [password_hash, username])


def set_disabled(store: Store, username: str, disabled: bool) -> None:
    """Disable (or re-enable) a user: a disabled user cannot sign in and its tokens stop working.

    Raises
    ------
    UserError
        When the user does not exist.
    """
    ensure_user_tables(store)
    with store.transaction():
        if not store.scalar("SELECT COUNT(*) FROM users WHERE username = ?", [username]):
            raise UserError(f"no user {username!r}; `ctip user list` shows the users")
        store.execute("UPDATE users SET disabled = ? WHERE username = ?", [int(bool(disabled)), username])


def verify_user(store: Store, username: str, password: str) -> str | None:
    """The user's role when ``password`` is right and the user is enabled, else ``None``.

    An unknown user costs one argon2 verification too (against a dummy hash), so the time taken does
    not tell whether a name exists. A hash made with older parameters is upgraded on success.
    """
    if not isinstance(username, str) or not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
        return None
    if not has_users(store):
        return None
    row = None
    if USERNAME_PATTERN.match(username):
        frame = store.query("SELECT password_hash, role, disabled FROM users WHERE username = ?", [username])
        row = None if frame.empty else next(frame.itertuples(index=False))
    if row is None:
        _verify_hash(_dummy(), password)
        return None
    if not _verify_hash(row.password_hash, password) or row.disabled:
        return None
    if HASHER.check_needs_rehash(row.password_hash) and not store.read_only:
        store.execute(
            "UPDATE users SET password_hash = ? WHERE username = ?", [HASHER.hash(password), username]
        )
    return str(row.role)


def has_users(store: Store) -> bool:
    """Whether any enabled user exists (with none, the app is read-only for everyone)."""
    if store.read_only and store not in _ensured:
        try:
            return bool(store.scalar("SELECT COUNT(*) FROM users WHERE disabled = 0"))
        except Exception:  # noqa: BLE001 - a read-only store without the table has no users
            return False
    ensure_user_tables(store)
    return bool(store.scalar("SELECT COUNT(*) FROM users WHERE disabled = 0"))


def _verify_hash(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = HASHER.hash(secrets.token_urlsafe(24))
    return _dummy_hash


# -- API tokens -------------------------------------------------------------------------------------
def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def create_token(store: Store, username: str, label: str = "") -> tuple[str, str]:
    """Create an API token for an enabled user.

    Parameters
    ----------
    store
        The store to write to.
    username
        The owner; the token acts with the owner's role.
    label
        A note for the owner (up to 100 characters), e.g. where the token is used.

    Returns
    -------
    tuple
        ``(token_id, token)``. ``token`` (``ctip_<token_id>_<secret>``) is not stored and cannot be
        shown again; only the SHA-256 hash of the secret is kept.

    Raises
    ------
    UserError
        When the user does not exist or is disabled, or the label is too long.
    """
    label = (label or "").strip()
    if len(label) > MAX_LABEL_LENGTH:
        raise UserError(f"the label is too long: use at most {MAX_LABEL_LENGTH} characters")
    user = get_user(store, username)
    if user is None:
        raise UserError(f"no user {username!r}; `ctip user list` shows the users")
    if user["disabled"]:
        raise UserError(f"user {username!r} is disabled; enable it before creating a token")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    store.execute(
        "INSERT INTO api_tokens (token_id, username, token_hash, label, created_at, revoked_at) "
        "VALUES (?, ?, ?, ?, ?, NULL)",
        [token_id, username, _token_hash(secret), label, _now()],
    )
    return token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}"


def revoke_token(store: Store, token_id: str, *, username: str | None = None) -> None:
    """Revoke a token (it stops working at once; the record stays for the audit trail).

    Parameters
    ----------
    token_id
        The id shown by :func:`list_tokens`.
    username
        When given, only a token owned by this user may be revoked.

    Raises
    ------
    UserError
        When there is no such (active) token for ``username``.
    """
    ensure_user_tables(store)
    frame = store.query("SELECT username, revoked_at FROM api_tokens WHERE token_id = ?", [str(token_id)])
    if frame.empty or (username is not None and frame["username"].iloc[0] != username):
        raise UserError(f"no token {token_id!r}; `ctip token list` shows the tokens")
    if frame["revoked_at"].notna().iloc[0]:
        raise UserError(f"token {token_id!r} is already revoked")
    store.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_id = ?", [_now(), str(token_id)])


def list_tokens(store: Store, username: str | None = None) -> list[dict[str, Any]]:
    """Tokens as ``{"token_id", "username", "label", "created_at", "revoked_at"}`` dicts, newest first
    (never the hashes); only ``username``'s when given."""
    ensure_user_tables(store)
    sql = "SELECT token_id, username, label, created_at, revoked_at FROM api_tokens"
    params: list[Any] = []
    if username is not None:
        sql += " WHERE username = ?"
        params.append(username)
    frame = store.query(sql + " ORDER BY created_at DESC, token_id", params)
    return [
        {
            "token_id": r.token_id,
            "username": r.username,
            "label": r.label,
            "created_at": _as_datetime(r.created_at),
            "revoked_at": _as_datetime(r.revoked_at),
        }
        for r in frame.itertuples(index=False)
    ]


def verify_token(store: Store, token: str) -> tuple[str, str] | None:
    """``(username, role)`` for a valid token of an enabled user; ``None`` for anything else
    (malformed, unknown, revoked, or the owner disabled or removed)."""
    if not isinstance(token, str):
        return None
    match = _TOKEN_PATTERN.match(token)
    if match is None:
        return None
    token_id, secret = match.groups()
    if store.read_only and store not in _ensured and not has_users(store):
        return None
    ensure_user_tables(store)
    frame = store.query(
        "SELECT t.token_hash, t.revoked_at, u.role, u.disabled, u.username FROM api_tokens t "
        "JOIN users u ON u.username = t.username WHERE t.token_id = ?",
        [token_id],
    )
    if frame.empty:
        return None
    r = next(frame.itertuples(index=False))
    if not hmac.compare_digest(str(r.token_hash), _token_hash(secret)):
        return None
    if not pd.isna(r.revoked_at) or r.disabled:
        return None
    return str(r.username), str(r.role)


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()
