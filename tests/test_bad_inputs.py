"""Bad-input corpus: every malformed file is rejected with its expected message and the store is unchanged.

The files live in ``tests/bad_inputs/`` (written by ``make_corpus.py``), the expected problems in
``tests/bad_inputs/expected.toml``. The file over the size limit is written into ``tmp_path`` here.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from data import ingest
from data.ingest import MAX_BYTES, MB, ImportRejected, import_file
from data.maintenance import store_info
from data.store import Store, open_store

CORPUS = Path(__file__).parent / "bad_inputs"
MANIFEST = CORPUS / "expected.toml"
NOT_CORPUS = {"make_corpus.py", "expected.toml", "__pycache__"}
CASES: list[dict[str, Any]] = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["case"]
GOOD_ROWS = "indicator,province,period,value\nvictims_identified,Kampot,2024-01,5\ntip_arrests,Battambang,2024-02,2\n"


def _make_corpus():  # noqa: ANN202 - the module
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTIP_IMPORT_MAX_BYTES", raising=False)


def _loaded_store(folder: Path) -> Store:
    store = open_store("duckdb:///:memory:")
    good = folder / "good.csv"
    good.write_text(GOOD_ROWS, encoding="utf-8")
    assert import_file(store, good).rows_written == 2
    return store


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """An in-memory DuckDB store holding two good rows in one import batch, shared by the rejection tests
    (each checks that its own rejection left it unchanged)."""
    store = _loaded_store(tmp_path_factory.mktemp("store"))
    yield store
    store.close()


def snapshot(store: Store) -> tuple[Any, ...]:
    """Everything an import could change: the info summary and the raw tables."""
    return (
        store_info(store),
        store.query("SELECT * FROM observations ORDER BY ALL").to_dict("records"),
        store.query("SELECT * FROM batches ORDER BY ALL").to_dict("records"),
        store.query("SELECT * FROM meta ORDER BY ALL").to_dict("records"),
    )


def assert_problems(problems: list[ingest.Problem], expected: list[dict[str, Any]], name: str) -> None:
    """``problems`` are exactly ``expected``, in order: each names what is wrong and the fix."""
    text = "\n".join(str(p) for p in problems)
    assert len(problems) == len(expected), f"{name}: expected {len(expected)} problem(s), got:\n{text}"
    for got, want in zip(problems, expected, strict=True):
        line = str(got)
        assert want["what"] in line, f"{name}: {want['what']!r} not in {line!r}"
        assert want["fix"] in line, f"{name}: fix {want['fix']!r} not in {line!r}"
        if "row" in want:
            assert got.row == want["row"], f"{name}: row {got.row} != {want['row']} in {line!r}"
        if "column" in want:
            assert got.column == want["column"], f"{name}: column {got.column!r} != {want['column']!r} in {line!r}"


# -- the manifest -------------------------------------------------------------------------------------------
def test_manifest_lists_every_corpus_file_once():
    names = [case["file"] for case in CASES]
    on_disk = {p.name for p in CORPUS.iterdir()} - NOT_CORPUS
    assert len(names) == len(set(names)), "a file is listed twice in expected.toml"
    assert set(names) == on_disk, f"not in the manifest: {on_disk - set(names)}; missing on disk: {set(names) - on_disk}"
    assert len(names) >= 30
    for case in CASES:
        assert case["problems"], case["file"]
        for want in case["problems"]:
            assert want["what"].strip() and want["fix"].strip(), case["file"]
            assert set(want) <= {"what", "fix", "row", "column"}, case["file"]


def test_corpus_covers_every_format():
    suffixes = {Path(case["file"]).suffix for case in CASES}
    assert {".csv", ".xlsx", ".parquet"} <= suffixes


def test_corpus_files_are_what_make_corpus_writes(tmp_path: Path):
    """The committed binaries are reproducible from the script (zip members / Parquet tables when the
    pinned openpyxl or pyarrow wrote slightly different bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fresh = {p.name: p for p in _make_corpus().build(tmp_path)}
    committed = {p.name: p for p in CORPUS.iterdir() if p.name not in NOT_CORPUS}
    assert set(fresh) == set(committed), "run: python tests/bad_inputs/make_corpus.py"
    for name, path in sorted(fresh.items()):
        new, old = path.read_bytes(), committed[name].read_bytes()
        if new == old:
            continue
        hint = f"{name} differs from what make_corpus.py writes; run: python tests/bad_inputs/make_corpus.py"
        if new.startswith(b"PK") and old.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(new)) as a, zipfile.ZipFile(io.BytesIO(old)) as b:
                assert {n: a.read(n) for n in a.namelist() if not n.startswith("docProps/")} == {
                    n: b.read(n) for n in b.namelist() if not n.startswith("docProps/")}, hint
        elif new[:4] == b"PAR1" and new[-4:] == b"PAR1":
            assert pq.read_table(pa.BufferReader(new)).equals(pq.read_table(pa.BufferReader(old))), hint
        else:
            pytest.fail(hint)


# -- every file is rejected, nothing changes ----------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_corpus_file_is_rejected_with_its_message_and_the_store_is_unchanged(loaded: Store, case: dict[str, Any]):
    path = CORPUS / case["file"]
    before = snapshot(loaded)
    with pytest.raises(ImportRejected) as info:
        import_file(loaded, path, sheet=case.get("sheet"))
    assert_problems(info.value.problems, case["problems"], case["file"])
    assert snapshot(loaded) == before
    # An upload (content in memory, same name) gets the same answer.
    with pytest.raises(ImportRejected) as upload:
        import_file(loaded, path.name, data=path.read_bytes(), sheet=case.get("sheet"))
    assert [str(p) for p in upload.value.problems] == [str(p) for p in info.value.problems]
    # A dry run is rejected the same way (and of course writes nothing either).
    with pytest.raises(ImportRejected):
        import_file(loaded, path, sheet=case.get("sheet"), dry_run=True)
    assert snapshot(loaded) == before


def test_a_good_file_still_imports_into_the_same_store(tmp_path: Path):
    """Positive control: such a store accepts a valid file (so 'unchanged' means rejected)."""
    loaded = _loaded_store(tmp_path)
    good = tmp_path / "more.csv"
    good.write_text("indicator,province,period,value\nvictims_identified,Kampot,2024-02,6\n", encoding="utf-8")
    before = store_info(loaded)
    assert import_file(loaded, good).rows_written == 1
    assert store_info(loaded)["rows"] == before["rows"] + 1


@pytest.mark.parametrize(
    ("name", "content", "column", "stored"),
    [
        # An apostrophe is the safe way to write a note that would otherwise be a formula.
        ("apostrophe_note.csv", "indicator,province,period,value,note\nvictims_identified,Kampot,2024-03,4,'=1+1\n", "note", "'=1+1"),
        # Khmer text uses zero-width spaces between words: not a control character.
        ("khmer.csv", "indicator,province,period,value,note\nvictims_identified,កំពត,2024-03,4,ការ\u200bពិនិត្យ\n", "note", "ការ\u200bពិនិត្យ"),
        # A dash inside the text, a plus sign on a number, a trailing comma on every line, a blank line.
        ("inner_dash.csv", "indicator,province,period,value,note,\n\nvictims_identified,Kampot,2024-03,+4,follow-up - pending,\n",
         "note", "follow-up - pending"),
        ("minus_zero.csv", "indicator,province,period,value\nvictims_identified,Kampot,2024-03,-0\n", "value", 0.0),
        ("decimal_point.csv", "indicator;province;period;value\nlivelihood_grant_value;Kampot;2024-03;12.5\n", "value", 12.5),
    ],
)
def test_near_misses_are_accepted(tmp_path: Path, name: str, content: str, column: str, stored: object):
    store = open_store("duckdb:///:memory:")
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = import_file(store, path)
    assert result.rows_written == 1
    assert result.frame[column].iloc[0] == stored
    store.close()


def test_xlsx_formula_with_a_saved_result_is_read_as_that_result(tmp_path: Path):
    """A workbook saved by Excel keeps each formula's result; that result is imported."""
    raw = (CORPUS / "formula_without_saved_result.xlsx").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<f>2*3</f><v></v>" in content or b"<f>2*3</f><v />" in content
                content = content.replace(b"<v></v>", b"<v>6</v>").replace(b"<v />", b"<v>6</v>")
            dst.writestr(item, content)
    path = tmp_path / "saved.xlsx"
    path.write_bytes(out.getvalue())
    result = import_file(open_store("duckdb:///:memory:"), path, dry_run=True)
    assert result.frame["value"].tolist() == [6.0]


# -- size limits --------------------------------------------------------------------------------------------
def test_huge_file_is_refused_before_it_is_read(loaded: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    huge = tmp_path / "huge.csv"
    size = _make_corpus().write_huge_csv(huge, MAX_BYTES + MB)
    assert MAX_BYTES + MB < size < MAX_BYTES + MB + 200
    before = snapshot(loaded)

    def must_not_read(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the size limit must be checked before the file is read")

    monkeypatch.setattr(ingest, "_read_bytes", must_not_read)
    with pytest.raises(ImportRejected) as info:
        import_file(loaded, huge)
    assert_problems(info.value.problems, [{
        "what": "the file is 21.0 MB; the limit is 20 MB",
        "fix": "split it by year or province and import the parts"}], huge.name)
    assert snapshot(loaded) == before


def test_upload_over_the_limit_is_refused_before_parsing(loaded: Store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CTIP_IMPORT_MAX_BYTES", "1000")
    monkeypatch.setattr(ingest, "_read_csv_rows", lambda *a: pytest.fail("parsed a file over the limit"))
    before = snapshot(loaded)
    with pytest.raises(ImportRejected) as info:
        import_file(loaded, "upload.csv", data=b"x" * 1001)
    assert str(info.value.problems[0]) == (
        "the file is 1,001 bytes; the limit is 1,000 bytes — split it by year or province and import the parts")
    assert snapshot(loaded) == before


def test_size_limit_is_read_from_the_environment_at_call_time(loaded: Store, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "ok.csv"
    path.write_text("indicator,province,period,value\nvictims_identified,Kampot,2024-03,4\n", encoding="utf-8")
    size = path.stat().st_size
    monkeypatch.setenv("CTIP_IMPORT_MAX_BYTES", str(size - 1))
    with pytest.raises(ImportRejected, match="problem"):
        import_file(loaded, path, dry_run=True)
    monkeypatch.setenv("CTIP_IMPORT_MAX_BYTES", str(size))  # exactly at the limit is allowed
    assert import_file(loaded, path, dry_run=True).rows == 1
    monkeypatch.setenv("CTIP_IMPORT_MAX_BYTES", "20MB")
    with pytest.raises(ImportRejected) as info:
        import_file(loaded, path, dry_run=True)
    assert "CTIP_IMPORT_MAX_BYTES='20MB' is not a positive whole number of bytes" in str(info.value.problems[0])
    monkeypatch.delenv("CTIP_IMPORT_MAX_BYTES")
    assert ingest.max_import_bytes() == MAX_BYTES == 20 * 1024 * 1024


def test_workbook_that_unpacks_beyond_the_limit_is_refused(loaded: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A small XLSX that inflates to more than ten times the file limit (a 'zip bomb') is not parsed."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        raw = (CORPUS / "sheet_missing.xlsx").read_bytes()
        with zipfile.ZipFile(io.BytesIO(raw)) as src:
            for item in src.infolist():
                zf.writestr(item.filename, src.read(item.filename))
        zf.writestr("xl/padding.bin", bytes(2 * MB))
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(out.getvalue())
    assert path.stat().st_size < 100 * 1024
    monkeypatch.setenv("CTIP_IMPORT_MAX_BYTES", str(100 * 1024))
    monkeypatch.setattr("openpyxl.load_workbook", lambda *a, **k: pytest.fail("opened a workbook over the limit"))
    before = snapshot(loaded)
    with pytest.raises(ImportRejected) as info:
        import_file(loaded, path)
    assert_problems(info.value.problems, [{"what": "the workbook unpacks to 2.0 MB; the limit is 1000 KB",
                                           "fix": "split it by year or province"}], path.name)
    assert snapshot(loaded) == before


# -- the command line ---------------------------------------------------------------------------------------
CLI_CASES = ["windows1252.csv", "title_merged_above_header.xlsx", "formula_partner_cmd.csv", "png_image.xlsx",
             "sheet_missing.xlsx"]


def _ctip(args: list[str], db: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "CTIP_IMPORT_MAX_BYTES"}
    full.update(CTIP_DATABASE_URL=f"duckdb:///{db}", **env)
    return subprocess.run([sys.executable, "-m", "dashboard.cli", *args], capture_output=True, text=True, env=full,
                          timeout=120, cwd=Path(__file__).parent.parent)


def test_cli_rejects_corpus_files_with_exit_status_1_and_the_message(tmp_path: Path):
    db = tmp_path / "x.duckdb"
    good = tmp_path / "good.csv"
    good.write_text(GOOD_ROWS, encoding="utf-8")
    assert _ctip(["import", str(good)], db).returncode == 0
    before = _ctip(["info", "--json"], db).stdout
    assert json.loads(before)["rows_per_indicator"]["victims_identified"] == 1
    cases = {case["file"]: case for case in CASES}
    for name in CLI_CASES:
        case = cases[name]
        args = ["import", str(CORPUS / name), *(["--sheet", case["sheet"]] if "sheet" in case else [])]
        result = _ctip(args, db)
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        assert "nothing was imported" in result.stderr, result.stderr
        for want in case["problems"]:
            assert want["what"] in result.stderr and want["fix"] in result.stderr, (name, result.stderr)
    # Over the size limit, with the limit lowered in the environment of the command.
    huge = tmp_path / "big.csv"
    _make_corpus().write_huge_csv(huge, 5000)
    result = _ctip(["import", str(huge)], db, CTIP_IMPORT_MAX_BYTES="4096")
    assert result.returncode == 1
    assert "the limit is 4 KB — split it by year or province and import the parts" in result.stderr
    assert _ctip(["info", "--json"], db).stdout == before
