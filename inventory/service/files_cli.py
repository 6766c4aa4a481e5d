"""`inventory import levels FILE.csv [--dry-run]` and
`inventory export levels|movements [--since T] [--format csv|jsonl]`."""
from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Callable
from uuid import UUID

from ..db.engine import create_database
from ..db.seed import stderr_progress
from .context import DEFAULT_TENANT_ID, Ctx
from . import exports, imports

# () -> (database URL, embedded server to keep alive or None), from the CLI's settings
OpenDatabase = Callable[[], "tuple[str, object | None]"]


def add_parsers(sub, common, open_database: OpenDatabase) -> None:
    imp = sub.add_parser(
        "import", help="import stock levels from CSV (sku,locationCode,onHand|delta,reason); "
                       "re-running the same file changes nothing")
    common(imp)
    imp.add_argument("what", choices=["levels"])
    imp.add_argument("file", type=Path)
    imp.add_argument("--dry-run", action="store_true",
                     help="check every row and report problems; write nothing")
    imp.add_argument("--tenant", type=UUID, default=DEFAULT_TENANT_ID)
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=cmd_import, open_database=open_database)

    exp = sub.add_parser("export", help="stream stock levels or the ledger to stdout")
    common(exp)
    exp.add_argument("what", choices=list(exports.WHAT))
    exp.add_argument("--since", help="movements at or after this ISO 8601 time (with zone)")
    exp.add_argument("--format", choices=list(exports.FORMATS), default="csv")
    exp.add_argument("--tenant", type=UUID, default=DEFAULT_TENANT_ID)
    exp.set_defaults(func=cmd_export, open_database=open_database)


def _ctx(url: str, tenant: UUID) -> Ctx:
    return Ctx(db=create_database(url), tenant_id=tenant, actor="cli:import")


def cmd_import(args: argparse.Namespace) -> int:
    if not args.file.is_file():
        print(f"{args.file}: no such file", file=sys.stderr)
        return 2
    url, _server = args.open_database()
    progress = None if args.quiet else (
        lambda done, total: stderr_progress("rows", done, total))
    try:
        return asyncio.run(_import(_ctx(url, args.tenant), args.file, args.dry_run, progress))
    except imports.BadFile as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2


async def _import(ctx: Ctx, path: Path, dry_run: bool, progress) -> int:
    try:
        checked = await imports.check(ctx, path, progress)
        for problem in checked.problems:
            print(problem)
        if checked.problems:
            print(f"{len(checked.problems)} of {checked.rows} rows refused; nothing imported.",
                  file=sys.stderr)
            return 1
        if dry_run:
            print(f"{checked.rows} rows checked, all valid (dry run: nothing written).")
            return 0
        done = await imports.apply(ctx, path, progress)
        for problem in done.problems:
            print(problem)
        print(f"{done.applied} of {done.rows} rows applied (or applied by an earlier run of "
              f"this file); {len(done.problems)} refused.")
        return 1 if done.problems else 0
    finally:
        await ctx.db.dispose()


def cmd_export(args: argparse.Namespace) -> int:
    try:
        since = exports.parse_since(args.since)
    except exports.BadExport as error:
        print(error, file=sys.stderr)
        return 2
    url, _server = args.open_database()
    return asyncio.run(_export(_ctx(url, args.tenant), args.what, args.format, since))


async def _export(ctx: Ctx, what: str, fmt: str, since) -> int:
    out = sys.stdout.buffer
    try:
        async for chunk in exports.encoded(ctx, what, fmt, since):
            out.write(chunk)
        out.flush()
        return 0
    except BrokenPipeError:  # `inventory export ... | head`
        return 0
    finally:
        await ctx.db.dispose()
