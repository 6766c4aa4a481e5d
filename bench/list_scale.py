#!/usr/bin/env python3
"""List queries at 1,000 and at 1,000,000 stock levels, in one run.

    .venv/bin/python bench/list_scale.py                     # 1,000 vs 1,000,000 levels
    .venv/bin/python bench/list_scale.py --large-items 25000 # a quicker 100,000

Starts an embedded PostgreSQL in a temporary folder with two databases of the
same shape: `small` (250 items x 4 locations = 1,000 levels) and `large`
(250,000 items x 4 locations = 1,000,000 levels), each level with its RECEIVE
ledger row. The rows are written with `generate_series` in SQL (the loader of
`inventory seed` would take many minutes for a million levels), then the
statistics are refreshed as every bulk load does (`seed.refresh_statistics`).
One item in 50 has no stock at all, the rest 100 units per level, reorder point
10: the same share of low-stock items in both, so a page of them holds as many
rows in both.

One `inventory serve` per database (one worker each); every list query of the
API is sent to both in turn, one request at a time (latency, not throughput),
after a warm-up, and the median and p90 of each are printed with the ratio
large / small. Target: within 2x. Alternating the two servers spreads the
machine's drift over both; on a loaded machine read the ratios, not the times.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402  (bench/ is a folder of scripts, not a package)
    ROOT, TENANT, Server, create_bench_key, free_port, libpq, say,
)
from scratch_db import discard, load_average  # noqa: E402

QUERIES = {
    "items": ("query { items(first: 50) { nodes { sku } } }", {}),
    "items after": ('query($a: String) { items(first: 50, after: $a) { nodes { sku } } }', "mid"),
    "items skuPrefix": ('query { items(first: 50, filter: {skuPrefix: "SKU-00001"}) '
                        '{ nodes { sku } } }', {}),
    "items lowStock": ("query { items(first: 50, filter: {lowStock: true}) "
                       "{ nodes { sku } } }", {}),
    "items not lowStock": ("query { items(first: 50, filter: {lowStock: false}) "
                           "{ nodes { sku } } }", {}),
    "locations": ("query { locations(first: 50) { nodes { code } } }", {}),
    "movements": ("query { movements(first: 50) { nodes { version } } }", {}),
    "movements sku": ('query { movements(sku: "SKU-0000150", first: 50) '
                      '{ nodes { version } } }', {}),
    "movements location": ('query { movements(locationCode: "WH-02", first: 50) '
                           '{ nodes { version } } }', {}),
    "movements level": ('query { movements(sku: "SKU-0000150", locationCode: "WH-02", '
                        'first: 50) { nodes { version } } }', {}),
}

def fill_sql() -> str:
    """The load, in SQL: locations, items, a level per item and location
    (stock only in `on_hand`, every other quantity state 0) and its RECEIVE
    ledger row, for whatever states the domain has (domain/quantities.py).
    Each item is written with its `available` (the sum over its levels, as the
    ledger statements keep it) rather than updated afterwards, which would
    leave a dead entry per item in the low-stock index until a vacuum."""
    from inventory.domain.quantities import NAMES

    others = [name for name in NAMES if name != "on_hand"]
    deltas = ", ".join(f"{name}_delta, {name}_after" for name in others)
    zeros = ", ".join("0, 0" for _ in others)
    return f"""
INSERT INTO locations (tenant_id, code, name)
  SELECT %(t)s, 'WH-' || lpad(g::text, 2, '0'), 'Warehouse ' || g
  FROM generate_series(1, %(locations)s) g;
INSERT INTO items (tenant_id, sku, name, reorder_point, available)
  SELECT %(t)s, 'SKU-' || lpad(g::text, 7, '0'), 'Item ' || g, 10,
         CASE WHEN g %% 50 = 0 THEN 0 ELSE 100 * %(locations)s END
  FROM generate_series(1, %(items)s) g;
INSERT INTO stock_levels (tenant_id, item_id, location_id, on_hand, version)
  SELECT i.tenant_id, i.id, l.id,
         CASE WHEN substr(i.sku, 5)::bigint %% 50 = 0 THEN 0 ELSE 100 END, 1
  FROM items i CROSS JOIN locations l WHERE i.tenant_id = %(t)s AND l.tenant_id = %(t)s;
INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, on_hand_after,
                       {deltas}, version, reason)
  SELECT tenant_id, item_id, location_id, 'RECEIVE', on_hand, on_hand, {zeros}, 1, 'seed'
  FROM stock_levels WHERE tenant_id = %(t)s;
"""


def fill(url: str, items: int, locations: int) -> None:
    from sqlalchemy import create_engine

    from inventory.db import migrate, seed

    migrate.upgrade(url)
    with psycopg.connect(libpq(url)) as conn:
        for statement in fill_sql().split(";\n"):
            if statement.strip():
                conn.execute(statement, {"t": TENANT, "items": items, "locations": locations})
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            seed.refresh_statistics(conn)
    finally:
        engine.dispose()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-items", type=int, default=250)
    parser.add_argument("--large-items", type=int, default=250_000)
    parser.add_argument("--locations", type=int, default=4)
    parser.add_argument("--requests", type=int, default=40, help="per query and size")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    from inventory.db import embedded

    work = Path(tempfile.mkdtemp(prefix="inventory-list-scale-"))
    servers: list[Server] = []
    handle = None
    try:
        base_url, handle = embedded.start(work / "db")
        urls = {}
        with psycopg.connect(libpq(base_url), autocommit=True) as conn:
            for name in ("small", "large"):
                conn.execute(f"CREATE DATABASE list_{name}")
                urls[name] = base_url.replace("/postgres?", f"/list_{name}?", 1)
        sizes = {"small": args.small_items, "large": args.large_items}
        for name, items in sizes.items():
            started = time.monotonic()
            fill(urls[name], items, args.locations)
            say(f"{name}: {items * args.locations:,} levels written and analyzed in "
                f"{time.monotonic() - started:.0f} s")
        keys, clients = {}, {}
        for name in sizes:
            keys[name] = create_bench_key(urls[name])
            env = {**os.environ, "INVENTORY_DATABASE_URL": urls[name],
                   "INVENTORY_SEED_DEMO": "0", "INVENTORY_LOG_LEVEL": "WARNING",
                   "INVENTORY_RATE_READ": "0", "INVENTORY_RATE_WRITE": "0",
                   "INVENTORY_SWEEP_INTERVAL": "0", "INVENTORY_CHANGE_FEED": "off"}
            port = free_port()
            servers.append(Server(f"service ({name})", [
                sys.executable, "-m", "inventory.cli", "serve", "--port", str(port)],
                env, port, "/readyz", work / f"{name}.log"))
            clients[name] = httpx.Client(base_url=servers[-1].url, timeout=60, headers={
                "Authorization": f"Bearer {keys[name]}"})

        def ask(name: str, query: str, variables: dict) -> float:
            started = time.perf_counter()
            answer = clients[name].post("/graphql", json={"query": query,
                                                          "variables": variables})
            elapsed = time.perf_counter() - started
            body = answer.json()
            if answer.status_code != 200 or body.get("errors"):
                raise SystemExit(f"{name}: {query}: {answer.status_code} {body}")
            return elapsed

        # "items after": a page from the middle of the catalogue.
        from inventory.domain.ids import encode_cursor

        middle = {name: {"a": encode_cursor(f"SKU-{sizes[name] // 2:07d}")} for name in sizes}
        say(f"load average {load_average()} "
            f"on {os.cpu_count()} cores")
        print(f"\n{'query':22} {'1k levels p50 / p90 ms':>24} {'1M levels p50 / p90 ms':>24}"
              f" {'ratio p50':>10}")
        worst = 0.0
        for label, (query, variables) in QUERIES.items():
            times: dict[str, list[float]] = {"small": [], "large": []}
            for n in range(args.requests + 3):
                for name in (("small", "large") if n % 2 else ("large", "small")):
                    given = middle[name] if variables == "mid" else variables
                    elapsed = ask(name, query, given)
                    if n >= 3:  # warm-up: plans, caches
                        times[name].append(elapsed * 1000)
            small, large = (statistics.median(times[k]) for k in ("small", "large"))
            ratio = large / small
            worst = max(worst, ratio)
            print(f"{label:22} {small:11.1f} / {pct(times['small'], .9):6.1f}      "
                  f"{large:11.1f} / {pct(times['large'], .9):6.1f}      {ratio:6.2f}x",
                  flush=True)
        print(f"\nlargest ratio {worst:.2f}x; target within 2x: "
              f"{'met' if worst <= 2 else 'NOT met'}")
        say(f"load average {load_average()}")
        for client in clients.values():
            client.close()
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            discard(handle, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
