"""The dashboard plus one no-op callback, the baseline of ``bench_callbacks.py``.

``gunicorn benchmarks.bench_app:server`` (run from the repository root).

The no-op reads a ``dcc.Store`` and writes its value unchanged to another one: what a callback costs
when the callback itself does nothing (Flask, Dash's dispatch, JSON, HTTP).
"""

from __future__ import annotations

from dash import Input, Output, dcc, html

from dashboard.app import create_app

NOOP_IN = "bench-noop-in"
NOOP_OUT = "bench-noop-out"

app = create_app()
_serve_layout = app.layout  # a function (evaluated per page load)


def bench_layout() -> html.Div:
    """The app's layout plus the two stores of the no-op callback."""
    original = _serve_layout() if callable(_serve_layout) else _serve_layout
    return html.Div([original, dcc.Store(id=NOOP_IN, data=0), dcc.Store(id=NOOP_OUT)])


app.layout = bench_layout


@app.callback(Output(NOOP_OUT, "data"), Input(NOOP_IN, "data"), prevent_initial_call=True)
def bench_noop(value):  # noqa: ANN001, ANN201
    """Return the input unchanged."""
    return value


server = app.server
