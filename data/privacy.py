"""Small-cell suppression of sensitive counts, applied server-side before anything is shown or exported.

The rule (documented in the README and on the About page):

1. **Primary suppression.** For an indicator marked ``sensitive`` in the catalog, any count from 1 to
   ``k − 1`` (``k`` = 5 by default, ``CTIP_SUPPRESSION_K``) is suppressed. ``0`` stays ``0``: a true
   zero identifies no one. A suppressed cell has ``value = NaN`` and ``suppressed = True``; rates and
   shares computed from it are suppressed too.
2. **Complementary suppression.** A *group* is a set of cells whose total is shown elsewhere (all
   provinces of a period, whose total is the national series; all categories of a breakdown, whose
   total is the KPI; all destinations of an origin …). When exactly one cell of a group is suppressed,
   the smallest other non-zero cell of that group is suppressed too, so the hidden value cannot be
   recovered by subtracting the shown cells from the total. When the group has no other non-zero cell,
   its total equals the hidden value and is itself below ``k``, so the total is suppressed by rule 1
   wherever it is shown. Groups along several dimensions are processed until no group changes.
3. Suppression happens on the exact aggregated counts, before any rounding, in the data layer; the
   browser never receives a suppressed value.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

DEFAULT_K = 5
K_ENV = "CTIP_SUPPRESSION_K"


def suppression_k() -> int:
    """The threshold ``k`` from ``CTIP_SUPPRESSION_K`` (default 5; at least 2)."""
    raw = os.environ.get(K_ENV, "")
    if not raw:
        return DEFAULT_K
    try:
        k = int(raw)
    except ValueError:
        raise ValueError(f"{K_ENV}={raw!r} is not a whole number; use e.g. 5") from None
    if k < 2:
        raise ValueError(f"{K_ENV}={k} must be at least 2")
    return k


def is_small(values: pd.Series | np.ndarray, k: int) -> np.ndarray:
    """Counts from 1 to k − 1 (0 and missing are not small)."""
    arr = np.asarray(values, dtype="float64")
    with np.errstate(invalid="ignore"):
        return (arr > 0) & (arr < k)


def release(frame: pd.DataFrame, dims: Sequence[str], *, k: int | None = None, value: str = "value") -> dict[tuple[str, ...], pd.DataFrame]:
    """Protect a table and all its margins together; return every level, each with ``suppressed``.

    Parameters
    ----------
    frame
        Exact aggregated counts, one row per combination of ``dims`` (``value`` NaN = no data).
    dims
        Key columns, e.g. ``["province", "period"]`` or ``["province", "period", "sex"]``.
    k
        Threshold (default :func:`suppression_k`).

    Returns
    -------
    dict
        For every subset of ``dims`` (in ``dims`` order; ``()`` is the grand total), a frame of that
        level's totals with ``value`` (NaN where suppressed or no data) and ``suppressed``. The level
        ``tuple(dims)`` holds the cells themselves. Every equation "cells of a group add up to the
        group's total" has 0 or at least 2 suppressed entries, counting the total as an entry.
    """
    k = suppression_k() if k is None else k
    dims = tuple(dims)
    base = frame[[*dims, value]].copy()
    base[value] = pd.to_numeric(base[value], errors="coerce").astype("float64")
    levels: dict[tuple[str, ...], pd.DataFrame] = {}
    for size in range(len(dims), -1, -1):
        for subset in combinations(dims, size):
            if subset == dims:
                level = base.groupby(list(dims), sort=True, dropna=False)[value].sum(min_count=1).reset_index()
            elif subset:
                level = base.groupby(list(subset), sort=True, dropna=False)[value].sum(min_count=1).reset_index()
            else:
                level = pd.DataFrame({value: [base[value].sum(min_count=1)]})
            levels[subset] = level
    # One array of entries over all levels.
    offsets: dict[tuple[str, ...], int] = {}
    chunks = []
    position = 0
    for subset, level in levels.items():
        offsets[subset] = position
        chunks.append(level[value].to_numpy(dtype="float64"))
        position += len(level)
    values = np.concatenate(chunks) if chunks else np.zeros(0)
    hidden = is_small(values, k)
    nonzero = np.nan_to_num(values, nan=0.0) > 0
    equations: list[tuple[np.ndarray, int]] = []
    for subset, parent in levels.items():
        parent_index = {tuple(row): i for i, row in enumerate(parent[list(subset)].itertuples(index=False, name=None))} \
            if subset else {(): 0}
        for extra in dims:
            if extra in subset:
                continue
            child_key = tuple(d for d in dims if d in subset or d == extra)
            child = levels[child_key]
            keys = child[list(subset)].itertuples(index=False, name=None) if subset else [()] * len(child)
            members: dict[tuple, list[int]] = {}
            for i, key in enumerate(keys):
                members.setdefault(tuple(key), []).append(offsets[child_key] + i)
            for key, idx in members.items():
                equations.append((np.array(idx), offsets[subset] + parent_index[key]))
    for _ in range(len(values) + 1):
        changed = False
        for members, total in equations:
            entries = np.append(members, total)
            if int(hidden[entries].sum()) != 1:
                continue
            candidates = entries[~hidden[entries] & nonzero[entries]]
            if len(candidates):
                hidden[candidates[np.lexsort((candidates, values[candidates]))[0]]] = True
                changed = True
        if not changed:
            break
    out = {}
    for subset, level in levels.items():
        flags = hidden[offsets[subset]: offsets[subset] + len(level)]
        level = level.copy()
        level["suppressed"] = flags
        level.loc[flags, value] = np.nan
        out[subset] = level
    return out


def check_release(raw: pd.DataFrame, released: dict[tuple[str, ...], pd.DataFrame], dims: Sequence[str], *, k: int,
                  value: str = "value") -> list[str]:
    """Problems of a release (for tests): a shown small count, a shown value that differs from the
    exact one, or an equation with exactly one suppressed entry."""
    problems = []
    dims = tuple(dims)
    for subset, level in released.items():
        exact = (raw.groupby(list(subset))[value].sum(min_count=1).reset_index() if subset
                 else pd.DataFrame({value: [raw[value].sum(min_count=1)]}))
        if subset:
            merged = level.merge(exact, on=list(subset), suffixes=("", "_exact"))
        else:
            merged = level.assign(**{f"{value}_exact": exact[value].to_numpy()})
        shown = ~merged["suppressed"].to_numpy()
        ex = merged[f"{value}_exact"].to_numpy(dtype="float64")
        if (is_small(ex, k) & shown).any():
            problems.append(f"level {subset}: a small count is shown")
        got = merged[value].to_numpy(dtype="float64")
        if not np.allclose(got[shown], ex[shown], equal_nan=True):
            problems.append(f"level {subset}: shown values differ from the exact ones")
    for subset, parent in released.items():
        for extra in dims:
            if extra in subset:
                continue
            child_key = tuple(d for d in dims if d in subset or d == extra)
            child = released[child_key]
            groups = child.groupby(list(subset)) if subset else [((), child)]
            for key, sub in groups:
                key = key if isinstance(key, tuple) else (key,)
                total_row = parent if not subset else parent[(parent[list(subset)] == pd.Series(key, index=list(subset))).all(axis=1)]
                n = int(sub["suppressed"].sum()) + int(total_row["suppressed"].sum())
                if n == 1:
                    problems.append(f"{child_key} -> {subset}={key}: exactly one suppressed entry")
    return problems


def suppress(frame: pd.DataFrame, *, k: int | None = None, value: str = "value", derived: Sequence[str] = ()) -> pd.DataFrame:
    """Primary suppression only, for one figure whose cells are not part of a shown total (a KPI)."""
    k = suppression_k() if k is None else k
    out = frame.copy()
    hidden = is_small(pd.to_numeric(out[value], errors="coerce"), k)
    out["suppressed"] = hidden
    out.loc[hidden, value] = np.nan
    for col in derived:
        if col in out:
            out.loc[hidden, col] = np.nan
    return out
