"""Import tab: a partner's file -> data.ingest dry run -> problems or summary -> confirmed write; undo the last import.

Every action checks the partner role on the server (the layout only chooses what shows first). A checked file
waits on the server, never in the browser: :class:`PendingFiles` keeps its bytes in this process's memory
under a random token for 15 minutes (a few files at most) and the page holds only the token. With several
server processes (gunicorn workers) a confirmation that reaches another process finds nothing and says so:
the partner uploads the file again.

After a write or an undo, :func:`refresh_data` makes the next query re-read the data version, so the
dashboard shows the new data at once rather than within ``Services.version_ttl`` seconds.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, ctx, html, no_update

from dashboard import ids
from dashboard.auth import current_identity, is_partner, users_configured
from data.catalog import UnknownIndicatorError
from data.catalog import indicator as get_indicator
from data.ingest import ImportRejected, ImportResult, Problem, import_file, max_import_bytes, province_label
from data.store import Store
from layouts.upload import SIGN_IN_TEXT, UNDO_NOTE, sign_in_notice, size_text

log = logging.getLogger(__name__)

PENDING_TTL_SECONDS = 15 * 60
PENDING_MAX_FILES = 4
MAX_PROBLEMS_SHOWN = 500
RECENT_BATCHES = 10
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# -- files waiting for confirmation --------------------------------------------------------------------------
@dataclass
class PendingFile:
    """A checked upload: who sent it, its name and bytes, and the replace option it was checked with."""

    owner: str
    filename: str
    data: bytes = field(repr=False)
    replace: bool
    created: float


class PendingFiles:
    """Uploads waiting for confirmation, in this process's memory: token -> :class:`PendingFile`.

    Entries expire ``ttl`` seconds after upload; beyond ``max_files`` the oldest goes first, so memory
    stays under ``max_files`` times the size limit. A token only works for the user who uploaded the file.
    """

    def __init__(self, ttl: float = PENDING_TTL_SECONDS, max_files: int = PENDING_MAX_FILES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_files = max_files
        self.clock = clock
        self._files: OrderedDict[str, PendingFile] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, owner: str, filename: str, data: bytes, replace: bool) -> tuple[str, PendingFile]:
        """Keep a file; return its token and entry."""
        token = secrets.token_urlsafe(24)
        entry = PendingFile(owner, filename, data, replace, self.clock())
        with self._lock:
            self._prune()
            self._files[token] = entry
            while len(self._files) > self.max_files:
                self._files.popitem(last=False)
        return token, entry

    def get(self, token: Any, owner: str) -> PendingFile | None:
        """The file kept under ``token`` for ``owner`` (``None`` when unknown, expired or someone else's)."""
        if not isinstance(token, str):
            return None
        with self._lock:
            self._prune()
            entry = self._files.get(token)
        return entry if entry is not None and entry.owner == owner else None

    def discard(self, token: Any) -> None:
        """Forget a file (after its import, or when another file replaces it)."""
        if isinstance(token, str):
            with self._lock:
                self._files.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            self._prune()
            return len(self._files)

    def _prune(self) -> None:
        cutoff = self.clock() - self.ttl
        for token in [t for t, f in self._files.items() if f.created <= cutoff]:
            del self._files[token]


#: Per process (see the module docstring).
PENDING = PendingFiles()


# -- what the tab shows -----------------------------------------------------------------------------------------
@dataclass
class ImportPanel:
    """The import tab's outputs; a field left at ``no_update`` keeps what the page shows."""

    status: Any = no_update
    summary: Any = no_update
    problems: Any = no_update
    confirm_disabled: Any = no_update
    confirm_label: Any = no_update
    token: Any = no_update
    written: Any = no_update

    def outputs(self) -> tuple:
        """In the order of the registered callback's outputs."""
        return (self.status, self.summary, self.problems, self.confirm_disabled, self.confirm_label, self.token,
                self.written)


def _alert(children: Any, color: str) -> dbc.Alert:
    return dbc.Alert(children, color=color, className="mt-2 mb-2")


def _message(status: Any, color: str = "danger", **fields: Any) -> ImportPanel:
    """A message that also clears the previous check (nothing left to confirm)."""
    defaults = {"summary": None, "problems": None, "confirm_disabled": True, "confirm_label": "Import", "token": None}
    return ImportPanel(status=_alert(status, color), **{**defaults, **fields})


def _refused() -> ImportPanel:
    return _message(SIGN_IN_TEXT, "warning")


def _owner() -> str:
    return current_identity().username or ""


def clean_filename(filename: Any) -> str:
    """The base name of an uploaded file as the browser reported it (no folders, no control characters)."""
    name = _CONTROL.sub("", Path(str(filename or "").replace("\\", "/")).name).strip()
    return name[-200:] or "upload"


def refresh_data(services: Any) -> None:
    """Make the next query re-read the data version (``Services.data_version`` otherwise trusts its last
    reading for ``version_ttl`` seconds), so cached figures built before a write are not served after it."""
    services._version = (0.0, "")


def _ui_text(message: str) -> str:
    """Ingest messages name the command-line option; the page has a checkbox instead."""
    return message.replace("use --replace", "tick “Replace existing values”")


def problems_table(problems: list[Problem]) -> html.Div:
    """Row, column, value and message of the first :data:`MAX_PROBLEMS_SHOWN` problems (text only: Dash escapes it)."""
    shown = problems[:MAX_PROBLEMS_SHOWN]
    rows = [html.Tr([html.Td("" if p.row is None else p.row, className="text-end"), html.Td(p.column or ""),
                     html.Td(html.Code((p.value or "")[:120]) if p.value else ""), html.Td(_ui_text(p.message))])
            for p in shown]
    caption = (f"The first {len(shown):,} of {len(problems):,} problems" if len(problems) > len(shown)
               else f"{len(problems):,} problem{'s' * (len(problems) != 1)}")
    return dbc.Table([html.Caption(caption),
                      html.Thead(html.Tr([html.Th("Row"), html.Th("Column"), html.Th("Value"), html.Th("Problem")])),
                      html.Tbody(rows)], bordered=True, size="sm", className="ctip-table mb-0")


def _indicator_label(code: str) -> str:
    try:
        return f"{get_indicator(code).name_en} ({code})"
    except UnknownIndicatorError:
        return code


def _month(text: str | None) -> str:
    return "" if not text else f"{dt.date.fromisoformat(text + '-01'):%b %Y}"


def summary_card(result: ImportResult) -> html.Div:
    """What a checked file would write: rows, indicators, provinces, periods."""
    summary = result.summary()
    first, last = summary["periods"]
    periods = _month(first) if first == last else f"{_month(first)} – {_month(last)}"
    provinces = [province_label(p) for p in summary["provinces"]]
    items = [
        ("Rows", f"{summary['rows']:,}"),
        ("Indicators", "; ".join(_indicator_label(i) for i in summary["indicators"])),
        (f"Provinces ({len(provinces)})", "; ".join(provinces)),
        ("Periods", periods),
    ]
    return html.Div([
        html.H4("Ready to import", className="h6"),
        html.Dl([part for label, value in items for part in (html.Dt(label), html.Dd(value))], className="mb-1"),
        html.P("Rows already stored with exactly these values are skipped.", className="ctip-note mb-0"),
    ], className="ctip-panel mt-2")


def _rejected(name: str, exc: ImportRejected, token: Any) -> ImportPanel:
    """The problems of a refused file (its bytes stay kept, so the replace option can check it again)."""
    count = len(exc.problems)
    status = f"{name}: {count:,} problem{'s' * (count != 1)}; nothing was written. Fix the file and upload it again"
    if any("--replace" in p.message for p in exc.problems):
        status += ", or tick “Replace existing values” to overwrite the rows already in the store"
    status += "."
    return ImportPanel(status=_alert(status, "danger"), summary=None, problems=problems_table(exc.problems),
                       confirm_disabled=True, confirm_label="Import", token=token)


def _check(services: Any, entry: PendingFile, token: str) -> ImportPanel:
    """Dry run of a kept file -> summary and an enabled confirm button, or the problems."""
    try:
        result = import_file(services.store(), entry.filename, dry_run=True, replace=entry.replace, data=entry.data)
    except ImportRejected as exc:
        return _rejected(entry.filename, exc, token)
    except Exception:  # noqa: BLE001 - a reader bug must not leave the partner without an answer
        log.exception("checking upload %r failed", entry.filename)
        return _message(f"{entry.filename} could not be read; the server log has the details.", token=token)
    status = (f"{entry.filename}: no problems found in {_rows(result.rows)}. Check the summary, then import. "
              "Nothing has been written yet.")
    return ImportPanel(status=_alert(status, "success"), summary=summary_card(result), problems=None,
                       confirm_disabled=False, confirm_label=f"Import {_rows(result.rows)}", token=token)


def _rows(n: int) -> str:
    return f"{n:,} row{'s' * (n != 1)}"


def _limit() -> tuple[int | None, str | None]:
    try:
        return max_import_bytes(), None
    except ValueError as exc:
        return None, str(exc)


def _too_big(name: str, size: int, limit: int) -> str:
    mb = 1024 * 1024
    shown = f"{size / mb:.1f} MB" if size >= mb else size_text(size)
    return (f"{name}: the file is {shown}; the limit is {size_text(limit)} — split it by year or province and "
            "import the parts.")


# -- actions --------------------------------------------------------------------------------------------------
def on_upload(services: Any, contents: Any, filename: Any, replace: bool, previous_token: Any = None, *,
              pending: PendingFiles = PENDING) -> ImportPanel:
    """Upload -> partner check -> size limit -> keep the bytes on the server -> dry run (problems or summary)."""
    if not is_partner():
        return _refused()
    pending.discard(previous_token)
    name = clean_filename(filename)
    limit, error = _limit()
    if limit is None:
        return _message(f"{name}: uploads are switched off until the server's setting is fixed: {error}")
    if not isinstance(contents, str) or "," not in contents:
        return _message(f"{name}: the browser sent no file content; choose the file again.")
    payload = contents.split(",", 1)[1]
    estimated = len(payload) * 3 // 4 - payload[-2:].count("=")
    if estimated > limit:  # refused before decoding: the decoded copy would be as large as the file
        return _message(_too_big(name, estimated, limit))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return _message(f"{name}: the upload arrived garbled; choose the file again.")
    token, entry = pending.put(_owner(), name, data, bool(replace))
    return _check(services, entry, token)


def on_replace(services: Any, token: Any, replace: bool, *, pending: PendingFiles = PENDING) -> ImportPanel | None:
    """Replace option changed -> check the kept file again with it (``None``: no file is waiting)."""
    if not is_partner():
        return _refused()
    entry = pending.get(token, _owner())
    if entry is None:
        return None
    entry.replace = bool(replace)
    return _check(services, entry, token)


def on_confirm(services: Any, token: Any, *, pending: PendingFiles = PENDING) -> ImportPanel:
    """Confirm -> partner check -> import the kept file (validated again, written in one transaction)."""
    if not is_partner():
        return _refused()
    entry = pending.get(token, _owner())
    if entry is None:
        return _message(f"The checked file is no longer on the server (files wait {PENDING_TTL_SECONDS // 60} minutes, "
                        "in one server process); upload it again.", "warning")
    try:
        result = import_file(services.store(), entry.filename, replace=entry.replace, data=entry.data)
    except ImportRejected as exc:  # the store changed since the check (another import), or a write conflict
        return _rejected(entry.filename, exc, token)
    except Exception:  # noqa: BLE001 - the write is one transaction: nothing was written
        log.exception("importing upload %r failed", entry.filename)
        return _message(f"{entry.filename} could not be imported (nothing was written); the server log has the details.",
                        token=token)
    pending.discard(token)
    if result.batch_id is None:
        return _message(f"{entry.filename}: nothing to write — all {_rows(result.rows)} are already stored with the "
                        "same values.", "info")
    refresh_data(services)
    log.info("user %r imported %s: %d rows as batch %s", _owner(), entry.filename, result.rows_written, result.batch_id)
    skipped = result.rows - result.rows_written
    note = f" ({_rows(skipped)} already stored unchanged)" if skipped else ""
    return _message(f"{entry.filename}: imported {_rows(result.rows_written)}{note} as batch {result.batch_id}. "
                    "The dashboard now includes them; reload the page to see new months in the period lists.",
                    "success", written=result.batch_id)


def latest_imports(store: Store, limit: int = RECENT_BATCHES) -> pd.DataFrame:
    """The most recent import batches, newest first (batch id, file, rows, time)."""
    return store.query(
        "SELECT batch_id, file_name, rows_written, imported_at FROM batches WHERE kind = 'import' "
        f"ORDER BY imported_at DESC, batch_id DESC LIMIT {int(limit)}"
    )


def on_undo(services: Any, expected_batch: Any) -> ImportPanel:
    """Undo -> partner check -> delete the newest import batch (the one the page offered) in one transaction."""
    if not is_partner():
        return ImportPanel(status=_alert(SIGN_IN_TEXT, "warning"))
    store = services.store()
    latest = latest_imports(store, 1)
    if latest.empty:
        return ImportPanel(status=_alert("There is no import to undo.", "info"), written="undo:none")
    batch = latest.iloc[0]
    if batch["batch_id"] != expected_batch:
        return ImportPanel(status=_alert(
            f"Nothing was removed: the most recent import is now {batch['file_name']} (batch {batch['batch_id']}), "
            "not the one this page showed. Check the list and undo again if that is the one to remove.", "warning"),
            written=f"undo:stale:{batch['batch_id']}")
    removed = store.delete_where("batch_id = ?", [batch["batch_id"]])
    refresh_data(services)
    log.info("user %r undid import batch %s (%s, %d rows)", _owner(), batch["batch_id"], batch["file_name"], removed)
    return ImportPanel(status=_alert(f"Removed the last import, {batch['file_name']}: {_rows(removed)} "
                                     f"(batch {batch['batch_id']}).", "success"),
                       written=f"undo:{batch['batch_id']}")


def _when(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"


def batches_table(batches: pd.DataFrame) -> Any:
    """Recent import batches as a table (or a sentence when there are none)."""
    if batches.empty:
        return html.P("No files imported yet.", className="ctip-note")
    rows = [html.Tr([html.Td(html.Code(b.batch_id)), html.Td(b.file_name), html.Td(f"{int(b.rows_written):,}",
                     className="text-end"), html.Td(_when(b.imported_at))]) for b in batches.itertuples()]
    return dbc.Table([html.Thead(html.Tr([html.Th("Batch"), html.Th("File"), html.Th("Rows"), html.Th("Imported")])),
                      html.Tbody(rows)], bordered=True, size="sm", className="ctip-table")


def update_import_access(services: Any) -> tuple:
    """Identity -> what the tab shows: (gate text, form hidden, recent batches, undo disabled, undo question,
    batch undo would remove). Decided here, on the server, at every tab change and after every write."""
    if not is_partner():
        return sign_in_notice(users_configured()), True, None, True, "Remove the most recent import?", None
    batches = latest_imports(services.store())
    if batches.empty:
        return [], False, batches_table(batches), True, "Remove the most recent import?", None
    last = batches.iloc[0]
    question = (f"Remove the most recent import, {last['file_name']} ({int(last['rows_written']):,} rows, "
                f"{_when(last['imported_at'])}, batch {last['batch_id']})? {UNDO_NOTE}")
    return [], False, batches_table(batches), False, question, last["batch_id"]


# -- registration ---------------------------------------------------------------------------------------------
#: Shows a message when the browser refuses a file (too big or not an accepted type): the upload component
#: then sends nothing, so no server callback would run. Installed once per page; runs in the capture phase.
REFUSAL_SCRIPT = """
function(maxSize) {
    window._ctipImportMax = maxSize;
    if (window._ctipImportGuard) { return window.dash_clientside.no_update; }
    window._ctipImportGuard = true;
    var uploadId = %(upload)s, noteId = %(note)s, accept = %(accept)s;
    function sizeText(n) {
        var mb = 1024 * 1024;
        if (n >= mb) { return (n %% mb === 0 ? n / mb : (n / mb).toFixed(1)) + ' MB'; }
        if (n >= 1024) { return (n %% 1024 === 0 ? n / 1024 : (n / 1024).toFixed(1)) + ' KB'; }
        return n + ' bytes';
    }
    function check(files) {
        var limit = window._ctipImportMax, message = null;
        for (var i = 0; i < files.length && !message; i++) {
            var f = files[i], name = f.name.toLowerCase();
            if (!accept.some(function (s) { return name.endsWith(s); })) {
                message = f.name + ': only ' + accept.join(', ') + ' files can be imported.';
            } else if (limit > 0 && f.size > limit) {
                message = f.name + ': the file is ' + (f.size >= 1024 * 1024 ? (f.size / 1024 / 1024).toFixed(1) +
                    ' MB' : sizeText(f.size)) + '; the limit is ' + sizeText(limit) +
                    ' \\u2014 split it by year or province and import the parts.';
            }
        }
        window.dash_clientside.set_props(noteId, {children: message});
    }
    function inUpload(target) {
        var root = document.getElementById(uploadId);
        return root && target && root.contains(target);
    }
    document.addEventListener('change', function (e) {
        if (inUpload(e.target) && e.target.files) { check(e.target.files); }
    }, true);
    document.addEventListener('drop', function (e) {
        if (inUpload(e.target) && e.dataTransfer && e.dataTransfer.files) { check(e.dataTransfer.files); }
    }, true);
    return window.dash_clientside.no_update;
}
"""


def register(app, services) -> None:  # noqa: ANN001
    """Register the import callbacks."""
    import json

    from layouts.upload import ACCEPT

    app.clientside_callback(
        REFUSAL_SCRIPT % {"upload": json.dumps(ids.IMPORT_UPLOAD), "note": json.dumps(ids.IMPORT_CLIENT_NOTE),
                          "accept": json.dumps(ACCEPT.split(","))},
        Output(ids.IMPORT_CLIENT_NOTE, "children"),
        Input(ids.IMPORT_UPLOAD, "max_size"),
    )

    @app.callback(
        Output(ids.IMPORT_GATE, "children"),
        Output(ids.IMPORT_FORM, "hidden"),
        Output(ids.IMPORT_BATCHES, "children"),
        Output(ids.IMPORT_UNDO_BUTTON, "disabled"),
        Output(ids.IMPORT_UNDO, "message"),
        Output(ids.IMPORT_UNDO_TARGET, "data"),
        Input(ids.VIEW_TABS, "active_tab"),
        Input(ids.IMPORT_WRITTEN, "data"),
    )
    def update_import_tab(_tab, _written):  # noqa: ANN001, ANN202
        """Identity + batches table -> the form or a sign-in notice, recent imports, the undo target."""
        return update_import_access(services)

    @app.callback(
        Output(ids.IMPORT_STATUS, "children"),
        Output(ids.IMPORT_SUMMARY, "children"),
        Output(ids.IMPORT_PROBLEMS, "children"),
        Output(ids.IMPORT_CONFIRM, "disabled"),
        Output(ids.IMPORT_CONFIRM, "children"),
        Output(ids.IMPORT_TOKEN, "data"),
        Output(ids.IMPORT_WRITTEN, "data"),
        Output(ids.IMPORT_UPLOAD, "contents"),
        Input(ids.IMPORT_UPLOAD, "contents"),
        Input(ids.IMPORT_REPLACE, "value"),
        Input(ids.IMPORT_CONFIRM, "n_clicks"),
        Input(ids.IMPORT_UNDO, "submit_n_clicks"),
        State(ids.IMPORT_UPLOAD, "filename"),
        State(ids.IMPORT_TOKEN, "data"),
        State(ids.IMPORT_UNDO_TARGET, "data"),
        prevent_initial_call=True,
    )
    def on_import_event(contents, replace, _confirm, _undo, filename, token, undo_target):  # noqa: ANN001, ANN202
        """Upload / replace option / confirm / undo -> data.ingest (dry run or write) or batch delete -> messages.
        The upload's contents are cleared once the server has them, so the browser stops holding the file."""
        trigger = ctx.triggered_id
        panel: ImportPanel | None = None
        if trigger == ids.IMPORT_UPLOAD and contents:
            panel = on_upload(services, contents, filename, bool(replace), token)
        elif trigger == ids.IMPORT_REPLACE:
            panel = on_replace(services, token, bool(replace))
        elif trigger == ids.IMPORT_CONFIRM:
            panel = on_confirm(services, token)
        elif trigger == ids.IMPORT_UNDO:
            panel = on_undo(services, undo_target)
        if panel is None:
            return (no_update,) * 8
        return (*panel.outputs(), None if trigger == ids.IMPORT_UPLOAD else no_update)
