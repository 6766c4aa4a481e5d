"""`inventory verify`: the ledger audit from the command line."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

# () -> (database URL, embedded server to keep alive or None), from the CLI's settings
OpenDatabase = Callable[[], "tuple[str, object | None]"]


def add_parser(sub, common, open_database: OpenDatabase) -> None:
    verify = sub.add_parser(
        "verify", help="audit every stock level against the ledger; exit 1 on any discrepancy")
    common(verify)
    verify.add_argument("--page-size", type=int, default=500,
                        help="items per page (each page is one short read)")
    verify.add_argument("--quiet", action="store_true", help="print only the summary")
    verify.set_defaults(func=cmd_verify, open_database=open_database)


def cmd_verify(args: argparse.Namespace) -> int:
    from .audit import audit
    from .engine import create_sync_engine

    if args.page_size < 1:
        print("--page-size must be at least 1", file=sys.stderr)
        return 2
    url, _server = args.open_database()
    started = time.monotonic()
    last_shown = [0.0]

    def progress(report) -> None:
        now = time.monotonic()
        if not args.quiet and now - last_shown[0] >= 1.0:
            last_shown[0] = now
            print(f"  page {report.pages}: {report.items} items, {report.levels} levels, "
                  f"{report.ledger_rows} ledger rows, {len(report.discrepancies)} discrepancies",
                  flush=True)

    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            report = audit(conn, page_size=args.page_size, progress=progress)
    except Exception as error:
        print(f"audit could not run: {error}\ncheck INVENTORY_DATABASE_URL and that the "
              "database is up and migrated (`inventory migrate`)", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    for found in report.discrepancies:
        print(f"DISCREPANCY {found}")
    print(
        f"Checked {report.tenants} tenants, {report.items} items, {report.levels} stock levels, "
        f"{report.ledger_rows} ledger rows, {report.active_reservation_lines_qty} units held by "
        f"active reservations, in {report.pages} pages of up to {args.page_size} items "
        f"({time.monotonic() - started:.1f}s).\n"
        "Checks: levels = ledger sums, versions = ledger rows, no negative quantity, "
        "reserved = active reservation lines, ledger signs per kind, conservation per item, "
        "transfers net to zero.\n"
        f"ACTIVE reservations past expiry (awaiting the sweeper): "
        f"{report.overdue_active_reservations}"
    )
    if report.ok:
        print("OK: no discrepancies.")
        return 0
    print(f"FAILED: {len(report.discrepancies)} discrepancies.")
    return 1
