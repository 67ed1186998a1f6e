"""The ``ctip`` command line: store set-up, imports, templates, demo data and the server."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from dashboard.settings import Settings


def _open(settings: Settings):  # noqa: ANN202 - returns data.store.Store
    from data.maintenance import ensure_reference
    from data.store import open_store

    store = open_store(settings.database_url)
    ensure_reference(store)
    return store


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    """Create the schema and load reference data; seed demo data when the store is empty and asked to."""
    from data.maintenance import is_empty, load_demo

    store = _open(settings)
    if args.seed_demo_if_empty and is_empty(store):
        n = load_demo(store)
        print(f"store was empty: loaded {n} synthetic demo rows (source 'synthetic-demo')")
    print(f"store ready: {settings.database_url}")
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """Validate and import a partner file."""
    from data.ingest import ImportRejected, format_problems, import_file

    store = _open(settings)
    try:
        result = import_file(store, args.file, dry_run=args.dry_run, replace=args.replace, sheet=args.sheet)
    except ImportRejected as exc:
        print(f"{exc.path}: {len(exc.problems)} problem(s) — nothing was imported. Fix them and import again:", file=sys.stderr)
        print(format_problems(exc.problems), file=sys.stderr)
        return 1
    summary = result.summary()
    verb = "would import" if args.dry_run else "imported"
    print(f"{verb} {summary['rows']} rows ({summary['rows_written']} written) — indicators: {', '.join(summary['indicators'])}; "
          f"provinces: {len(summary['provinces'])}; periods {summary['periods'][0]} – {summary['periods'][1]}; "
          f"batch {summary['batch_id'] or '-'}")
    return 0


def cmd_template(args: argparse.Namespace, settings: Settings) -> int:
    """Write the XLSX import template with its data dictionary."""
    from data.template import write_template

    path = write_template(args.out)
    print(f"template written to {path}")
    return 0


def cmd_info(args: argparse.Namespace, settings: Settings) -> int:
    """Describe the store's contents."""
    from data.maintenance import store_info

    info = store_info(_open(settings))
    if args.json:
        print(json.dumps(info, sort_keys=True, indent=2))
    else:
        print(f"backend: {info['backend']}  rows: {info['rows']}  periods: {info['period_range'][0]} – {info['period_range'][1]}")
        print(f"provinces covered: {len(info['provinces'])}  demo data loaded: {'yes' if info['demo_loaded'] else 'no'}")
        for ind, n in info["rows_per_indicator"].items():
            print(f"  {ind:32s} {n:>8d}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Load (or remove) the synthetic demonstration data."""
    from data.maintenance import load_demo, remove_demo

    store = _open(settings)
    if args.remove:
        print(f"removed {remove_demo(store)} synthetic rows; real data untouched")
    else:
        print(f"loaded {load_demo(store, args.seed)} synthetic demo rows (seed {args.seed}, source 'synthetic-demo')")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the dashboard with the development server."""
    from dashboard.app import create_app

    app = create_app(settings)
    app.run(host=args.host or settings.host, port=args.port or settings.port, debug=settings.debug)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and ``--help``)."""
    from data.demo import DEFAULT_SEED

    parser = argparse.ArgumentParser(prog="ctip", description="CTIP Atlas: counter-trafficking data for Cambodia. "
                                     "The store is chosen by CTIP_DATABASE_URL (default: a DuckDB file under var/).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create the store schema and load reference data")
    p.add_argument("--seed-demo-if-empty", action="store_true", help="load demo data when the store has no observations")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("import", help="validate and import a CSV/XLSX/Parquet file in the canonical long form")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="validate only; write nothing")
    p.add_argument("--replace", action="store_true", help="overwrite observations whose keys are already stored")
    p.add_argument("--sheet", help="XLSX sheet to read (default: the first)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("template", help="write an XLSX import template with a data dictionary")
    p.add_argument("--out", default="ctip-import-template.xlsx", help="output file (default: %(default)s)")
    p.set_defaults(func=cmd_template)

    p = sub.add_parser("info", help="describe the store's contents")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="load the seeded synthetic demonstration data (or remove it)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default: %(default)s)")
    p.add_argument("--remove", action="store_true", help="remove only the synthetic rows")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="run the dashboard (development server; production: gunicorn app:server)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctip`` console script."""
    from data.store import StoreError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args, Settings.from_env()) or 0)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
