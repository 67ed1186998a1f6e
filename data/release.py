"""One protected release per sensitive indicator: every number a signed-out viewer can see is read from it.

Protecting each table on its own is not enough: a view with a breakdown and one without, the map and
the victims tab's panels, or two windows, could be subtracted from each other to recover a hidden
count. So each sensitive indicator has **one** release, protected as a whole (:func:`data.privacy.protect`
over all its tables and every equation linking them), and anything shown is either

* a cell of that release, or
* a sum of its cells (several provinces, several categories, a window made of whole years, quarters and
  months), shown only when none of its parts is hidden — so it tells nothing the cells do not.

For indicators summed over time (``time_aggregation = "sum"``) the release spans the whole data range:

* province and national totals, and national × one disaggregation, by month, quarter, year and the
  whole range;
* province × one disaggregation and national × two disaggregations for whole years and the whole range
  (not by month or quarter: those tables are mostly counts of 1–4, and with them interval reasoning —
  a hidden count is at least 1 — pinned down thousands of small counts);
* every margin, linked month → quarter → year → all time.

A window (any start and end month) is cut into the largest whole pieces the release has — the whole
range, whole years, whole quarters, then months — so windows that differ by a month are built from the
same published pieces and cannot be differenced into anything hidden. A table that needs a piece the
release does not publish (a province breakdown or two disaggregations for months or quarters, more
breakdowns at once) raises
:class:`NotPublished`, with what to change; signed-in partners see exact values without this.

Stock indicators (``time_aggregation = "last"``, e.g. victims in shelter) are snapshots, not sums over
time: their release is built per window (the snapshot at its end and one per period of the series),
with the same tables and margins.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data.catalog import indicator as get_indicator
from data.privacy import Equations, Protection, protect, suppression_k
from data.queries import QueryError, _period_index, aggregate, period_range
from data.schema import DIMENSIONS, Filters
from data.store import Store

TIME = ("month", "quarter", "year")
_ORDER = ("province", "period", *TIME, *DIMENSIONS)
_COARSER = {"month": "quarter", "quarter": "year", "year": None}


class NotPublished(QueryError):
    """The protected release does not hold the table asked for; the message says what to change."""


def _key(cols: Iterable[str]) -> tuple[str, ...]:
    cols = set(cols)
    return tuple(c for c in _ORDER if c in cols)


def _subsets(cols: Sequence[str]) -> Iterable[tuple[str, ...]]:
    for size in range(len(cols) + 1):
        for combo in itertools.combinations(cols, size):
            yield _key(combo)


def _bucket(months: pd.Series | pd.DatetimeIndex, grain: str) -> pd.Series:
    freq = {"month": "M", "quarter": "Q", "year": "Y"}[grain]
    return pd.Series(pd.DatetimeIndex(months).to_period(freq).start_time, index=getattr(months, "index", None))


@dataclass
class Release:
    """The protected tables of one sensitive indicator (see the module docstring)."""

    indicator: str
    k: int
    levels: dict[tuple[str, ...], pd.DataFrame]
    months: pd.DatetimeIndex
    additive: bool
    window: tuple[dt.date | None, dt.date | None, str] | None = None
    protection: Protection | None = None
    stats: dict = field(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------------------
    def cells(self, cols: Sequence[str] = (), *, where: Mapping[str, Sequence[str]] | None = None,
              start: dt.date | None = None, end: dt.date | None = None, granularity: str | None = None) -> pd.DataFrame:
        """Totals by ``cols`` (``province`` and disaggregations) over a window, with ``suppressed``.

        ``where`` keeps some values of ``province`` or of a disaggregation (a sum over them); with
        ``granularity`` the result has one row per ``period`` bucket too. A sum is suppressed (value NaN)
        when any of its released parts is. Raises :class:`NotPublished` for tables the release lacks.
        """
        cols = list(_key(cols))
        where = {d: tuple(v) for d, v in (where or {}).items() if v}
        need = set(cols) | set(where)
        out_cols = [*cols, *(["period"] if granularity else [])]
        if not self.additive:
            # A stock's release is one window: its snapshot levels and its series periods.
            level = self._level(need | ({"period"} if granularity else set()))
            return self._sum([self._filtered(level, where)], out_cols)
        pieces = self._pieces(start, end, granularity)
        parts = []
        for grain, group in pieces.groupby("grain", sort=False, dropna=False):
            grain = None if pd.isna(grain) else grain
            level = self._level(need | ({grain} if grain else set()))
            frame = level
            if grain:
                label = dict(zip(group["start"], group["label"], strict=True))
                frame = frame[frame[grain].isin(list(label))]
                frame = frame.assign(period=frame[grain].map(label))
            else:
                frame = frame.assign(period=group["label"].iloc[0])
            parts.append(self._filtered(frame, where))
        return self._sum(parts, out_cols)

    def _level(self, need: set[str]) -> pd.DataFrame:
        key = _key(need)
        if key in self.levels:
            return self.levels[key]
        dims = [d for d in key if d in DIMENSIONS]
        finer = [g for g in ("month", "quarter", "period") if g in key]
        fix = "or sign in as a partner"
        if len(dims) > 2 or ("province" in key and len(dims) > 1):
            raise NotPublished(f"{self.indicator} is protected: signed out, province figures combine at most one breakdown or "
                               f"filter and national figures at most two ({', '.join(dims)} asked); remove one, {fix}")
        if finer:
            what = "province figures by a breakdown or filter" if "province" in key else "two breakdowns or filters together"
            raise NotPublished(f"{self.indicator} is protected: signed out, {what} ({', '.join(dims)}) are published for "
                               f"whole years only; choose a window of whole years (January to December) and year "
                               f"granularity, look at the national figures, {fix}")
        raise NotPublished(f"{self.indicator} is protected: signed out, this table ({', '.join(key)}) is not published; "
                           f"remove a breakdown or filter, {fix}")

    @staticmethod
    def _filtered(frame: pd.DataFrame, where: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
        for dim, values in where.items():
            frame = frame[frame[dim].isin(values)]
        return frame

    @staticmethod
    def _sum(parts: list[pd.DataFrame], out_cols: list[str]) -> pd.DataFrame:
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in out_cols}).assign(
            value=pd.Series(dtype="float64"), suppressed=pd.Series(dtype=bool))
        parts = [p for p in parts if len(p)]
        if not parts:
            return empty
        frame = pd.concat(parts, ignore_index=True)
        if out_cols:
            out = frame.groupby(out_cols, sort=True, dropna=False).agg(
                value=("value", lambda v: v.sum(min_count=1)), suppressed=("suppressed", "any")).reset_index()
        else:
            out = pd.DataFrame({"value": [frame["value"].sum(min_count=1)], "suppressed": [bool(frame["suppressed"].any())]})
        out.loc[out["suppressed"], "value"] = np.nan
        return out

    def _pieces(self, start: dt.date | None, end: dt.date | None, granularity: str | None) -> pd.DataFrame:
        """The window cut into released pieces: ``grain`` (month/quarter/year/None), ``start``, ``label``."""
        months = self.months
        if start is not None:
            months = months[months >= pd.Timestamp(start)]
        if end is not None:
            months = months[months <= pd.Timestamp(end)]
        rows = []
        if granularity:
            labels = _bucket(months, granularity).to_numpy()
            groups = [(pd.Timestamp(lab), months[labels == lab]) for lab in pd.unique(labels)]
        else:
            groups = [(pd.NaT, months)] if len(months) else []
        for label, group in groups:
            rows.extend((grain, begin, label) for grain, begin in self._tile(group))
        return pd.DataFrame(rows, columns=["grain", "start", "label"])

    def _tile(self, months: pd.DatetimeIndex) -> list[tuple[str | None, pd.Timestamp | None]]:
        if len(months) == len(self.months) and len(months):
            return [(None, None)]
        remaining = set(months)
        tiles: list[tuple[str | None, pd.Timestamp | None]] = []
        for grain in ("year", "quarter"):
            starts = _bucket(self.months, grain).to_numpy()
            for begin in pd.unique(starts):
                covered = set(self.months[starts == begin])
                if covered and covered <= remaining:
                    tiles.append((grain, pd.Timestamp(begin)))
                    remaining -= covered
        tiles.extend(("month", m) for m in sorted(remaining))
        return tiles


# -- building --------------------------------------------------------------------------------------------
def _frames(base: pd.DataFrame, keys: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], pd.DataFrame]:
    levels = {}
    for key in sorted(set(keys), key=lambda k: (len(k), k)):
        if key:
            levels[key] = base.groupby(list(key), sort=True, dropna=False)["value"].sum(min_count=1).reset_index()
        else:
            levels[key] = pd.DataFrame({"value": [base["value"].sum(min_count=1)]})
    return levels


def _links(levels: Mapping[tuple[str, ...], pd.DataFrame], *, time_additive: bool) -> list[tuple[tuple, tuple]]:
    """(child, parent) pairs: parent = child without one breakdown (or province), or with its time coarser."""
    links = []
    for child in levels:
        for col in child:
            if col in TIME or col == "period":
                continue
            parent = _key(set(child) - {col})
            if parent in levels:
                links.append((child, parent))
        if time_additive:
            for grain in TIME:
                if grain in child:
                    coarser = _COARSER[grain]
                    parent = _key((set(child) - {grain}) | ({coarser} if coarser else set()))
                    if parent in levels:
                        links.append((child, parent))
    return links


def _equations(levels: Mapping[tuple[str, ...], pd.DataFrame], offsets: Mapping[tuple, int],
               links: Sequence[tuple[tuple, tuple]]) -> Equations:
    parts = []
    for child, parent in links:
        cframe, pframe = levels[child], levels[parent]
        keys = pd.DataFrame(index=cframe.index)
        for col in parent:
            if col in cframe:
                keys[col] = cframe[col].to_numpy()
            else:  # a coarser time bucket of the child's finer one
                finer = next(g for g in TIME if g in cframe)
                keys[col] = _bucket(cframe[finer], col).to_numpy()
        child_ids = offsets[child] + np.arange(len(cframe))
        if parent:
            pidx = pframe[list(parent)].assign(_p=offsets[parent] + np.arange(len(pframe)))
            parent_ids = keys.merge(pidx, on=list(parent), how="left")["_p"].to_numpy()
        else:
            parent_ids = np.full(len(cframe), offsets[parent])
        order = np.argsort(parent_ids, kind="stable")
        parent_sorted = parent_ids[order].astype(np.int64)
        totals, counts = np.unique(parent_sorted, return_counts=True)
        parts.append(Equations(child_ids[order].astype(np.int64), np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                               totals.astype(np.int64)))
    return Equations.concat(parts)


def linked_system(levels: Mapping[tuple[str, ...], pd.DataFrame], *,
                  time_additive: bool = True) -> tuple[dict[tuple[str, ...], int], Equations]:
    """Where each level's cells start in one array of entries, and every equation linking the levels."""
    offsets, position = {}, 0
    for key, frame in levels.items():
        offsets[key] = position
        position += len(frame)
    return offsets, _equations(levels, offsets, _links(levels, time_additive=time_additive))


def _protect_levels(levels: dict[tuple[str, ...], pd.DataFrame], *, k: int, time_additive: bool) -> Protection:
    offsets, eqs = linked_system(levels, time_additive=time_additive)
    values = np.concatenate([f["value"].to_numpy(dtype="float64") for f in levels.values()]) if levels else np.zeros(0)
    result = protect(values, eqs, k=k)
    for key, frame in levels.items():
        flags = result.hidden[offsets[key]: offsets[key] + len(frame)]
        frame["suppressed"] = flags
        frame.loc[flags, "value"] = np.nan
    result.notes.append(f"{len(values)} cells, {len(eqs)} equations")
    return result


def _plan(dims: Sequence[str], time_grains: Sequence[str | None], province_grains: Sequence[str | None],
          pair_grains: Sequence[str | None]) -> set[tuple[str, ...]]:
    """The release's tables: province and national totals and each disaggregation by every time grain,
    province × one disaggregation by ``province_grains``, national × two by ``pair_grains``, with margins."""
    keys: set[tuple[str, ...]] = set()
    for grain in time_grains:
        keys |= set(_subsets(["province", *([grain] if grain else [])]))
        for d in dims:
            keys |= set(_subsets([d, *([grain] if grain else [])]))
    for d in dims:
        for grain in province_grains:
            keys |= set(_subsets(["province", d, *([grain] if grain else [])]))
    for d, e in itertools.combinations(dims, 2):
        for grain in pair_grains:
            keys |= set(_subsets([d, e, *([grain] if grain else [])]))
    return keys


def build_release(store: Store, indicator: str, *, k: int | None = None) -> Release:
    """The whole-range release of an indicator summed over time (see the module docstring)."""
    k = suppression_k() if k is None else k
    ind = get_indicator(indicator)
    if ind.aggregation == "ratio" or ind.time_aggregation != "sum":
        raise ValueError(f"{indicator} is not a count summed over time; use build_snapshot")
    dims = list(ind.disaggregations)
    base = aggregate(store, Filters(indicator, granularity="month"), ["province", "period", *dims])
    first, last = period_range(store, indicator)
    months = pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="MS") if first and last else pd.DatetimeIndex([])
    return release_from_counts(base.rename(columns={"period": "month"}), dims, months, indicator=indicator, k=k)


def with_time_buckets(base: pd.DataFrame) -> pd.DataFrame:
    """``base`` (with a ``month`` column) plus the ``quarter`` and ``year`` each month falls in."""
    base = base.copy()
    base["month"] = pd.to_datetime(base["month"])
    base["quarter"] = _bucket(base["month"], "quarter").to_numpy()
    base["year"] = _bucket(base["month"], "year").to_numpy()
    return base


def release_from_counts(base: pd.DataFrame, dims: Sequence[str], months: pd.DatetimeIndex, *, indicator: str,
                        k: int) -> Release:
    """The release of exact counts ``base`` (``province, month, *dims, value``) over ``months``."""
    base = with_time_buckets(base)
    plan = _plan(list(dims), ("month", "quarter", "year", None), ("year", None), ("year", None))
    levels = _frames(base, plan)
    result = _protect_levels(levels, k=k, time_additive=True)
    return Release(indicator, k, levels, months, additive=True, protection=result,
                   stats={"cells": sum(len(f) for f in levels.values()), "hidden": int(result.hidden.sum()),
                          "primary": result.primary, "rounds": result.rounds, "fixes": dict(result.fixes),
                          "pinned": len(result.pinned)})


def build_snapshot(store: Store, filters: Filters, *, k: int | None = None) -> Release:
    """The release of a stock indicator for one window: its end snapshot and one per series period."""
    k = suppression_k() if k is None else k
    ind = get_indicator(filters.indicator)
    dims = list(ind.disaggregations)
    f = Filters(filters.indicator, start=filters.start, end=filters.end, granularity=filters.granularity)
    snap = aggregate(store, f, ["province", *dims])
    per = aggregate(store, f, ["province", "period", *dims])
    levels = _frames(snap, _plan(dims, (None,), (None,), (None,)))
    series_keys = {key for d in [None, *dims] for key in _subsets(["province", "period", *([d] if d else [])]) if "period" in key}
    levels.update(_frames(per, series_keys))
    result = _protect_levels(levels, k=k, time_additive=False)
    months = _period_index(store, f.with_(granularity="month"))
    return Release(filters.indicator, k, levels, months, additive=False,
                   window=(filters.start, filters.end, filters.granularity), protection=result,
                   stats={"cells": sum(len(fr) for fr in levels.values()), "hidden": int(result.hidden.sum()),
                          "primary": result.primary, "rounds": result.rounds, "fixes": dict(result.fixes),
                          "pinned": len(result.pinned)})


# -- cache -----------------------------------------------------------------------------------------------
_CACHE: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_BUILDING: dict = {}
CACHE_SIZE = 32


def _version(store: Store, indicator: str) -> tuple:
    """What the release depends on: the batches and a fingerprint of the indicator's rows."""
    batches = store.scalar("SELECT COUNT(*) || ':' || COALESCE(MAX(batch_id), '') FROM batches")
    rows = store.query("SELECT COUNT(*) AS n, SUM(value) AS total, MAX(period) AS last FROM observations WHERE indicator = ?",
                       [indicator])
    return (str(batches), *(str(v) for v in rows.iloc[0].tolist()))


def release_for(store: Store, filters: Filters, *, k: int | None = None) -> Release:
    """The release that holds ``filters``' numbers for signed-out viewers (built once per data version)."""
    k = suppression_k() if k is None else k
    ind = get_indicator(filters.indicator)
    additive = ind.time_aggregation == "sum"
    window = () if additive else (filters.start, filters.end, filters.granularity)
    url = getattr(store, "url", "")
    where = url if url and ":memory:" not in url else f"memory-{id(store)}"
    ids = [ind.numerator, ind.denominator] if ind.aggregation == "ratio" else [filters.indicator]
    key = (where, tuple(_version(store, i) for i in ids), filters.indicator, k, window)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
        lock = _BUILDING.setdefault(key, threading.Lock())
    with lock:  # one thread builds, the others wait for it
        with _LOCK:
            hit = _CACHE.get(key)
        if hit is None:
            hit = build_release(store, filters.indicator, k=k) if additive else build_snapshot(store, filters, k=k)
            with _LOCK:
                _CACHE[key] = hit
                while len(_CACHE) > CACHE_SIZE:
                    _CACHE.popitem(last=False)
                _BUILDING.pop(key, None)
    return hit
