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
import os
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from data.catalog import UnknownIndicatorError
from data.catalog import indicator as get_indicator
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
KB = 1024
MB = 1024 * KB
#: Largest import file accepted (bytes), unless ``CTIP_IMPORT_MAX_BYTES`` says otherwise (see :func:`max_import_bytes`).
MAX_BYTES = 20 * MB
#: An XLSX may unpack to at most this many times the file limit (a "zip bomb" is refused before parsing).
UNPACKED_FACTOR = 10
#: Text starting with one of these runs as a formula when a spreadsheet opens an export ("CSV injection").
#: ``-`` and ``+`` are included although "- pending" or "+855 …" look harmless: spreadsheets still parse
#: them as formulas. Cells are stripped first, so a leading space never hides one.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Free-text columns (the coded columns are checked against their vocabularies as well).
TEXT_COLUMNS = ("partner", "source", "note")
MAX_TEXT = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MISSING_MARKERS = {"nan", "na", "n/a", "n.a.", "none", "null", "-", "--", "..", "?", "x"}
_INFINITY = {"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "∞"}
_SPREADSHEET_ERRORS = {"#div/0!", "#n/a", "#name?", "#null!", "#num!", "#ref!", "#value!", "#spill!", "#calc!", "#getting_data"}


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
        if self.row is not None and not self.column and self.message.startswith(f"row {self.row} "):
            return self.message  # the message already names its row ("row 1 is a title …")
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
def max_import_bytes() -> int:
    """The size limit of an import file in bytes: ``CTIP_IMPORT_MAX_BYTES`` (read at every call) or :data:`MAX_BYTES`.

    Raises
    ------
    ValueError
        When the environment variable is set but is not a positive whole number.
    """
    raw = os.environ.get("CTIP_IMPORT_MAX_BYTES", "").strip()
    if not raw:
        return MAX_BYTES
    if not re.fullmatch(r"[0-9]+", raw) or int(raw) <= 0:
        raise ValueError(f"CTIP_IMPORT_MAX_BYTES={raw!r} is not a positive whole number of bytes; unset it "
                         f"(the limit is then {_size_text(MAX_BYTES)}) or set e.g. {50 * MB} for 50 MB")
    return int(raw)


def _size_text(n: int) -> str:
    if n >= MB:
        return f"{n // MB} MB" if n % MB == 0 else f"{n / MB:.1f} MB"
    if n >= KB:
        return f"{n // KB} KB" if n % KB == 0 else f"{n / KB:.1f} KB"
    return f"{n} bytes"


def _too_big(lead: str, size: int, limit: int) -> Problem:
    unit, name = (MB, "MB") if size >= MB else (KB, "KB") if size >= KB else (1, "bytes")
    allowed = _size_text(limit)
    if unit == 1 or round(size / unit, 1) <= round(limit / unit, 1):  # rounding would hide the difference
        shown, allowed = f"{size:,} bytes", f"{limit:,} bytes" + (f" ({allowed})" if limit >= KB else "")
    else:
        shown = f"{size / unit:,.1f} {name}"
    return Problem(f"{lead} {shown}; the limit is {allowed} — split it by year or province and import the parts")


def read_table(path: str | Path, *, sheet: str | None = None, data: bytes | None = None) -> tuple[pd.DataFrame, int]:
    """Read a CSV, XLSX or Parquet file into a frame of strings.

    The size limit (:func:`max_import_bytes`) is checked before anything is read or parsed, and the
    content is checked against the suffix (a PNG or PDF renamed ``.xlsx`` is named as such).

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
        spreadsheet row number of the frame's first row. ``frame.attrs["rows"]`` holds the spreadsheet
        row number of every frame row (blank rows are skipped, so they need not be consecutive) and
        ``frame.attrs["header_row"]`` the row of the column names.

    Raises
    ------
    ImportRejected
        When the file cannot be read at all (size, encoding, format, layout, empty).
    """
    path = Path(path)
    try:
        limit = max_import_bytes()
    except ValueError as exc:
        raise ImportRejected(str(path), [Problem(str(exc))]) from None
    size = len(data) if data is not None else _file_size(path)
    if size > limit:
        raise ImportRejected(str(path), [_too_big("the file is", size, limit)])
    raw = data if data is not None else _read_bytes(path)
    if not raw.strip():
        raise ImportRejected(str(path), [Problem("the file is empty; it needs a header row and at least one data row")])
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        rows, delimiter = _read_csv_rows(path, raw)
        frame = _frame_from_rows(path, rows, what="file", delimiter=delimiter)
    elif suffix in (".xlsx", ".xlsm"):
        rows, merges, sheet_name = _read_xlsx_rows(path, raw, sheet, limit)
        frame = _frame_from_rows(path, rows, what=f"sheet {sheet_name!r}", merges=merges)
    elif suffix == ".parquet":
        frame = _read_parquet(path, raw)
    elif suffix == ".xls":
        raise ImportRejected(str(path), [Problem(
            "old Excel 97–2003 workbooks (.xls) are not supported; open it in Excel and save it as .xlsx (Excel Workbook)")])
    else:
        raise ImportRejected(str(path), [Problem(f"unsupported file type {suffix or '(none)'!r}; use .csv, .xlsx or .parquet")])
    rows_ = list(frame.attrs.get("rows") or range(2, 2 + len(frame)))
    header_row = frame.attrs.get("header_row", 1)
    if len(frame) and all(str(v).strip().startswith("#") for v in frame.iloc[0] if str(v).strip()) and any(
        str(v).strip() for v in frame.iloc[0]
    ):
        frame = frame.iloc[1:].reset_index(drop=True)  # HXL hashtag row
        rows_ = rows_[1:]
        if not len(frame):
            raise ImportRejected(str(path), [Problem("the file has a header and a hashtag row but no data rows; add the data below them")])
    frame.attrs["rows"] = rows_
    frame.attrs["header_row"] = header_row
    return frame, (rows_[0] if rows_ else header_row + 1)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        raise ImportRejected(str(path), [Problem("file not found; check the path")]) from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImportRejected(str(path), [Problem("file not found; check the path")]) from None
    except IsADirectoryError:
        raise ImportRejected(str(path), [Problem("this is a folder, not a file")]) from None


# What a file is, by its first bytes, and what to do about it.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel 97–2003 .xls workbook or a password-protected Office file"),
    (b"PAR1", "a Parquet file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "a program (executable)"),
    (b"{\\rtf", "an RTF document"),
)
_FIX = {
    "a CSV text file": "rename it to .csv and import again",
    "an Excel .xlsx workbook": "rename it to .xlsx and import again",
    "a Parquet file": "rename it to .parquet and import again",
    "an OpenDocument .ods spreadsheet": "open it and save it as .xlsx (Excel Workbook)",
    "an old Excel 97–2003 .xls workbook or a password-protected Office file":
        "open it in Excel and save it as .xlsx (Excel Workbook) without a password",
}
_DEFAULT_FIX = "export the data as .xlsx or CSV UTF-8 and import that file"


def _sniff(raw: bytes) -> str | None:
    """A short description of what ``raw`` is ("a PNG image"), or ``None`` when unknown."""
    for magic, kind in _MAGIC:
        if raw.startswith(magic):
            return kind
    if raw.startswith(b"MZ") and b"\x00" in raw[:64]:
        return "a program (executable)"
    if raw.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                names = set(zf.namelist())
                mimetype = zf.read("mimetype")[:100] if "mimetype" in names else b""
        except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, EOFError):
            return "a damaged ZIP archive"
        if "xl/workbook.xml" in names:
            return "an Excel .xlsx workbook"
        if "word/document.xml" in names:
            return "a Word document"
        if any(n.startswith("ppt/") for n in names):
            return "a PowerPoint presentation"
        if b"opendocument.spreadsheet" in mimetype:
            return "an OpenDocument .ods spreadsheet"
        return "a ZIP archive"
    head = raw[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML web page"
    if head.startswith(b"<?xml"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in raw[:4096]:
            return "an Excel 2003 XML spreadsheet"
        return "an XML file"
    if _is_binary(raw):
        return None
    return "a CSV text file"


def _is_binary(raw: bytes) -> bool:
    sample = raw[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 0x20 and b not in (9, 10, 12, 13) or b == 0x7F)
    return controls > max(8, len(sample) // 50)


def _not_a(path: Path, expected: str, kind: str | None) -> ImportRejected:
    looks = f" (it looks like {kind})" if kind else ""
    fix = _FIX.get(kind or "", _DEFAULT_FIX)
    return ImportRejected(str(path), [Problem(f"this is not {expected}{looks}; {fix}")])


def _utf16_without_bom(sample: bytes) -> bool:
    if len(sample) < 8:
        return False
    even, odd = sample[0::2], sample[1::2]
    return odd.count(0) > 0.7 * len(odd) or even.count(0) > 0.7 * len(even)


def _read_csv_rows(path: Path, raw: bytes) -> tuple[list[tuple[int, list[str]]], str]:
    utf16 = ImportRejected(str(path), [Problem("the file is UTF-16 encoded; save it as 'CSV UTF-8' and import again")])
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise utf16
    kind = _sniff(raw)
    if kind is None and _utf16_without_bom(raw[:4096]):
        raise utf16
    if kind != "a CSV text file":
        if kind is None:
            what = "contains NUL bytes" if b"\x00" in raw[:8192] else "contains binary data"
            raise ImportRejected(str(path), [Problem(
                f"the file {what}, so it is not a text CSV file; export the data as CSV UTF-8 and import that file")])
        raise _not_a(path, "a CSV text file", kind)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportRejected(str(path), [Problem(
            f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}; Windows-1252 or another legacy encoding?); "
            "save it as 'CSV UTF-8' and import again")]) from None
    if "\x00" in text:
        raise ImportRejected(str(path), [Problem(
            "the file contains NUL bytes, so it is not a text CSV file; export the data as CSV UTF-8 and import that file")])
    lines = text.splitlines()
    if lines and re.fullmatch(r"\s*sep=.?\s*", lines[0], flags=re.IGNORECASE):
        raise ImportRejected(str(path), [Problem(
            f"row 1 is Excel's {lines[0].strip()!r} line, not the column names; delete that line so the column names "
            "(indicator, province, period, value …) are on row 1", row=1)])
    header = next((line for line in lines if line.strip()), "")
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    if counts["\t"] and not counts[","] and not counts[";"]:
        raise ImportRejected(str(path), [Problem(
            "the file is tab-separated; save it as CSV UTF-8 (comma-separated) and import again", row=1)])
    delimiter = ";" if counts[";"] > counts[","] else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    number = 0
    try:
        for number, row in enumerate(reader, start=1):  # noqa: B007 - number is used after the loop
            rows.append((number, [c.strip() for c in row]))
    except csv.Error as exc:
        raise ImportRejected(str(path), [Problem(
            f"the CSV quoting is broken ({exc}); put a value that contains {delimiter!r}, a quote or a line break in "
            "double quotes, write a quote inside it as two quotes (\"\"), and close every quote", row=number + 1)]) from None
    return rows, delimiter


def _trim(cells: list[str]) -> list[str]:
    end = len(cells)
    while end and cells[end - 1] == "":
        end -= 1
    return cells[:end]


_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]{1,3})(\d+):([A-Z]{1,3})(\d+)"')
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")


def _scan_sheet_xml(zf: zipfile.ZipFile, name: str) -> tuple[bool, list[tuple[str, int, int, int, int]]]:
    """Stream a worksheet's XML: whether it has formulas, and its merged ranges ``(ref, r1, c1, r2, c2)``."""
    from openpyxl.utils import column_index_from_string

    has_formula = False
    merges = []
    tail = b""
    with zf.open(name) as src:
        while chunk := src.read(1 << 20):
            block = tail + chunk
            has_formula = has_formula or bool(_FORMULA_TAG.search(block))
            for m in _MERGE.finditer(block):
                if m.end() > len(tail):
                    c1, r1, c2, r2 = m.group(1).decode(), int(m.group(2)), m.group(3).decode(), int(m.group(4))
                    merges.append((f"{c1}{r1}:{c2}{r2}", r1, column_index_from_string(c1), r2, column_index_from_string(c2)))
            tail = block[-200:]
    return has_formula, sorted(set(merges), key=lambda m: (m[1], m[2]))


def _read_xlsx_rows(path: Path, raw: bytes, sheet: str | None,
                    limit: int) -> tuple[list[tuple[int, list[str]]], list[tuple[str, int, int, int, int]], str]:
    import openpyxl

    kind = _sniff(raw)
    if kind != "an Excel .xlsx workbook":
        raise _not_a(path, "an Excel workbook", kind)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        unpacked = sum(info.file_size for info in zf.infolist())
    if unpacked > UNPACKED_FACTOR * limit:
        raise ImportRejected(str(path), [_too_big("the workbook unpacks to", unpacked, UNPACKED_FACTOR * limit)])
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means it is not a workbook we can read
        raise ImportRejected(str(path), [Problem(
            f"cannot open this file as an Excel workbook ({type(exc).__name__}); save it as .xlsx and import again")]) from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ImportRejected(str(path), [Problem(
                f"sheet {sheet!r} not found; the workbook has {', '.join(map(repr, book.sheetnames))} — choose one of them")])
        ws = book[sheet] if sheet else book.worksheets[0]
        if not hasattr(ws, "iter_rows"):
            raise ImportRejected(str(path), [Problem(
                f"sheet {ws.title!r} is a chart, not a table; move the data sheet to the front or choose it by name")])
        title = ws.title
        ws.reset_dimensions()  # do not trust the stored dimension: read every row there is
        rows = [(n, [_cell_text(v) for v in r]) for n, r in enumerate(ws.iter_rows(values_only=True), start=1)]
        xml_name = getattr(ws, "_worksheet_path", None)
        has_formula, merges = False, []
        if xml_name:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                has_formula, merges = _scan_sheet_xml(zf, xml_name)
    finally:
        book.close()
    if has_formula:
        # A formula with no saved result (the file was written by a program, not saved by Excel) reads as
        # empty; put the formula text in its place so that validation names it instead of losing it.
        formulas = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=False)
        try:
            fws = formulas[title]
            fws.reset_dimensions()
            for (_, cells), frow in zip(rows, fws.iter_rows(), strict=False):
                for j, cell in enumerate(frow):
                    if getattr(cell, "data_type", None) == "f" and j < len(cells) and cells[j] == "":
                        cells[j] = str(cell.value)
        finally:
            formulas.close()
    if not any(any(cells) for _, cells in rows):
        others = [s for s in book.sheetnames if s != title]
        hint = f"; the workbook also has {', '.join(map(repr, others))} — choose the sheet with the data" if others else ""
        raise ImportRejected(str(path), [Problem(
            f"sheet {title!r} is empty; it needs a header row and at least one data row{hint}")])
    return rows, merges, title


def _column_key(name: str) -> str:
    low = name.strip().lower()
    return HXL_TAGS.get(low.split("+")[0], low)


def _looks_like_header(cells: list[str]) -> bool:
    return len({_column_key(c) for c in cells if c} & set(REQUIRED_COLUMNS)) >= 2


def _frame_from_rows(path: Path, rows: list[tuple[int, list[str]]], *, what: str, delimiter: str | None = None,
                     merges: list[tuple[str, int, int, int, int]] = ()) -> pd.DataFrame:
    """Find the header row, refuse titles above it, merged cells and (CSV, ``delimiter`` given) rows wider than
    the header, and build the frame of cells."""
    filled = [(n, cells) for n, cells in rows if any(cells)]
    if not filled:
        raise ImportRejected(str(path), [Problem("the first row must be the header (indicator, province, period, value, …)")])
    first_n, first = filled[0]
    title = (f"row {first_n} is a title or merged header, not the column names; put the column names (indicator, province, "
             "period, value …) on row 1 and delete the rows above them")
    if not _looks_like_header(first):
        for n, cells in filled[1:10]:
            if _looks_like_header(cells):
                raise ImportRejected(str(path), [Problem(f"{title} (they are on row {n} now)", row=first_n)])
        if sum(1 for c in first if c) == 1 and len(filled) > 1 and sum(1 for c in filled[1][1] if c) > 1:
            raise ImportRejected(str(path), [Problem(title, row=first_n)])
    header_n = first_n
    merged = [m for m in merges if m[3] >= header_n]
    if merged:
        raise ImportRejected(str(path), [Problem(
            f"cells {ref} are merged; unmerge them and fill in every cell — each column needs its own name on the "
            "header row and each row its own values", row=r1) for ref, r1, _c1, _r2, _c2 in merged])
    body = [(n, cells) for n, cells in filled if n > header_n]
    if delimiter is not None:
        wide = [Problem(f"has {len(_trim(cells))} cells but the header has {len(first)}; check for an unquoted "
                        f"{delimiter!r} in a value (put such values in double quotes)", row=n)
                for n, cells in body if len(_trim(cells)) > len(first)]
        if wide:
            raise ImportRejected(str(path), wide)
    if not body:
        raise ImportRejected(str(path), [Problem(
            f"the {what} has a header but no data rows; add the data below the header row")])
    width = max(len(_trim(first)), max((len(_trim(cells)) for _, cells in body), default=0))
    header = (first + [""] * width)[:width]
    frame = pd.DataFrame([(cells + [""] * width)[:width] for _, cells in body], columns=header)
    frame.attrs["rows"] = [n for n, _ in body]
    frame.attrs["header_row"] = header_n
    return frame


def _read_parquet(path: Path, raw: bytes) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if raw[:4] == b"PAR1" and raw[-4:] != b"PAR1":
        raise ImportRejected(str(path), [Problem(
            "the Parquet file is cut short (its footer is missing); copy or export it again and import the complete file")])
    if raw[:4] != b"PAR1":
        raise _not_a(path, "a Parquet file", _sniff(raw))
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except Exception as exc:  # noqa: BLE001 - any parser failure means "not a Parquet file"
        raise ImportRejected(str(path), [Problem(
            f"cannot read this file as Parquet ({type(exc).__name__}); export it again as Parquet, CSV or XLSX")]) from None
    keep = [i for i, f in enumerate(table.schema) if not re.fullmatch(r"__index_level_\d+__", f.name)]
    nested = [table.schema.field(i) for i in keep if pa.types.is_nested(table.schema.field(i).type)
              or pa.types.is_binary(table.schema.field(i).type) or pa.types.is_large_binary(table.schema.field(i).type)]
    if nested:
        raise ImportRejected(str(path), [Problem(
            f"column {f.name!r} holds {f.type} values; each cell must be one number, date or text — "
            "flatten the column (or convert it to text) and export the file again", row=1, column=f.name) for f in nested])
    columns = {}
    for pos in keep:
        series = table.column(pos).to_pandas().astype(object)
        columns[pos] = series.where(series.notna(), "").map(_cell_text)
    frame = pd.DataFrame(columns)
    frame.columns = [str(table.schema.field(i).name).strip() for i in keep]
    if not len(frame):
        raise ImportRejected(str(path), [Problem("the file has a header but no data rows; add the data below the header row")])
    frame.attrs["rows"] = list(range(2, 2 + len(frame)))
    frame.attrs["header_row"] = 1
    return frame


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
    elif re.fullmatch(r"(19|20)\d{2}(0[1-9]|1[0-2])", raw):
        raise ValueError(f"{raw!r} is not a period; write it as {raw[:4]}-{raw[4:]}")
    elif re.fullmatch(r"\d{5}(\.\d+)?", raw) and 36526 <= float(raw) < 73051:
        day = dt.date(1899, 12, 30) + dt.timedelta(days=int(float(raw)))
        raise ValueError(f"{raw!r} is a spreadsheet date number ({day:%Y-%m-%d}), not a period; format the period "
                         f"column as text and write YYYY-MM, e.g. {day:%Y-%m}")
    else:
        m = re.fullmatch(r"([A-Za-z]+)\.?[\s\-/]+(\d{4})", raw)
        if not m or m.group(1).lower() not in MONTHS:
            raise ValueError(f"{raw!r} is not a period; use YYYY-MM (2024-03), an ISO date (2024-03-15) or 'Mar 2024'")
        year, month = int(m.group(2)), MONTHS[m.group(1).lower()]
    period = dt.date(year, month, 1)
    if period > today.replace(day=1):
        raise ValueError(f"{raw!r} is in the future; check the year — data can only be imported for months up to {today:%Y-%m}")
    if period < EARLIEST_PERIOD:
        raise ValueError(f"{raw!r} is before {EARLIEST_PERIOD:%Y}; check the year (the atlas holds data from {EARLIEST_PERIOD:%Y-%m} on)")
    return period


def parse_value(text: str) -> float:
    """Parse a finite, non-negative number written with plain digits (``.`` as decimal point).

    Raises
    ------
    ValueError
        Saying what is wrong with the text and how to write it.
    """
    raw = text.strip()
    if raw == "":
        raise ValueError("value is missing; write 0 for a true zero, or leave the row out when there is no data")
    if raw.startswith("'"):
        raise ValueError(f"{raw!r} starts with an apostrophe (a spreadsheet text marker); write the number alone, "
                         f"e.g. {raw[1:].strip() or 12}")
    if raw.startswith("="):
        raise ValueError(f"{raw!r} is a spreadsheet formula, not a number; paste the values only (Paste Special → Values) and import again")
    if raw.lower() in _SPREADSHEET_ERRORS:
        raise ValueError(f"{raw!r} is a spreadsheet error, not a number; fix the formula in the source sheet or write the number")
    if re.fullmatch(r"\d{1,3}([,\s]\d{3})+(\.\d+)?", raw):
        plain = re.sub(r"[,\s]", "", raw)
        raise ValueError(f"{raw!r} uses a thousands separator; write plain digits, e.g. {plain}")
    if re.fullmatch(r"\d{1,3}([.\s]\d{3})+,\d+", raw):
        plain = re.sub(r"[.\s]", "", raw).replace(",", ".")
        raise ValueError(f"{raw!r} uses a thousands separator and a decimal comma; write plain digits with a decimal point, e.g. {plain}")
    if re.fullmatch(r"[+-]?\d*,\d+", raw):
        raise ValueError(f"{raw!r} uses a comma as decimal separator; write {raw.replace(',', '.')}")
    if raw.lower() in _MISSING_MARKERS:
        raise ValueError(f"{raw!r} is not a number; write 0 for a true zero, or leave the row out when there is no data")
    if raw.lower() in _INFINITY:
        raise ValueError(f"{raw!r} is not a number; write a finite count, e.g. 12")
    if not _PLAIN_NUMBER.match(raw):
        raise ValueError(f"{raw!r} is not a number; write plain digits, e.g. 12 or 3.5")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"{raw!r} is not a finite number (it is too large); check the value")
    if value < 0:
        raise ValueError(f"{raw!r} is negative; values must be 0 or more — report a count, not a change")
    return value + 0.0  # -0 → 0


def _norm_token(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


# -- validation --------------------------------------------------------------------------------------------
def validate(frame: pd.DataFrame, *, first_row: int = 2, today: dt.date | None = None,
             default_source: str = "") -> tuple[pd.DataFrame, list[Problem]]:
    """Check a raw frame and return ``(clean observations, problems)``.

    The clean frame is only meaningful when ``problems`` is empty.
    """
    problems: list[Problem] = []
    header_row = frame.attrs.get("header_row", 1)
    numbers = frame.attrs.get("rows")
    if numbers is None or len(numbers) != len(frame):
        numbers = range(first_row, first_row + len(frame))
    keep: dict[str, int] = {}  # canonical column -> position in the frame
    for pos, name in enumerate(str(c).strip() for c in frame.columns):
        letter = _column_letter(pos)
        if name == "":
            if frame.iloc[:, pos].astype(str).str.strip().ne("").any():
                problems.append(Problem(
                    f"column {pos + 1} ({letter}) has values but no name on the header row; name it (e.g. note) or delete "
                    "the column", row=header_row))
            continue
        key = _column_key(name)
        if key not in KNOWN_COLUMNS:
            close = difflib.get_close_matches(name.lower(), KNOWN_COLUMNS, n=1, cutoff=0.7)
            hint = (f" — did you mean {close[0]}?" if close
                    else f"; rename it to one of {', '.join(KNOWN_COLUMNS)}, or delete the column")
            problems.append(Problem(f"column {name!r} is not recognised{hint}", row=header_row, column=name))
        elif key in keep:
            problems.append(Problem(
                f"column {key!r} appears twice (columns {keep[key] + 1} and {pos + 1}); keep one of them and delete or "
                "rename the other", row=header_row, column=key))
        else:
            keep[key] = pos
    names = [str(c).strip() for c in frame.columns if str(c).strip()]
    if names and not keep and not any(difflib.get_close_matches(n.lower(), KNOWN_COLUMNS, n=1, cutoff=0.7) for n in names):
        return pd.DataFrame(), [Problem(
            f"row {header_row} does not hold the column names (it has none of indicator, province, period, value); add a "
            "header row above the data — the import template (ctip template) shows it", row=header_row)]
    for req in REQUIRED_COLUMNS:
        if req not in keep:
            problems.append(Problem(f"required column {req!r} is missing; the header needs indicator, province, period, value",
                                    row=header_row, column=req))
    if problems:
        return pd.DataFrame(), problems
    data = frame.iloc[:, list(keep.values())].copy()
    data.attrs = {}  # pandas deep-copies attrs into every derived object: drop them
    data.columns = list(keep)
    data = data.reset_index(drop=True)
    for col in OPTIONAL_COLUMNS:
        if col not in data.columns:
            data[col] = ""
    data = data.astype(str).apply(lambda s: s.str.strip())

    # Resolve repeated cells once.
    ind_cache: dict[str, Any] = {}
    for text in data["indicator"].unique():
        if _formula_message(text):
            ind_cache[text] = ValueError(_formula_message(text))
            continue
        try:
            ind = get_indicator(text.strip())
            if ind.aggregation == "ratio":
                ind_cache[text] = ValueError(
                    f"{text!r} is computed as {ind.numerator} / {ind.denominator}; import those two indicators instead")
            else:
                ind_cache[text] = ind
        except UnknownIndicatorError as exc:
            ind_cache[text] = exc if exc.suggestions else ValueError(
                f"{text!r} is not an indicator — use an id from the 'indicators' sheet of the import template "
                "(ctip template), e.g. victims_identified")
        except (KeyError, ValueError) as exc:
            ind_cache[text] = exc if text else ValueError("indicator is missing; write an indicator id, e.g. victims_identified")
    prov_cache: dict[str, Any] = {}
    for text in data["province"].unique():
        if _formula_message(text):
            prov_cache[text] = ValueError(_formula_message(text))
            continue
        try:
            prov_cache[text] = resolve_province(text, allow_national=True) if text else ValueError(
                "province is missing; use a province name, code 01–25, or 'national'")
        except UnknownProvinceError as exc:
            prov_cache[text] = exc
    period_cache: dict[str, Any] = {}
    for text in data["period"].unique():
        if _formula_message(text):
            period_cache[text] = ValueError(_formula_message(text))
            continue
        try:
            period_cache[text] = parse_period(text, today=today) if text else ValueError("period is missing; use YYYY-MM")
        except ValueError as exc:
            period_cache[text] = exc

    out: dict[str, list[Any]] = {
        c: [] for c in ("indicator", "province", "period", *DIMENSIONS, "value", "partner", "source", "note", "_row")}
    # Plain dicts, not iterrows(): a pandas row Series costs ~1 ms per row on large files.
    names = list(data.columns)
    records = (dict(zip(names, values, strict=True)) for values in zip(*(data[c].tolist() for c in names), strict=True))
    for row, rec in zip((int(n) for n in numbers), records, strict=True):
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
            if _formula_message(text):
                row_problems.append(Problem(_formula_message(text), row, dim, text))
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
        for col in TEXT_COLUMNS:
            text = rec[col]
            if not text:
                continue
            shown = text if len(text) <= 60 else text[:60] + "…"
            if _formula_message(text):
                row_problems.append(Problem(_formula_message(text), row, col, shown))
            elif _CONTROL.search(text):
                char = _CONTROL.search(text).group()
                row_problems.append(Problem(f"{shown!r} contains the control character U+{ord(char):04X}; delete it",
                                            row, col, shown))
            elif len(text) > MAX_TEXT:
                row_problems.append(Problem(f"{col} is {len(text)} characters long; keep it under {MAX_TEXT}", row, col, shown))
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


def _formula_message(text: str) -> str | None:
    """The problem with a text cell that a spreadsheet would run as a formula, or ``None``."""
    if not text or text[0] not in FORMULA_PREFIXES:
        return None
    lead = {"\t": "a tab", "\r": "a carriage return"}.get(text[0], repr(text[0]))
    shown = text if len(text) <= 40 else text[:40] + "…"
    return (f"{shown!r} starts with {lead} and would run as a spreadsheet formula when the data is exported; "
            "remove the leading character or write the text differently")


def _column_letter(pos: int) -> str:
    letters = ""
    pos += 1
    while pos:
        pos, rem = divmod(pos - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


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
        raise ImportRejected(str(path), sorted(
            problems, key=lambda p: (p.row or 0, KNOWN_COLUMNS.index(p.column) if p.column in KNOWN_COLUMNS else 99)))
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
