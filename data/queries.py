"""Queries every view needs, as functions of ``(store, Filters)`` that return new frames.

One aggregation core (:func:`aggregate`) applies the catalog's rules for an indicator:

* ``sum``: values add up over months, provinces and disaggregations;
* ``last`` (time aggregation of stocks such as population or households at risk): per province and
  disaggregation cell, the latest month at or before the end of the window, then summed over space;
* ``mean``: the mean of the stored values in the group;
* ``ratio``: numerator and denominator aggregated with their own rules, then ``factor × num / den``.

Missing data stays missing: a province or month with no rows is ``NaN`` (no data), never ``0``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from data.catalog import Indicator
from data.catalog import indicator as get_indicator
from data.gazetteer import PROVINCE_CODES
from data.schema import DIMENSIONS, NATIONAL, Filters, add_months, months_between
from data.store import Store

_BUCKET_SQL = {
    "month": "period",
    "quarter": "CAST(date_trunc('quarter', period) AS DATE)",
    "year": "CAST(date_trunc('year', period) AS DATE)",
}
_PERIOD_FREQ = {"month": "MS", "quarter": "QS", "year": "YS"}
POPULATION = "population"


class QueryError(ValueError):
    """A query was asked something the indicator does not support; the message says why."""


def _check_filters(ind: Indicator, filters: Filters, by: Sequence[str] = ()) -> None:
    for dim, _ in filters.where:
        if dim not in ind.disaggregations and ind.aggregation != "ratio":
            raise QueryError(f"{ind.id} cannot be filtered by {dim}; it allows {', '.join(ind.disaggregations) or 'none'}")
    for dim in by:
        if dim in DIMENSIONS and dim not in _allowed_dims(ind):
            raise QueryError(f"{ind.id} cannot be broken down by {dim}; it allows {', '.join(_allowed_dims(ind)) or 'none'}")
    bad = [p for p in filters.provinces if p not in PROVINCE_CODES and p != NATIONAL]
    if bad:
        raise QueryError(f"unknown province code(s) {', '.join(bad)}; expected 01–25")


def _allowed_dims(ind: Indicator) -> tuple[str, ...]:
    if ind.aggregation != "ratio":
        return ind.disaggregations
    num, den = get_indicator(ind.numerator), get_indicator(ind.denominator)
    return tuple(d for d in num.disaggregations if d in den.disaggregations)


def _where_sql(ind: Indicator, filters: Filters, *, time_window: bool) -> tuple[str, list[Any]]:
    clauses = ["indicator = ?"]
    params: list[Any] = [ind.id]
    if filters.provinces:
        clauses.append(f"province IN ({', '.join('?' for _ in filters.provinces)})")
        params.extend(filters.provinces)
    if filters.end is not None:
        clauses.append("period <= ?")
        params.append(filters.end)
    if time_window and filters.start is not None:
        clauses.append("period >= ?")
        params.append(filters.start)
    for dim, values in filters.where:
        if dim in ind.disaggregations:
            clauses.append(f"{dim} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    return " AND ".join(clauses), params


def _base_aggregate(store: Store, ind: Indicator, filters: Filters, group_by: Sequence[str]) -> pd.DataFrame:
    """Aggregate a non-ratio indicator over ``group_by`` (``province``, ``period`` and dimensions)."""
    select: list[str] = []
    for col in group_by:
        select.append(f"{_BUCKET_SQL[filters.granularity]} AS period" if col == "period" else col)
    group_sql = ", ".join(str(i + 1) for i in range(len(select)))
    if ind.time_aggregation == "last":
        # Latest month per cell (and per period bucket when grouping by period), at or before the end.
        where, params = _where_sql(ind, filters, time_window="period" in group_by)
        partition = ["province", *DIMENSIONS]
        if "period" in group_by:
            partition.append(_BUCKET_SQL[filters.granularity])
        inner = (
            f"SELECT *, ROW_NUMBER() OVER (PARTITION BY {', '.join(partition)} ORDER BY period DESC) AS rn "
            f"FROM observations WHERE {where}"
        )
        agg = "SUM(value)"
        sql = f"SELECT {', '.join([*select, f'{agg} AS value'])} FROM ({inner}) AS t WHERE rn = 1"
    else:
        where, params = _where_sql(ind, filters, time_window=True)
        agg = "AVG(value)" if ind.aggregation == "mean" else "SUM(value)"
        sql = f"SELECT {', '.join([*select, f'{agg} AS value'])} FROM observations WHERE {where}"
    if select:
        sql += f" GROUP BY {group_sql}"
    frame = store.query(sql, params)
    if frame.empty:
        frame = pd.DataFrame({col: pd.Series(dtype="datetime64[ns]" if col == "period" else "object") for col in group_by})
        frame["value"] = pd.Series(dtype="float64")
    return frame


def aggregate(store: Store, filters: Filters, group_by: Sequence[str] = ()) -> pd.DataFrame:
    """Aggregate ``filters.indicator`` over ``group_by`` following the catalog's rules.

    Parameters
    ----------
    store
        The observation store.
    filters
        Indicator, provinces, window, granularity and disaggregation filters.
    group_by
        Any of ``province``, ``period`` (bucketed by ``filters.granularity``) and the indicator's
        disaggregations.

    Returns
    -------
    pandas.DataFrame
        One row per group with ``value``; ratio indicators also carry ``numerator`` and
        ``denominator``. Groups without data are absent.
    """
    ind = get_indicator(filters.indicator)
    _check_filters(ind, filters, group_by)
    group_by = list(group_by)
    if ind.aggregation != "ratio":
        return _base_aggregate(store, ind, filters, group_by).sort_values(group_by or ["value"]).reset_index(drop=True)
    num_ind, den_ind = get_indicator(ind.numerator), get_indicator(ind.denominator)
    num = _base_aggregate(store, num_ind, filters, group_by).rename(columns={"value": "numerator"})
    den = _base_aggregate(store, den_ind, filters, group_by).rename(columns={"value": "denominator"})
    if group_by:
        frame = num.merge(den, on=group_by, how="outer")
    else:
        frame = pd.concat([num, den], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ind.factor * frame["numerator"] / frame["denominator"].where(frame["denominator"] > 0)
    frame["value"] = ratio.astype("float64")
    return frame.sort_values(group_by or ["value"]).reset_index(drop=True)


def population(store: Store, provinces: Sequence[str] = ()) -> pd.Series:
    """Census population by province code (the latest stored figure; missing provinces absent)."""
    frame = _base_aggregate(store, get_indicator(POPULATION), Filters(POPULATION, provinces=tuple(provinces)), ["province"])
    return frame.set_index("province")["value"].astype("float64")


def province_totals(store: Store, filters: Filters) -> pd.DataFrame:
    """Per-province values for maps: all 25 provinces (or the selected ones), no data as ``NaN``.

    Returns
    -------
    pandas.DataFrame
        ``province, value, population, rate_100k, rank`` (rank 1 = highest value; ties share the
        lowest rank; provinces without data have no rank). Ratio indicators add ``numerator`` and
        ``denominator``.
    """
    ind = get_indicator(filters.indicator)
    frame = aggregate(store, filters, ["province"])
    frame = frame[frame["province"] != NATIONAL]
    codes = list(filters.provinces) if filters.provinces else list(PROVINCE_CODES)
    out = pd.DataFrame({"province": codes}).merge(frame, on="province", how="left")
    pop = population(store)
    out["population"] = out["province"].map(pop).astype("float64")
    if ind.per_100k and ind.aggregation != "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            out["rate_100k"] = out["value"] / out["population"] * 100_000
    else:
        out["rate_100k"] = np.nan
    out["rank"] = out["value"].rank(method="min", ascending=False).astype("Int64")
    return out


def time_series(store: Store, filters: Filters, *, by_province: bool = False, by: str | None = None, rate: bool = False) -> pd.DataFrame:
    """Values per period bucket, nationally (``province == "national"``) or per selected province.

    Parameters
    ----------
    by_province
        One series per province in ``filters.provinces`` (all 25 if empty) instead of one total.
    by
        Optional disaggregation to break each period down by (e.g. ``"sex"``).
    rate
        Divide by census population and multiply by 100,000 (indicators with ``per_100k`` only).

    Returns
    -------
    pandas.DataFrame
        ``period, province, [by], value`` with every bucket of the window present; buckets without
        data have ``value`` NaN (a gap), not 0.
    """
    ind = get_indicator(filters.indicator)
    if rate and not (ind.per_100k and ind.aggregation != "ratio"):
        raise QueryError(f"{ind.id} has no rate per 100,000")
    group = ["period"] + (["province"] if by_province else []) + ([by] if by else [])
    frame = aggregate(store, filters, group)
    if not by_province:
        frame["province"] = "national"
    if rate:
        pop = population(store)
        if by_province:
            frame["value"] = frame["value"] / frame["province"].map(pop) * 100_000
        else:
            codes = list(filters.provinces) if filters.provinces else list(PROVINCE_CODES)
            denom = pop.reindex(codes).sum(min_count=len(codes))
            frame["value"] = frame["value"] / denom * 100_000 if denom == denom else np.nan
    periods = _period_index(store, filters)
    keys: list[pd.Index] = [periods]
    names = ["period"]
    if by_province:
        keys.append(pd.Index(list(filters.provinces) or list(PROVINCE_CODES)))
        names.append("province")
    if by:
        cats = sorted(frame[by].dropna().unique()) if not frame.empty else []
        keys.append(pd.Index(cats))
        names.append(by)
    full = pd.MultiIndex.from_product(keys, names=names).to_frame(index=False)
    if not by_province:
        full["province"] = "national"
    join = [n for n in names]
    out = full.merge(frame[[*join, "value"]], on=join, how="left")
    cols = ["period", "province", *([by] if by else []), "value"]
    return out[cols].sort_values(cols[:-1]).reset_index(drop=True)


def _period_index(store: Store, filters: Filters) -> pd.DatetimeIndex:
    start, end = filters.start, filters.end
    if start is None or end is None:
        first, last = period_range(store, filters.indicator)
        start = start or first
        end = end or last
    if start is None or end is None:
        return pd.DatetimeIndex([], name="period")
    freq = _PERIOD_FREQ[filters.granularity]
    anchor = pd.Timestamp(start).to_period(freq[0]).start_time
    return pd.date_range(anchor, pd.Timestamp(end), freq=freq, name="period")


def breakdown(store: Store, filters: Filters, by: str) -> pd.DataFrame:
    """Totals over the window by one disaggregation: ``[by], value, share`` (share of the shown total)."""
    frame = aggregate(store, filters, [by])
    total = frame["value"].sum(min_count=1)
    frame["share"] = frame["value"] / total if total else np.nan
    return frame.sort_values("value", ascending=False).reset_index(drop=True)


def flows(store: Store, filters: Filters, *, origin: str = "province", destination: str = "destination") -> pd.DataFrame:
    """Origin → destination totals over the window (e.g. province → country, nationality → province).

    Rows where either end is not disaggregated (empty string) are left out: they have no place to
    draw. Returns ``origin, destination, value`` sorted by value, largest first.
    """
    frame = aggregate(store, filters, [origin, destination])
    frame = frame.rename(columns={origin: "origin", destination: "destination"})
    frame = frame[(frame["origin"] != "") & (frame["destination"] != "") & (frame["origin"] != NATIONAL)]
    frame = frame[frame["value"] > 0]
    frame = frame[["origin", "destination", "value"]].sort_values(["value", "origin", "destination"], ascending=[False, True, True])
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class Kpi:
    """A headline figure with its change against the previous period of equal length."""

    indicator: str
    value: float | None
    previous: float | None
    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date

    @property
    def change(self) -> float | None:
        """Absolute change against the previous period (``None`` when either side has no data)."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def pct_change(self) -> float | None:
        """Relative change in percent (``None`` when the previous value is missing or zero)."""
        if self.change is None or not self.previous:
            return None
        return 100.0 * self.change / self.previous


def kpi(store: Store, filters: Filters) -> Kpi:
    """Total over the window and over the previous window of equal length (months)."""
    start, end = filters.start, filters.end
    if start is None or end is None:
        first, last = period_range(store, filters.indicator)
        if first is None or last is None:
            today = dt.date.today().replace(day=1)
            first = last = today
        start, end = start or first, end or last
    n = months_between(start, end)
    prev_end = add_months(start, -1)
    prev_start = add_months(start, -n)

    def total(s: dt.date, e: dt.date) -> float | None:
        frame = aggregate(store, filters.with_(start=s, end=e), [])
        if frame.empty or frame["value"].isna().all():
            return None
        return float(frame["value"].iloc[0])

    return Kpi(filters.indicator, total(start, end), total(prev_start, prev_end), start, end, prev_start, prev_end)


def period_range(store: Store, indicator: str | None = None) -> tuple[dt.date | None, dt.date | None]:
    """First and last month with data (for one indicator, its components for a ratio, or all)."""
    params: list[Any] = []
    where = ""
    if indicator:
        ind = get_indicator(indicator)
        ids = [ind.numerator, ind.denominator] if ind.aggregation == "ratio" else [ind.id]
        where = f"WHERE indicator IN ({', '.join('?' for _ in ids)})"
        params = ids
    frame = store.query(f"SELECT MIN(period) AS first_period, MAX(period) AS last_period FROM observations {where}", params)
    first, last = frame["first_period"].iloc[0], frame["last_period"].iloc[0]
    if pd.isna(first):
        return None, None
    return first.date(), last.date()


COVERAGE_COLUMNS = ("livelihood_coverage", "households_supported", "households_at_risk", "victims_identified", "migrants_departed")


def coverage_table(store: Store, provinces: Sequence[str], start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
    """Livelihood coverage against need and risk, one row per province.

    Returns
    -------
    pandas.DataFrame
        ``province, coverage`` (households supported / households at risk × 100), then
        ``households_supported, households_at_risk, victims_identified, migrants_departed`` over the
        window (NaN = no data).
    """
    frame = pd.DataFrame({"province": list(provinces)})
    for ind_id in COVERAGE_COLUMNS:
        totals = province_totals(store, Filters(ind_id, provinces=tuple(provinces), start=start, end=end))
        frame = frame.merge(totals[["province", "value"]].rename(columns={"value": ind_id}), on="province", how="left")
    return frame.rename(columns={"livelihood_coverage": "coverage"})


def province_mix(store: Store, filters: Filters, dim: str) -> pd.DataFrame:
    """Per province, the categories of ``dim`` with their values, largest first (empty category left out)."""
    frame = aggregate(store, filters, ["province", dim])
    frame = frame[(frame[dim] != "") & (frame["province"] != NATIONAL)]
    return frame.sort_values(["province", "value", dim], ascending=[True, False, True]).reset_index(drop=True)
