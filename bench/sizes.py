#!/usr/bin/env python3
"""Bytes per row of each table, indexes included, as the service writes them.

    .venv/bin/python bench/sizes.py                       # 2,000 items x 4 locations, 3,000 orders
    .venv/bin/python bench/sizes.py --items 5000 --orders 5000

Starts an embedded PostgreSQL in a temporary folder, migrates, seeds items,
locations and stock (`inventory seed`), starts one `inventory serve`, and sends
reservations through the API as a shop would (1-3 lines, each with an
idempotency key), then commits half of them and releases a quarter (each with a
key). After VACUUM it prints, per table: rows, heap bytes, index bytes and bytes
per row (heap + TOAST + indexes). docs/design.md sizes storage from these figures.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from inventory.web.process import free_port  # noqa: E402

TENANT = "00000000-0000-0000-0000-000000000001"
TABLES = ("items", "locations", "stock_levels", "movements", "reservations",
          "reservation_lines", "idempotency_keys")
RESERVE = """mutation($input: ReserveStockInput!) { reserveStock(input: $input) {
  __typename ... on Reservation { id } } }"""
COMMIT = """mutation($input: CommitReservationInput!) { commitReservation(input: $input) {
  __typename } }"""
RELEASE = """mutation($input: ReleaseReservationInput!) { releaseReservation(input: $input) {
  __typename } }"""


def say(text: str) -> None:
    print(text, flush=True)


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def create_key(url: str) -> str:
    from sqlalchemy import create_engine

    from inventory.auth.keys import create_key as create
    from inventory.auth.principal import ALL_SCOPES

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            return create(conn, UUID(TENANT), list(ALL_SCOPES), "sizes")[1]
    finally:
        engine.dispose()


async def drive(base: str, key: str, items: int, orders: int, concurrency: int) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    counts = {"reserved": 0, "refused": 0, "committed": 0, "released": 0}
    sent = 0
    rng = random.Random(7)
    work = asyncio.Queue()
    for n in range(orders):
        work.put_nowait(n)

    async def call(client: httpx.AsyncClient, query: str, variables: dict) -> dict:
        r = await client.post(f"{base}/graphql", json={"query": query, "variables": variables},
                              headers=headers, timeout=30)
        r.raise_for_status()
        return r.json()["data"]

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while not work.empty():
            n = work.get_nowait()
            skus = rng.sample(range(1, items + 1), rng.randint(1, 3))
            lines = [{"sku": f"SKU-{s:06d}", "locationCode": "WH-01", "quantity": 1} for s in skus]
            data = await call(client, RESERVE, {"input": {
                "lines": lines, "ttlSeconds": 3600, "reference": f"order-{n}",
                "idempotencyKey": f"sizes-reserve-{n}"}})
            answer = data["reserveStock"]
            sent += 1
            if sent % 500 == 0:
                say(f"  {sent}/{orders} reservations sent")
            if answer["__typename"] != "Reservation":
                counts["refused"] += 1  # INSUFFICIENT_STOCK once a level runs out
                continue
            counts["reserved"] += 1
            pick = n % 4
            if pick in (0, 1):
                await call(client, COMMIT, {"input": {"reservationId": answer["id"],
                                                      "idempotencyKey": f"sizes-commit-{n}"}})
                counts["committed"] += 1
            elif pick == 2:
                await call(client, RELEASE, {"input": {"reservationId": answer["id"],
                                                       "idempotencyKey": f"sizes-release-{n}"}})
                counts["released"] += 1

    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return counts


def wait_ready(base: str, proc: subprocess.Popen, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"inventory serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("inventory serve did not become ready within 60 s")


def measure(url: str) -> tuple[list[tuple], list[tuple]]:
    rows, indexes = [], []
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        for table in TABLES:
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            heap, toast_and_heap, index_bytes = conn.execute(
                "SELECT pg_relation_size(%s), pg_table_size(%s), pg_indexes_size(%s)",
                (table, table, table)).fetchone()
            rows.append((table, count, heap, toast_and_heap - heap, index_bytes))
            for name, size in conn.execute(
                    "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) "
                    "FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1", (table,)):
                indexes.append((table, name, size, size / count if count else 0))
    return rows, indexes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--locations", type=int, default=4)
    parser.add_argument("--orders", type=int, default=3000, help="reservations to send")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from inventory.db import embedded

    inventory = str(Path(sys.executable).parent / "inventory")
    with tempfile.TemporaryDirectory(prefix="inventory-sizes-") as tmp:
        say(f"starting an embedded PostgreSQL in {tmp} ...")
        url, server = embedded.start(Path(tmp) / "db")
        env = dict(os.environ, INVENTORY_DATABASE_URL=url, INVENTORY_RATE_READ="0",
                   INVENTORY_RATE_WRITE="0", INVENTORY_SWEEP_INTERVAL="0",
                   INVENTORY_QUEUE_TIMEOUT="60")
        subprocess.run([inventory, "migrate"], env=env, check=True)
        say(f"seeding {args.items} items x {args.locations} locations ...")
        subprocess.run([inventory, "seed", "--items", str(args.items),
                        "--locations", str(args.locations)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        key = create_key(url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([inventory, "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(base, proc)
            say(f"sending {args.orders} reservations (1-3 lines), committing half, "
                "releasing a quarter ...")
            counts = asyncio.run(drive(base, key, args.items, args.orders, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        say(f"  {counts}")
        rows, indexes = measure(url)
        say("")
        say(f"{'table':<18} {'rows':>9} {'heap B':>11} {'toast B':>9} {'index B':>11} {'B/row':>7}")
        for table, count, heap, toast, index_bytes in rows:
            per_row = (heap + toast + index_bytes) / count if count else 0
            say(f"{table:<18} {count:>9,} {heap:>11,} {toast:>9,} {index_bytes:>11,} {per_row:>7.0f}")
        say("")
        say(f"{'index':<40} {'bytes':>11} {'B/row':>7}")
        for table, name, size, per_row in indexes:
            say(f"{name:<40} {size:>11,} {per_row:>7.0f}")
        del server


if __name__ == "__main__":
    main()
