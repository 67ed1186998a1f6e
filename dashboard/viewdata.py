"""The numbers of one view state for the current viewer: exact for partners, protected for everyone else.

Every screen element, export and API response that shows a sensitive indicator reads through
:class:`ViewData`, so suppression cannot be forgotten in one place: with ``protect=True`` the map,
the series, the KPI and the breakdown are levels of one released table (:func:`data.queries.released_view`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from data import queries
from data.catalog import indicator as get_indicator
from data.gazetteer import PROVINCE_CODES
from data.privacy import is_small, suppression_k
from data.schema import Filters

Cached = Callable[..., Any]


def direct(store) -> Cached:  # noqa: ANN001
    """A ``cached`` stand-in that just calls ``fn(store, …)`` (exports, API, tests)."""
    return lambda fn, *args, **kwargs: fn(store, *args, **kwargs)


class ViewData:
    """Queries of one state, protected when ``protect`` (sensitive indicator, viewer without the partner role)."""

    def __init__(self, cached: Cached, filters: Filters, *, protect: bool, by: str | None = None) -> None:
        self.cached = cached
        self.filters = filters
        self.protect = protect
        self.by = by
        self.ind = get_indicator(filters.indicator)
        self.k = suppression_k()
        self.ratio = self.ind.aggregation == "ratio"

    # -- helpers ---------------------------------------------------------------------------------------
    def _release(self, by: str | None = None) -> queries.ReleasedView:
        return self.cached(queries.released_view, self.filters, by=by)

    def _ratio_mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Ratios computed from a small numerator or denominator are suppressed."""
        mask = np.zeros(len(frame), dtype=bool)
        for col in ("numerator", "denominator"):
            if col in frame:
                mask |= is_small(frame[col], self.k)
        return mask

    def _hide(self, frame: pd.DataFrame, mask: np.ndarray, cols: Sequence[str]) -> pd.DataFrame:
        frame = frame.copy()
        frame["suppressed"] = mask
        for col in cols:
            if col in frame:
                frame.loc[mask, col] = np.nan
        return frame

    # -- what views ask for --------------------------------------------------------------------------------
    def province_totals(self) -> pd.DataFrame:
        """All 25 provinces: ``province, value, population, rate_100k, rank, suppressed``."""
        if not self.protect:
            out = self.cached(queries.province_totals, self.filters.with_(provinces=()))
            out["suppressed"] = False
            return out
        if self.ratio:
            out = self.cached(queries.province_totals, self.filters.with_(provinces=()))
            out = self._hide(out, self._ratio_mask(out), ["value", "rate_100k", "numerator", "denominator"])
            out["rank"] = out["value"].rank(method="min", ascending=False).astype("Int64")
            out.attrs["k"] = self.k
            return out
        return self.cached(_released_province_totals, self.filters.with_(provinces=()))

    def series(self, provinces: Sequence[str] = (), *, by_province: bool = False, rate: bool = False) -> pd.DataFrame:
        """``period, province, value[, suppressed]`` like :func:`data.queries.time_series`."""
        f = self.filters.with_(provinces=tuple(provinces))
        if not self.protect:
            return self.cached(queries.time_series, f, by_province=by_province, rate=rate)
        if self.ratio:
            raw = self.cached(queries.aggregate, f, ["period", *(["province"] if by_province else [])])
            hidden = raw[self._ratio_mask(raw)]
            out = self.cached(queries.time_series, f, by_province=by_province)
            keys = ["period", "province"] if by_province else ["period"]
            mask = out[keys].merge(hidden[keys].assign(_h=True), on=keys, how="left")["_h"].fillna(False).to_numpy(dtype=bool)
            return self._hide(out, mask, ["value"])
        released = self._release()
        out = released.series(provinces, by_province=by_province)
        if rate:
            pop = released.population
            if by_province:
                out["value"] = out["value"] / out["province"].map(pop) * 100_000
            else:
                codes = list(provinces) or list(PROVINCE_CODES)
                out["value"] = out["value"] / pop.reindex(codes).sum(min_count=len(codes)) * 100_000
        return out

    def total(self, provinces: Sequence[str] = ()) -> tuple[float | None, bool]:
        """Total over the window: ``(value, suppressed)``."""
        f = self.filters.with_(provinces=tuple(provinces))
        if not self.protect or self.ratio:
            frame = self.cached(queries.aggregate, f, [])
            if frame.empty or frame["value"].isna().all():
                return None, False
            if self.protect and self._ratio_mask(frame).any():
                return None, True
            return float(frame["value"].iloc[0]), False
        return self._release().total(provinces)

    def breakdown(self, dim: str) -> pd.DataFrame:
        """Totals by ``dim`` over the window: ``[dim], value, share, suppressed``."""
        if not self.protect or self.ratio:
            out = self.cached(queries.breakdown, self.filters, dim)
            out["suppressed"] = False
            return out
        released = self.cached(queries.released_view, self.filters.with_(provinces=()), by=dim)
        if self.filters.provinces:
            # A breakdown of selected provinces: released cells of those provinces, summed; a category
            # with any suppressed part is suppressed.
            cells = released.levels[("province", dim)]
            cells = cells[cells["province"].isin(self.filters.provinces)]
            out = cells.groupby(dim).agg(value=("value", lambda v: v.sum(min_count=1)), suppressed=("suppressed", "any")).reset_index()
            out.loc[out["suppressed"], "value"] = np.nan
            total, hidden = self.total(self.filters.provinces)
            out["share"] = out["value"] / total if total and not hidden else np.nan
            return out.sort_values("value", ascending=False, na_position="last").reset_index(drop=True)
        return released.breakdown()

    def province_mix(self, dim: str, provinces: Sequence[str]) -> pd.DataFrame:
        """Per province, categories of ``dim`` with values (suppressed ones marked), largest first."""
        if not self.protect:
            out = self.cached(queries.province_mix, self.filters.with_(provinces=tuple(provinces)), dim)
            out["suppressed"] = False
            return out
        released = self.cached(queries.released_view, self.filters.with_(provinces=()), by=dim)
        cells = released.levels[("province", dim)]
        cells = cells[cells["province"].isin(provinces) & (cells[dim] != "")]
        return cells.sort_values(["province", "value", dim], ascending=[True, False, True], na_position="last").reset_index(drop=True)


def _released_province_totals(store, filters: Filters) -> pd.DataFrame:  # noqa: ANN001
    """The protected province totals of a window (a function of the store, so it can be cached)."""
    return queries.released_view(store, filters).province_totals()


def kpi_protected(cached: Cached, filters: Filters, protect: bool) -> tuple[queries.Kpi, bool, bool]:
    """KPI with its previous period: ``(kpi, value_suppressed, previous_suppressed)``."""
    kpi = cached(queries.kpi, filters)
    if not protect:
        return kpi, False, False
    current, hidden = ViewData(cached, filters.with_(start=kpi.start, end=kpi.end), protect=True).total(filters.provinces)
    previous, prev_hidden = ViewData(cached, filters.with_(start=kpi.previous_start, end=kpi.previous_end),
                                     protect=True).total(filters.provinces)
    return (queries.Kpi(kpi.indicator, current, previous, kpi.start, kpi.end, kpi.previous_start, kpi.previous_end),
            hidden, prev_hidden)
