"""Which small counts of a release could an attacker pin down from everything a signed-out viewer sees?

    python benchmarks/audit_release.py [--indicator victims_identified] [--trials 4] [--tol 1e-12] [--lp 200]

Three attacks on the whole release (every published equation, every shown value, hidden cells ≥ 1
because zeros are shown):

1. linear algebra: random vectors projected on the null space of the equations restricted to the hidden
   cells (LSMR, written here independently of the build's own check); a cell whose component is ~0 in
   every projection is determined by the shown numbers;
2. interval propagation (:func:`data.privacy.interval_bounds`), the build's bounds check;
3. linear programming (HiGHS) on a random sample of ``--lp`` small cells: min and max of each given
   everything else — stronger than 2, too slow for the build to iterate on. Reported, not enforced.

It reports; it never fails (the tests enforce 1 and 2).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.catalog import indicator as get_indicator  # noqa: E402
from data.maintenance import ensure_reference, load_demo  # noqa: E402
from data.privacy import interval_bounds, lp_pinned  # noqa: E402
from data.queries import aggregate  # noqa: E402
from data.release import _frames, build_release, linked_system, with_time_buckets  # noqa: E402
from data.schema import Filters  # noqa: E402
from data.store import open_store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import scipy.sparse as sp
    from scipy.sparse.linalg import lsmr

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indicator", default="victims_identified")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--tol", type=float, default=1e-12)
    parser.add_argument("--lp", type=int, default=200, help="small cells to check by linear programming (0: none)")
    args = parser.parse_args(argv)
    store = open_store("duckdb:///:memory:")
    ensure_reference(store)
    load_demo(store)
    release = build_release(store, args.indicator)
    levels = release.levels
    _, eqs = linked_system(levels)
    hidden = np.concatenate([f["suppressed"].to_numpy(dtype=bool) for f in levels.values()])
    idx = np.flatnonzero(hidden)
    col = np.full(len(hidden), -1)
    col[idx] = np.arange(len(idx))
    member_eq = eqs.owner
    hm, ht = hidden[eqs.members], hidden[eqs.totals]
    rows = np.concatenate([member_eq[hm], np.flatnonzero(ht)])
    cols = np.concatenate([col[eqs.members[hm]], col[eqs.totals[ht]]])
    data = np.concatenate([np.ones(int(hm.sum())), -np.ones(int(ht.sum()))])
    a_t = sp.csr_matrix((data, (rows, cols)), shape=(len(eqs), len(idx))).T.tocsr()
    print(f"{args.indicator}: {len(hidden)} cells, {len(eqs)} equations, {len(idx)} hidden, "
          f"{release.stats['primary']} of them small; build: {release.stats['rounds']} rounds, fixes {release.stats['fixes']}")
    rng = np.random.default_rng(0)
    largest = np.zeros(len(idx))
    for trial in range(args.trials):
        start = time.perf_counter()
        r = rng.standard_normal(len(idx))
        out = lsmr(a_t, r, atol=args.tol, btol=args.tol, maxiter=50_000)
        largest = np.maximum(largest, np.abs(r - a_t @ out[0]))
        print(f"  projection {trial + 1}: {time.perf_counter() - start:.1f} s, {out[2]} iterations, stop reason {out[1]}")
    pinned = idx[largest < 1e-6]
    unclear = idx[(largest >= 1e-6) & (largest < 1e-2)]
    keys = np.array([",".join(k) or "total" for k, f in levels.items() for _ in range(len(f))], dtype=object)
    values = _exact_values(store, args.indicator, levels)
    small = hidden & (values > 0) & (values < release.k)
    print(f"1. linear: hidden cells pinned down (|null component| < 1e-6 in every projection): {len(pinned)}, "
          f"of them small: {int(small[pinned].sum())}; unclear (1e-6..1e-2): {len(unclear)}")
    for level, n in collections.Counter(keys[pinned]).most_common(8):
        print(f"  {n:6d}  {level}")
    lo, hi = interval_bounds(values, hidden, eqs)
    width = (hi - lo)[small]
    print(f"2. interval propagation: small cells pinned {int((width == 0).sum())}, within 1: {int((width <= 1).sum())}, "
          f"within 2: {int((width <= 2).sum())} of {int(small.sum())}")
    if args.lp:
        sample = np.sort(rng.choice(np.flatnonzero(small), size=min(args.lp, int(small.sum())), replace=False))
        start = time.perf_counter()
        lp = lp_pinned(values, hidden, eqs, sample)
        print(f"3. linear programming on {len(sample)} sampled small cells: {len(lp)} narrowed to less than 1 apart "
              f"({time.perf_counter() - start:.1f} s)")
        for level, n in collections.Counter(keys[lp]).most_common(8):
            print(f"  {n:6d}  {level}")
    store.close()
    return 0


def _exact_values(store, indicator: str, levels) -> np.ndarray:  # noqa: ANN001
    """Every cell's exact value: the release hides them, the audit needs them (it plays both sides)."""
    dims = list(get_indicator(indicator).disaggregations)
    base = aggregate(store, Filters(indicator, granularity="month"), ["province", "period", *dims])
    exact = _frames(with_time_buckets(base.rename(columns={"period": "month"})), levels)
    return np.nan_to_num(np.concatenate([exact[key]["value"].to_numpy(dtype="float64") for key in levels]))


if __name__ == "__main__":
    raise SystemExit(main())
