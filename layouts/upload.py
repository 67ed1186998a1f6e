"""Import tab component tree: file drop zone, replace option, progress, problems, summary, confirm and undo.

What a visitor may do is decided by ``callbacks/upload.py`` on the server at every request; ``signed_in``
only chooses what shows before that callback's first answer, so an anonymous visitor never sees the form.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids
from data.ingest import max_import_bytes

ACCEPT = ".csv,.xlsx,.parquet"
SIGN_IN_TEXT = "Sign in as a partner to import data."
NO_USERS_TEXT = ("Importing needs a partner account and none is configured: an administrator adds one with "
                 "ctip user add NAME --role partner.")
UNDO_NOTE = ("Undo removes every row the most recent import wrote. Values that import overwrote with "
             "“Replace existing values” are not brought back: import the earlier file again for that.")


def size_text(n: int) -> str:
    """``20 MB``, ``1.5 MB``, ``300 KB`` or ``512 bytes``."""
    mb, kb = 1024 * 1024, 1024
    if n >= mb:
        return f"{n // mb} MB" if n % mb == 0 else f"{n / mb:.1f} MB"
    if n >= kb:
        return f"{n // kb} KB" if n % kb == 0 else f"{n / kb:.1f} KB"
    return f"{n} bytes"


def import_limit() -> int | None:
    """The import size limit in bytes (``CTIP_IMPORT_MAX_BYTES``), or ``None`` when the setting is invalid (the
    server then refuses uploads and says why)."""
    try:
        return max_import_bytes()
    except ValueError:
        return None


def sign_in_notice(users_configured: bool = True) -> list | str:
    """What an anonymous visitor sees in place of the form (with no users configured, nobody can sign in)."""
    if not users_configured:
        return NO_USERS_TEXT
    return [SIGN_IN_TEXT, " ", html.A("Sign in", href="/auth/login?next=%2F%3Fview%3Dimport")]


def upload_tab(max_bytes: int | None = None, *, signed_in: bool = False, users_configured: bool = True) -> html.Div:
    """The Import data tab; ``max_bytes`` defaults to :func:`import_limit` (the browser refuses bigger files)."""
    limit = max_bytes if max_bytes is not None else import_limit()
    limit_text = f"at most {size_text(limit)}" if limit else "size limit not configured"
    drop_zone = dcc.Upload(
        id=ids.IMPORT_UPLOAD,
        accept=ACCEPT,
        max_size=limit or -1,
        multiple=False,
        children=html.Div([
            html.Strong("Drag a file here or click to choose one"),
            html.Div(f"CSV, XLSX or Parquet in the long form of the import template · {limit_text}",
                     className="ctip-note"),
        ]),
        style={"border": "2px dashed #8a99a8", "borderRadius": ".5rem", "padding": "1.2rem", "textAlign": "center",
               "cursor": "pointer", "background": "#fafbfc"},
        style_reject={"borderColor": "#b00020", "background": "#fff1f1"},
    )
    results = html.Div([
        html.Div(id=ids.IMPORT_STATUS, role="status", **{"aria-live": "polite"}),
        html.Div(id=ids.IMPORT_SUMMARY),
        html.Div(id=ids.IMPORT_PROBLEMS, className="ctip-table", style={"maxHeight": "28rem", "overflowY": "auto"}),
        dbc.Button("Import", id=ids.IMPORT_CONFIRM, color="primary", disabled=True, className="mt-2"),
    ])
    progress = html.Div([html.Span(className="spinner-border spinner-border-sm me-2", role="presentation"),
                         "Working on the file… a large one can take a minute."], className="ctip-note p-3", role="status")
    form = html.Div(id=ids.IMPORT_FORM, hidden=not signed_in, children=[
        html.P("Import a partner file with the same checks as ctip import: every problem is listed with its row and "
               "column, and nothing is written until you confirm a file without problems.", className="ctip-note"),
        drop_zone,
        html.Div(id=ids.IMPORT_CLIENT_NOTE, role="alert", className="text-danger mt-1"),
        dbc.Checkbox(id=ids.IMPORT_REPLACE, value=False, className="mt-2",
                     label="Replace existing values (rows already in the store for the same indicator, province, "
                           "period and breakdown are overwritten)"),
        dcc.Loading(results, id=ids.IMPORT_LOADING, custom_spinner=progress, delay_show=150, show_initially=False),
        dcc.Store(id=ids.IMPORT_TOKEN),
        dcc.Store(id=ids.IMPORT_WRITTEN),
        dcc.Store(id=ids.IMPORT_UNDO_TARGET),
        html.H3("Recent imports", className="h5 mt-4"),
        html.P(UNDO_NOTE, className="ctip-note"),
        dcc.ConfirmDialogProvider(
            dbc.Button("Undo last import", id=ids.IMPORT_UNDO_BUTTON, color="danger", outline=True, size="sm",
                       disabled=True),
            id=ids.IMPORT_UNDO,
            message="Remove every row of the most recent import?",
        ),
        html.Div(id=ids.IMPORT_BATCHES, className="ctip-table mt-2"),
    ])
    return html.Div([
        html.H2("Import data", className="h4"),
        html.Div([] if signed_in else sign_in_notice(users_configured), id=ids.IMPORT_GATE, role="status", className="mb-2"),
        form,
    ])
