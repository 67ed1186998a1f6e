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
   A shown total whose hidden cells could only all be 1 (or all ``k − 1``) hides one more cell too.
3. **Audit.** Within each connected group of hidden cells (up to a size limit) linear algebra checks
   that no hidden cell is pinned down by any combination of equations; one that is gets a companion.
   :func:`protect` runs rules 1–3 over any linked set of tables; :mod:`data.release` builds the one
   release per indicator that every screen, export and API response reads.
4. Suppression happens on the exact aggregated counts, before any rounding, in the data layer; the
   browser never receives a suppressed value.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    hidden = protect(values, Equations.from_list(equations), k=k).hidden
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


# -- the solver shared by every release ---------------------------------------------------------------
@dataclass(frozen=True)
class Equations:
    """Linear equations "members add up to the total" over an array of entries, in CSR form.

    ``members[ptr[i]:ptr[i + 1]]`` are the entries of equation ``i`` and ``totals[i]`` its total. Every
    equation has at least one member.
    """

    members: np.ndarray
    ptr: np.ndarray
    totals: np.ndarray

    @classmethod
    def from_list(cls, equations: Sequence[tuple[np.ndarray, int]]) -> Equations:
        if not equations:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
        members = np.concatenate([np.asarray(m, dtype=np.int64) for m, _ in equations])
        ptr = np.concatenate([[0], np.cumsum([len(m) for m, _ in equations])]).astype(np.int64)
        return cls(members, ptr, np.array([t for _, t in equations], dtype=np.int64))

    @classmethod
    def concat(cls, parts: Sequence[Equations]) -> Equations:
        parts = [p for p in parts if len(p.totals)]
        if not parts:
            return cls.from_list([])
        ptrs, shift = [np.zeros(1, dtype=np.int64)], 0
        for p in parts:
            ptrs.append(p.ptr[1:] + shift)
            shift += int(p.ptr[-1])
        return cls(np.concatenate([p.members for p in parts]), np.concatenate(ptrs), np.concatenate([p.totals for p in parts]))

    def __len__(self) -> int:
        return len(self.totals)

    def entries(self, i: int) -> np.ndarray:
        """Members and total of equation ``i``."""
        return np.append(self.members[self.ptr[i]:self.ptr[i + 1]], self.totals[i])


@dataclass
class Protection:
    """Outcome of :func:`protect`: the hidden entries and what the audit saw."""

    hidden: np.ndarray
    primary: int
    complementary: int
    audited_cells: int = 0
    unaudited_cells: int = 0
    largest_component: int = 0
    rounds: int = 0
    notes: list[str] = field(default_factory=list)


def _weak_equations(hidden: np.ndarray, vals: np.ndarray, eqs: Equations, k: int) -> np.ndarray:
    """Equations that give a hidden entry away: exactly one hidden entry, or a shown total whose
    hidden members can only be all 1 or all ``k − 1`` (their sum is ``count`` or ``(k − 1) · count``)."""
    if not len(eqs):
        return np.zeros(0, dtype=bool)
    starts = eqs.ptr[:-1]
    hm = np.add.reduceat(hidden[eqs.members].astype(np.int64), starts)
    ht = hidden[eqs.totals]
    shown_sum = np.add.reduceat(np.where(hidden[eqs.members], 0.0, vals[eqs.members]), starts)
    rest = vals[eqs.totals] - shown_sum
    bounded = (~ht) & (hm >= 2) & (np.isclose(rest, hm) | np.isclose(rest, (k - 1) * hm))
    return ((hm + ht) == 1) | bounded


def _hide_one_more(entries: np.ndarray, hidden: np.ndarray, vals: np.ndarray) -> bool:
    """Hide the smallest shown non-zero entry of ``entries`` (ties: the lowest index); False if none."""
    candidates = entries[~hidden[entries] & (vals[entries] > 0)]
    if not len(candidates):
        return False
    hidden[candidates[np.lexsort((candidates, vals[candidates]))[0]]] = True
    return True


def _components(hidden: np.ndarray, eqs: Equations) -> tuple[np.ndarray, np.ndarray]:
    """Label every hidden entry with its connected component (entries linked by sharing an equation
    with at least two hidden entries); returns ``(labels over all entries, mask of linking equations)``."""
    flags = hidden[eqs.members]
    tflags = hidden[eqs.totals]
    starts = eqs.ptr[:-1]
    counts = np.add.reduceat(flags.astype(np.int64), starts) + tflags if len(eqs) else np.zeros(0, dtype=np.int64)
    linking = counts >= 2
    labels = np.where(hidden, np.arange(len(hidden)), np.iinfo(np.int64).max)
    member_eq = np.repeat(np.arange(len(eqs)), np.diff(eqs.ptr))
    use_m = flags & linking[member_eq]
    use_t = tflags & linking
    m_entries, m_eqs = eqs.members[use_m], member_eq[use_m]
    t_entries, t_eqs = eqs.totals[use_t], np.flatnonzero(use_t)
    big = np.iinfo(np.int64).max
    while True:  # propagate the smallest label through the equations until nothing changes
        eq_min = np.full(len(eqs), big)
        np.minimum.at(eq_min, m_eqs, labels[m_entries])
        np.minimum.at(eq_min, t_eqs, labels[t_entries])
        new = labels.copy()
        np.minimum.at(new, m_entries, eq_min[m_eqs])
        np.minimum.at(new, t_entries, eq_min[t_eqs])
        if np.array_equal(new, labels):
            return labels, linking
        labels = new


def _determined(hidden: np.ndarray, eqs: Equations, limit: int) -> tuple[list[int], int, int, int, np.ndarray]:
    """Hidden entries that the equations pin down exactly (ignoring bounds), found per connected
    component of the hidden entries by the null space of the equations restricted to them.

    Components larger than ``limit`` cells are not audited (dense linear algebra would be too slow);
    returns ``(determined, audited, unaudited, largest, component label of every entry)``.
    """
    idx = np.flatnonzero(hidden)
    if not len(idx):
        return [], 0, 0, 0, np.zeros(len(hidden), dtype=np.int64)
    labels, linking = _components(hidden, eqs)
    comp, sizes = np.unique(labels[idx], return_counts=True)
    largest = int(sizes.max())
    small = set(comp[sizes <= limit].tolist())
    audited = int(sizes[sizes <= limit].sum())
    by_comp: dict[int, list[int]] = {}
    for i in np.flatnonzero(linking):
        entries = eqs.entries(int(i))
        root = int(labels[entries[hidden[entries]][0]])
        if root in small:
            by_comp.setdefault(root, []).append(int(i))
    determined: list[int] = []
    for root, eq_ids in by_comp.items():
        cols = idx[labels[idx] == root]
        local = {int(c): j for j, c in enumerate(cols)}
        matrix = np.zeros((len(eq_ids), len(cols)))
        for r, i in enumerate(eq_ids):
            entries = eqs.entries(i)
            for pos, e in enumerate(entries):
                if hidden[e]:
                    matrix[r, local[int(e)]] = -1.0 if pos == len(entries) - 1 else 1.0
        # A cell is pinned down exactly when its unit vector lies in the row space of the equations.
        # Row space = eigenvectors of AᵀA with non-zero eigenvalues (n × n, small, whatever the rows).
        w, v = np.linalg.eigh(matrix.T @ matrix)
        basis = v[:, w > 1e-9 * max(1.0, float(w.max()) if len(w) else 1.0)]
        in_rows = (basis ** 2).sum(axis=1)
        determined.extend(int(cols[j]) for j in np.flatnonzero(in_rows > 1 - 1e-9))
    return determined, audited, len(idx) - audited, largest, labels


def _weak_one(entries: np.ndarray, hidden: np.ndarray, vals: np.ndarray, k: int) -> bool:
    """:func:`_weak_equations` for one equation (its members, then its total)."""
    h = hidden[entries]
    n = int(h.sum())
    if n == 1:
        return True
    if n < 2 or h[-1]:
        return False
    rest = vals[entries[-1]] - vals[entries[:-1]][~h[:-1]].sum()
    return bool(abs(rest - n) < 1e-9 or abs(rest - (k - 1) * n) < 1e-9)


def protect(values: np.ndarray, eqs: Equations, *, k: int, audit_limit: int = 400) -> Protection:
    """Primary and complementary suppression over linked tables, then an exact audit.

    1. Counts from 1 to ``k − 1`` are hidden.
    2. Until nothing changes: an equation with exactly one hidden entry, or whose hidden members could
       only all be 1 (or all ``k − 1``), hides its smallest shown non-zero entry too.
    3. Audit: within each connected group of hidden cells (up to ``audit_limit`` cells) no hidden cell
       may be pinned down by any combination of equations; one that is gets a companion hidden in one of
       its equations, and the rules run again.
    """
    values = np.asarray(values, dtype="float64")
    vals = np.nan_to_num(values, nan=0.0)
    hidden = is_small(values, k)
    primary = int(hidden.sum())
    result = Protection(hidden=hidden, primary=primary, complementary=0)
    for rounds in range(1, len(values) + 2):
        result.rounds = rounds
        for _ in range(len(values) + 1):
            weak = np.flatnonzero(_weak_equations(hidden, vals, eqs, k))
            acted = False
            for i in weak:
                entries = eqs.entries(int(i))
                if not _weak_one(entries, hidden, vals, k):
                    continue  # an earlier pick in this pass already covered it
                acted |= _hide_one_more(entries, hidden, vals)
            if not acted:
                break
        determined, audited, unaudited, largest, labels = _determined(hidden, eqs, audit_limit)
        result.audited_cells, result.unaudited_cells, result.largest_component = audited, unaudited, largest
        acted = False
        if determined:
            member_eq = np.repeat(np.arange(len(eqs)), np.diff(eqs.ptr))
            by_component: dict[int, list[int]] = {}
            for cell in determined:
                by_component.setdefault(int(labels[cell]), []).append(cell)
            for component, cells in by_component.items():
                # One more hidden entry per component and round: first in an equation of a pinned cell, else in
                # any equation touching the component (a cell can be pinned through its neighbours' equations).
                near = np.concatenate([np.concatenate([member_eq[eqs.members == c], np.flatnonzero(eqs.totals == c)])
                                       for c in cells])
                touching = np.union1d(member_eq[hidden[eqs.members] & (labels[eqs.members] == component)],
                                      np.flatnonzero(hidden[eqs.totals] & (labels[eqs.totals] == component)))
                for pool in (near, touching):
                    entries = np.unique(np.concatenate([eqs.entries(int(i)) for i in pool])) if len(pool) else pool
                    if len(entries) and _hide_one_more(entries, hidden, vals):
                        acted = True
                        break
                else:
                    result.notes.append(f"entries {cells[:5]} are determined and no equation near them can hide more")
        if not acted:  # the audit found nothing more to hide
            break
    result.complementary = int(hidden.sum()) - primary
    return result
