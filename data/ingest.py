"""Read, validate and load partner files (CSV, XLSX, Parquet) in the canonical long form.

Validation reports every problem at once, each with its row, column, offending value and the fix; a file
with any problem writes nothing. A valid file is written in one transaction as one import batch.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data.catalog import UnknownIndicatorError, indicator as get_indicator
from data.gazetteer import UnknownProvinceError, province_name, resolve_province
from data.schema import ALLOWED_VALUES, DIMENSIONS, KEY_COLUMNS, NATIONAL, NOT_DISAGGREGATED
from data.store import Store, StoreError

REQUIRED_COLUMNS = ("indicator", "province", "period", "value")
OPTIONAL_COLUMNS = (*DIMENSIONS, "partner", "source", "note")
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
#: HXL hashtags recognised in a hashtag row (the row is skipped; columns are matched by header name).
HXL_TAGS = {"#indicator": "indicator", "#adm1": "province", "#date": "period", "#value": "value"}
MONTHS = {m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
MONTHS.update({name: i + 1 for i, name in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"])})
MONTHS["sept"] = 9
_ISO3 = re.compile(r"^[A-Z]{3}$")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
EARLIEST_PERIOD = dt.date(2000, 1, 1)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file."""

    message: str
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(self.column)
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ImportRejected(Exception):
    """The file has problems; nothing was written."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s); nothing was imported")


@dataclass
class ImportResult:
    """What an import wrote (or would write, for a dry run)."""

    path: str
    rows: int
    rows_written: int
    indicators: list[str]
    provinces: list[str]
    first_period: str | None
    last_period: str | None
    batch_id: str | None
    dry_run: bool
    frame: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable summary."""
        return {
            "file": self.path,
            "rows": self.rows,
            "rows_written": self.rows_written,
            "indicators": self.indicators,
            "provinces": self.provinces,
            "periods": [self.first_period, self.last_period],
            "batch_id": self.batch_id,
            "dry_run": self.dry_run,
        }


# -- reading -----------------------------------------------------------------------------------------------
def read_table(path: str | Path, *, sheet: str | None = None, data: bytes | None = None) -> tuple[pd.DataFrame, int]:
    """Read a CSV, XLSX or Parquet file into a frame of strings.

    Parameters
    ----------
    path
        File path; its suffix chooses the reader.
    sheet
        XLSX sheet name (default: the first sheet).
    data
        File content, when it is already in memory (uploads).

    Returns
    -------
    tuple
        ``(frame, first_data_row)``: cells as stripped strings (empty string for blanks) and the
        spreadsheet row number of the frame's first row.

    Raises
    ------
    ImportRejected
        When the file cannot be read at all (encoding, format, empty).
    """
    path = Path(path)
    raw = data if data is not None else _read_bytes(path)
    if not raw.strip():
        raise ImportRejected(str(path), [Problem("the file is empty; it needs a header row and at least one data row")])
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        frame = _read_csv(path, raw)
    elif suffix in (".xlsx", ".xlsm"):
        frame = _read_xlsx(path, raw, sheet)
    elif suffix == ".parquet":
        try:
            frame = pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # noqa: BLE001 - any parser failure means "not a Parquet file"
            raise ImportRejected(str(path), [Problem(f"cannot read this file as Parquet ({type(exc).__name__}); export it again as Parquet, CSV or XLSX")]) from None
        frame = frame.astype(object).where(frame.notna(), "")
        frame = frame.map(lambda v: _cell_text(v))
    else:
        raise ImportRejected(str(path), [Problem(f"unsupported file type {suffix or '(none)'!r}; use .csv, .xlsx or .parquet")])
    first_row = 2
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) and all(str(v).strip().startswith("#") for v in frame.iloc[0] if str(v).strip()) and any(
        str(v).strip() for v in frame.iloc[0]
    ):
        frame = frame.iloc[1:].reset_index(drop=True)  # HXL hashtag row
        first_row = 3
    return frame, first_row


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImportRejected(str(path), [Problem("file not found; check the path")]) from None
    except IsADirectoryError:
        raise ImportRejected(str(path), [Problem("this is a folder, not a file")]) from None


def _read_csv(path: Path, raw: bytes) -> pd.DataFrame:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRejected(str(path), [Problem("the file is UTF-16 encoded; save it as 'CSV UTF-8' and import again")])
    if raw.startswith(b"PK\x03\x04"):
        raise ImportRejected(str(path), [Problem("this is a zipped (XLSX?) file with a .csv name; rename it to .xlsx or save as CSV UTF-8")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportRejected(str(path), [Problem(
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}; Windows-1252 or another legacy encoding?); "
            "save it as 'CSV UTF-8' and import again")]) from None
    if "\x00" in text:
        raise ImportRejected(str(path), [Problem("the file contains NUL bytes; it is not a text CSV file")])
    header = text.splitlines()[0] if text.splitlines() else ""
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = [r for r in reader]
    if not rows or not any(c.strip() for c in rows[0]):
        raise ImportRejected(str(path), [Problem("the first row must be the header (indicator, province, period, value, …)")])
    width = len(rows[0])
    body = []
    problems = []
    for i, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) > width:
            problems.append(Problem(f"has {len(row)} cells but the header has {width}; check for an unquoted {delimiter!r} in a value", row=i))
        body.append([c.strip() for c in (row + [""] * width)[:width]])
    if problems:
        raise ImportRejected(str(path), problems)
    if not body:
        raise ImportRejected(str(path), [Problem("the file has a header but no data rows")])
    return pd.DataFrame(body, columns=[c.strip() for c in rows[0]])


def _read_xlsx(path: Path, raw: bytes, sheet: str | None) -> pd.DataFrame:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means it is not a workbook we can read
        raise ImportRejected(str(path), [Problem(f"cannot open this file as an Excel workbook ({type(exc).__name__}); save it as .xlsx and import again")]) from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ImportRejected(str(path), [Problem(f"sheet {sheet!r} not found; the workbook has {', '.join(book.sheetnames)}")])
        ws = book[sheet] if sheet else book.worksheets[0]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        book.close()
    rows = [r for r in rows if any(v not in (None, "") for v in r)]
    if not rows:
        raise ImportRejected(str(path), [Problem("the sheet is empty; it needs a header row and at least one data row")])
    header = [_cell_text(v) for v in rows[0]]
    while header and header[-1] == "":
        header.pop()
    if sum(1 for h in header if h) < len(REQUIRED_COLUMNS) or "" in header:
        raise ImportRejected(str(path), [Problem(
            "row 1 is not a single header row (merged or blank header cells?); put one header per column on row 1: "
            "indicator, province, period, value, …", row=1)])
    body = [[_cell_text(v) for v in (r + [None] * len(header))[: len(header)]] for r in rows[1:]]
    if not body:
        raise ImportRejected(str(path), [Problem("the sheet has a header but no data rows")])
    return pd.DataFrame(body, columns=header)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# -- parsing single cells ----------------------------------------------------------------------------------
def parse_period(text: str, *, today: dt.date | None = None) -> dt.date:
    """Parse ``YYYY-MM``, an ISO date (the month is kept) or ``Mon YYYY`` into the month's first day.

    Raises
    ------
    ValueError
        With a message saying what is accepted.
    """
    raw = text.strip()
    today = today or dt.date.today()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})(?:-(\d{1,2}))?(?:[T ].*)?", raw)
    if m:
        year, month = int(m.group(1)), int(m.group(2))
        day = int(m.group(3)) if m.group(3) else 1
        try:
            dt.date(year, month, day)
        except ValueError:
            raise ValueError(f"{raw!r} is not a real date; use YYYY-MM (e.g. 2024-03)") from None
    else:
        m = re.fullmatch(r"([A-Za-z]+)\.?[\s\-/]+(\d{4})", raw)
        if not m or m.group(1).lower() not in MONTHS:
            raise ValueError(f"{raw!r} is not a period; use YYYY-MM (2024-03), an ISO date (2024-03-15) or 'Mar 2024'")
        year, month = int(m.group(2)), MONTHS[m.group(1).lower()]
    period = dt.date(year, month, 1)
    if period > today.replace(day=1):
        raise ValueError(f"{raw!r} is in the future; data can only be imported for months up to {today:%Y-%m}")
    if period < EARLIEST_PERIOD:
        raise ValueError(f"{raw!r} is before {EARLIEST_PERIOD:%Y}; check the year")
    return period


def parse_value(text: str) -> float:
    """Parse a finite, non-negative number written with plain digits (``.`` as decimal point)."""
    raw = text.strip()
    if raw == "":
        raise ValueError("value is missing; write 0 for a true zero, or leave the row out when there is no data")
    if re.fullmatch(r"\d{1,3}([,\s]\d{3})+(\.\d+)?", raw):
        plain = re.sub(r"[,\s]", "", raw)
        raise ValueError(f"{raw!r} uses a thousands separator; write plain digits, e.g. {plain}")
    if not _PLAIN_NUMBER.match(raw):
        raise ValueError(f"{raw!r} is not a number; write plain digits, e.g. 12 or 3.5")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number")
    if value < 0:
        raise ValueError(f"{raw!r} is negative; values must be 0 or more")
    return value


def _norm_token(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


# -- validation --------------------------------------------------------------------------------------------
def validate(frame: pd.DataFrame, *, first_row: int = 2, today: dt.date | None = None,
             default_source: str = "") -> tuple[pd.DataFrame, list[Problem]]:
    """Check a raw frame and return ``(clean observations, problems)``.

    The clean frame is only meaningful when ``problems`` is empty.
    """
    problems: list[Problem] = []
    columns = {c.strip().lower(): c for c in frame.columns}
    rename: dict[str, str] = {}
    for low, original in columns.items():
        key = HXL_TAGS.get(low.split("+")[0], low)
        if key in KNOWN_COLUMNS:
            rename[original] = key
        else:
            close = difflib.get_close_matches(low, KNOWN_COLUMNS, n=1, cutoff=0.7)
            hint = f" — did you mean {close[0]}?" if close else f"; known columns are {', '.join(KNOWN_COLUMNS)}"
            problems.append(Problem(f"column {original!r} is not recognised{hint}", row=1, column=original))
    for req in REQUIRED_COLUMNS:
        if req not in rename.values():
            problems.append(Problem(f"required column {req!r} is missing; the header needs indicator, province, period, value", row=1, column=req))
    if problems:
        return pd.DataFrame(), problems
    data = frame.rename(columns=rename)
    for col in OPTIONAL_COLUMNS:
        if col not in data.columns:
            data[col] = ""
    data = data.astype(str).apply(lambda s: s.str.strip())
    rows = pd.Series(range(first_row, first_row + len(data)), index=data.index)

    # Resolve repeated cells once.
    ind_cache: dict[str, Any] = {}
    for text in data["indicator"].unique():
        try:
            ind = get_indicator(text.strip())
            if ind.aggregation == "ratio":
                ind_cache[text] = ValueError(
                    f"{text!r} is computed as {ind.numerator} / {ind.denominator}; import those two indicators instead")
            else:
                ind_cache[text] = ind
        except (UnknownIndicatorError, KeyError, ValueError) as exc:
            ind_cache[text] = exc if text else ValueError("indicator is missing")
    prov_cache: dict[str, Any] = {}
    for text in data["province"].unique():
        try:
            prov_cache[text] = resolve_province(text, allow_national=True) if text else ValueError("province is missing; use a province name, code 01–25, or 'national'")
        except UnknownProvinceError as exc:
            prov_cache[text] = exc
    period_cache: dict[str, Any] = {}
    for text in data["period"].unique():
        try:
            period_cache[text] = parse_period(text, today=today) if text else ValueError("period is missing; use YYYY-MM")
        except ValueError as exc:
            period_cache[text] = exc

    out: dict[str, list[Any]] = {c: [] for c in ("indicator", "province", "period", *DIMENSIONS, "value", "partner", "source", "note", "_row")}
    for idx, rec in data.iterrows():
        row = int(rows[idx])
        row_problems = []
        ind = ind_cache[rec["indicator"]]
        if isinstance(ind, Exception):
            row_problems.append(Problem(_message(ind), row, "indicator", rec["indicator"]))
        prov = prov_cache[rec["province"]]
        if isinstance(prov, Exception):
            row_problems.append(Problem(_message(prov), row, "province", rec["province"]))
        period = period_cache[rec["period"]]
        if isinstance(period, Exception):
            row_problems.append(Problem(_message(period), row, "period", rec["period"]))
        try:
            value = parse_value(rec["value"])
        except ValueError as exc:
            row_problems.append(Problem(str(exc), row, "value", rec["value"]))
            value = math.nan
        dims: dict[str, str] = {}
        for dim in DIMENSIONS:
            text = rec[dim]
            if text == "":
                dims[dim] = NOT_DISAGGREGATED
                continue
            if not isinstance(ind, Exception) and dim not in ind.disaggregations:
                allowed = ", ".join(ind.disaggregations) or "no disaggregation"
                row_problems.append(Problem(f"{ind.id} cannot be broken down by {dim} (it allows {allowed}); leave the cell empty",
                                            row, dim, text))
                continue
            try:
                dims[dim] = _check_dimension(dim, text)
            except ValueError as exc:
                row_problems.append(Problem(str(exc), row, dim, text))
        for col in ("partner", "source", "note"):
            if len(rec[col]) > 500:
                row_problems.append(Problem(f"{col} is {len(rec[col])} characters long; keep it under 500", row, col, rec[col][:40] + "…"))
        if row_problems:
            problems.extend(row_problems)
            continue
        out["indicator"].append(ind.id)
        out["province"].append(prov)
        out["period"].append(period)
        for dim in DIMENSIONS:
            out[dim].append(dims[dim])
        out["value"].append(value)
        out["partner"].append(rec["partner"])
        out["source"].append(rec["source"] or default_source)
        out["note"].append(rec["note"])
        out["_row"].append(row)
    clean = pd.DataFrame(out)
    if not clean.empty:
        dup = clean[clean.duplicated(list(KEY_COLUMNS), keep=False)]
        for _, group in dup.groupby(list(KEY_COLUMNS), sort=False):
            first, *others = group["_row"].tolist()
            for other in others:
                problems.append(Problem(
                    f"duplicates row {first} (same indicator, province, period and breakdown); keep one of them",
                    other, "indicator", group["indicator"].iloc[0]))
    return clean, problems


def _message(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def _check_dimension(dim: str, text: str) -> str:
    if dim == "nationality":
        code = text.strip().upper()
        if not _ISO3.match(code):
            raise ValueError(f"{text!r} is not an ISO 3166-1 alpha-3 code; use e.g. KHM, VNM, CHN, THA")
        return code
    if dim == "destination":
        code = text.strip().upper()
        if _ISO3.match(code):
            return code
        try:
            return resolve_province(text)
        except UnknownProvinceError:
            raise ValueError(f"{text!r} is neither an ISO alpha-3 country (THA, MYS, KOR …) nor a province") from None
    allowed = ALLOWED_VALUES[dim]
    token = _norm_token(text)
    if token not in allowed:
        close = difflib.get_close_matches(token, allowed, n=1, cutoff=0.6)
        hint = f" — did you mean {close[0]}?" if close else ""
        raise ValueError(f"{text!r} is not a {dim} value{hint} Allowed: {'|'.join(allowed)}")
    return token


def check_store_conflicts(store: Store, clean: pd.DataFrame) -> list[Problem]:
    """Problems for rows whose key is already in the store (only relevant without ``--replace``)."""
    if clean.empty:
        return []
    existing = store.existing_keys(clean.drop(columns="_row"))
    if existing.empty:
        return []
    rows = clean.assign(period=pd.to_datetime(clean["period"]).dt.date).rename(columns={"_row": "row_number"}).merge(
        existing[[*KEY_COLUMNS, "stored_value"]], on=list(KEY_COLUMNS))
    return [
        Problem(f"{r.indicator} for {province_label(r.province)} in {r.period:%Y-%m} is already in the store "
                f"(value {r.stored_value:g}); use --replace to overwrite", int(r.row_number), "indicator", r.indicator)
        for r in rows.itertuples()
    ]


def province_label(code: str) -> str:
    """``Siem Reap (17)`` or ``national``."""
    return "national" if code == NATIONAL else f"{province_name(code)} ({code})"


def import_file(store: Store, path: str | Path, *, dry_run: bool = False, replace: bool = False, sheet: str | None = None,
                data: bytes | None = None, today: dt.date | None = None) -> ImportResult:
    """Validate a file and (unless ``dry_run``) write it as one batch.

    Raises
    ------
    ImportRejected
        With every problem; the store is unchanged.
    """
    path = Path(path)
    frame, first_row = read_table(path, sheet=sheet, data=data)
    clean, problems = validate(frame, first_row=first_row, today=today, default_source=f"import: {path.name}")
    if not problems and not replace:
        problems = check_store_conflicts(store, clean)
    if problems:
        raise ImportRejected(str(path), sorted(problems, key=lambda p: (p.row or 0, KNOWN_COLUMNS.index(p.column) if p.column in KNOWN_COLUMNS else 99)))
    rows_written, batch_id = 0, None
    if not dry_run:
        try:
            batch_id, rows_written = store.write_batch(clean.drop(columns="_row"), kind="import", file_name=path.name,
                                                       source=path.name, replace=replace)
        except StoreError as exc:
            raise ImportRejected(str(path), [Problem(str(exc))]) from None
        if rows_written == 0:
            batch_id = None
    periods = sorted(clean["period"].unique())
    return ImportResult(
        path=str(path), rows=len(clean), rows_written=rows_written,
        indicators=sorted(clean["indicator"].unique()), provinces=sorted(clean["province"].unique()),
        first_period=f"{periods[0]:%Y-%m}" if periods else None, last_period=f"{periods[-1]:%Y-%m}" if periods else None,
        batch_id=batch_id, dry_run=dry_run, frame=clean.drop(columns="_row"))


def format_problems(problems: Iterable[Problem], limit: int = 500) -> str:
    """One line per problem (at most ``limit``, then a count of the rest)."""
    problems = list(problems)
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"… and {len(problems) - limit} more")
    return "\n".join(lines)
