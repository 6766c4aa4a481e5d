"""`inventory keys create|list|revoke` and the embedded first run's demo key."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from uuid import UUID

from .principal import ALL_SCOPES

DEMO_KEY_FILE = "demo-api-key"


def _engine(args: argparse.Namespace):
    from ..db import migrate
    from ..db.engine import create_sync_engine

    url, server = args.open_database()
    migrate.upgrade(url)
    return create_sync_engine(url), server


def cmd_create(args: argparse.Namespace) -> int:
    from . import keys

    scopes = [s.strip() for s in args.scopes.replace(" ", ",").split(",") if s.strip()]
    engine, _server = _engine(args)
    try:
        with engine.begin() as conn:
            key_id, key = keys.create_key(conn, args.tenant, scopes, args.name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"Created API key {key_id} for tenant {args.tenant} with scopes {' '.join(sorted(scopes))}.")
    print("The key is shown only this once; store it now:")
    print(key)
    print("Send it as the header:  Authorization: Bearer <key>")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ..db import api_keys

    engine, _server = _engine(args)
    try:
        with engine.connect() as conn:
            rows = api_keys.list_keys(conn, args.tenant)
    finally:
        engine.dispose()
    print(f"{'id':36}  {'tenant':36}  {'status':8}  {'created':19}  scopes / name")
    for r in rows:
        status = "revoked" if r.revoked_at else "active"
        print(f"{r.id}  {r.tenant_id}  {status:8}  {r.created_at:%Y-%m-%d %H:%M:%S}  "
              f"{r.scopes} / {r.name}")
    print(f"{len(rows)} key(s)")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from ..db import api_keys

    engine, _server = _engine(args)
    try:
        with engine.begin() as conn:
            changed = api_keys.revoke_key(conn, args.id)
    finally:
        engine.dispose()
    if not changed:
        print(f"no active key with id {args.id} (see `inventory keys list`)", file=sys.stderr)
        return 1
    print(f"Revoked key {args.id}; servers stop accepting it within "
          "INVENTORY_AUTH_CACHE_SECONDS (default 5 s).")
    return 0


def add_commands(sub, common, open_database) -> None:
    """`open_database()` (from the CLI's settings) -> (database URL, embedded
    server to keep alive or None)."""
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key (its secret is shown once)")
    common(create)
    create.add_argument("--tenant", type=UUID, required=True, help="tenant UUID")
    create.add_argument("--scopes", required=True,
                        help=f"comma-separated, among: {', '.join(ALL_SCOPES)}")
    create.add_argument("--name", required=True, help="what the key is for")
    create.set_defaults(func=cmd_create, open_database=open_database)
    listing = ksub.add_parser("list", help="list keys (never their secrets)")
    common(listing)
    listing.add_argument("--tenant", type=UUID, help="only this tenant's keys")
    listing.set_defaults(func=cmd_list, open_database=open_database)
    revoke = ksub.add_parser("revoke", help="revoke a key by id")
    common(revoke)
    revoke.add_argument("id", type=UUID)
    revoke.set_defaults(func=cmd_revoke, open_database=open_database)


def ensure_demo_key(url: str, data_dir: Path, tenant_id: UUID) -> str:
    """The embedded run's demo key (all scopes, demo tenant): created on first
    start and kept in <data dir>/demo-api-key (mode 600) so later starts can show
    it again; the database holds only its hash."""
    from ..db.engine import create_sync_engine
    from . import keys

    path = data_dir / DEMO_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            _, key = keys.create_key(conn, tenant_id, list(ALL_SCOPES), "embedded demo key")
    finally:
        engine.dispose()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


def demo_banner(key: str, url: str) -> str:
    return (
        f"Demo API key (all scopes, demo tenant; also in the data folder's {DEMO_KEY_FILE}):\n"
        f"  {key}\n"
        f"Send it with every request as the header  Authorization: Bearer <key>\n"
        f"  (in GraphiQL: the Headers tab, {{\"Authorization\": \"Bearer <key>\"}}), e.g.\n"
        f"  curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
        f"       -d '{{\"query\": \"{{ items(first: 5) {{ nodes {{ sku }} }} }}\"}}' {url}\n"
        f"Live dashboard: {url.rsplit('/graphql', 1)[0]}/dashboard#key={key}\n"
    )
