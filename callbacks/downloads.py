"""Downloads of the current view: the state -> dashboard.exports -> a file in the browser."""

from __future__ import annotations

from dash import Input, Output, State, ctx, dcc, no_update

from dashboard import exports, ids
from dashboard.state import parse_search

EXPORTERS = {
    ids.DOWNLOAD_CSV: exports.export_csv,
    ids.DOWNLOAD_XLSX: exports.export_xlsx,
    ids.DOWNLOAD_GEOJSON: exports.export_geojson,
}


def register(app, services) -> None:  # noqa: ANN001
    """Register the download callback."""

    @app.callback(
        Output(ids.DOWNLOAD, "data"),
        Input(ids.DOWNLOAD_CSV, "n_clicks"),
        Input(ids.DOWNLOAD_XLSX, "n_clicks"),
        Input(ids.DOWNLOAD_GEOJSON, "n_clicks"),
        State(ids.STATE, "data"),
        prevent_initial_call=True,
    )
    def on_download(_csv, _xlsx, _geojson, query):  # noqa: ANN001, ANN202
        """Button -> the same tables the screen shows, as CSV, XLSX or GeoJSON."""
        exporter = EXPORTERS.get(ctx.triggered_id)
        if exporter is None:
            return no_update
        filename, content, _mimetype = exporter(services.store(), parse_search(query))
        return dcc.send_bytes(content, filename)
