"""Where ``update_map`` spends its time, in-process: a per-step breakdown, what-ifs and a cProfile.

    python benchmarks/profile_map.py [--rounds N] [--top K]

Builds a temporary DuckDB store with the demo data (like ``bench_callbacks.py``), builds ``create_app()``
and calls the pieces of ``update_map`` directly (no HTTP, no Dash dispatch) for the same eight filter
states: ``parse_search``, ``queries.province_totals`` (its indicator query, its population query and
its pandas glue), ``period_label`` (``services.meta()`` -> ``data_version``), ``figures.choropleth_patch``
and Dash's JSON encoding. Steps are interleaved round-robin so load on the machine hits all alike.
The what-ifs monkeypatch caches into this process only; no file of the app is changed.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = [
    "?view=overview&indicator=victims_identified&start=2024-01&end=2024-12",
    "?view=overview&indicator=victims_identified&provinces=targets&start=2024-01&end=2024-12",
    "?view=overview&indicator=migrants_departed&provinces=targets&start=2024-01&end=2024-12",
    "?view=overview&indicator=migrants_departed&provinces=17&start=2023-01&end=2023-12&measure=rate",
    "?view=overview&indicator=households_supported&start=2023-01&end=2023-12&classes=quantile",
    "?view=overview&indicator=victims_identified&provinces=17&start=2023-01&end=2023-12&measure=rate&classes=quantile",
    "?view=overview&indicator=migrants_departed&start=2024-01&end=2024-12&measure=rate&classes=quantile",
    "?view=overview&indicator=households_supported&provinces=targets&start=2024-01&end=2024-12",
]


def medians_ms(steps: dict[str, Callable[[int], object]], rounds: int,
               setup: dict[str, Callable[[], None]] | None = None) -> dict[str, float]:
    """Median ms of each step, interleaved round-robin; ``setup[name]`` runs untimed before that step."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(rounds):
        for name, fn in steps.items():
            if setup and name in setup:
                setup[name]()
            t0 = time.perf_counter()
            fn(i)
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="calls per step (default 200)")
    parser.add_argument("--top", type=int, default=25, help="rows of the cProfile listing (default 25)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="ctip-profile-"))
    try:
        os.environ["CTIP_DATABASE_URL"] = f"duckdb:///{tmp / 'bench.duckdb'}"
        ctip = str(Path(sys.executable).parent / "ctip")
        subprocess.run([ctip, "init", "--seed-demo-if-empty"], check=True, capture_output=True, cwd=ROOT)
        profile(args.rounds, args.top)
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def profile(rounds: int, top: int) -> None:
    import numpy as np
    import pandas as pd
    from dash._utils import to_json

    from callbacks import views
    from dashboard import figures
    from dashboard.app import create_app
    from dashboard.state import parse_search
    from data import queries
    from data.gazetteer import PROVINCE_CODES

    app = create_app()
    services = app.server.config["CTIP_SERVICES"]
    # The function as written (functools.wraps under Dash's context wrapper).
    update_map = app.callback_map["overview-map-graph.figure"]["callback"].__wrapped__
    store = services.store()
    n = len(QUERIES)
    states = [parse_search(q) for q in QUERIES]
    for q in QUERIES:  # warm: store, reference data, lru caches
        update_map(q)
    args_by = [views.map_args(services, s) for s in states]
    patches = [figures.choropleth_patch(**a) for a in args_by]
    aggregates = [queries.aggregate(store, s.filters(provinces=()), ["province"]) for s in states]
    pop = queries.population(store)
    pop_dict = pop.to_dict()
    codes = list(PROVINCE_CODES)

    def glue(frame: pd.DataFrame) -> pd.DataFrame:
        """province_totals after its two queries, as written (merge onto the 25 codes, map, rank)."""
        out = pd.DataFrame({"province": codes}).merge(frame, on="province", how="left")
        out["population"] = out["province"].map(pop).astype("float64")
        out["rate_100k"] = out["value"] / out["population"] * 100_000
        out["rank"] = out["value"].rank(method="min", ascending=False).astype("Int64")
        return out

    def plain_glue(frame: pd.DataFrame) -> tuple:
        """The same result with a dict and numpy (what the frame-free alternative costs)."""
        got = dict(zip(frame["province"].tolist(), frame["value"].tolist(), strict=True))
        value = np.array([got.get(c, np.nan) for c in codes], dtype="float64")
        population = np.array([pop_dict.get(c, np.nan) for c in codes], dtype="float64")
        rate = value / population * 100_000
        order = np.where(np.isnan(value), -np.inf, value)
        rank = np.where(np.isnan(value), 0, 1 + (order[None, :] > order[:, None]).sum(axis=1))
        return value, population, rate, rank

    steps: dict[str, Callable[[int], object]] = {
        "parse_search(query)": lambda i: parse_search(QUERIES[i % n]),
        "queries.province_totals":
            lambda i: queries.province_totals(store, states[i % n].filters(provinces=())),
        "  aggregate(indicator by province) (query 1)":
            lambda i: queries.aggregate(store, states[i % n].filters(provinces=()), ["province"]),
        "  population(store) (query 2, same every call)": lambda i: queries.population(store),
        "  pandas glue: merge onto 25 codes, map, rank": lambda i: glue(aggregates[i % n]),
        "    same with a dict + numpy (alternative)": lambda i: plain_glue(aggregates[i % n]),
        "  store.query('SELECT 1') (floor of a query)": lambda i: store.query("SELECT 1 AS x"),
        "period_label -> services.meta()": lambda i: views.period_label(services, states[i % n]),
        "  services.data_version() (query 3)": lambda i: services.data_version(),
        "map_args (the two above)": lambda i: views.map_args(services, states[i % n]),
        "figures.choropleth_patch": lambda i: figures.choropleth_patch(**args_by[i % n]),
        "to_json(patch) (Dash's encoding)": lambda i: to_json(patches[i % n]),
        "update_map body (total)": lambda i: update_map(QUERIES[i % n]),
    }
    print(f"in-process, median of {rounds} calls per step, cycling {n} filter states, interleaved "
          f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    for name, ms in medians_ms(steps, rounds).items():
        print(f"  {name:<50}{ms:8.2f} ms")

    what_if(services, update_map, queries, rounds, n)

    prof = cProfile.Profile()
    prof.enable()
    for i in range(rounds):
        update_map(QUERIES[i % n])
    prof.disable()
    for key, title, limit in (("cumulative", "cumulative", top), ("tottime", "own time", 15)):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(limit)
        print(f"\ncProfile of {rounds} update_map calls, by {title}:")
        print(out.getvalue().strip())


def what_if(services, update_map, queries, rounds: int, n: int) -> None:  # noqa: ANN001
    """update_map with the suggested caches, monkeypatched cumulatively (interleaved with 'as is')."""
    original_population, original_totals = queries.population, queries.province_totals
    original_version = services.data_version
    version = original_version()
    pop_cache: dict = {}

    def population(store, provinces=()):  # noqa: ANN001, ANN202
        key = (services.data_version(), tuple(provinces))
        if key not in pop_cache:
            pop_cache[key] = original_population(store, provinces)
        return pop_cache[key]

    @functools.lru_cache(maxsize=256)
    def cached_totals(version, store, filters):  # noqa: ANN001, ANN202
        return original_totals(store, filters)

    def totals(store, filters):  # noqa: ANN001, ANN202
        return cached_totals(services.data_version(), store, filters).copy()

    def patch(level: int) -> Callable[[], None]:
        def apply() -> None:
            services.data_version = (lambda: version) if level >= 1 else original_version
            queries.population = population if level >= 2 else original_population
            queries.province_totals = totals if level >= 3 else original_totals
        return apply

    names = ["as is",
             "+ data_version not queried per call (TTL / write counter)",
             "+ population cached per data version",
             "+ province_totals LRU by (data version, filters), all hits"]
    body = lambda i: update_map(QUERIES[i % n])  # noqa: E731
    try:
        setup = {name: patch(k) for k, name in enumerate(names)}
        result = medians_ms(dict.fromkeys(names, body), rounds, setup)
    finally:
        patch(0)()
    print("\nwhat-if, update_map body (cumulative; monkeypatched in this process only):")
    for name, ms in result.items():
        print(f"  {name:<60}{ms:8.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
