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
3. **Audit.** Against an attacker holding every equation and shown value, and knowing that a hidden
   count is at least 1 (zeros are shown): interval reasoning and linear algebra over the whole release
   (scipy, sparse) check that no small count is pinned down; one that is gets a companion.
   :func:`protect` runs rules 1–3 over any linked set of tables; :mod:`data.release` builds the one
   release per indicator that every screen, export and API response reads.
4. Suppression happens on the exact aggregated counts, before any rounding, in the data layer; the
   browser never receives a suppressed value.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
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

    @cached_property
    def owner(self) -> np.ndarray:
        """The equation each entry of ``members`` belongs to."""
        return np.repeat(np.arange(len(self.totals)), np.diff(self.ptr))

    def entries(self, i: int) -> np.ndarray:
        """Members and total of equation ``i``."""
        return np.append(self.members[self.ptr[i]:self.ptr[i + 1]], self.totals[i])


@dataclass
class Protection:
    """Outcome of :func:`protect`: the hidden entries and what the audit saw."""

    hidden: np.ndarray
    primary: int
    complementary: int
    rounds: int = 0
    fixes: dict[str, int] = field(default_factory=dict)  # small cells each audit check found pinned
    pinned: list[int] = field(default_factory=list)  # small cells still pinned (empty unless noted)
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
    member_eq = eqs.owner
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


def protect(values: np.ndarray, eqs: Equations, *, k: int, max_rounds: int = 400) -> Protection:
    """Primary and complementary suppression over linked tables, then a whole-release audit.

    1. Counts from 1 to ``k − 1`` are hidden (the *small* cells).
    2. Until nothing changes: an equation with exactly one hidden entry, or whose hidden members could
       only all be 1 (or all ``k − 1``), hides its smallest shown non-zero entry too.
    3. Audit against an attacker who has every equation, every shown value and knows a hidden entry is
       at least 1 (zeros are shown): interval propagation (:func:`interval_bounds`), then linear algebra
       over the whole release (:func:`linear_pinned`). A small cell either pins down gets a companion
       (:func:`_hide_near`, :func:`_free_linear`) and 2–3 run again. A hidden cell of ``k`` or more that
       the equations pin down is no disclosure (it is as if shown). Linear programming
       (:func:`lp_pinned`) is stronger than interval propagation but too slow to iterate in the build;
       ``benchmarks/audit_release.py`` measures what it still finds.
    """
    values = np.asarray(values, dtype="float64")
    vals = np.nan_to_num(values, nan=0.0)
    hidden = is_small(values, k)
    small = hidden.copy()
    primary = int(hidden.sum())
    result = Protection(hidden=hidden, primary=primary, complementary=0)

    def pinned_by(check: str) -> np.ndarray:
        if check == "bounds":
            lo, hi = interval_bounds(vals, hidden, eqs)
            return np.flatnonzero(small & (lo >= hi))
        cells = linear_pinned(hidden, eqs)
        return cells[small[cells]]

    for rounds in range(1, max_rounds + 1):
        result.rounds = rounds
        _apply_rules(hidden, vals, eqs, k)
        if not small.any() or not len(eqs):
            break
        for name in ("bounds", "linear"):
            pinned = pinned_by(name)
            if len(pinned):
                result.fixes[name] = result.fixes.get(name, 0) + len(pinned)
                fix = _free_linear if name == "linear" else _hide_near
                if not fix(pinned, hidden, vals, eqs):
                    result.pinned = [int(c) for c in pinned]
                    result.notes.append(f"{len(pinned)} small cells pinned down ({name}) and nothing near them left to hide")
                    result.complementary = int(hidden.sum()) - primary
                    return result
                break
        else:
            break  # every check passed
    else:
        result.pinned = [int(c) for c in pinned]
        result.notes.append(f"audit did not settle in {max_rounds} rounds")
    result.complementary = int(hidden.sum()) - primary
    return result


def _apply_rules(hidden: np.ndarray, vals: np.ndarray, eqs: Equations, k: int) -> None:
    """Rule 2 until nothing changes."""
    for _ in range(len(vals) + 1):
        weak = np.flatnonzero(_weak_equations(hidden, vals, eqs, k))
        acted = False
        for i in weak:
            entries = eqs.entries(int(i))
            if not _weak_one(entries, hidden, vals, k):
                continue  # an earlier pick in this pass already covered it
            acted |= _hide_one_more(entries, hidden, vals)
        if not acted:
            return


# -- the whole-release audit ------------------------------------------------------------------------------
# What an attacker can do with everything a signed-out viewer sees: every equation of the release, the
# shown values, and the fact that a hidden cell is at least 1 (zeros are shown). Three checks, cheapest
# first; a small count any of them pins down gets a companion and the rules run again.
SEED = 20261123  # the audit's random probes are seeded: the same data gives the same release


def _incidence(eqs: Equations, n: int):  # noqa: ANN202 - scipy.sparse matrix
    """Equations × entries: +1 for a member, −1 for the total (``A @ values == 0``)."""
    import scipy.sparse as sp

    member_eq = eqs.owner
    rows = np.concatenate([member_eq, np.arange(len(eqs))])
    cols = np.concatenate([eqs.members, eqs.totals])
    data = np.concatenate([np.ones(len(eqs.members)), -np.ones(len(eqs))])
    return sp.csc_matrix((data, (rows, cols)), shape=(len(eqs), n))


def interval_bounds(vals: np.ndarray, hidden: np.ndarray, eqs: Equations, *, floor: float = 1.0,
                    rounds: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Bounds an attacker gets for every hidden entry by propagating intervals through the equations,
    knowing each hidden entry is at least ``floor`` (shown entries are exact). Sound, not complete."""
    lo = np.where(hidden, floor, vals).astype("float64")
    hi = np.where(hidden, np.inf, vals).astype("float64")
    if not len(eqs):
        return lo, hi
    starts = eqs.ptr[:-1]
    member_eq = eqs.owner
    m, t = eqs.members, eqs.totals
    for _ in range(rounds):
        mlo, mhi = lo[m], hi[m]
        finite = np.isfinite(mhi)
        sum_lo = np.add.reduceat(mlo, starts)
        sum_hi = np.add.reduceat(np.where(finite, mhi, 0.0), starts)
        n_inf = np.add.reduceat((~finite).astype(np.int64), starts)
        others_lo = sum_lo[member_eq] - mlo
        others_inf = n_inf[member_eq] - (~finite)
        others_hi = np.where(others_inf == 0, sum_hi[member_eq] - np.where(finite, mhi, 0.0), np.inf)
        new_lo, new_hi = lo.copy(), hi.copy()
        with np.errstate(invalid="ignore"):
            np.maximum.at(new_lo, m, lo[t][member_eq] - others_hi)
            np.minimum.at(new_hi, m, hi[t][member_eq] - others_lo)
        np.maximum.at(new_lo, t, sum_lo)
        np.minimum.at(new_hi, t, np.where(n_inf == 0, sum_hi, np.inf))
        new_lo = np.where(hidden, np.ceil(np.nan_to_num(new_lo, nan=floor) - 1e-9), vals)  # counts are whole
        new_hi = np.where(hidden, np.floor(new_hi + 1e-9), vals)
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    return lo, hi


def linear_pinned(hidden: np.ndarray, eqs: Equations, *, seed: int = SEED, probes: int = 3) -> np.ndarray:
    """Hidden entries that some combination of the equations pins down exactly, whatever the bounds.

    A hidden entry is pinned when its unit vector lies in the row space of the equations restricted to
    the hidden entries, i.e. when it is 0 in every vector of their null space. The null space is probed
    with random vectors projected on it (LSMR on the sparse system): a free entry's component is far
    from 0 (≥ 1e-2 on the demo releases), a pinned one's is at rounding level (≤ 1e-10).
    """
    from scipy.sparse.linalg import lsmr

    idx = np.flatnonzero(hidden)
    if not len(idx) or not len(eqs):
        return idx
    a_t = _incidence(eqs, len(hidden))[:, idx].T.tocsr()
    rng = np.random.default_rng(seed)
    largest = np.zeros(len(idx))
    for _ in range(probes):
        r = rng.standard_normal(len(idx))
        y = lsmr(a_t, r, atol=1e-12, btol=1e-12, maxiter=100 * len(idx) + 1000)[0]
        largest = np.maximum(largest, np.abs(r - a_t @ y))
    return idx[largest < 1e-6]


def lp_pinned(vals: np.ndarray, hidden: np.ndarray, eqs: Equations, cells: np.ndarray, *, floor: float = 1.0,
              seed: int = SEED, spread_lps: int = 6) -> np.ndarray:
    """Of ``cells`` (hidden entries), those whose value linear programming narrows to less than 1 apart,
    knowing every hidden entry is at least ``floor``: the strongest of the three checks.

    A few LPs with random objectives give different feasible tables; a cell that differs by 1 or more
    between two of them (or the true table) is free. Only the rest get their own min and max.
    """
    from scipy.optimize import linprog

    idx = np.flatnonzero(hidden)
    if not len(cells) or not len(eqs):
        return np.asarray(cells, dtype=np.int64)
    a = _incidence(eqs, len(hidden))
    a_h = a[:, idx]
    b = -(a[:, np.flatnonzero(~hidden)] @ vals[~hidden])
    used = np.diff(a_h.tocsr().indptr) > 0
    a_h, b = a_h.tocsr()[used], b[used]
    pos = np.searchsorted(idx, cells)
    low, high = vals[cells].astype("float64"), vals[cells].astype("float64")
    rng = np.random.default_rng(seed)

    def solve(c: np.ndarray) -> np.ndarray | None:
        out = linprog(c, A_eq=a_h, b_eq=b, bounds=(floor, None), method="highs")
        return out.x if out.status == 0 else None

    for _ in range(spread_lps):
        x = solve(rng.standard_normal(len(idx)))
        if x is not None:
            low, high = np.minimum(low, x[pos]), np.maximum(high, x[pos])
    tight = np.flatnonzero(high - low < 1 - 1e-6)
    pinned = []
    for j in tight:
        c = np.zeros(len(idx))
        c[pos[j]] = 1.0
        for sign in (1.0, -1.0):
            x = solve(sign * c)
            if x is not None:
                low[j], high[j] = min(low[j], x[pos[j]]), max(high[j], x[pos[j]])
            if high[j] - low[j] >= 1 - 1e-6:
                break
        else:
            pinned.append(cells[j])
    return np.asarray(pinned, dtype=np.int64)


def _hide_near(cells: np.ndarray, hidden: np.ndarray, vals: np.ndarray, eqs: Equations, *, rings: int = 6) -> int:
    """For each cell, hide the smallest shown non-zero entry of its equations; if they have none, of the
    equations of the hidden entries they hold, and so on (a cell can be pinned through its neighbours)."""
    member_eq = eqs.owner
    hid = 0
    for cell in cells:
        seen: set[int] = set()
        frontier = np.array([cell])
        for _ in range(rings):
            eq_ids = np.setdiff1d(np.concatenate([member_eq[np.isin(eqs.members, frontier)],
                                                  np.flatnonzero(np.isin(eqs.totals, frontier))]), list(seen))
            if not len(eq_ids):
                break
            seen |= set(eq_ids.tolist())
            entries = np.unique(np.concatenate([eqs.entries(int(i)) for i in eq_ids]))
            if _hide_one_more(entries, hidden, vals):
                hid += 1
                break
            frontier = entries[hidden[entries]]
    return hid


def _free_linear(pinned: np.ndarray, hidden: np.ndarray, vals: np.ndarray, eqs: Equations, *, seed: int = SEED) -> int:
    """Hide shown entries that free linearly pinned ones, chosen from an attack's own certificate.

    A pinned entry ``i`` has a certificate ``y`` (``A_Hᵀ y = e_i``): the combination of equations that
    gives it away. Hiding a shown entry ``j`` breaks it when ``y · a_j ≠ 0``, and leaves ``j`` itself free
    when ``a_j`` lies in the range of ``A_H`` (no combination of equations is left in which ``j`` is the only
    unknown). Both are probed at once for all pinned entries (a random combination of their certificates,
    three random vectors of the left null space). Such entries are hidden; failing any, a pair whose
    left-null signatures are parallel; failing that, a neighbour.
    """
    from scipy.sparse.linalg import lsmr

    idx = np.flatnonzero(hidden)
    a = _incidence(eqs, len(hidden))
    a_h = a[:, idx].tocsr()
    a_t = a_h.T.tocsr()
    shown = np.flatnonzero(~hidden)
    a_s_t = a[:, shown].T.tocsr()
    rng = np.random.default_rng(seed)
    iters = 100 * len(idx) + 1000
    rhs = np.zeros(len(idx))
    rhs[np.searchsorted(idx, pinned)] = rng.standard_normal(len(pinned))
    s = a_s_t @ lsmr(a_t, rhs, atol=1e-12, btol=1e-12, maxiter=iters)[0]
    probes = []
    for _ in range(3):
        r = rng.standard_normal(a_h.shape[0])
        probes.append(a_s_t @ (r - a_h @ lsmr(a_h, r, atol=1e-12, btol=1e-12, maxiter=iters)[0]))
    sig = np.column_stack(probes)
    scale = max(1.0, float(np.abs(s).max()))
    breaks = np.abs(s) > 1e-6 * scale
    in_range = np.abs(sig).max(axis=1) < 1e-6
    nonzero = vals[shown] > 0
    single = shown[breaks & in_range & nonzero]
    if len(single):
        hidden[single] = True
        return len(single)
    # Pairs: a_j1 / p1 − a_j2 / p2 is in the range when their signatures are parallel (p = pivot entry).
    loose = np.flatnonzero(nonzero & ~in_range)
    if len(loose):
        pivot = np.argmax(np.abs(sig[loose]), axis=1)
        piv = sig[loose, pivot]
        keys = np.round(sig[loose] / piv[:, None], 6)
        best: tuple | None = None
        groups: dict[tuple, list[int]] = {}
        for n, (p, row) in enumerate(zip(pivot, keys, strict=True)):
            groups.setdefault((int(p), *row.tolist()), []).append(n)
        for members in groups.values():
            if len(members) < 2:
                continue
            members = sorted(members, key=lambda n: (vals[shown[loose[n]]], n))[:40]  # the cheapest few
            for x, y in combinations(members, 2):
                if abs(s[loose[x]] / piv[x] - s[loose[y]] / piv[y]) > 1e-6 * scale:
                    cost = (vals[shown[loose[x]]] + vals[shown[loose[y]]], shown[loose[x]])
                    if best is None or cost < best[0]:
                        best = (cost, shown[loose[x]], shown[loose[y]])
        if best is not None:
            hidden[[best[1], best[2]]] = True
            return 2
    return _hide_near(pinned, hidden, vals, eqs)
