"""Import: every problem reported at once with row and column, nothing written on error."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data.ingest import ImportRejected, import_file, parse_period, parse_value
from data.maintenance import store_info

FIXTURES = Path(__file__).parent / "fixtures"
TODAY = dt.date(2026, 11, 23)


def test_parse_period_accepts_the_documented_forms():
    assert parse_period("2024-03", today=TODAY) == dt.date(2024, 3, 1)
    assert parse_period("2024-03-17", today=TODAY) == dt.date(2024, 3, 1)
    assert parse_period("2024-03-17T10:00:00", today=TODAY) == dt.date(2024, 3, 1)
    assert parse_period("Mar 2024", today=TODAY) == dt.date(2024, 3, 1)
    assert parse_period("september 2025", today=TODAY) == dt.date(2025, 9, 1)
    for bad, msg in [("2024-13", "not a real date"), ("2027-01", "future"), ("Q1 2024", "not a period"), ("1999-12", "before")]:
        with pytest.raises(ValueError, match=msg):
            parse_period(bad, today=TODAY)


def test_parse_value_rejects_what_is_not_a_plain_non_negative_number():
    assert parse_value("12") == 12.0 and parse_value("3.5") == 3.5 and parse_value("0") == 0.0
    for bad, msg in [("-1", "negative"), ("1,234", "thousands separator"), ("abc", "not a number"), ("", "missing"),
                     ("inf", "not a number"), ("NaN", "not a number"), ("1 234", "thousands separator")]:
        with pytest.raises(ValueError, match=msg):
            parse_value(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12,5", "'12,5' uses a comma as decimal separator; write 12.5"),
        ("0,25", "write 0.25"),
        ("1.234,5", "uses a thousands separator and a decimal comma; write plain digits with a decimal point, e.g. 1234.5"),
        ("12 345", "uses a thousands separator; write plain digits, e.g. 12345"),
        ("'12", "starts with an apostrophe (a spreadsheet text marker); write the number alone, e.g. 12"),
        ("=4+8", "is a spreadsheet formula, not a number; paste the values only"),
        ("#DIV/0!", "is a spreadsheet error, not a number"),
        ("-3", "'-3' is negative; values must be 0 or more"),  # a number, not a formula
        ("-0.5", "is negative"),
        ("n/a", "is not a number; write 0 for a true zero, or leave the row out"),
        ("Infinity", "is not a number; write a finite count"),
        ("1e999", "is not a finite number"),
    ],
)
def test_parse_value_says_what_is_wrong_and_how_to_write_it(text, message):
    with pytest.raises(ValueError) as info:
        parse_value(text)
    assert message in str(info.value)


def test_parse_value_accepts_signs_and_exponents():
    assert parse_value("+4") == 4.0 and parse_value("1e3") == 1000.0 and parse_value(".5") == 0.5
    assert str(parse_value("-0")) == "0.0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("202403", "'202403' is not a period; write it as 2024-03"),
        ("45366", "'45366' is a spreadsheet date number (2024-03-15), not a period; format the period column as text"),
        ("2024-02-30", "is not a real date"),
        ("2024-00", "is not a real date"),
        ("2099-01", "is in the future; check the year"),
    ],
)
def test_parse_period_explains_common_mistakes(text, message):
    with pytest.raises(ValueError) as info:
        parse_period(text, today=TODAY)
    assert message in str(info.value)


def test_import_reports_all_twenty_mistakes_and_writes_nothing(store):
    before = store_info(store)
    with pytest.raises(ImportRejected) as info:
        import_file(store, FIXTURES / "import_20_mistakes.csv", today=TODAY)
    problems = info.value.problems
    text = [str(p) for p in problems]
    assert len(problems) == 20, "\n".join(text)
    assert all(p.row is not None and p.column for p in problems)
    assert "row 2, province: 'Siem Reab' is not a province — did you mean Siem Reap (17)?" in text
    assert any(t.startswith("row 3, indicator: 'victim_identified' is not an indicator") for t in text)
    assert any("row 21, indicator" in t and "duplicates row 20" in t for t in text)
    assert any("row 19, indicator" in t and "female_household_reps / households_supported" in t for t in text)
    assert {p.row for p in problems} == set(range(2, 21)) - {20} | {21, 22}
    assert store_info(store) == before


def test_partner_file_with_khmer_names_aliases_and_month_names_imports(store):
    result = import_file(store, FIXTURES / "partner_khmer_aliases.csv", today=TODAY)
    assert result.rows == 12 and result.rows_written == 12
    assert result.provinces == ["01", "12", "11", "14", "17", "18", "22", "25"] or sorted(result.provinces) == result.provinces
    assert set(result.provinces) == {"01", "11", "12", "14", "17", "18", "22", "25"}
    stored = store.query("SELECT province, period, value FROM observations WHERE province = '14' ORDER BY value")
    assert stored["value"].tolist() == [85.0, 120.0]
    assert (stored["period"] == pd.Timestamp("2024-01-01")).all()
    # Importing again is rejected without --replace, and changes nothing with it.
    with pytest.raises(ImportRejected, match="1 problem|12 problem"):
        import_file(store, FIXTURES / "partner_khmer_aliases.csv", today=TODAY)
    info = store_info(store)
    again = import_file(store, FIXTURES / "partner_khmer_aliases.csv", today=TODAY, replace=True)
    assert again.rows_written == 0 and again.batch_id is None
    assert store_info(store) == info


def test_dry_run_writes_nothing(store):
    before = store_info(store)
    result = import_file(store, FIXTURES / "partner_khmer_aliases.csv", today=TODAY, dry_run=True)
    assert result.rows == 12 and result.rows_written == 0
    assert store_info(store) == before


def test_xlsx_and_parquet_round_trip(store, tmp_path):
    frame = pd.read_csv(FIXTURES / "partner_khmer_aliases.csv", sep=";", encoding="utf-8-sig", skiprows=[1], dtype=str)
    xlsx = tmp_path / "p.xlsx"
    frame.to_excel(xlsx, index=False, sheet_name="partner data")
    assert import_file(store, xlsx, today=TODAY, dry_run=True).rows == 12
    parquet = tmp_path / "p.parquet"
    frame.to_parquet(parquet)
    assert import_file(store, parquet, today=TODAY).rows_written == 12


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        ("indicator,province,period,value\ntip_arrests,Kampot,2024-01,3\n".encode("utf-16"), "UTF-16"),
        ("indicator,province,period,value\ntip_arrests,Kâmpôt,2024-01,3\n".encode("cp1252"), "not UTF-8"),
        (b"indicator,provnce,period,value\ntip_arrests,Kampot,2024-01,3\n", "did you mean province"),
        (b"indicator,period,value\ntip_arrests,2024-01,3\n", "required column 'province' is missing"),
    ],
)
def test_unreadable_files_get_a_clear_message(store, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ImportRejected) as info:
        import_file(store, path, today=TODAY)
    assert message in "\n".join(str(p) for p in info.value.problems)


def _ctip(args, db):
    env = {**os.environ, "CTIP_DATABASE_URL": f"duckdb:///{db}"}
    return subprocess.run([sys.executable, "-m", "dashboard.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_import_failure_leaves_info_byte_identical(tmp_path):
    db = tmp_path / "ctip.duckdb"
    ok = _ctip(["import", str(FIXTURES / "partner_khmer_aliases.csv")], db)
    assert ok.returncode == 0, ok.stderr
    before = _ctip(["info", "--json"], db).stdout
    bad = _ctip(["import", str(FIXTURES / "import_20_mistakes.csv")], db)
    assert bad.returncode == 1
    lines = [line for line in bad.stderr.splitlines() if line.startswith("row ")]
    assert len(lines) == 20
    after = _ctip(["info", "--json"], db).stdout
    assert before == after
    assert '"rows_per_indicator"' in after


def test_cli_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "dashboard.cli", "--help"], capture_output=True, text=True).stdout
    for cmd in ("import", "template", "info", "demo", "serve", "init"):
        assert cmd in out


def test_template_has_a_data_dictionary(tmp_path):
    import openpyxl

    out = tmp_path / "t.xlsx"
    r = _ctip(["template", "--out", str(out)], tmp_path / "x.duckdb")
    assert r.returncode == 0, r.stderr
    book = openpyxl.load_workbook(out)
    assert book.sheetnames[:4] == ["data", "indicators", "allowed values", "provinces"]
    header = [c.value for c in book["data"][1]]
    assert header[:4] == ["indicator", "province", "period", "value"]
    ids = [row[0].value for row in book["indicators"].iter_rows(min_row=2)]
    assert "victims_identified" in ids and "pct_female_household_reps" not in ids
