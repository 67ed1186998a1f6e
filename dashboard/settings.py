"""One frozen settings object, read from the environment (never from the working directory)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Repository root (the folder holding app.py); default data files live under ``var/`` here.
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Runtime configuration.

    Environment variables
    ---------------------
    CTIP_DATABASE_URL   store URL, ``duckdb:///abs/path.duckdb`` or ``postgresql://user@host:port/db``
                        (default: ``duckdb:///<repo>/var/ctip.duckdb``)
    CTIP_HOST, CTIP_PORT  where ``ctip serve`` listens (default 127.0.0.1:8050)
    CTIP_DEBUG          ``1`` for Dash dev tools
    CTIP_SECRET_KEY     signs session cookies; set one long random value shared by all workers (unset: a
                        random key per process, so sessions end on restart)
    CTIP_COOKIE_SECURE  ``1`` to send the session cookie over HTTPS only (set it behind TLS)
    CTIP_SESSION_MINUTES  how long a sign-in lasts (default 120)
    """

    database_url: str
    host: str = "127.0.0.1"
    port: int = 8050
    debug: bool = False
    # -- auth (dashboard/auth.py) --
    secret_key: str = field(default="", repr=False)
    cookie_secure: bool = False
    session_minutes: int = 120
    # -- end auth --

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: ``os.environ``)."""
        env = dict(os.environ if env is None else env)
        default_db = f"duckdb://{ROOT / 'var' / 'ctip.duckdb'}"  # ROOT is absolute: duckdb:///abs/path
        return cls(
            database_url=env.get("CTIP_DATABASE_URL") or default_db,
            host=env.get("CTIP_HOST", "127.0.0.1"),
            port=int(env.get("CTIP_PORT", "8050")),
            debug=env.get("CTIP_DEBUG", "") in ("1", "true", "yes"),
            secret_key=env.get("CTIP_SECRET_KEY", ""),
            cookie_secure=env.get("CTIP_COOKIE_SECURE", "") in ("1", "true", "yes"),
            session_minutes=int(env.get("CTIP_SESSION_MINUTES") or "120"),
        )
