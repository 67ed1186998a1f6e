"""The XLSX import template: a data sheet with example rows and a data dictionary beside it."""

from __future__ import annotations

from pathlib import Path

from data.catalog import base_indicators
from data.gazetteer import provinces
from data.ingest import KNOWN_COLUMNS
from data.schema import ALLOWED_VALUES, DIMENSIONS

EXAMPLES = [
    ("victims_identified", "Siem Reap", "2024-03", 4, "female", "adult", "KHM", "labour", "", "", "", "", "", "Partner NGO",
     "shelter register", ""),
    ("migrants_departed", "Prey Veng", "Mar 2024", 120, "male", "", "", "", "THA", "irregular", "", "", "", "Provincial labour office",
     "", ""),
    ("households_supported", "Koh Kong", "2024-03-15", 35, "", "", "", "", "", "", "", "", "", "Livelihood partner", "", "in-kind grants"),
]


def write_template(out: str | Path) -> Path:
    """Write the template workbook to ``out`` and return its path."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    out = Path(out)
    book = Workbook()
    data = book.active
    data.title = "data"
    columns = list(KNOWN_COLUMNS)
    ordered = ["indicator", "province", "period", "value", *DIMENSIONS, "partner", "source", "note"]
    assert set(ordered) == set(columns)
    data.append(ordered)
    for cell in data[1]:
        cell.font = Font(bold=True)
    for example in EXAMPLES:
        rec = dict(zip(["indicator", "province", "period", "value", "sex", "age_group", "nationality", "exploitation_type",
                        "destination", "channel", "service", "topic", "role", "partner", "source", "note"], example, strict=True))
        data.append([rec.get(c, "") for c in ordered])

    ind_sheet = book.create_sheet("indicators")
    ind_sheet.append(["id", "name (English)", "name (Khmer)", "domain", "unit", "disaggregations", "sensitive", "definition"])
    for ind in base_indicators().values():
        ind_sheet.append([ind.id, ind.name_en, ind.name_km, ind.domain, ind.unit, ", ".join(ind.disaggregations),
                          "yes" if ind.sensitive else "no", ind.definition])

    values = book.create_sheet("allowed values")
    values.append(["column", "allowed values", "notes"])
    values.append(["province", "name, alias, Khmer name, code 01–25 or ISO KH-1…KH-25; 'national' for national-only rows",
                   "see the provinces sheet"])
    values.append(["period", "YYYY-MM, an ISO date (the month is kept) or 'Mon YYYY'", "no future months"])
    values.append(["value", "a number ≥ 0 with plain digits (no thousands separators)",
                   "0 is a true zero; leave a row out when there is no data"])
    for dim in DIMENSIONS:
        if dim == "nationality":
            values.append([dim, "ISO 3166-1 alpha-3 code, e.g. KHM, VNM, CHN, IDN, THA", ""])
        elif dim == "destination":
            values.append([dim, "ISO alpha-3 country (THA, MYS, KOR, JPN …) or a province", ""])
        else:
            values.append([dim, " | ".join(ALLOWED_VALUES[dim]), "leave empty when the row is not broken down by it"])

    prov = book.create_sheet("provinces")
    prov.append(["code", "ISO", "English", "Khmer", "CTIP target", "livelihood"])
    for p in provinces():
        prov.append([p.code, p.iso, p.name_en, p.name_km, "yes" if p.ctip_target else "", "yes" if p.livelihood else ""])
    for sheet in book.worksheets:
        for col in sheet.columns:
            width = max(len(str(c.value or "")) for c in col)
            sheet.column_dimensions[col[0].column_letter].width = min(60, max(10, width + 2))
    out.parent.mkdir(parents=True, exist_ok=True)
    book.save(out)
    return out
