"""Latency and payload of the main filter-change callbacks, against the running app over real HTTP.

    python benchmarks/bench_callbacks.py [--requests N] [--warmup W] [--port P]      (also: make bench)

1. creates a temporary DuckDB store with the demo data (``ctip init --seed-demo-if-empty``);
2. serves ``benchmarks.bench_app:server`` (the app plus one no-op callback) with gunicorn, one worker,
   one thread, on 127.0.0.1, and waits for ``/healthz``;
3. builds exact ``/_dash-update-component`` bodies from ``/_dash-dependencies`` and ``/_dash-layout``
   for the no-op, ``update_state`` (the filter change itself) and the Overview view callbacks, cycling
   through eight realistic filter states (so one cached answer cannot flatter the result); the query
   strings the view callbacks receive are the ones ``update_state`` wrote for those controls;
4. warms up, then sends N requests per callback, interleaved round-robin, and prints p50 / p95, the
   response size (raw JSON and gzip on the wire) and the ratios to the no-op measured in the same run,
   with the targets of the issue (map update within 3x the no-op, under 5 KB) as PASS / FAIL.

It reports and never fails on a missed target: the exit status is 0 unless the store or the server
cannot be set up (1). The client is the standard library (``http.client``, one connection, reopened
only when the server closes it). ``benchmarks/profile_map.py`` shows where ``update_map`` spends its time.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
APP_TARGET = "benchmarks.bench_app:server"

# Component ids (dashboard/ids.py, benchmarks/bench_app.py), literal so the client never imports the app.
STATE = "app-state-store"
URL = "app-url"
NOOP_IN, NOOP_OUT = "bench-noop-in", "bench-noop-out"

TARGETS = ["01", "02", "03", "09", "12", "14", "17", "18"]
Y2023 = {"start": "2023-01", "end": "2023-12"}
Y2024 = {"start": "2024-01", "end": "2024-12"}
# Eight filter states a user clicks through: indicator, provinces, window, measure, map classes.
SCENARIOS: list[dict[str, Any]] = [
    {"indicator": "victims_identified", "provinces": [], **Y2024},
    {"indicator": "victims_identified", "provinces": TARGETS, **Y2024},
    {"indicator": "migrants_departed", "provinces": TARGETS, **Y2024},
    {"indicator": "migrants_departed", "provinces": ["17"], **Y2023, "measure": "rate"},
    {"indicator": "households_supported", "provinces": [], **Y2023, "classes": "quantile"},
    {"indicator": "victims_identified", "provinces": ["17"], **Y2023,
     "measure": "rate", "classes": "quantile"},
    {"indicator": "migrants_departed", "provinces": [], **Y2024, "measure": "rate", "classes": "quantile"},
    {"indicator": "households_supported", "provinces": TARGETS, **Y2024},
]
# Scenario key -> the control property (changed one per step, as a user would).
CONTROLS = {"indicator": "filter-indicator-dropdown.value", "provinces": "filter-provinces-dropdown.value",
            "start": "filter-start-dropdown.value", "end": "filter-end-dropdown.value",
            "measure": "filter-measure-radio.value", "classes": "filter-classes-radio.value"}
CONTROL_DEFAULTS = {"view-tabs.active_tab": "overview", "filter-granularity-radio.value": "month",
                    "filter-measure-radio.value": "count", "filter-classes-radio.value": "continuous",
                    "filter-top-input.value": 15, "filter-minflow-input.value": 0}

# View callbacks fed by the state store: name -> one of its outputs.
VIEW_CALLBACKS = {
    "update_map": "overview-map-graph.figure",
    "update_series": "overview-series-graph.figure",
    "update_kpis": "overview-kpi-row.children",
    "update_overview": "overview-rank-table.children",
    "update_map_note": "overview-map-note.children",
}
MAP_LATENCY_FACTOR = 3.0
MAP_BYTES_LIMIT = 5_000  # "under 5 KB", read strictly: 1 KB = 1000 B, raw (uncompressed) JSON
GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


class BenchError(RuntimeError):
    """The store or the server could not be set up (exit status 1)."""


# --- HTTP ---------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    wire: bytes  # the body as sent (compressed when Content-Encoding says so)
    elapsed: float  # seconds from sending the request to the last body byte (incl. a reconnect)

    @property
    def raw(self) -> bytes:
        return gzip.decompress(self.wire) if self.headers.get("content-encoding") == "gzip" else self.wire

    def json(self) -> Any:
        return json.loads(self.raw)


class Client:
    """One HTTP/1.1 connection, reopened (inside the timed request) only when the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=120)
        self.requests = 0
        self.reopened = 0

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            reopen = self.conn.sock is None and self.requests > 0
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()  # closed while idle: retry once on a new connection
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - t0
            self.requests += 1
            self.reopened += reopen
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, elapsed)
        raise AssertionError("unreachable")

    def post(self, body: bytes, headers: dict[str, str] = GZIP) -> Reply:
        return self.request("POST", "/_dash-update-component", body, headers)

    def close(self) -> None:
        self.conn.close()


# --- Dash request bodies --------------------------------------------------------------------------------


def decode_id(cid: Any) -> Any:
    """Pattern-matching ids come JSON-encoded in /_dash-dependencies."""
    return json.loads(cid) if isinstance(cid, str) and cid.startswith("{") else cid


def split_output(output: str) -> list[tuple[Any, str]]:
    """A dependency's output string (``..a.x...b.y..`` when multi-output) -> [(id, property)]."""
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    return [(decode_id(cid), prop) for cid, prop in (part.rsplit(".", 1) for part in parts)]


def prop_key(cid: Any, prop: str) -> str:
    """``id.property`` as Dash writes it in ``changedPropIds`` and multi-output strings."""
    if isinstance(cid, dict):
        cid = json.dumps(cid, sort_keys=True, separators=(",", ":"))
    return f"{cid}.{prop}"


def layout_components(node: Any, found: list[dict] | None = None) -> list[dict]:
    """Every component of a /_dash-layout tree, in layout order."""
    found = [] if found is None else found
    if isinstance(node, list):
        for item in node:
            layout_components(item, found)
    elif isinstance(node, dict) and "props" in node and "type" in node:
        found.append(node)
        for value in node["props"].values():
            layout_components(value, found)
    return found


def is_wildcard(cid: Any) -> bool:
    return isinstance(cid, dict) and any(isinstance(v, list) for v in cid.values())


def matches(pattern: dict, cid: Any) -> bool:
    return (isinstance(cid, dict) and set(cid) == set(pattern)
            and all(isinstance(v, list) or cid[k] == v for k, v in pattern.items()))


def build_body(dep: dict, layout_ids: list[Any], values: dict[str, Any], changed: list[str]) -> bytes:
    """The body the renderer posts for callback ``dep``, with ``values`` keyed by ``id.property``."""

    def item(cid: Any, prop: str, with_value: bool) -> dict:
        entry = {"id": cid, "property": prop}
        if with_value:
            entry["value"] = values.get(prop_key(cid, prop))
        return entry

    def expand(cid: Any, prop: str, with_value: bool) -> Any:
        cid = decode_id(cid)
        if is_wildcard(cid):  # ALL: one entry per matching component, in layout order
            return [item(c, prop, with_value) for c in layout_ids if matches(cid, c)]
        return item(cid, prop, with_value)

    outputs = [expand(cid, prop, False) for cid, prop in split_output(dep["output"])]
    body = {
        "output": dep["output"],
        "outputs": outputs if dep["output"].startswith("..") else outputs[0],
        "inputs": [expand(i["id"], i["property"], True) for i in dep["inputs"]],
        "changedPropIds": changed,
        "state": [expand(s["id"], s["property"], True) for s in dep["state"]],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def find_dependency(deps: list[dict], output: str) -> dict:
    hits = [d for d in deps if output in [prop_key(c, p) for c, p in split_output(d["output"])]]
    if len(hits) != 1:
        raise BenchError(f"expected one callback with output {output!r} in /_dash-dependencies, "
                         f"found {len(hits)}")
    return hits[0]


@dataclass
class Callback:
    name: str
    bodies: list[bytes]
    counter: int = 0
    ms: list[float] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    wire: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def next_body(self) -> bytes:
        self.counter += 1
        return self.bodies[(self.counter - 1) % len(self.bodies)]

    def record(self, reply: Reply) -> None:
        self.ms.append(reply.elapsed * 1000)
        self.raw.append(len(reply.raw))
        self.wire.append(len(reply.wire))
        self.statuses[reply.status] = self.statuses.get(reply.status, 0) + 1
        problem = None
        if reply.status != 200:
            problem = f"HTTP {reply.status}: {reply.raw[:200]!r}"
        elif self.name == "update_map" and (b"geojson" in reply.raw
                                            or b"__dash_patch_update" not in reply.raw):
            problem = "update_map did not answer a Patch without geometry"
        if problem and len(self.problems) < 3:
            self.problems.append(problem)

    def p(self, q: float) -> float:
        return percentile(self.ms, q)


def build_callbacks(client: Client, deps: list[dict], layout: Any) -> tuple[list[Callback], list[str]]:
    """Bodies of every measured callback, and the query string of each scenario (as update_state wrote it)."""
    components = layout_components(layout)
    layout_ids = [c["props"]["id"] for c in components if "id" in c["props"]]
    initial = {prop_key(c["props"]["id"], p): v for c in components if "id" in c["props"]
               for p, v in c["props"].items() if p != "children"}

    noop_dep = find_dependency(deps, f"{NOOP_OUT}.data")
    noop = Callback("no-op", [build_body(noop_dep, layout_ids, {f"{NOOP_IN}.data": i}, [f"{NOOP_IN}.data"])
                              for i in range(16)])

    state_dep = find_dependency(deps, f"{STATE}.data")
    if not any(i["id"] == URL and i["property"] == "search" for i in state_dep["inputs"]):
        raise BenchError(f"the callback writing {STATE}.data does not read the URL: not update_state")
    controls = []
    for scenario in SCENARIOS:
        values = {**initial, **CONTROL_DEFAULTS}
        values.update({CONTROLS[k]: v for k, v in scenario.items()})
        controls.append(values)
    state_bodies, queries, search = [], [], ""
    for i, values in enumerate(controls):
        # Triggered by the first control that differs from the previous state (cyclically).
        changed = [p for p in CONTROLS.values() if values.get(p) != controls[i - 1].get(p)][:1]
        body = build_body(state_dep, layout_ids, {**values, f"{URL}.search": search}, changed)
        reply = client.post(body)
        if reply.status != 200:
            raise BenchError(f"update_state answered {reply.status}: {reply.raw[:500]!r}")
        query = reply.json()["response"][STATE]["data"]
        scenario = SCENARIOS[i]
        if f"indicator={scenario['indicator']}" not in query or f"start={scenario['start']}" not in query:
            raise BenchError(f"update_state wrote {query!r} for the controls {scenario}")
        state_bodies.append(body)
        queries.append(query)
        search = query
    callbacks = [noop, Callback("update_state", state_bodies)]
    for name, output in VIEW_CALLBACKS.items():
        dep = find_dependency(deps, output)
        callbacks.append(Callback(name, [build_body(dep, layout_ids, {f"{STATE}.data": q}, [f"{STATE}.data"])
                                         for q in queries]))
    return callbacks, queries


def measure(client: Client, callbacks: list[Callback], requests: int, warmup: int) -> dict[str, list[int]]:
    """Warm up, then ``requests`` rounds of one request per callback, the order rotating every round.

    Returns the raw size of each distinct response per callback (fetched once without compression).
    """
    for _ in range(warmup):
        for cb in callbacks:
            reply = client.post(cb.next_body())
            if reply.status not in (200, 204):
                raise BenchError(f"{cb.name} answered {reply.status} during warm-up: {reply.raw[:500]!r}")
    identity = {cb.name: [len(client.post(body, IDENTITY).wire) for body in cb.bodies] for cb in callbacks}
    for cb in callbacks:
        cb.counter = 0
    n = len(callbacks)
    for r in range(requests):
        for k in range(n):
            cb = callbacks[(r + k) % n]  # no callback always goes first or always follows the same one
            cb.record(client.post(cb.next_body()))
    return identity


# --- server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..1)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def seed_store(env: dict[str, str]) -> dict:
    """``ctip init --seed-demo-if-empty`` on the temporary store, then ``ctip info --json``."""
    ctip = str(BIN / "ctip")
    init = subprocess.run([ctip, "init", "--seed-demo-if-empty"], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    if init.returncode != 0:
        raise BenchError(f"ctip init failed ({init.returncode}):\n{init.stdout}{init.stderr}")
    info = subprocess.run([ctip, "info", "--json"], env=env, cwd=ROOT, capture_output=True, text=True)
    return json.loads(info.stdout) if info.returncode == 0 else {}


def start_server(env: dict[str, str], port: int, log: Path, worker_class: str) -> subprocess.Popen:
    gunicorn = BIN / "gunicorn"
    cmd = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
    cmd += ["-w", "1", "--threads", "1", "-b", f"127.0.0.1:{port}",
            "--log-level", "warning", "--timeout", "120"]
    if worker_class:
        cmd += ["--worker-class", worker_class]
    with log.open("wb") as out:
        return subprocess.Popen([*cmd, APP_TARGET], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(proc: subprocess.Popen, port: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited with status {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            if resp.status == 200:
                return json.loads(body)
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"/healthz did not answer 200 within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- report ---------------------------------------------------------------------------------------------


def report(run: dict, callbacks: list[Callback], queries: list[str], identity: dict[str, list[int]]) -> None:
    args, client, info, health = run["args"], run["client"], run["info"], run["health"]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = " · load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = ""
    geo_raw = client.request("GET", "/api/v1/provinces.geojson", headers=IDENTITY)
    geo_gz = client.request("GET", "/api/v1/provinces.geojson", headers=GZIP)
    by_name = {cb.name: cb for cb in callbacks}
    noop, cmap = by_name["no-op"], by_name["update_map"]
    base50, base95 = noop.p(0.5), noop.p(0.95)
    rows = info.get("rows_per_indicator", {})

    print()
    print(f"CTIP Atlas callback benchmark · {time.strftime('%Y-%m-%d %H:%M')} · "
          f"Python {platform.python_version()}")
    print(f"machine: {os.cpu_count()} cores ({usable} usable){load} · {platform.platform()}")
    print(f"server: gunicorn {APP_TARGET}, 1 worker x 1 thread ({args.worker_class or 'sync'} worker), "
          f"127.0.0.1:{run['port']}")
    print(f"store: temporary DuckDB, demo data, seeded in {run['seeded']:.1f} s · "
          f"{health.get('rows', 0):,} observation rows · "
          f"periods {' – '.join(info.get('period_range', ['?', '?']))}")
    if rows:
        print("       rows read by the scenarios: " + ", ".join(
            f"{k} {rows.get(k, 0):,}"
            for k in ("victims_identified", "migrants_departed", "households_supported", "population")))
    closed = "after every response" if client.reopened >= client.requests - 3 else f"{client.reopened} times"
    print(f"client: one HTTP/1.1 connection, Accept-Encoding: gzip, {client.requests} requests; "
          f"the server closed it {closed} (reopening is inside the timed request, for every callback alike)")
    print(f"requests: {args.warmup} warm-up + {args.requests} measured per callback, "
          f"interleaved round-robin, cycling {len(queries)} filter states (state store values):")
    for q in queries:
        print(f"    {q}")
    print()
    head = (f"{'callback':<16}{'p50 ms':>9}{'p95 ms':>9}{'raw B':>9}{'gzip B':>9}{'max raw B':>11}"
            f"{'p50/no-op':>11}{'p95/no-op':>11}  HTTP")
    print(head)
    print("-" * len(head))
    for cb in callbacks:
        status = ", ".join(f"{k} x{v}" for k, v in sorted(cb.statuses.items()))
        print(f"{cb.name:<16}{cb.p(0.5):>9.2f}{cb.p(0.95):>9.2f}{statistics.fmean(cb.raw):>9,.0f}"
              f"{statistics.fmean(cb.wire):>9,.0f}{max(cb.raw):>11,}{cb.p(0.5) / base50:>11.1f}"
              f"{cb.p(0.95) / base95:>11.1f}  {status}")
        for problem in cb.problems:
            print(f"    ! {problem}")
    print("(raw B: JSON as the server sends it without compression; gzip B: on the wire with "
          "Accept-Encoding: gzip; means over all measured requests)")
    print()
    chain = [cb for cb in callbacks if cb.name != "no-op"]
    print(f"one filter change on Overview = {' + '.join(cb.name for cb in chain)}, "
          f"served one after another by the one thread: "
          f"{sum(cb.p(0.5) for cb in chain):.1f} ms (sum of p50), "
          f"{sum(statistics.fmean(cb.wire) for cb in chain):,.0f} B gzip")
    print(f"update_map raw bytes per filter state: {', '.join(f'{b:,}' for b in identity['update_map'])}")
    print(f"/api/v1/provinces.geojson (sent once, then cached): {len(geo_raw.wire):,} B raw, "
          f"{len(geo_gz.wire):,} B gzip (HTTP {geo_raw.status}, {geo_gz.status})")
    print()

    r50, r95 = cmap.p(0.5) / base50, cmap.p(0.95) / base95
    biggest = max(max(cmap.raw), *identity["update_map"])

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print("targets (issue): map update within 3x the no-op and under 5 KB")
    print(f"  [{verdict(r50 <= MAP_LATENCY_FACTOR)}] p50 {cmap.p(0.5):.2f} ms = {r50:.1f}x the no-op's "
          f"{base50:.2f} ms (limit {MAP_LATENCY_FACTOR:g}x)")
    print(f"  [{verdict(r95 <= MAP_LATENCY_FACTOR)}] p95 {cmap.p(0.95):.2f} ms = {r95:.1f}x the no-op's "
          f"{base95:.2f} ms (limit {MAP_LATENCY_FACTOR:g}x)")
    print(f"  [{verdict(biggest < MAP_BYTES_LIMIT)}] largest response {biggest:,} B raw, "
          f"mean {statistics.fmean(cmap.wire):,.0f} B gzip on the wire (limit {MAP_BYTES_LIMIT:,} B)")
    if any(cb.problems for cb in callbacks):
        print("  some responses were wrong (see '!' above): those callbacks' numbers are not meaningful")
    if r50 > MAP_LATENCY_FACTOR:
        print("  where update_map spends its time: python benchmarks/profile_map.py")


# --- main -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200,
                        help="measured requests per callback (default 200)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up requests per callback (default 10)")
    parser.add_argument("--port", type=int, default=0, help="port for gunicorn (default: a free one)")
    parser.add_argument("--worker-class", default="", help="gunicorn worker class (default gunicorn's: sync)")
    args = parser.parse_args(argv)
    if args.requests < 2 or args.warmup < 1:
        parser.error("--requests must be at least 2 and --warmup at least 1")

    tmp = Path(tempfile.mkdtemp(prefix="ctip-bench-"))
    log = tmp / "gunicorn.log"
    env = {**os.environ, "CTIP_DATABASE_URL": f"duckdb:///{tmp / 'bench.duckdb'}"}
    proc: subprocess.Popen | None = None
    client: Client | None = None
    try:
        t0 = time.perf_counter()
        info = seed_store(env)
        seeded = time.perf_counter() - t0
        port = args.port or free_port()
        proc = start_server(env, port, log, args.worker_class)
        health = wait_healthy(proc, port)
        client = Client("127.0.0.1", port)
        deps, layout = (client.request("GET", path) for path in ("/_dash-dependencies", "/_dash-layout"))
        if deps.status != 200 or layout.status != 200:
            raise BenchError(f"/_dash-dependencies answered {deps.status}, /_dash-layout {layout.status}")
        callbacks, queries = build_callbacks(client, deps.json(), layout.json())
        identity = measure(client, callbacks, args.requests, args.warmup)
        run = {"args": args, "client": client, "info": info, "health": health, "seeded": seeded, "port": port}
        report(run, callbacks, queries, identity)
        return 0
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        if log.exists() and log.stat().st_size:
            print("--- gunicorn log (tail) ---", file=sys.stderr)
            print("\n".join(log.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.close()
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
