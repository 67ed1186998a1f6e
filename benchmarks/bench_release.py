"""Cost of protecting victims' data: building each sensitive indicator's release, and reading from it.

    python benchmarks/bench_release.py [--repeat N]      (also: make bench)

1. loads the seeded demo data into an in-memory DuckDB store;
2. per sensitive indicator summed over time, builds its release N times (cold: no cache) and prints
   p50 / p95, the cells and equations it protects, how many are hidden (primary and companions) and how
   many hidden cells the exact audit covered; the baseline, measured in the same run, is the one SQL
   aggregate the release starts from;
3. times what a signed-out view asks for once the release is built — the map's province totals for a
   year and for an odd window, a quarterly national series, a breakdown — against the same exact
   (partner) query, p50 / p95 over N × 20 calls.

It reports and never fails; exit status 0 unless the store cannot be set up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data import queries  # noqa: E402
from data.catalog import indicators  # noqa: E402
from data.maintenance import ensure_reference, load_demo  # noqa: E402
from data.release import build_release  # noqa: E402
from data.schema import Filters  # noqa: E402
from data.store import open_store  # noqa: E402


def _times(fn, n: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _p(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    store = open_store("duckdb:///:memory:")
    ensure_reference(store)
    load_demo(store)
    print("Release build (cold), demo data")
    print(f"{'indicator':28} {'p50 ms':>8} {'p95 ms':>8} {'SQL p50':>8} {'×SQL':>6} {'cells':>7} {'eqs':>7} {'hidden':>7} "
          f"{'primary':>7} {'rounds':>6} {'pinned':>6}")
    releases = {}
    for ind in indicators().values():
        if not (ind.sensitive and ind.aggregation != "ratio" and ind.time_aggregation == "sum"):
            continue
        dims = ["province", "period", *ind.disaggregations]
        sql = _times(lambda ind=ind, dims=dims: queries.aggregate(store, Filters(ind.id), dims), args.repeat)
        built: list = []
        build = _times(lambda ind=ind, built=built: built.append(build_release(store, ind.id)), args.repeat)
        release = releases[ind.id] = built[-1]
        p50, p95 = _p(build)
        s50, _ = _p(sql)
        eqs = release.protection.notes[-1].split(", ")[1].split()[0] if release.protection else "?"
        st = release.stats
        print(f"{ind.id:28} {p50:8.0f} {p95:8.0f} {s50:8.1f} {p50 / s50:6.0f} {st['cells']:7d} {eqs:>7} {st['hidden']:7d} "
              f"{st['primary']:7d} {st['rounds']:6d} {st['pinned']:6d}")
    release = releases["victims_identified"]
    year = dict(start=dt.date(2024, 1, 1), end=dt.date(2024, 12, 1))
    odd = dict(start=dt.date(2024, 2, 1), end=dt.date(2025, 5, 1))
    reads = {
        "map, calendar year": (lambda: release.cells(["province"], **year),
                               lambda: queries.province_totals(store, Filters("victims_identified", **year))),
        "map, Feb 2024 – May 2025": (lambda: release.cells(["province"], **odd),
                                     lambda: queries.province_totals(store, Filters("victims_identified", **odd))),
        "national series, quarters": (lambda: release.cells([], granularity="quarter", **year),
                                      lambda: queries.time_series(store, Filters("victims_identified", granularity="quarter", **year))),
        "breakdown by nationality": (lambda: release.cells(["nationality"], **year),
                                     lambda: queries.breakdown(store, Filters("victims_identified", **year), "nationality")),
    }
    print("\nReading a built release (victims_identified) vs the exact query, ms")
    print(f"{'request':28} {'release p50':>11} {'p95':>7} {'exact p50':>10} {'p95':>7}")
    for name, (protected, exact) in reads.items():
        r50, r95 = _p(_times(protected, args.repeat * 20))
        e50, e95 = _p(_times(exact, args.repeat * 20))
        print(f"{name:28} {r50:11.2f} {r95:7.2f} {e50:10.2f} {e95:7.2f}")
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
