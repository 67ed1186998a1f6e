"""Generate the bad-input corpus: small malformed import files, each with one thing wrong.

Run ``python tests/bad_inputs/make_corpus.py`` to (re)write the files beside this script; the output is
deterministic (fixed zip timestamps and workbook properties, seeded noise), so the committed files are
exactly what this script writes with the pinned openpyxl and pyarrow. ``expected.toml`` beside them names
the message every file must produce. The huge file is never committed: :func:`write_huge_csv` writes it
into a temporary folder at test time.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = "indicator,province,period,value"
FIXED_TIME = (2024, 1, 1, 0, 0, 0)
FIXED_DATETIME = dt.datetime(2024, 1, 1)

#: file name -> bytes (or a function returning bytes)
FILES: dict[str, Callable[[], bytes]] = {}


def corpus(name: str) -> Callable[[Callable[[], bytes]], Callable[[], bytes]]:
    """Register a generator for ``name``."""

    def register(fn: Callable[[], bytes]) -> Callable[[], bytes]:
        FILES[name] = fn
        return fn

    return register


def csv_bytes(*lines: str, header: str = HEADER, encoding: str = "utf-8") -> bytes:
    """Lines joined with ``\\n`` under ``header`` (``None`` for no header)."""
    return "\n".join([header, *lines] if header is not None else lines).encode(encoding) + b"\n"


def text_file(name: str, *lines: str, header: str = HEADER) -> None:
    """Register a UTF-8 CSV with these lines."""
    FILES[name] = lambda: csv_bytes(*lines, header=header)


def normalise_zip(raw: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps so that it is byte-for-byte reproducible."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2024-01-01T00:00:00Z", content)
            dst.writestr(fixed, content)
    return out.getvalue()


def workbook_bytes(build: Callable[..., None]) -> bytes:
    """An XLSX made by ``build(workbook)``, with fixed properties and zip timestamps."""
    import openpyxl

    book = openpyxl.Workbook()
    build(book)
    book.properties.created = FIXED_DATETIME
    book.properties.modified = FIXED_DATETIME
    book.properties.creator = "make_corpus"
    out = io.BytesIO()
    book.save(out)
    return normalise_zip(out.getvalue())


def rows_sheet(ws, rows: list[list[object]]) -> None:  # noqa: ANN001 - openpyxl worksheet
    """Append ``rows`` to a worksheet."""
    for row in rows:
        ws.append(row)


def parquet_bytes(columns: dict[str, object]) -> bytes:
    """A Parquet file of these pyarrow arrays (no pandas metadata, so it does not depend on pandas)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table(columns), out, compression="snappy")
    return out.getvalue()


def png_bytes() -> bytes:
    """A valid 1×1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


def pdf_bytes() -> bytes:
    """A minimal one-page PDF."""
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
            b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >> endobj\n"
            b"trailer << /Root 1 0 R >>\n%%EOF\n")


def good_workbook(book) -> None:  # noqa: ANN001 - openpyxl workbook
    """One valid data sheet called 'data'."""
    ws = book.active
    ws.title = "data"
    rows_sheet(ws, [HEADER.split(","), ["victims_identified", "Kampot", "2024-03", 4]])


# -- encodings and content that is not a CSV -----------------------------------------------------------------
FILES["empty.csv"] = lambda: b""
FILES["whitespace_only.csv"] = lambda: b"\n  \n\t\n"
FILES["utf16_bom.csv"] = lambda: csv_bytes("victims_identified,Kampot,2024-03,4", encoding="utf-16")
FILES["utf16le_no_bom.csv"] = lambda: csv_bytes("victims_identified,Kampot,2024-03,4", encoding="utf-16-le")
FILES["windows1252.csv"] = lambda: csv_bytes("victims_identified,Kampot,2024-03,4,Café Hope", header=HEADER + ",partner",
                                             encoding="cp1252")
FILES["nul_bytes.csv"] = lambda: csv_bytes("victims_identified,Kampot,2024-03,4").replace(b"Kampot", b"Kam\x00pot")
FILES["binary_noise.csv"] = lambda: random.Random(20240301).randbytes(2048).replace(b"\x00", b"\x01")
FILES["png_image.csv"] = png_bytes
FILES["xlsx_named.csv"] = lambda: workbook_bytes(good_workbook)
text_file("tab_separated.csv", "victims_identified\tKampot\t2024-03\t4", header=HEADER.replace(",", "\t"))
FILES["unsupported.json"] = lambda: b'[{"indicator": "victims_identified", "province": "Kampot", "period": "2024-03", "value": 4}]\n'
FILES["legacy.xls"] = lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)

# -- layout: header, columns, quoting -----------------------------------------------------------------------
text_file("header_only.csv")
text_file("hashtag_row_only.csv", "#indicator,#adm1+name,#date,#value")
text_file("unquoted_delimiter.csv", "victims_identified,Kampot,2024-03,4", "tip_arrests,Kampot,2024-03,1,234")
text_file("broken_quote.csv", 'victims_identified,Kampot,2024-03,"4"x')
text_file("title_row_above_header.csv", "indicator,province,period,value", "victims_identified,Kampot,2024-03,4",
          header="Counter-trafficking monthly report,,,")
FILES["excel_sep_line.csv"] = lambda: csv_bytes("indicator;province;period;value", "victims_identified;Kampot;2024-03;4",
                                                header="sep=;")
text_file("no_header_row.csv", "victims_identified,Kampot,2024-04,5", header="victims_identified,Kampot,2024-03,4")
text_file("duplicate_column.csv", "victims_identified,Kampot,2024-03,4,5", header=HEADER + ",value")
text_file("renamed_column.csv", "victims_identified,Kampot,2024-03,4", header="indicator,provnce,period,value")
text_file("missing_column.csv", "victims_identified,Kampot,4", header="indicator,province,value")
text_file("unnamed_column_with_values.csv", "victims_identified,Kampot,2024-03,4,checked", header=HEADER + ",")
text_file("row_numbers_after_blank_lines.csv", "victims_identified,Kampot,2024-03,4", "", "",
          "victims_identified,Kampot,2024-04,four")

# -- codes: provinces, indicators, disaggregations ----------------------------------------------------------
text_file("unknown_province.csv", "victims_identified,Siem Reab,2024-03,4")
text_file("missing_province.csv", "victims_identified,,2024-03,4")
text_file("unknown_indicator.csv", "victim_identified,Kampot,2024-03,4")
text_file("unknown_indicator_no_suggestion.csv", "number_of_cases,Kampot,2024-03,4")
text_file("ratio_indicator.csv", "pct_female_household_reps,Koh Kong,2024-03,50")
text_file("disaggregation_not_allowed.csv", "hotline_calls,Kampot,2024-03,40,female", header=HEADER + ",sex")
text_file("bad_vocabulary.csv", "victims_identified,Kampot,2024-03,4,femal", header=HEADER + ",sex")
text_file("bad_nationality.csv", "victims_identified,Kampot,2024-03,4,Cambodia", header=HEADER + ",nationality")

# -- values -------------------------------------------------------------------------------------------------
text_file("negative_value.csv", "victims_identified,Kampot,2024-03,-3")
text_file("nan_value.csv", "victims_identified,Kampot,2024-03,NaN")
text_file("infinite_value.csv", "victims_identified,Kampot,2024-03,inf")
text_file("text_value.csv", "victims_identified,Kampot,2024-03,twelve")
text_file("missing_value.csv", "victims_identified,Kampot,2024-03,")
text_file("thousands_separator.csv", 'migrants_departed,Prey Veng,2024-03,"1,234"')
FILES["decimal_comma.csv"] = lambda: csv_bytes("livelihood_grant_value;Kampot;2024-03;12,5", header=HEADER.replace(",", ";"))
FILES["european_number.csv"] = lambda: csv_bytes("livelihood_grant_value;Kampot;2024-03;1.234,5",
                                                 header=HEADER.replace(",", ";"))
text_file("apostrophe_value.csv", "victims_identified,Kampot,2024-03,'12")
text_file("formula_value.csv", "victims_identified,Kampot,2024-03,=4+8")

# -- periods ------------------------------------------------------------------------------------------------
text_file("impossible_month.csv", "victims_identified,Kampot,2024-13,4")
text_file("future_month.csv", "victims_identified,Kampot,2099-01,4")
text_file("before_2000.csv", "victims_identified,Kampot,1999-12,4")
text_file("period_yyyymm.csv", "victims_identified,Kampot,202403,4")
text_file("period_spreadsheet_serial.csv", "victims_identified,Kampot,45366,4")

# -- keys ---------------------------------------------------------------------------------------------------
text_file("duplicate_keys.csv", "victims_identified,Kampot,2024-03,4", "victims_identified,Kampot,2024-03,5")
#: conflicts with the row the test pre-loads (victims_identified, Kampot, 2024-01, value 5)
text_file("already_in_store.csv", "victims_identified,Kampot,2024-01,7")

# -- formula injection and unsafe text ----------------------------------------------------------------------
text_file("formula_note_hyperlink.csv", 'victims_identified,Kampot,2024-03,4,"=HYPERLINK(""http://x"",""click"")"',
          header=HEADER + ",note")
text_file("formula_partner_cmd.csv", "victims_identified,Kampot,2024-03,4,+cmd|' /C calc'!A0", header=HEADER + ",partner")
text_file("formula_source_at.csv", "victims_identified,Kampot,2024-03,4,@SUM(1+1)", header=HEADER + ",source")
text_file("formula_note_minus.csv", "victims_identified,Kampot,2024-03,4,-2+3", header=HEADER + ",note")
text_file("formula_note_dash_sentence.csv", "victims_identified,Kampot,2024-03,4,- pending confirmation", header=HEADER + ",note")
text_file("formula_note_after_tab.csv", 'victims_identified,Kampot,2024-03,4,"\t=1+1"', header=HEADER + ",note")
text_file("formula_province.csv", "victims_identified,=A1,2024-03,4")
text_file("control_character_note.csv", "victims_identified,Kampot,2024-03,4,bell\x07here", header=HEADER + ",note")
text_file("long_note.csv", "victims_identified,Kampot,2024-03,4," + "x" * 600, header=HEADER + ",note")


# -- XLSX ---------------------------------------------------------------------------------------------------
@corpus("title_merged_above_header.xlsx")
def _title_merged() -> bytes:
    def build(book) -> None:  # noqa: ANN001
        ws = book.active
        ws["A1"] = "Counter-trafficking monthly report, Kampot 2024"
        ws.merge_cells("A1:D1")
        rows_sheet(ws, [HEADER.split(","), ["victims_identified", "Kampot", "2024-03", 4]])

    return workbook_bytes(build)


@corpus("two_row_header.xlsx")
def _two_row_header() -> bytes:
    def build(book) -> None:  # noqa: ANN001
        ws = book.active
        ws["A1"], ws["C1"], ws["D1"] = "What and where", "When", "How many"
        ws.merge_cells("A1:B1")
        rows_sheet(ws, [HEADER.split(","), ["victims_identified", "Kampot", "2024-03", 4]])

    return workbook_bytes(build)


@corpus("merged_data_cells.xlsx")
def _merged_data() -> bytes:
    def build(book) -> None:  # noqa: ANN001
        ws = book.active
        rows_sheet(ws, [HEADER.split(","), ["victims_identified", "Kampot", "2024-01", 4],
                        ["victims_identified", None, "2024-02", 5], ["victims_identified", None, "2024-03", 6]])
        ws.merge_cells("B2:B4")

    return workbook_bytes(build)


@corpus("merged_header_cells.xlsx")
def _merged_header() -> bytes:
    def build(book) -> None:  # noqa: ANN001
        ws = book.active
        rows_sheet(ws, [[*HEADER.split(","), None], ["victims_identified", "Kampot", "2024-03", 4, 2]])
        ws.merge_cells("D1:E1")

    return workbook_bytes(build)


@corpus("header_only.xlsx")
def _header_only() -> bytes:
    return workbook_bytes(lambda book: rows_sheet(book.active, [HEADER.split(",")]))


@corpus("empty_first_sheet.xlsx")
def _empty_first() -> bytes:
    def build(book) -> None:  # noqa: ANN001
        book.active.title = "Notes"
        rows_sheet(book.create_sheet("data"), [HEADER.split(","), ["victims_identified", "Kampot", "2024-03", 4]])

    return workbook_bytes(build)


@corpus("formula_without_saved_result.xlsx")
def _formula_value() -> bytes:
    def build(book) -> None:  # noqa: ANN001
        rows_sheet(book.active, [HEADER.split(","), ["victims_identified", "Kampot", "2024-03", "=2*3"]])

    return workbook_bytes(build)


@corpus("formula_text_in_note.xlsx")
def _formula_text() -> bytes:
    def build(book) -> None:  # noqa: ANN001
        ws = book.active
        rows_sheet(ws, [[*HEADER.split(","), "note"], ["victims_identified", "Kampot", "2024-03", 4, None]])
        ws["E2"] = '=HYPERLINK("http://x","click")'
        ws["E2"].data_type = "s"  # stored as text (what Excel does for '=… typed with a leading apostrophe)

    return workbook_bytes(build)


@corpus("error_value.xlsx")
def _error_value() -> bytes:
    return workbook_bytes(lambda book: rows_sheet(book.active, [HEADER.split(","), ["victims_identified", "Kampot", "2024-03", "#DIV/0!"]]))


@corpus("sheet_missing.xlsx")
def _sheet_missing() -> bytes:
    return workbook_bytes(good_workbook)


FILES["png_image.xlsx"] = png_bytes
FILES["pdf_document.xlsx"] = pdf_bytes
FILES["html_page.xlsx"] = lambda: b"<!DOCTYPE html>\n<html><body><table><tr><td>indicator</td></tr></table></body></html>\n"
FILES["csv_named.xlsx"] = lambda: csv_bytes("victims_identified,Kampot,2024-03,4")
FILES["legacy_xls_named.xlsx"] = lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)


@corpus("zip_archive.xlsx")
def _zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("data.csv", date_time=FIXED_TIME), csv_bytes("victims_identified,Kampot,2024-03,4"))
    return out.getvalue()


# -- Parquet ------------------------------------------------------------------------------------------------
@corpus("nested_value.parquet")
def _nested() -> bytes:
    import pyarrow as pa

    return parquet_bytes({"indicator": pa.array(["victims_identified"]), "province": pa.array(["Kampot"]),
                          "period": pa.array(["2024-03"]), "value": pa.array([[1, 2]])})


@corpus("period_as_integer.parquet")
def _period_int() -> bytes:
    import pyarrow as pa

    return parquet_bytes({"indicator": pa.array(["victims_identified"]), "province": pa.array(["Kampot"]),
                          "period": pa.array([202403], pa.int64()), "value": pa.array([4], pa.int64())})


@corpus("value_as_boolean.parquet")
def _value_bool() -> bytes:
    import pyarrow as pa

    return parquet_bytes({"indicator": pa.array(["victims_identified"]), "province": pa.array(["Kampot"]),
                          "period": pa.array(["2024-03"]), "value": pa.array([True])})


FILES["csv_named.parquet"] = lambda: csv_bytes("victims_identified,Kampot,2024-03,4")
FILES["cut_short.parquet"] = lambda: _value_bool()[:-40]
FILES["damaged.parquet"] = lambda: b"PAR1" + random.Random(7).randbytes(256) + b"PAR1"


# -- the huge file (generated at test time only) ------------------------------------------------------------
def write_huge_csv(path: Path, min_bytes: int) -> int:
    """Write a well-formed CSV of more than ``min_bytes`` bytes to ``path`` and return its size."""
    provinces = ["Kampot", "Kep", "Takeo", "Kandal", "Siem Reap", "Battambang"]
    line_no = 0
    size = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.write(HEADER + ",note\n")
        size += len(HEADER) + 6
        while size <= min_bytes:
            line_no += 1
            year, month = 2000 + (line_no // 12) % 25, line_no % 12 + 1
            line = f"victims_identified,{provinces[line_no % 6]},{year}-{month:02d},{line_no % 50},line {line_no}\n"
            out.write(line)
            size += len(line)
    return path.stat().st_size


def build(out_dir: Path = HERE) -> list[Path]:
    """Write every corpus file into ``out_dir`` and return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in sorted(FILES.items()):
        path = out_dir / name
        path.write_bytes(make())
        written.append(path)
    return written


if __name__ == "__main__":
    paths = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
    print(f"wrote {len(paths)} files")
