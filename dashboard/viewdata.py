"""The numbers of one view state for the current viewer: exact for partners, protected for everyone else.

Every screen element, export and API response that shows a sensitive indicator reads through
:class:`ViewData`, so suppression cannot be forgotten in one place: with ``protect=True`` every
number is a cell of the indicator's one protected release, or a sum of its cells shown only when none
is hidden (:mod:`data.release`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from data import queries
from data.catalog import indicator as get_indicator
from data.privacy import is_small, suppression_k
from data.release import NotPublished, release_for
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
        #: Why a table is not shown to this viewer (set when the release does not publish it).
        self.notice: str | None = None

    # -- helpers ---------------------------------------------------------------------------------------
    def _cells(self, cols: Sequence[str], *, provinces: Sequence[str] = (), indicator: str | None = None,
               per_period: bool = False) -> pd.DataFrame:
        """Cells of the indicator's protected release for this window (raises NotPublished); memoised."""
        f = self.filters.with_(indicator=indicator or self.filters.indicator, provinces=())
        return self.cached(release_cells, f, tuple(cols), tuple(provinces), per_period)

    def _ratio_mask(self, frame: pd.DataFrame, cols: Sequence[str], *, provinces: Sequence[str] = (),
                    per_period: bool = False) -> np.ndarray:
        """Ratios computed from a small numerator or denominator, or from one hidden in its own release, are suppressed."""
        mask = np.zeros(len(frame), dtype=bool)
        for col in ("numerator", "denominator"):
            if col in frame:
                mask |= is_small(frame[col], self.k)
        keys = [*cols, *(["period"] if per_period else [])]
        for part in (self.ind.numerator, self.ind.denominator):
            if not get_indicator(part).sensitive:
                continue
            try:
                cells = self._cells(cols, provinces=provinces, indicator=part, per_period=per_period)
            except NotPublished as exc:
                self.notice = str(exc)
                return np.ones(len(frame), dtype=bool)
            hidden = cells[cells["suppressed"]][keys].assign(_h=True)
            if keys:
                mask |= frame[keys].merge(hidden, on=keys, how="left")["_h"].fillna(False).to_numpy(dtype=bool)
            elif len(hidden):
                mask[:] = True
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
        out = self.cached(queries.province_totals, self.filters.with_(provinces=()))
        if not self.protect:
            out["suppressed"] = False
            return out
        if self.ratio:
            out = self._hide(out, self._ratio_mask(out, ["province"]), ["value", "rate_100k", "numerator", "denominator"])
        else:
            try:
                cells = self._cells(["province"])
                hidden = out[["province"]].merge(cells, on="province", how="left")
                mask = hidden["suppressed"].fillna(False).to_numpy(dtype=bool)
            except NotPublished as exc:
                self.notice = str(exc)
                mask = np.ones(len(out), dtype=bool)
            out = self._hide(out, mask, ["value", "rate_100k"])
        out["rank"] = out["value"].rank(method="min", ascending=False).astype("Int64")
        out.attrs["k"] = self.k
        if self.notice:
            out.attrs["not_published"] = self.notice
        return out

    def series(self, provinces: Sequence[str] = (), *, by_province: bool = False, rate: bool = False) -> pd.DataFrame:
        """``period, province, value[, suppressed]`` like :func:`data.queries.time_series`."""
        f = self.filters.with_(provinces=tuple(provinces))
        out = self.cached(queries.time_series, f, by_province=by_province, rate=rate)
        if not self.protect:
            return out
        keys = ["period", "province"] if by_province else ["period"]
        if self.ratio:
            raw = self.cached(queries.aggregate, f, keys)
            mask = self._ratio_mask(raw, ["province"] if by_province else [], provinces=provinces, per_period=True)
            hidden = raw[mask]
            mask = out[keys].merge(hidden[keys].assign(_h=True), on=keys, how="left")["_h"].fillna(False).to_numpy(dtype=bool)
            return self._hide(out, mask, ["value"])
        try:
            cells = self._cells(["province"] if by_province else [], provinces=provinces, per_period=True)
            cells["period"] = pd.to_datetime(cells["period"])
            merged = out[keys].assign(period=pd.to_datetime(out["period"])).merge(cells, on=keys, how="left")
            mask = merged["suppressed"].fillna(False).to_numpy(dtype=bool)
        except NotPublished as exc:
            self.notice = str(exc)
            mask = np.ones(len(out), dtype=bool)
        out = self._hide(out, mask, ["value"])
        if self.notice:
            out.attrs["not_published"] = self.notice
        return out

    def total(self, provinces: Sequence[str] = ()) -> tuple[float | None, bool]:
        """Total over the window: ``(value, suppressed)``."""
        f = self.filters.with_(provinces=tuple(provinces))
        frame = self.cached(queries.aggregate, f, [])
        if frame.empty or frame["value"].isna().all():
            return None, False
        if self.protect:
            if self.ratio:
                if self._ratio_mask(frame, [], provinces=provinces).any():
                    return None, True
            else:
                try:
                    if bool(self._cells([], provinces=provinces)["suppressed"].any()):
                        return None, True
                except NotPublished as exc:
                    self.notice = str(exc)
                    return None, True
        return float(frame["value"].iloc[0]), False

    def breakdown(self, dim: str) -> pd.DataFrame:
        """Totals by ``dim`` over the window: ``[dim], value, share, suppressed``."""
        out = self.cached(queries.breakdown, self.filters, dim)
        if not self.protect:
            out["suppressed"] = False
            return out
        if self.ratio:
            raw = self.cached(queries.aggregate, self.filters, [dim])
            hidden = raw[self._ratio_mask(raw, [dim], provinces=self.filters.provinces)][[dim]].assign(_h=True)
            mask = out[[dim]].merge(hidden, on=dim, how="left")["_h"].fillna(False).to_numpy(dtype=bool)
            return self._hide(out, mask, ["value", "share", "numerator", "denominator"])
        try:
            cells = self._cells([dim], provinces=self.filters.provinces)
        except NotPublished as exc:
            self.notice = str(exc)
            empty = out.iloc[0:0].assign(suppressed=pd.Series(dtype=bool))
            empty.attrs["not_published"] = self.notice
            return empty
        total, hidden = self.total(self.filters.provinces)
        cells["share"] = cells["value"] / total if total and not hidden else np.nan
        return cells.sort_values("value", ascending=False, na_position="last").reset_index(drop=True)

    def cross(self, dims: Sequence[str], provinces: Sequence[str] = ()) -> pd.DataFrame:
        """Totals by two or more disaggregations (a sex × age table): ``*dims, value, suppressed``."""
        f = self.filters.with_(provinces=tuple(provinces))
        if not self.protect:
            return self.cached(queries.aggregate, f, list(dims)).assign(suppressed=False)
        return self._cells(dims, provinces=provinces)

    def province_mix(self, dim: str, provinces: Sequence[str]) -> pd.DataFrame:
        """Per province, categories of ``dim`` with values (suppressed ones marked), largest first."""
        if not self.protect:
            out = self.cached(queries.province_mix, self.filters.with_(provinces=tuple(provinces)), dim)
            out["suppressed"] = False
            return out
        cells = self._cells(["province", dim], provinces=provinces)
        cells = cells[cells[dim] != ""]
        return cells.sort_values(["province", "value", dim], ascending=[True, False, True], na_position="last").reset_index(drop=True)


def release_cells(store, filters: Filters, cols: tuple[str, ...], provinces: tuple[str, ...], per_period: bool) -> pd.DataFrame:  # noqa: ANN001
    """``filters``' window read from its indicator's protected release (a function of the store, so it can be cached)."""
    release = release_for(store, filters)
    where = dict(filters.where)
    if provinces:
        where["province"] = tuple(provinces)
    return release.cells(cols, where=where, start=filters.start, end=filters.end,
                         granularity=filters.granularity if per_period else None)


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
