"""Who is looking: whether the current request may see unsuppressed sensitive counts."""

from __future__ import annotations

from data.catalog import indicator as get_indicator


def viewer_is_partner() -> bool:
    """True for a signed-in partner or admin (session or API token); anonymous viewers are not."""
    try:
        from dashboard.auth import current_identity
    except ImportError:  # the auth module is optional in stripped-down deployments
        return False
    try:
        return current_identity().role in ("partner", "admin")
    except RuntimeError:  # outside a request (CLI, tests calling functions directly)
        return False


def must_suppress(indicator_id: str) -> bool:
    """Whether ``indicator_id``'s counts must be suppressed for the current viewer."""
    ind = get_indicator(indicator_id)
    if ind.aggregation == "ratio":
        sensitive = ind.sensitive or get_indicator(ind.numerator).sensitive or get_indicator(ind.denominator).sensitive
    else:
        sensitive = ind.sensitive
    return bool(sensitive) and not viewer_is_partner()


def protect_risk_components(components):  # noqa: ANN001, ANN201 - pandas.DataFrame in and out
    """Withhold the raw and normalised values of risk components built from sensitive counts (victims)
    from viewers without the partner role: a victims-per-100,000 rate times the population is a count.
    Scores and dimension scores stay: they combine many indicators. Adds a ``withheld`` column."""
    from data.risk import load_risk_config

    out = components.copy()
    if viewer_is_partner():
        out["withheld"] = False
        return out
    sensitive = {spec.key for spec in load_risk_config().indicators
                 if any(get_indicator(src).sensitive for src in spec.sources)}
    mask = out["key"].isin(sensitive)
    out["withheld"] = mask
    for col in ("raw", "transformed", "capped", "normalised"):
        if col in out:
            out.loc[mask, col] = float("nan")
    return out
