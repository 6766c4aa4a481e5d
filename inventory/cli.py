"""`inventory` command: serve, migrate, seed, verify, chaos, cluster, keys, schema,
import, export."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .config import ENV_HELP, Settings
from .observability import logs as log_setup
from .service.context import DEFAULT_TENANT_ID

DEMO_ITEMS = 50
DEMO_LOCATIONS = 4


def _env_epilog() -> str:
    lines = ["environment variables:"]
    lines += [f"  {name}\n      {text}" for name, text in ENV_HELP.items()]
    return "\n".join(lines)


def _database_url(settings: Settings, quiet: bool = False) -> tuple[str, object | None]:
    """The configured URL, or an embedded server started under the data folder."""
    if settings.database_url:
        return settings.database_url, None
    from .db import embedded

    if not quiet:
        print(f"Starting embedded PostgreSQL in {settings.data_dir.resolve()} ...", flush=True)
    url, server = embedded.start(settings.data_dir)
    return url, server


def _open_database() -> tuple[str, object | None]:
    """For the key and verify commands: the configured database (an embedded one
    started without a message when no URL is set) and its server, if embedded."""
    return _database_url(Settings.from_env(), quiet=True)


def _apply_options(args: argparse.Namespace) -> None:
    if getattr(args, "data_dir", None):
        os.environ["INVENTORY_DATA_DIR"] = str(args.data_dir)
    if getattr(args, "database_url", None):
        os.environ["INVENTORY_DATABASE_URL"] = args.database_url


def cmd_migrate(args: argparse.Namespace) -> int:
    from .db import migrate

    settings = Settings.from_env()
    url, _server = _database_url(settings)
    migrate.upgrade(url)
    print(f"Database at migration {migrate.head_revision()} (head).")
    return 0


def _seed(url: str, n_items: int, n_locations: int, only_if_empty: bool) -> None:
    from .db import seed
    from .db.engine import create_sync_engine

    engine = create_sync_engine(url)
    try:
        if only_if_empty:
            with engine.connect() as conn:
                if seed.has_data(conn, DEFAULT_TENANT_ID):
                    return
            print(f"Seeding demo data ({n_items} items, {n_locations} locations) ...", flush=True)
        summary = seed.seed(engine.connect, DEFAULT_TENANT_ID, n_items, n_locations)
        print(f"Seeded {summary['items']} items x {summary['locations']} locations "
              f"({summary['levels_written']} new stock levels).", flush=True)
    finally:
        engine.dispose()


def cmd_seed(args: argparse.Namespace) -> int:
    from .db import migrate

    if args.items < 0 or args.locations < 1:
        print("--items must be >= 0 and --locations >= 1", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    url, _server = _database_url(settings)
    migrate.upgrade(url)
    _seed(url, args.items, args.locations, only_if_empty=False)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .db import migrate

    settings = Settings.from_env()
    if settings.trusted_documents is not None:  # a bad allow-list stops here, not per worker
        from .web.trusted import TrustedDocumentsError, load

        try:
            load(settings.trusted_documents)
        except TrustedDocumentsError as error:
            print(error, file=sys.stderr)
            return 2
    embedded = not settings.database_url
    url, server = _database_url(settings)
    # Worker processes read their settings from the environment.
    os.environ["INVENTORY_DATABASE_URL"] = url
    migrate.upgrade(url)
    seed_demo = settings.seed_demo if settings.seed_demo is not None else embedded
    if seed_demo:
        _seed(url, DEMO_ITEMS, DEMO_LOCATIONS, only_if_empty=True)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"\nInventory service: GraphiQL at http://{shown_host}:{args.port}/graphql "
          f"({args.workers} worker{'s' if args.workers != 1 else ''})\n", flush=True)
    if embedded:
        from .auth.cli import demo_banner, ensure_demo_key

        demo_key = ensure_demo_key(url, settings.data_dir, DEFAULT_TENANT_ID)
        print(demo_banner(demo_key, f"http://{shown_host}:{args.port}/graphql"), flush=True)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turning them
    # into SystemExit lets atexit stop the embedded database with the service.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from .observability import prepare_workers

    prepare_workers(args.workers, bool(settings.metrics_multiproc_dir))  # metrics shared by the workers
    uvicorn.run(
        "inventory.web.app:serve_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level=settings.log_level.lower(),
        # text or JSON, with trace ids
        log_config=log_setup.config(settings.log_level, settings.log_format),
        timeout_graceful_shutdown=10,
        # Longer than clients' idle expiry (httpx 5 s, like uvicorn's default): with
        # equal timeouts a client reuses a connection the server is just closing.
        timeout_keep_alive=75,
        # Subscription frames are small JSON (a stock change is about 250 bytes):
        # compressing each one for each socket cost more CPU than sending it, and
        # a compression context per socket (docs/live-stock.md).
        ws_per_message_deflate=False,
        # uvicorn's httptools protocol, refusing at the parser what the load
        # limiter would shed (inventory/web/overload.py).
        http="inventory.web.overload:EarlyShedding" if args.early_shedding else "httptools",
        # A larger WebSocket message closes its socket with 1009 (message too big).
        ws_max_size=settings.ws_max_message_bytes,
    )
    del server  # keeps the embedded server alive until uvicorn returns
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """Prints the SDL, or writes it to a file unless that would publish a breaking
    change the deprecation rule does not allow (inventory/schema/published.py)."""
    from .resolvers.root import sdl
    from .schema import published

    current = sdl()
    if args.output is None:
        sys.stdout.write(current)
        return 0
    if args.output.exists():
        comparison = published.compare(args.output.read_text(), current)
        if comparison.unintended:
            print(f"Not written: the schema has breaking changes against {args.output}:\n"
                  f"{comparison.report()}\nKeep the old field and deprecate it with a removal "
                  "date (@deprecated(reason: \"Use X instead. Removal after YYYY-MM-DD.\")); "
                  "see README, 'Schema changes and deprecation'.", file=sys.stderr)
            return 1
        if comparison.report():
            print(comparison.report())
    args.output.write_text(current)
    print(f"Wrote {args.output}.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inventory",
        description="Distributed inventory service (GraphQL over serializable SQL).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_env_epilog(),
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path,
                       help="embedded database folder (INVENTORY_DATA_DIR)")
        p.add_argument("--database-url", help="database URL (INVENTORY_DATABASE_URL)")

    serve = sub.add_parser(
        "serve", help="run the API (embedded database when no URL is set)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_env_epilog(),
    )
    common(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="server processes")
    serve.add_argument("--no-early-shedding", dest="early_shedding", action="store_false",
                       help="refuse overload only in the ASGI limiter, not at the HTTP parser "
                            "(uvicorn's plain httptools protocol; for comparison)")
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="apply database migrations up to head")
    common(mig)
    mig.set_defaults(func=cmd_migrate)

    seed = sub.add_parser("seed", help="add items, locations and stock (with ledger rows)")
    common(seed)
    seed.add_argument("--items", type=int, default=1000)
    seed.add_argument("--locations", type=int, default=4)
    seed.set_defaults(func=cmd_seed)

    from .db import audit_cli as verify
    verify.add_parser(sub, common, _open_database)
    from .chaos import runner as chaos
    chaos.add_parser(sub)
    from .cluster import cli as cluster_cli
    cluster_cli.add_parser(sub)
    from .auth.cli import add_commands as add_key_commands

    add_key_commands(sub, common, _open_database)
    from .service.files_cli import add_parsers as add_file_commands

    add_file_commands(sub, common, _open_database)

    schema = sub.add_parser(
        "schema", help="print the GraphQL schema (SDL); --output writes it (schema.graphql)")
    schema.add_argument("--output", type=Path,
                        help="write the SDL to this file, refusing breaking changes against "
                             "the file's schema unless deprecated and past their removal date")
    schema.set_defaults(func=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _apply_options(args)
    settings = Settings.from_env()
    log_setup.configure(settings.log_level, settings.log_format)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
