"""The observation store: one SQL schema and one query path on DuckDB (default) or PostgreSQL.

A store is opened from a URL, ``duckdb:///absolute/path/file.duckdb`` (``duckdb:///:memory:`` for tests)
or ``postgresql://user@host:port/dbname``. Queries are written once with ``?`` placeholders in the SQL
subset both engines share; :class:`Store` adapts the placeholder style and returns pandas frames with
the same dtypes on both backends.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd

from data.schema import DIMENSIONS, KEY_COLUMNS, OBSERVATION_COLUMNS

SCHEMA_VERSION = 1

_DIM_COLUMNS = ",\n    ".join(f"{dim} TEXT NOT NULL DEFAULT ''" for dim in DIMENSIONS)

SCHEMA_SQL: tuple[str, ...] = (
    f"""
CREATE TABLE IF NOT EXISTS observations (
    indicator TEXT NOT NULL,
    province TEXT NOT NULL,
    period DATE NOT NULL,
    {_DIM_COLUMNS},
    value DOUBLE PRECISION NOT NULL,
    partner TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    batch_id TEXT NOT NULL,
    PRIMARY KEY ({", ".join(KEY_COLUMNS)})
)""",
    """
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    rows_written INTEGER NOT NULL,
    imported_at TIMESTAMP NOT NULL
)""",
    """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS observations_indicator_period ON observations (indicator, period)",
)


class StoreError(RuntimeError):
    """A store could not be opened or used; the message says what to do."""


def parse_url(url: str) -> tuple[str, str]:
    """Split a store URL into ``(backend, target)``.

    Parameters
    ----------
    url
        ``duckdb:///absolute/path.duckdb``, ``duckdb:///:memory:`` or ``postgresql://…``.

    Returns
    -------
    tuple
        ``("duckdb", path)`` or ``("postgresql", url)``.
    """
    parsed = urlparse(url)
    if parsed.scheme == "duckdb":
        path = url[len("duckdb://") :]
        if path in ("/:memory:", ":memory:", "/"):
            return "duckdb", ":memory:"
        if not path.startswith("/"):
            raise StoreError(
                f"CTIP_DATABASE_URL {url!r}: a DuckDB URL needs an absolute path, "
                "e.g. duckdb:///var/lib/ctip/ctip.duckdb"
            )
        return "duckdb", path
    if parsed.scheme in ("postgresql", "postgres"):
        return "postgresql", url
    raise StoreError(
        f"CTIP_DATABASE_URL {url!r} is not supported: use duckdb:///absolute/path/file.duckdb "
        "or postgresql://user@host:port/dbname"
    )


class Store:
    """A connection to the observation store (DuckDB file or PostgreSQL database).

    Use :func:`open_store` to create one. The object is safe to share between threads: DuckDB work
    runs on per-thread cursors of one database handle, PostgreSQL work on per-thread connections.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.backend, self._target = parse_url(url)
        self.read_only = read_only
        self._local = threading.local()
        self._lock = threading.Lock()
        self._root: Any = None
        if self.backend == "duckdb":
            import duckdb

            if self._target != ":memory:":
                Path(self._target).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._root = duckdb.connect(self._target, read_only=read_only)
            except duckdb.IOException as exc:
                raise StoreError(
                    f"cannot open the DuckDB store {self._target}: {exc}. "
                    "Another process (the running dashboard?) may hold it; stop it or use PostgreSQL "
                    "for shared deployments."
                ) from exc
        else:
            self._connect_pg()  # fail early with a clear message

    # -- connections -------------------------------------------------------------------------------
    def _connect_pg(self) -> Any:
        import psycopg

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self._target, autocommit=True)
            except psycopg.OperationalError as exc:
                raise StoreError(f"cannot connect to PostgreSQL at {self._target}: {exc}".strip()) from exc
            self._local.conn = conn
        return conn

    def _cursor(self) -> Any:
        if self.backend == "duckdb":
            cur = getattr(self._local, "cur", None)
            if cur is None:
                cur = self._root.cursor()
                self._local.cur = cur
            return cur
        return self._connect_pg().cursor()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.backend == "postgresql" else sql

    # -- execution ---------------------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement that returns nothing."""
        self._cursor().execute(self._sql(sql), list(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per parameter row."""
        if rows:
            self._cursor().executemany(self._sql(sql), [list(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a query and return a new frame (``period``-like date columns as ``datetime64``)."""
        cur = self._cursor()
        cur.execute(self._sql(sql), list(params))
        columns = [d[0] for d in cur.description]
        frame = pd.DataFrame(cur.fetchall(), columns=columns)
        for col in frame.columns:
            if col in ("period", "start", "end", "first_period", "last_period"):
                frame[col] = pd.to_datetime(frame[col])
            elif col == "value" or col.endswith("_value"):
                frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        return frame

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run a query and return the first column of the first row (or ``None``)."""
        cur = self._cursor()
        cur.execute(self._sql(sql), list(params))
        row = cur.fetchone()
        return None if row is None else row[0]

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run the block in one transaction: all of it is written, or none of it."""
        if self.read_only:
            raise StoreError("the store is open read-only")
        with self._lock:
            if self.backend == "duckdb":
                cur = self._cursor()
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield self
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            else:
                conn = self._connect_pg()
                with conn.transaction():
                    yield self

    def close(self) -> None:
        """Close every connection this store opened."""
        if self.backend == "duckdb" and self._root is not None:
            self._root.close()
            self._root = None
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()

    # -- schema ------------------------------------------------------------------------------------
    def init_schema(self) -> None:
        """Create the tables if they do not exist (idempotent)."""
        for stmt in SCHEMA_SQL:
            self.execute(stmt)
        if self.scalar("SELECT value FROM meta WHERE key = 'schema_version'") is None:
            self.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    def drop_all(self) -> None:
        """Drop every table (tests only)."""
        for table in ("observations", "batches", "meta"):
            self.execute(f"DROP TABLE IF EXISTS {table}")

    # -- writing -----------------------------------------------------------------------------------
    def write_batch(
        self,
        frame: pd.DataFrame,
        *,
        kind: str,
        file_name: str = "",
        source: str = "",
        replace: bool = False,
        batch_id: str | None = None,
    ) -> tuple[str, int]:
        """Write observations in one transaction and record the batch.

        Rows whose key already exists with identical value, partner, source and note are skipped, so
        writing the same rows twice changes nothing. Rows whose key exists with other content are
        updated only when ``replace`` is true; otherwise a :class:`StoreError` is raised and nothing is
        written.

        Parameters
        ----------
        frame
            Validated observations with the columns of :data:`data.schema.OBSERVATION_COLUMNS` except
            ``batch_id``.
        kind
            ``import``, ``demo`` or ``reference``.

        Returns
        -------
        tuple
            ``(batch_id, rows_written)``; ``rows_written`` is 0 when nothing changed (no batch is
            recorded then).
        """
        batch_id = batch_id or f"{kind}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        rows = _normalise_frame(frame, batch_id)
        with self.transaction():
            changed = self._changed_rows(rows)
            if changed.empty:
                return batch_id, 0
            existing = changed["_exists"]
            if existing.any() and not replace:
                raise StoreError(f"{int(existing.sum())} rows already exist in the store; use --replace")
            if existing.any():
                keys = changed.loc[existing, list(KEY_COLUMNS)]
                self._delete_keys(keys)
            self._insert(changed.drop(columns="_exists"))
            self.execute(
                "INSERT INTO batches (batch_id, kind, file_name, source, rows_written, imported_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [batch_id, kind, file_name, source, len(changed), dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            )
        return batch_id, len(changed)

    def existing_keys(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Return the rows of ``frame`` whose key is already stored, with the stored value as ``stored_value``."""
        rows = _normalise_frame(frame, "")
        stored = self._stored_matching(rows)
        merged = rows.merge(stored, on=list(KEY_COLUMNS), how="inner")
        return merged

    def delete_where(self, sql_condition: str, params: Sequence[Any] = ()) -> int:
        """Delete observations matching a condition in one transaction and return how many went."""
        with self.transaction():
            count = int(self.scalar(f"SELECT COUNT(*) FROM observations WHERE {sql_condition}", params) or 0)
            self.execute(f"DELETE FROM observations WHERE {sql_condition}", params)
            self.execute("DELETE FROM batches WHERE batch_id NOT IN (SELECT DISTINCT batch_id FROM observations)")
        return count

    # -- internals ---------------------------------------------------------------------------------
    def _stored_matching(self, rows: pd.DataFrame) -> pd.DataFrame:
        indicators = sorted(rows["indicator"].unique())
        if not indicators:
            return pd.DataFrame(columns=[*KEY_COLUMNS, "stored_value", "stored_partner", "stored_source", "stored_note"])
        start, end = rows["period"].min(), rows["period"].max()
        marks = ", ".join("?" for _ in indicators)
        stored = self.query(
            f"SELECT {', '.join(KEY_COLUMNS)}, value AS stored_value, partner AS stored_partner, "
            f"source AS stored_source, note AS stored_note FROM observations "
            f"WHERE indicator IN ({marks}) AND period BETWEEN ? AND ?",
            [*indicators, start, end],
        )
        stored["period"] = pd.to_datetime(stored["period"]).dt.date
        return stored

    def _changed_rows(self, rows: pd.DataFrame) -> pd.DataFrame:
        stored = self._stored_matching(rows)
        merged = rows.merge(stored, on=list(KEY_COLUMNS), how="left", indicator=True)
        exists = merged["_merge"] == "both"
        same = (
            exists
            & (merged["value"] == merged["stored_value"])
            & (merged["partner"] == merged["stored_partner"])
            & (merged["source"] == merged["stored_source"])
            & (merged["note"] == merged["stored_note"])
        )
        out = merged.loc[~same, list(rows.columns)].copy()
        out["_exists"] = exists[~same].to_numpy()
        return out.reset_index(drop=True)

    def _delete_keys(self, keys: pd.DataFrame) -> None:
        cond = " AND ".join(f"{col} = ?" for col in KEY_COLUMNS)
        self.executemany(f"DELETE FROM observations WHERE {cond}", keys.itertuples(index=False, name=None))

    def _insert(self, rows: pd.DataFrame) -> None:
        rows = rows[list(OBSERVATION_COLUMNS)]
        cols = ", ".join(OBSERVATION_COLUMNS)
        if self.backend == "duckdb":
            cur = self._cursor()
            cur.register("_incoming", rows)
            try:
                cur.execute(f"INSERT INTO observations ({cols}) SELECT {cols} FROM _incoming")
            finally:
                cur.unregister("_incoming")
            return
        conn = self._connect_pg()
        with conn.cursor() as cur, cur.copy(f"COPY observations ({cols}) FROM STDIN") as copy:
            for record in rows.itertuples(index=False, name=None):
                copy.write_row(record)


def _normalise_frame(frame: pd.DataFrame, batch_id: str) -> pd.DataFrame:
    rows = frame.copy()
    for col in OBSERVATION_COLUMNS:
        if col not in rows.columns:
            rows[col] = batch_id if col == "batch_id" else ""
    rows["batch_id"] = batch_id
    rows["period"] = pd.to_datetime(rows["period"]).dt.date
    rows["value"] = rows["value"].astype("float64")
    for col in OBSERVATION_COLUMNS:
        if col not in ("period", "value"):
            rows[col] = rows[col].fillna("").astype(str)
    return rows[list(OBSERVATION_COLUMNS)].reset_index(drop=True)


def open_store(url: str, *, read_only: bool = False, init: bool = True) -> Store:
    """Open the store at ``url`` and (unless read-only) create its schema if needed."""
    store = Store(url, read_only=read_only)
    if init and not read_only:
        store.init_schema()
    return store
