"""Seeded synthetic demonstration data: monthly counts for every catalog indicator, Jan 2021 – Sep 2026.

Nothing here is real. Every row carries ``source = "synthetic-demo"``; the dashboard and every export say
so. The generator encodes patterns the field knows so the demo tells a plausible story: migration peaks
after the rice harvest, Thailand as the main destination, foreign victims of forced criminality in Preah
Sihanouk, Phnom Penh and Koh Kong from 2022 with crackdown spikes, livelihood grants ramping up from 2022
in the livelihood provinces, children and women over-represented in some exploitation types.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from data.catalog import Indicator, base_indicators
from data.gazetteer import PROVINCE_CODES, livelihood_codes, provinces, target_codes
from data.schema import ALLOWED_VALUES, SYNTHETIC_SOURCE, add_months

FIRST_MONTH = dt.date(2021, 1, 1)
LAST_MONTH = dt.date(2026, 9, 1)
DEFAULT_SEED = 2021
PARTNER = "CTIP Atlas demo generator"

#: Month-of-year multipliers: departures peak Feb–Apr after the Nov–Jan rice harvest.
MIGRATION_SEASON = np.array([1.15, 1.45, 1.55, 1.35, 1.0, 0.8, 0.7, 0.7, 0.75, 0.85, 0.9, 1.05])

DESTINATION_SHARES = {"THA": 0.74, "KOR": 0.08, "MYS": 0.06, "JPN": 0.06, "CHN": 0.02, "SGP": 0.01, "SAU": 0.01, "12": 0.02}
FOREIGN_NATIONALITY_SHARES = {"CHN": 0.30, "VNM": 0.18, "IDN": 0.14, "THA": 0.10, "MMR": 0.08, "LAO": 0.05,
                              "BGD": 0.05, "PHL": 0.05, "IND": 0.03, "KOR": 0.02}
SCAM_PROVINCES = {"18": 1.0, "12": 0.55, "09": 0.4, "20": 0.3, "01": 0.25}
#: Crackdown months (raids and mass identifications) and their multipliers.
CRACKDOWNS = {dt.date(2022, 9, 1): 4.0, dt.date(2022, 10, 1): 2.5, dt.date(2023, 4, 1): 1.8,
              dt.date(2025, 7, 1): 5.0, dt.date(2025, 8, 1): 2.5, dt.date(2026, 1, 1): 3.5, dt.date(2026, 2, 1): 1.8}


def months(first: dt.date = FIRST_MONTH, last: dt.date = LAST_MONTH) -> list[dt.date]:
    """Month starts from ``first`` to ``last`` inclusive."""
    out, cur = [], first
    while cur <= last:
        out.append(cur)
        cur = add_months(cur, 1)
    return out


class _Gen:
    """One seeded run of the generator."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.months = months()
        self.month_idx = np.array([m.month - 1 for m in self.months])
        self.t = np.arange(len(self.months)) / 12.0  # years since Jan 2021
        pops = {p.code: (p.population_2019 or 300_000) for p in provinces()}
        self.scale = {c: (pops[c] / 600_000) ** 0.7 for c in PROVINCE_CODES}
        self.targets = set(target_codes())
        self.livelihood = set(livelihood_codes())
        self.border_tha = {p.code for p in provinces() if "THA" in p.border}
        self.rows: list[tuple] = []

    # -- helpers ---------------------------------------------------------------------------------------
    def present(self, code: str) -> np.ndarray:
        """Months a province reports: all for target provinces, about two in three elsewhere."""
        if code in self.targets:
            return np.ones(len(self.months), dtype=bool)
        return self.rng.random(len(self.months)) > 0.35

    def counts(self, mean: np.ndarray) -> np.ndarray:
        """Over-dispersed counts around ``mean`` (gamma-Poisson)."""
        shape = 8.0
        lam = self.rng.gamma(shape, np.maximum(mean, 0) / shape)
        return self.rng.poisson(lam)

    def emit(self, ind: Indicator, code: str, totals: np.ndarray, shares: dict[tuple, float] | None,
             dims: tuple[str, ...], present: np.ndarray | None = None) -> None:
        """Split each month's total over the cells of ``dims`` (multinomial) and keep the non-zero cells."""
        present = self.present(code) if present is None else present
        totals = np.asarray(totals, dtype=np.int64)
        if not dims or not shares:
            for i in np.flatnonzero(present):
                self.rows.append((ind.id, code, self.months[i], {}, float(totals[i])))
            return
        cells = list(shares)
        p = np.array([shares[c] for c in cells], dtype=float)
        drawn = self.rng.multinomial(totals, p / p.sum())  # months × cells
        labels = [dict(zip(dims, cell, strict=True)) for cell in cells]
        for i in np.flatnonzero(present):
            if totals[i] == 0:
                # A reported zero stays a reported zero: one all-zero cell keeps the month present.
                self.rows.append((ind.id, code, self.months[i], labels[0], 0.0))
                continue
            for j in np.flatnonzero(drawn[i]):
                self.rows.append((ind.id, code, self.months[i], labels[j], float(drawn[i, j])))

    # -- indicator families ------------------------------------------------------------------------------
    def migration(self, ind: Indicator) -> None:
        returned = ind.id == "migrants_returned"
        for code in PROVINCE_CODES:
            base = 60.0 * self.scale[code] * (2.2 if code in self.border_tha else 1.0) * (1.4 if code == "14" else 1.0)
            if code == "12":
                base *= 0.5
            mean = base * MIGRATION_SEASON[self.month_idx] * (1 + 0.06 * self.t)
            if returned:
                mean = 0.6 * base * np.roll(MIGRATION_SEASON, -5)[self.month_idx]
                # Mass returns from Thailand during the 2025 border closure.
                for i, m in enumerate(self.months):
                    if dt.date(2025, 6, 1) <= m <= dt.date(2025, 9, 1):
                        mean[i] *= 4.0
            totals = self.counts(mean)
            irregular = 0.62 if code in self.border_tha else 0.3
            dims = tuple(d for d in ("sex", "destination", "channel") if d in ind.disaggregations)

            space = {
                "sex": {"female": 0.41, "male": 0.58, "unknown": 0.01},
                "destination": DESTINATION_SHARES,
                "channel": {"regular": (1 - irregular) * 0.97, "irregular": irregular * 0.97, "unknown": 0.03},
            }
            self.emit(ind, code, totals, _product({d: space[d] for d in dims}, dims), dims)

    def victims(self, ind: Indicator) -> None:
        factor = {"victims_identified": 1.0, "victims_referred": 0.82, "victims_assisted": 0.7}.get(ind.id, 0.5)
        dims = tuple(d for d in ("sex", "age_group", "nationality", "exploitation_type", "service") if d in ind.disaggregations)
        dom_cells, scam_cells = _victim_cells(dims, foreign=False), _victim_cells(dims, foreign=True)
        for code in PROVINCE_CODES:
            domestic = 9.0 * self.scale[code] * (1.5 if code in self.targets else 0.8)
            scam = np.zeros(len(self.months))
            if code in SCAM_PROVINCES:
                for i, m in enumerate(self.months):
                    if m >= dt.date(2022, 1, 1):
                        scam[i] = 30.0 * SCAM_PROVINCES[code] * (1 + 0.25 * (self.t[i] - 1)) * CRACKDOWNS.get(m, 1.0)
            totals_dom = self.counts(np.full(len(self.months), domestic) * factor)
            totals_scam = self.counts(scam * factor)
            present = self.present(code)
            before = len(self.rows)
            self.emit(ind, code, totals_dom, dom_cells, dims, present)
            self.emit(ind, code, totals_scam, scam_cells, dims, present & (totals_scam > 0))
            self._merge_tail(before)

    def _merge_tail(self, start: int) -> None:
        """Add up rows appended since ``start`` that share a key (two streams into one table)."""
        merged: dict[tuple, float] = {}
        meta: dict[tuple, tuple] = {}
        for ind_id, code, month, cells, value in self.rows[start:]:
            key = (ind_id, code, month, tuple(sorted(cells.items())))
            merged[key] = merged.get(key, 0.0) + value
            meta[key] = (ind_id, code, month, cells)
        del self.rows[start:]
        for key, value in merged.items():
            ind_id, code, month, cells = meta[key]
            self.rows.append((ind_id, code, month, cells, value))

    def livelihood_family(self, ind: Indicator) -> None:
        start = dt.date(2022, 1, 1)
        for code in PROVINCE_CODES:
            if code not in self.livelihood:
                continue
            ramp = np.array([0.0 if m < start else min(1.0, 0.15 + 0.85 * (add_months(m, 0).year - 2022 + m.month / 12) / 2.0)
                             for m in self.months])
            base = 40.0 * self.scale[code]
            present = np.array([m >= start for m in self.months])
            if ind.id == "households_at_risk":
                level = 5200.0 * self.scale[code] * (1.6 if code in self.border_tha else 1.0)
                totals = np.round(level * (1 - 0.03 * self.t) * (1 + self.rng.normal(0, 0.01, len(self.months))))
                # Assessments are annual: one figure each January.
                present = np.array([m.month == 1 for m in self.months])
                self.emit(ind, code, totals, None, (), present)
                continue
            mult = {"livelihood_grants": 1.0, "households_supported": 0.9, "female_household_reps": 0.9 * 0.58,
                    "household_members_trained": 2.2}.get(ind.id, 0.5)
            if code in ("09",):
                mult *= 0.6  # Koh Kong: the lowest coverage of the six.
            totals = self.counts(base * ramp * mult)
            if ind.id == "female_household_reps":
                continue  # derived below from households_supported so the share is coherent
            dims = tuple(d for d in ("sex", "topic") if d in ind.disaggregations)
            space = {"sex": {"female": 0.57, "male": 0.43},
                     "topic": {"tip_safe_migration": 0.45, "market_linkage": 0.2, "livelihood": 0.35}}
            self.emit(ind, code, totals, _product({d: space[d] for d in dims}, dims), dims, present)

    def derive_female_reps(self, ind: Indicator) -> None:
        """Female household representatives as a binomial share of households supported."""
        for ind_id, code, month, cells, value in list(self.rows):
            if ind_id == "households_supported" and not cells:
                share = 0.52 + 0.1 * (int(code) % 3) / 2
                self.rows.append((ind.id, code, month, {}, float(self.rng.binomial(int(value), share))))

    def generic(self, ind: Indicator) -> None:
        """Counts for other indicators: modest monthly activity, denser in target provinces."""
        level = {"prosecution": 1.6, "partnership": 0.8, "prevention": 6.0, "protection": 3.0}.get(ind.domain, 2.0)
        if ind.id in ("tip_investigations",):
            level = 2.5
        elif ind.id == "tip_arrests":
            level = 3.0
        elif ind.id == "tip_prosecutions":
            level = 1.8
        elif ind.id == "tip_convictions":
            level = 1.1
        elif ind.unit in ("persons",) or "participants" in ind.id or "trained" in ind.id:
            level = 14.0
        dims = tuple(d for d in ind.disaggregations
                     if d in ("sex", "age_group", "exploitation_type", "role", "service", "topic", "nationality"))
        sparse = "trained" in ind.id or ind.domain == "partnership"
        shares = _product({d: _generic_shares(d) for d in dims}, dims)
        for code in PROVINCE_CODES:
            mean = np.full(len(self.months), level * self.scale[code] * (1.4 if code in self.targets else 0.7))
            if ind.domain == "prosecution" and code in SCAM_PROVINCES:
                mean = mean * np.array([CRACKDOWNS.get(m, 1.0) for m in self.months])
            if sparse:
                # Trainings and meetings happen in some months only.
                mean = mean * (self.rng.random(len(self.months)) < 0.3) * 3
            self.emit(ind, code, self.counts(mean), shares, dims)

    def frame(self) -> pd.DataFrame:
        records = []
        for ind_id, code, month, cells, value in self.rows:
            rec = {"indicator": ind_id, "province": code, "period": month, "value": value, **cells}
            records.append(rec)
        frame = pd.DataFrame.from_records(records)
        frame["partner"] = PARTNER
        frame["source"] = SYNTHETIC_SOURCE
        frame["note"] = ""
        return frame


def _product(spaces: dict[str, dict[str, float]], dims: tuple[str, ...]) -> dict[tuple, float]:
    cells: dict[tuple, float] = {(): 1.0}
    for dim in dims:
        cells = {(*k, v): p * q for k, p in cells.items() for v, q in spaces[dim].items()}
    return cells


def _generic_shares(dim: str) -> dict[str, float]:
    if dim == "sex":
        return {"female": 0.52, "male": 0.47, "unknown": 0.01}
    if dim == "age_group":
        return {"adult": 0.7, "child": 0.28, "unknown": 0.02}
    if dim == "nationality":
        return {"KHM": 0.9, "VNM": 0.05, "CHN": 0.05}
    values = [v for v in ALLOWED_VALUES.get(dim, ("unknown",)) if v != "unknown"]
    weights = np.linspace(1.0, 0.4, len(values))
    return dict(zip(values, weights / weights.sum(), strict=True))


def _victim_cells(dims: tuple[str, ...], *, foreign: bool) -> dict[tuple, float]:
    """Joint shares over the victim dimensions with the associations the field reports."""
    if foreign:
        exploitation = {"forced_criminality": 0.86, "labour": 0.08, "sexual": 0.05, "other": 0.01}
        nationality = FOREIGN_NATIONALITY_SHARES
    else:
        exploitation = {"labour": 0.36, "sexual": 0.24, "forced_criminality": 0.07, "domestic_servitude": 0.09,
                        "begging": 0.08, "forced_marriage": 0.11, "other": 0.03, "unknown": 0.02}
        nationality = {"KHM": 0.93, "VNM": 0.05, "THA": 0.02}
    cells: dict[tuple, float] = {}
    for etype, pe in exploitation.items():
        female = {"sexual": 0.93, "domestic_servitude": 0.85, "forced_marriage": 0.97, "begging": 0.5,
                  "labour": 0.35, "forced_criminality": 0.22}.get(etype, 0.5)
        child = {"begging": 0.75, "sexual": 0.38, "forced_marriage": 0.2, "domestic_servitude": 0.3,
                 "labour": 0.12, "forced_criminality": 0.03}.get(etype, 0.1)
        spaces = {
            "sex": {"female": female * 0.98, "male": (1 - female) * 0.98, "unknown": 0.02},
            "age_group": {"child": child * 0.97, "adult": (1 - child) * 0.97, "unknown": 0.03},
            "nationality": nationality,
            "service": {"shelter": 0.3, "medical": 0.2, "psychosocial": 0.2, "legal_aid": 0.15, "reintegration": 0.15},
        }
        other_dims = tuple(d for d in dims if d != "exploitation_type")
        for key, p in _product({d: spaces[d] for d in other_dims}, other_dims).items():
            full = dict(zip(other_dims, key, strict=True))
            if "exploitation_type" in dims:
                full["exploitation_type"] = etype
            cell = tuple(full[d] for d in dims)
            cells[cell] = cells.get(cell, 0.0) + pe * p
    return cells


def generate(seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Generate the synthetic observations (a new frame; same seed → same rows).

    Parameters
    ----------
    seed
        Random seed; the default gives the data the dashboard ships with.

    Returns
    -------
    pandas.DataFrame
        Tidy observations with ``source == "synthetic-demo"`` on every row.
    """
    gen = _Gen(seed)
    derived = []
    for ind in base_indicators().values():
        if ind.reference or ind.theme == "context":
            continue
        if ind.theme == "migration" and ind.id in ("migrants_departed", "migrants_returned"):
            gen.migration(ind)
        elif ind.theme == "victims" and "victims" in ind.id:
            gen.victims(ind)
        elif ind.theme == "livelihood":
            if ind.id == "female_household_reps":
                derived.append(ind)
            else:
                gen.livelihood_family(ind)
        else:
            gen.generic(ind)
    for ind in derived:
        gen.derive_female_reps(ind)
    return gen.frame()
