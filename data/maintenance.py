"""Store maintenance: reference data, demo data in and out, and a JSON description of the contents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from data import demo
from data.catalog import indicators
from data.schema import NATIONAL, SYNTHETIC_SOURCE
from data.store import Store

REFERENCE_DIR = Path(__file__).parent / "reference"


#: Reference period per bundled file (the census counted the population as of 3 March 2019).
REFERENCE_PERIODS = {"census2019_population.csv": "2019-03-01", "intl_migrants_cdb2011.csv": "2011-01-01"}


def reference_frame() -> pd.DataFrame:
    """Real reference observations shipped with the app, one frame for every catalog indicator with a
    ``reference`` file (value column named like the indicator id; missing provinces stay missing)."""
    frames = []
    for ind in indicators().values():
        if not ind.reference:
            continue
        table = pd.read_csv(REFERENCE_DIR / ind.reference, dtype={"province_code": str})
        table = table.dropna(subset=[ind.id])
        frames.append(pd.DataFrame({
            "indicator": ind.id,
            "province": table["province_code"].str.zfill(2),
            "period": pd.Timestamp(REFERENCE_PERIODS.get(ind.reference, ind.since + "-01" if ind.since else "2019-01-01")),
            "value": table[ind.id].astype("float64"),
            "partner": "",
            "source": table["source"] if "source" in table else ind.source,
            "note": "",
        }))
    return pd.concat(frames, ignore_index=True)


def ensure_reference(store: Store) -> int:
    """Load the reference observations if they are missing or changed; return rows written."""
    _, written = store.write_batch(reference_frame(), kind="reference", source="reference data", replace=True,
                                   batch_id="reference-v1")
    return written


def load_demo(store: Store, seed: int = demo.DEFAULT_SEED) -> int:
    """Replace the synthetic rows with a fresh generation for ``seed``; real rows are untouched."""
    remove_demo(store)
    frame = demo.generate(seed)
    _, written = store.write_batch(frame, kind="demo", source=SYNTHETIC_SOURCE, file_name=f"seed={seed}",
                                   batch_id=f"demo-seed-{seed}")
    return written


def remove_demo(store: Store) -> int:
    """Delete only the synthetic rows (``source = 'synthetic-demo'``); return how many went."""
    return store.delete_where("source = ?", [SYNTHETIC_SOURCE])


def has_demo(store: Store) -> bool:
    """Whether any synthetic row is loaded."""
    return bool(store.scalar("SELECT COUNT(*) FROM observations WHERE source = ?", [SYNTHETIC_SOURCE]))


def is_empty(store: Store) -> bool:
    """Whether the store holds no observations other than reference data."""
    return not store.scalar("SELECT COUNT(*) FROM observations WHERE batch_id NOT LIKE 'reference-%'")


def store_info(store: Store) -> dict[str, Any]:
    """Describe the store's contents (stable for unchanged contents: no clocks, sorted keys)."""
    per_indicator = store.query(
        "SELECT indicator, COUNT(*) AS n, MIN(period) AS first_period, MAX(period) AS last_period "
        "FROM observations GROUP BY indicator ORDER BY indicator"
    )
    provinces = store.query("SELECT DISTINCT province FROM observations ORDER BY province")["province"].tolist()
    sources = store.query("SELECT source, COUNT(*) AS n FROM observations GROUP BY source ORDER BY source")
    batches = store.query("SELECT batch_id, kind, file_name, rows_written, imported_at FROM batches ORDER BY imported_at, batch_id")
    total = int(per_indicator["n"].sum()) if not per_indicator.empty else 0
    last_import = batches.loc[batches["kind"] == "import", "imported_at"].max() if not batches.empty else None
    periods = [p for p in (per_indicator["first_period"].min(), per_indicator["last_period"].max())] if total else [None, None]
    return {
        "backend": store.backend,
        "rows": total,
        "rows_per_indicator": {r.indicator: int(r.n) for r in per_indicator.itertuples()},
        "period_range": [f"{p:%Y-%m}" if p is not None and not pd.isna(p) else None for p in periods],
        "provinces": [p for p in provinces if p != NATIONAL],
        "national_rows": NATIONAL in provinces,
        "demo_loaded": has_demo(store),
        "synthetic_rows": int(sources.loc[sources["source"] == SYNTHETIC_SOURCE, "n"].sum()) if not sources.empty else 0,
        "batches": len(batches),
        "last_import": None if last_import is None or pd.isna(last_import) else pd.Timestamp(last_import).isoformat(),
    }
