"""The CTIP risk index: configuration, a hand-computed fixture, properties, and the index on demo data."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from data.gazetteer import livelihood_codes, provinces
from data.queries import aggregate, province_totals
from data.risk import (
    DIMENSION_KEYS,
    RiskConfig,
    RiskConfigError,
    compute_index,
    default_period_end,
    format_weights,
    load_risk_config,
    methodology,
    normalise,
    parse_weights,
    rank_uncertainty,
    raw_indicators,
    risk_table,
    risk_window,
)
from data.schema import Filters
from data.store import Store, open_store

TOL = 1e-9

# -- the hand-computed fixture ------------------------------------------------------------------------------
# Three provinces A, B, C; three indicators per dimension. All use formula "value" (the formula only
# matters when reading the store; the fixture is a raw frame built by hand).
FIXTURE_TOML = """
schema_version = 1
aggregation = "geometric"
[period]
months = 12
[missing]
min_share_available = 0.5
[classes]
thresholds = [2.0, 3.5, 5.0, 6.5]
keys = ["very_low", "low", "medium", "high", "very_high"]
labels_en = ["Very low", "Low", "Medium", "High", "Very high"]
[uncertainty]
draws = 200
spread = 0.25
seed = 7
percentiles = [5, 95]

[[dimension]]
key = "hazard"
label_en = "Hazard"
weight = 1.0
[[dimension]]
key = "vulnerability"
label_en = "Vulnerability"
weight = 1.0
[[dimension]]
key = "coping"
label_en = "Lack of coping capacity"
weight = 1.0
"""
#                key   dimension        direction transform caps
FIXTURE_INDICATORS = [
    ("h1", "hazard", 1, "linear", [0, 100]),
    ("h2", "hazard", 1, "log1p", [0, 100]),
    ("h3", "hazard", 1, "linear", [5, 95]),
    ("v1", "vulnerability", 1, "linear", [0, 100]),
    ("v2", "vulnerability", -1, "linear", [0, 100]),
    ("v3", "vulnerability", 1, "linear", [0, 100]),
    ("c1", "coping", 1, "linear", [0, 100]),
    ("c2", "coping", -1, "linear", [0, 100]),
    ("c3", "coping", 1, "linear", [0, 100]),
]
E = math.e
NAN = float("nan")
FIXTURE_RAW = {
    #      A            B        C
    "h1": (0.0, 5.0, 10.0),
    "h2": (E**2 - 1, 0.0, E - 1),  # log1p → 2, 0, 1
    "h3": (10.0, 0.0, 40.0),
    "v1": (2.0, 4.0, 6.0),
    "v2": (100.0, 50.0, 0.0),
    "v3": (1.0, NAN, 3.0),  # B missing: vulnerability still scored (2 of 3 ≥ half)
    "c1": (0.2, 0.6, NAN),  # C missing …
    "c2": (30.0, 10.0, NAN),  # … and missing: coping has 1 of 3 < half → not scored
    "c3": (0.0, 3.0, 9.0),
}


def fixture_toml() -> str:
    parts = [FIXTURE_TOML]
    for key, dim, direction, transform, caps in FIXTURE_INDICATORS:
        parts.append(
            f'[[indicator]]\nkey = "{key}"\nlabel_en = "{key}"\ndimension = "{dim}"\nformula = "value"\n'
            f'sources = ["migrants_departed"]\ndirection = {direction}\ntransform = "{transform}"\n'
            f'caps = {caps}\nweight = 1.0\nrationale = "fixture"\n'
        )
    return "\n".join(parts)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory: pytest.TempPathFactory) -> RiskConfig:
    path = tmp_path_factory.mktemp("risk") / "fixture.toml"
    path.write_text(fixture_toml(), encoding="utf-8")
    return load_risk_config(path)


def raw_frame(
    values: dict[str, tuple[float, ...]], provinces_: tuple[str, ...] = ("A", "B", "C")
) -> pd.DataFrame:
    rows = [
        {
            "province": p,
            "key": key,
            "raw": v,
            "period_start": pd.Timestamp("2025-01-01"),
            "period_end": pd.Timestamp("2025-12-01"),
        }
        for key, vals in values.items()
        for p, v in zip(provinces_, vals, strict=True)
    ]
    return pd.DataFrame(rows)


def by_province(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("province")


def test_fixture_normalisation(cfg: RiskConfig) -> None:
    norm = normalise(raw_frame(FIXTURE_RAW), cfg).set_index(["key", "province"])["normalised"]
    # h1 linear, no caps: min 0, max 10 → 10·(x − 0)/(10 − 0)
    assert norm["h1"].tolist() == pytest.approx([0.0, 5.0, 10.0], abs=TOL)
    # h2 log1p → 2, 0, 1 → 10·x/2
    assert norm["h2"].tolist() == pytest.approx([10.0, 0.0, 5.0], abs=TOL)
    # h3 caps 5/95 over 0, 10, 40 (linear interpolation): p5 = 0 + 0.1·10 = 1, p95 = 10 + 0.9·30 = 37;
    # A: (10 − 1)/36·10 = 2.5; B: 0 capped to 1 → 0; C: 40 capped to 37 → 10
    assert norm["h3"].tolist() == pytest.approx([2.5, 0.0, 10.0], abs=TOL)
    # v2 direction −1: scaled 10, 5, 0 → reversed 0, 5, 10
    assert norm["v2"].tolist() == pytest.approx([0.0, 5.0, 10.0], abs=TOL)
    # v3 over A and C only: 0 and 10; B stays missing
    assert norm[("v3", "A")] == pytest.approx(0.0, abs=TOL) and norm[("v3", "C")] == pytest.approx(
        10.0, abs=TOL
    )
    assert math.isnan(norm[("v3", "B")])
    # c3: 0, 3, 9 → 0, 3.333…, 10
    assert norm["c3"].tolist() == pytest.approx([0.0, 10 / 3, 10.0], abs=TOL)
    caps = normalise(raw_frame(FIXTURE_RAW), cfg).set_index(["key", "province"])
    assert caps.loc[("h3", "A"), "cap_lower"] == pytest.approx(1.0, abs=TOL)
    assert caps.loc[("h3", "A"), "cap_upper"] == pytest.approx(37.0, abs=TOL)


def test_fixture_index_geometric(cfg: RiskConfig) -> None:
    result = compute_index(raw_frame(FIXTURE_RAW), cfg)
    s = by_province(result.scores)
    # Hazard (mean of h1, h2, h3): A (0 + 10 + 2.5)/3 = 4.1666…, B (5 + 0 + 0)/3 = 1.666…, C (10 + 5 + 10)/3
    assert s.loc["A", "hazard"] == pytest.approx(4.166666666666667, abs=TOL)
    assert s.loc["B", "hazard"] == pytest.approx(1.6666666666666667, abs=TOL)
    assert s.loc["C", "hazard"] == pytest.approx(8.333333333333334, abs=TOL)
    # Vulnerability: A (0 + 0 + 0)/3 = 0; B (5 + 5)/2 = 5 (v3 missing, weights renormalised); C 10
    assert s.loc["A", "vulnerability"] == pytest.approx(0.0, abs=TOL)
    assert s.loc["B", "vulnerability"] == pytest.approx(5.0, abs=TOL)
    assert s.loc["C", "vulnerability"] == pytest.approx(10.0, abs=TOL)
    # Coping: c1 over A, B → 0, 10; c2 (−1) over A, B: 30, 10 → 0, 10; A (0 + 0 + 0)/3 = 0,
    # B (10 + 10 + 3.333…)/3 = 70/9 = 7.777…; C has 1 of 3 (< half) → not scored
    assert s.loc["A", "coping"] == pytest.approx(0.0, abs=TOL)
    assert s.loc["B", "coping"] == pytest.approx(7.777777777777778, abs=TOL)
    assert math.isnan(s.loc["C", "coping"])
    # Geometric: exp(Σ ln(d + 1)/3) − 1
    # A: (5.1666… · 1 · 1)^(1/3) − 1 = 0.72876839588…
    # B: (2.6666… · 6 · 8.7777…)^(1/3) − 1 = (1264/9)^(1/3) − 1 = 4.19798300033…
    assert s.loc["A", "score"] == pytest.approx(0.7287683958802533, abs=TOL)
    assert s.loc["B", "score"] == pytest.approx(4.197983000337315, abs=TOL)
    assert math.isnan(s.loc["C", "score"])
    assert (
        s.loc["A", "class"] == "very_low" and s.loc["B", "class"] == "medium" and pd.isna(s.loc["C", "class"])
    )
    assert s.loc["B", "rank"] == 1 and s.loc["A", "rank"] == 2 and pd.isna(s.loc["C", "rank"])
    assert s["reliability"].to_dict() == {"A": "full", "B": "partial", "C": "insufficient"}
    assert s.loc["B", "missing_indicators"] == "v3"
    assert s.loc["C", "missing_indicators"] == "c1,c2"
    assert result.scores["province"].tolist() == ["B", "A", "C"]  # highest risk first, unscored last


def test_fixture_index_arithmetic_and_weights(cfg: RiskConfig) -> None:
    raw = raw_frame(FIXTURE_RAW)
    s = by_province(compute_index(raw, cfg, aggregation="arithmetic").scores)
    # A (4.1666… + 0 + 0)/3 = 12.5/9; B (5/3 + 5 + 70/9)/3 = 130/27
    assert s.loc["A", "score"] == pytest.approx(1.388888888888889, abs=TOL)
    assert s.loc["B", "score"] == pytest.approx(4.814814814814815, abs=TOL)
    # Hazard weight 2: B = ((8/3)² · 6 · 79/9)^(1/4) − 1 = (30336/81)^(1/4) − 1; A = (15.5/3)^(2/4) − 1
    s = by_province(compute_index(raw, cfg, dimension_weights={"hazard": 2}).scores)
    assert s.loc["B", "score"] == pytest.approx(3.3991454783428354, abs=TOL)
    assert s.loc["A", "score"] == pytest.approx(1.2730302828309759, abs=TOL)
    # Indicator weight h2 = 2: hazard A (0 + 2·10 + 2.5)/4 = 5.625, B 5/4, C (10 + 2·5 + 10)/4 = 7.5
    s = by_province(compute_index(raw, cfg, indicator_weights={"h2": 2}).scores)
    assert s.loc[["A", "B", "C"], "hazard"].tolist() == pytest.approx([5.625, 1.25, 7.5], abs=TOL)
    # c1 and c2 weighted 0: they leave the missing-data rule too, so C's coping is c3 alone = 10
    # C: ((1 + 25/3) · 11 · 11)^(1/3) − 1 = (3388/3)^(1/3) − 1; B coping 10/3: (8/3 · 6 · 13/3)^(1/3) − 1
    s = by_province(compute_index(raw, cfg, indicator_weights={"c1": 0, "c2": 0}).scores)
    assert s.loc["C", "coping"] == pytest.approx(10.0, abs=TOL)
    assert s.loc["C", "score"] == pytest.approx(9.413755631003877, abs=TOL)
    assert s.loc["B", "score"] == pytest.approx(3.1081600984993596, abs=TOL)
    assert s.loc["A", "score"] == pytest.approx(0.7287683958802533, abs=TOL)
    assert s.loc["C", "reliability"] == "full"


def test_fixture_components(cfg: RiskConfig) -> None:
    comp = compute_index(raw_frame(FIXTURE_RAW), cfg).components.set_index(["province", "key"])
    assert len(comp) == 27
    assert comp.loc[("B", "v1"), "effective_weight"] == pytest.approx(0.5)  # v3 missing → 1/2 each
    assert math.isnan(comp.loc[("B", "v3"), "effective_weight"])
    assert math.isnan(comp.loc[("C", "c3"), "effective_weight"])  # coping not scored for C
    assert comp.loc[("A", "h2"), "raw"] == pytest.approx(E**2 - 1)
    assert comp.loc[("A", "h2"), "transformed"] == pytest.approx(2.0)
    assert comp.loc[("A", "h2"), "period_start"] == pd.Timestamp("2025-01-01")
    assert set(comp.columns) >= {
        "label_en",
        "dimension",
        "direction",
        "transform",
        "normalised",
        "weight",
        "cap_lower",
        "cap_upper",
        "capped",
        "period_end",
    }


def test_missing_is_never_zero(cfg: RiskConfig) -> None:
    """Replacing a missing value by 0 would change the result: the index must leave it out instead."""
    raw = raw_frame(FIXTURE_RAW)
    filled = raw_frame({**FIXTURE_RAW, "v3": (1.0, 0.0, 3.0)})
    left_out = by_province(compute_index(raw, cfg).scores).loc["B", "vulnerability"]
    zeroed = by_province(compute_index(filled, cfg).scores).loc["B", "vulnerability"]
    assert left_out == pytest.approx(5.0) and zeroed != pytest.approx(5.0)


def test_degenerate_caps(cfg: RiskConfig) -> None:
    # All equal → 0 whatever the direction; one outlier among equal values → 10 on the risk side.
    equal = raw_frame({**FIXTURE_RAW, "h1": (3.0, 3.0, 3.0), "v2": (4.0, 4.0, 4.0)})
    norm = normalise(equal, cfg).set_index(["key", "province"])["normalised"]
    assert norm["h1"].tolist() == [0.0, 0.0, 0.0] and norm["v2"].tolist() == [0.0, 0.0, 0.0]
    codes = tuple(f"P{i}" for i in range(25))
    many = {k: tuple([1.0] * 25) for k in FIXTURE_RAW}
    many["h3"] = tuple([0.0] * 24 + [50.0])  # caps 5/95 both 0
    norm = normalise(raw_frame(many, codes), cfg).set_index(["key", "province"])["normalised"]
    assert norm[("h3", "P24")] == 10.0 and norm["h3"].iloc[:24].eq(0.0).all()


def test_normalise_rejects_bad_frames(cfg: RiskConfig) -> None:
    with pytest.raises(ValueError, match="log1p"):
        normalise(raw_frame({**FIXTURE_RAW, "h2": (-1.0, 0.0, 1.0)}), cfg)
    with pytest.raises(ValueError, match="finite"):
        normalise(raw_frame({**FIXTURE_RAW, "h1": (math.inf, 0.0, 1.0)}), cfg)
    dup = pd.concat([raw_frame(FIXTURE_RAW), raw_frame({"h1": (1.0, 2.0, 3.0)})])
    with pytest.raises(ValueError, match="two rows"):
        normalise(dup, cfg)
    with pytest.raises(ValueError, match="not in the configuration"):
        normalise(raw_frame({"zz": (1.0, 2.0, 3.0)}), cfg)


def test_weight_validation(cfg: RiskConfig) -> None:
    raw = raw_frame(FIXTURE_RAW)
    with pytest.raises(ValueError, match="'hazard'"):
        compute_index(raw, cfg, dimension_weights={"hazard": -1})
    with pytest.raises(ValueError, match="'coping'"):
        compute_index(raw, cfg, dimension_weights={"coping": math.nan})
    with pytest.raises(ValueError, match="all 0"):
        compute_index(raw, cfg, dimension_weights={"hazard": 0, "vulnerability": 0, "coping": 0})
    with pytest.raises(ValueError, match="'danger'"):
        compute_index(raw, cfg, dimension_weights={"danger": 1})
    with pytest.raises(ValueError, match="'h9'"):
        compute_index(raw, cfg, indicator_weights={"h9": 1})
    with pytest.raises(ValueError, match="'hazard' are all 0"):
        compute_index(raw, cfg, indicator_weights={"h1": 0, "h2": 0, "h3": 0})
    with pytest.raises(ValueError, match="aggregation"):
        compute_index(raw, cfg, aggregation="harmonic")  # type: ignore[arg-type]
    # A dimension weighted 0 may have all-zero indicator weights and is left out of the score.
    res = compute_index(
        raw, cfg, dimension_weights={"coping": 0}, indicator_weights={"c1": 0, "c2": 0, "c3": 0}
    )
    s = by_province(res.scores)
    # C is now scored from hazard and vulnerability: (1 + 25/3)^(1/2)·(11)^(1/2) − 1
    assert s.loc["C", "score"] == pytest.approx(math.sqrt((1 + 25 / 3) * 11) - 1, abs=TOL)


def test_parse_weights() -> None:
    assert parse_weights("hazard:1,vulnerability:2.5, coping:0") == {
        "hazard": 1.0,
        "vulnerability": 2.5,
        "coping": 0.0,
    }
    assert parse_weights("") == {} and parse_weights(None) == {}
    assert parse_weights(format_weights({"hazard": 1.5, "coping": 2.0})) == {"hazard": 1.5, "coping": 2.0}
    for bad, item in [
        ("hazard=1", "hazard=1"),
        ("hazard:x", "hazard:x"),
        ("hazard:-1", "hazard:-1"),
        ("hazard:1,hazard:2", "hazard:2"),
        ("hazard:inf", "hazard:inf"),
        ("hazard:1,,coping:1", "''"),
        (":1", ":1"),
    ]:
        with pytest.raises(ValueError, match=item):
            parse_weights(bad)


# -- configuration ------------------------------------------------------------------------------------------
def test_bundled_config() -> None:
    config = load_risk_config()
    assert [d.key for d in config.dimensions] == list(DIMENSION_KEYS)
    for dim in DIMENSION_KEYS:
        assert 3 <= len(config.indicators_in(dim)) <= 4
    assert config.aggregation == "geometric"
    assert config.min_share_available == 0.5
    assert [c.key for c in config.classes] == ["very_low", "low", "medium", "high", "very_high"]
    assert [c.upper for c in config.classes] == [2.0, 3.5, 5.0, 6.5, None]
    assert (
        config.classify(1.99) == "very_low"
        and config.classify(2.0) == "low"
        and config.classify(10) == "very_high"
    )
    assert config.draws == 300 and config.spread == 0.25
    assert load_risk_config() is config  # cached while unchanged


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "risk.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'key = "h1"\nlabel_en = "h1"\ndimension = "hazard"\nformula = "value"',
            'key = "h1"\nlabel_en = "h1"\ndimension = "hazard"\nformula = "magic"',
            "formula",
        ),
        (
            'sources = ["migrants_departed"]\ndirection = 1\ntransform = "linear"\ncaps = [0, 100]',
            'sources = ["migrants_depart"]\ndirection = 1\ntransform = "linear"\ncaps = [0, 100]',
            "migrants_departed",
        ),
        ('dimension = "coping"', 'dimension = "exposure"', "dimension"),
        (
            'direction = -1\ntransform = "linear"\ncaps = [0, 100]\nweight = 1.0\nrationale = "fixture"\n',
            'direction = 2\ntransform = "linear"\ncaps = [0, 100]\nweight = 1.0\nrationale = "fixture"\n',
            "direction",
        ),
        ('transform = "log1p"', 'transform = "sqrt"', "transform"),
        ("caps = [5, 95]", "caps = [95, 5]", "caps"),
        ("min_share_available = 0.5", "min_share_available = 0", "min_share_available"),
        ("thresholds = [2.0, 3.5, 5.0, 6.5]", "thresholds = [2.0, 5.0, 3.5, 6.5]", "thresholds"),
        ('aggregation = "geometric"', 'aggregation = "median"', "aggregation"),
        ("spread = 0.25", "spread = 1.5", "spread"),
        ('rationale = "fixture"\n', 'rationale = "fixture"\ncolour = "red"\n', "colour"),
    ],
)
def test_config_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = fixture_toml()
    assert old in text, old
    with pytest.raises(RiskConfigError, match=message):
        load_risk_config(_write(tmp_path, text.replace(old, new, 1)))


def test_config_direction_must_agree_with_catalog(tmp_path: Path) -> None:
    text = fixture_toml().replace(
        'sources = ["migrants_departed"]\ndirection = 1',
        'sources = ["victims_identified"]\ndirection = -1',
        1,
    )
    with pytest.raises(RiskConfigError, match="contradicts the catalog"):
        load_risk_config(_write(tmp_path, text))


def test_config_where_must_be_a_disaggregation(tmp_path: Path) -> None:
    text = fixture_toml().replace(
        'sources = ["migrants_departed"]', 'sources = ["migrants_departed"]\nwhere = { role = ["police"] }', 1
    )
    with pytest.raises(RiskConfigError, match="not disaggregated by 'role'"):
        load_risk_config(_write(tmp_path, text))
    text = fixture_toml().replace(
        'sources = ["migrants_departed"]',
        'sources = ["migrants_departed"]\nwhere = { channel = ["sideways"] }',
        1,
    )
    with pytest.raises(RiskConfigError, match="sideways"):
        load_risk_config(_write(tmp_path, text))


def test_methodology_describes_the_config(cfg: RiskConfig) -> None:
    config = load_risk_config()
    doc = methodology(config)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc  # JSON-serialisable, no tuples
    assert [d["key"] for d in doc["dimensions"]] == list(DIMENSION_KEYS)
    assert {d["key"]: d["weight"] for d in doc["dimensions"]} == config.dimension_weights()
    assert [i["key"] for i in doc["indicators"]] == list(config.indicator_keys)
    for rec, spec in zip(doc["indicators"], config.indicators, strict=True):
        assert rec["direction"] == spec.direction and rec["transform"] == spec.transform
        assert [rec["caps"]["lower_percentile"], rec["caps"]["upper_percentile"]] == list(spec.caps)
        assert rec["weight"] == spec.weight and rec["formula_text"] and rec["rationale"]
    assert doc["aggregation"]["default"] == config.aggregation
    assert doc["missing_data"]["min_share_available"] == 0.5 and "50%" in doc["missing_data"]["rule"]
    assert [c["max"] for c in doc["classes"]] == [2.0, 3.5, 5.0, 6.5, None]
    assert doc["uncertainty"]["draws"] == config.draws
    departures = doc["indicators"][0]
    assert departures["formula_text"] == (
        "(migrants_departed + 1 × migrants_departed[channel = irregular]) ÷ population (census 2019) × 1,000"
    )
    assert methodology(cfg)["indicators"][1]["key"] == "h2"


# -- properties ----------------------------------------------------------------------------------------------
RISK_UP = [k for k, _, d, _, _ in FIXTURE_INDICATORS if d == 1]
value = st.one_of(st.floats(min_value=0, max_value=1e4, allow_nan=False), st.just(NAN))


@st.composite
def fixture_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=2, max_value=7))
    provinces_ = tuple(f"P{i}" for i in range(n))
    values = {key: tuple(draw(st.lists(value, min_size=n, max_size=n))) for key, *_ in FIXTURE_INDICATORS}
    return raw_frame(values, provinces_)


PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(frame=fixture_frames(), data=st.data())
def test_raising_a_risk_indicator_never_lowers_the_score(
    cfg: RiskConfig, frame: pd.DataFrame, data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(RISK_UP))
    rows = frame.index[(frame["key"] == key) & frame["raw"].notna()]
    assume(len(rows) > 0)
    row = data.draw(st.sampled_from(list(rows)))
    bump = data.draw(st.floats(min_value=1e-3, max_value=1e4))
    raised = frame.copy()
    raised.loc[row, "raw"] += bump
    prov = frame.loc[row, "province"]
    for aggregation in ("geometric", "arithmetic"):
        before = by_province(compute_index(frame, cfg, aggregation=aggregation).scores).loc[prov]
        after = by_province(compute_index(raised, cfg, aggregation=aggregation).scores).loc[prov]
        assert before["reliability"] == after["reliability"]
        if not math.isnan(before["score"]):
            assert after["score"] >= before["score"] - 1e-9
            assert after[cfg.indicator(key).dimension] >= before[cfg.indicator(key).dimension] - 1e-9


@PROPS
@given(
    frame=fixture_frames(),
    weights=st.lists(st.floats(min_value=0.01, max_value=100), min_size=12, max_size=12),
)
def test_scores_stay_within_0_and_10(cfg: RiskConfig, frame: pd.DataFrame, weights: list[float]) -> None:
    dw = dict(zip(DIMENSION_KEYS, weights[:3], strict=True))
    iw = dict(zip(cfg.indicator_keys, weights[3:], strict=True))
    for aggregation in ("geometric", "arithmetic"):
        scores = compute_index(
            frame, cfg, dimension_weights=dw, indicator_weights=iw, aggregation=aggregation
        ).scores
        for col in ("score", *DIMENSION_KEYS):
            vals = scores[col].dropna()
            assert ((vals >= 0) & (vals <= 10)).all()
        assert scores["score"].isna().eq(scores["reliability"].eq("insufficient")).all()
    geo = by_province(compute_index(frame, cfg, dimension_weights=dw, indicator_weights=iw).scores)["score"]
    ari = by_province(
        compute_index(frame, cfg, dimension_weights=dw, indicator_weights=iw, aggregation="arithmetic").scores
    )["score"]
    ari = ari.reindex(geo.index)
    assert (geo[geo.notna()] <= ari[geo.notna()] + 1e-9).all()  # AM ≥ GM on d + 1


@PROPS
@given(
    frame=fixture_frames(),
    scale=st.floats(min_value=1e-3, max_value=1e3),
    iscale=st.floats(min_value=1e-3, max_value=1e3),
    aggregation=st.sampled_from(["geometric", "arithmetic"]),
)
def test_equal_weights_in_any_scale_give_the_same_result(
    cfg: RiskConfig, frame: pd.DataFrame, scale: float, iscale: float, aggregation: str
) -> None:
    base = compute_index(frame, cfg, aggregation=aggregation).scores  # type: ignore[arg-type]
    scaled = compute_index(
        frame,
        cfg,
        aggregation=aggregation,  # type: ignore[arg-type]
        dimension_weights=dict.fromkeys(DIMENSION_KEYS, scale),
        indicator_weights=dict.fromkeys(cfg.indicator_keys, iscale),
    ).scores
    assert base["province"].tolist() == scaled["province"].tolist()
    for col in ("score", *DIMENSION_KEYS):
        np.testing.assert_allclose(
            base[col].to_numpy(float), scaled[col].to_numpy(float), rtol=1e-9, atol=1e-9
        )
    assert base["rank"].equals(scaled["rank"])
    assert base["reliability"].tolist() == scaled["reliability"].tolist()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=fixture_frames())
def test_rank_range_brackets(cfg: RiskConfig, frame: pd.DataFrame) -> None:
    scores = by_province(compute_index(frame, cfg).scores)
    spread = by_province(rank_uncertainty(frame, cfg, draws=50))
    scored = scores["score"].notna()
    spread = spread.reindex(scores.index)
    assert spread["rank_p05"].isna().eq(~scored).all()
    ok = spread[scored]
    assert (ok["rank_p05"] <= ok["rank_p95"]).all()
    assert (ok["rank_p05"] >= 1).all() and (ok["rank_p95"] <= int(scored.sum())).all()
    fixed = by_province(rank_uncertainty(frame, cfg, spread=0.0, draws=3)).reindex(scores.index)
    assert (fixed.loc[scored, "rank_p05"] == scores.loc[scored, "rank"]).all()
    assert (fixed.loc[scored, "rank_p95"] == scores.loc[scored, "rank"]).all()


def test_rank_uncertainty_is_reproducible_and_fast() -> None:
    codes = tuple(f"{i:02d}" for i in range(1, 26))
    config = load_risk_config()
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        [
            {"province": p, "key": k, "raw": float(rng.gamma(2, 5))}
            for k in config.indicator_keys
            for p in codes
        ]
    )
    t0 = time.perf_counter()
    first = rank_uncertainty(frame, config, draws=300)
    assert time.perf_counter() - t0 < 1.0
    assert first.equals(rank_uncertainty(frame, config, draws=300))
    scores = compute_index(frame, config).scores.set_index("province")
    ranges = first.set_index("province").reindex(scores.index)
    inside = (ranges["rank_p05"] <= scores["rank"]) & (scores["rank"] <= ranges["rank_p95"])
    assert inside.mean() >= 0.8  # the central ranks mostly lie inside the range


# -- on the demo store ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(demo_db: str) -> Iterator[Store]:
    store = open_store(demo_db)  # same configuration as the app fixtures that share this file
    yield store
    store.close()


def test_window() -> None:
    assert risk_window(dt.date(2026, 9, 17), 12) == (dt.date(2025, 10, 1), dt.date(2026, 9, 1))
    assert risk_window(dt.date(2026, 1, 1), 1) == (dt.date(2026, 1, 1), dt.date(2026, 1, 1))
    for bad in (0, 121, 1.5, True):
        with pytest.raises(ValueError, match="months"):
            risk_window(dt.date(2026, 1, 1), bad)  # type: ignore[arg-type]


def test_raw_indicators_on_demo(demo: Store) -> None:
    config = load_risk_config()
    end = default_period_end(demo, config)
    assert end == dt.date(2026, 9, 1)
    raw = raw_indicators(demo, period_end=end, months=12, config=config)
    assert list(raw.columns) == ["province", "key", "raw", "period_start", "period_end"]
    assert len(raw) == 25 * len(config.indicators)
    table = raw.pivot(index="province", columns="key", values="raw")
    # Static flag from the gazetteer.
    tha = {p.code for p in provinces() if "THA" in p.border}
    assert set(table.index[table["land_border_thailand"] == 1.0]) == tha
    # The rate matches the dashboard's own rate per 100,000.
    start = dt.date(2025, 10, 1)
    totals = province_totals(demo, Filters("victims_identified", start=start, end=end)).set_index("province")
    np.testing.assert_allclose(
        table["victims_per_100k"], totals["rate_100k"].reindex(table.index), rtol=1e-12
    )
    # Foreign victims of forced criminality: 0 (not missing) where victims were reported but none matched.
    reported = totals["value"].notna()
    assert table.loc[reported[reported].index, "foreign_forced_criminality_per_100k"].notna().all()
    assert (table["foreign_forced_criminality_per_100k"] == 0).any()
    frame = aggregate(
        demo,
        Filters(
            "victims_identified", start=start, end=end, where={"exploitation_type": ("forced_criminality",)}
        ),
        ["province", "nationality"],
    )
    foreign = (
        frame[(frame["nationality"] != "KHM") & (frame["nationality"] != "")]
        .groupby("province")["value"]
        .sum()
    )
    pop = totals["population"]
    np.testing.assert_allclose(
        table.loc[foreign.index, "foreign_forced_criminality_per_100k"],
        foreign / pop[foreign.index] * 1e5,
        rtol=1e-12,
    )
    # Livelihood gap: only where households at risk are known (the livelihood provinces), never 0-filled.
    known = set(table.index[table["livelihood_gap"].notna()])
    assert known == set(livelihood_codes())
    assert ((table["livelihood_gap"].dropna() >= 0) & (table["livelihood_gap"].dropna() <= 100)).all()
    # Stocks carry the month of the figure used: the 2011 Commune Database.
    periods = raw[raw["key"] == "adults_abroad_2011"].dropna(subset=["raw"])
    assert (periods["period_end"] == pd.Timestamp("2011-01-01")).all()
    flows = raw[(raw["key"] == "victims_per_100k") & raw["raw"].notna()]
    assert (flows["period_start"] >= pd.Timestamp(start)).all() and (
        flows["period_end"] <= pd.Timestamp(end)
    ).all()
    assert raw.loc[raw["key"] == "land_border_thailand", "period_start"].isna().all()


def test_risk_table_on_demo(demo: Store) -> None:
    t0 = time.perf_counter()
    scores, components = risk_table(demo)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.5  # ~0.2 s on a laptop; generous for CI
    assert len(scores) == 25 and len(components) == 25 * len(load_risk_config().indicators)
    assert scores.attrs["period_end"] == dt.date(2026, 9, 1) and scores.attrs["months"] == 12
    assert scores.attrs["aggregation"] == "geometric"
    scored = scores.dropna(subset=["score"])
    assert len(scored) >= 20
    assert scored["rank"].tolist() == sorted(scored["rank"].tolist())
    assert (scored["rank_p05"] <= scored["rank_p95"]).all()
    assert set(scores["reliability"]) <= {"full", "partial", "insufficient"}
    assert (scores.loc[scores["reliability"] == "full", "missing_indicators"] == "").all()
    # Arithmetic never below geometric.
    ari, _ = risk_table(demo, aggregation="arithmetic")
    merged = scores.merge(ari, on="province", suffixes=("_g", "_a")).dropna(subset=["score_g"])
    assert (merged["score_g"] <= merged["score_a"] + 1e-9).all()
    # A period before any data: nothing is scored, and nothing fails.
    empty, _ = risk_table(demo, period_end=dt.date(2005, 1, 1))
    assert empty["score"].isna().all() and (empty["reliability"] == "insufficient").all()
