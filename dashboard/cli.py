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
    from dashboard.app import create_app, warm_releases

    app = create_app(settings)
    warm_releases(app)
    app.run(host=args.host or settings.host, port=args.port or settings.port, debug=settings.debug)
    return 0


# -- users and API tokens (data/users.py) ------------------------------------------------------------
def _read_password(args: argparse.Namespace) -> str:
    """The new password from stdin (``--password-stdin``) or typed twice at a hidden prompt."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ; nothing was changed")
    return first


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    """Add, remove or list the users who may sign in (partner or admin)."""
    from data.users import UserError, add_user, list_users, remove_user

    try:
        if args.action == "add":
            password = _read_password(args)
            store = _open(settings)
            add_user(store, args.username, password, args.role)
            print(f"user {args.username} added ({args.role})")
        elif args.action == "remove":
            remove_user(_open(settings), args.username)
            print(f"user {args.username} removed, with its API tokens")
        else:
            users = list_users(_open(settings))
            if not users:
                print("no users: the dashboard is read-only for everyone "
                      "(add one with `ctip user add NAME --role admin`)")
            for u in users:
                print(f"{u['username']:40s} {u['role']:8s} created {u['created_at']:%Y-%m-%d %H:%M}"
                      + ("  (disabled)" if u["disabled"] else ""))
    except (UserError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    """Create, revoke or list API tokens (a token acts with its owner's role)."""
    from data.users import UserError, create_token, list_tokens, revoke_token

    try:
        store = _open(settings)
        if args.action == "create":
            token_id, token = create_token(store, args.username, args.label)
            print(f"token {token_id} created for {args.username}. Copy it now; it cannot be shown again:")
            print(token)
        elif args.action == "revoke":
            revoke_token(store, args.token_id)
            print(f"token {args.token_id} revoked")
        else:
            for t in list_tokens(store, args.user):
                state = f"revoked {t['revoked_at']:%Y-%m-%d %H:%M}" if t["revoked_at"] else "active"
                print(f"{t['token_id']}  {t['username']:20s} {state:24s} {t['label']}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_auth_parsers(sub: argparse._SubParsersAction) -> None:
    from data.users import ROLES

    p = sub.add_parser("user", help="add, remove or list the users who may sign in")
    users = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = users.add_parser("add", help="add a user (the password is prompted for, or read from stdin)")
    q.add_argument("username")
    q.add_argument("--role", choices=ROLES, required=True)
    q.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")
    q = users.add_parser("remove", help="remove a user and its API tokens")
    q.add_argument("username")
    users.add_parser("list", help="list the users (never their password hashes)")
    p.set_defaults(func=cmd_user)

    p = sub.add_parser("token", help="create, revoke or list API tokens")
    tokens = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = tokens.add_parser("create", help="create a token for a user and print it once")
    q.add_argument("username")
    q.add_argument("--label", default="", help="where the token is used (shown in lists)")
    q = tokens.add_parser("revoke", help="revoke a token by its id")
    q.add_argument("token_id")
    q = tokens.add_parser("list", help="list tokens (never the secrets)")
    q.add_argument("--user", help="only this user's tokens")
    p.set_defaults(func=cmd_token)


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

    _add_auth_parsers(sub)
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
