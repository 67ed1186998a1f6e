"""Callback adapters, one module per feature: decode inputs -> query -> figure."""

from __future__ import annotations


def register_all(app, services) -> None:  # noqa: ANN001
    """Register every callback of the dashboard on ``app``."""
    from callbacks import downloads, risk, state, upload, views

    state.register(app, services)
    views.register(app, services)
    risk.register(app, services)
    downloads.register(app, services)
    upload.register(app, services)
