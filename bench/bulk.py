#!/usr/bin/env python3
"""Lines per second: bulkSetStock / bulkAdjustStock against one setStock /
adjustStock mutation per line, on the same server in the same run.

    .venv/bin/python bench/bulk.py                          # 5,000 levels
    .venv/bin/python bench/bulk.py --levels 20000 --batch 1000 --clients 16

Starts an embedded PostgreSQL in a temporary folder, migrates, writes items
and one location with set-based SQL, starts one `inventory serve` (rate limits
off, a 4 MiB body limit so 10,000-line requests fit), then, for set and for
adjust: every level once through single mutations (`--clients` concurrent
HTTP clients), and every level once through bulk requests of `--batch` lines
(`--bulk-clients` concurrent). Prints lines/s of each and the ratio, with the
load average (the machine is shared: read ratios, not absolutes).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from inventory.web.process import ApiProcess  # noqa: E402
from bench.private_db import TENANT, private_database  # noqa: E402

SINGLE = {"set": ("setStock", "SetStockInput", "onHand"),
          "adjust": ("adjustStock", "AdjustStockInput", "delta")}
BULK = {"set": ("bulkSetStock", "BulkSetStockInput", "onHand"),
        "adjust": ("bulkAdjustStock", "BulkAdjustStockInput", "delta")}


def fill(url: str, levels: int) -> list[str]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1),
                         autocommit=True) as conn:
        conn.execute("INSERT INTO locations (tenant_id, code, name) VALUES (%s, 'WH-1', 'W')",
                     (TENANT,))
        conn.execute("INSERT INTO items (tenant_id, sku, name) SELECT %s, 'B-' || n, 'I' "
                     "FROM generate_series(1, %s) n", (TENANT, levels))
    return [f"B-{n}" for n in range(1, levels + 1)]


def quantity(kind: str, round_: int, n: int) -> int:
    return 100 + round_ * 10 + n % 7 if kind == "set" else 1


async def singles(base: str, key: str, kind: str, skus: list[str], clients: int,
                  round_: int) -> float:
    name, input_type, field = SINGLE[kind]
    query = (f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename }} }}")
    queue: asyncio.Queue = asyncio.Queue()
    retried = [0]
    for n, sku in enumerate(skus):
        queue.put_nowait((n, sku))

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n, sku = queue.get_nowait()
            body = {"query": query, "variables": {"input": {
                "sku": sku, "locationCode": "WH-1", field: quantity(kind, round_, n),
                "idempotencyKey": f"bench-{kind}-{round_}-{n}"}}}
            while True:  # a transient error (conflict, pool timeout) is sent again
                r = await client.post("/graphql", json=body)
                if r.json()["data"][name]["__typename"] == "StockLevel":
                    break
                assert r.json()["data"][name]["__typename"] == "TransientError", r.text
                retried[0] += 1

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                 timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    if retried[0]:
        print(f"  ({retried[0]} single mutations answered a transient error and were sent "
              f"again)")
    return len(skus) / (time.monotonic() - started)


async def bulks(base: str, key: str, kind: str, skus: list[str], batch: int, clients: int,
                round_: int) -> float:
    name, input_type, field = BULK[kind]
    query = (f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ __typename "
             f"... on BulkStockResult {{ applied failed }} }} }}")
    chunks = [list(enumerate(skus))[i:i + batch] for i in range(0, len(skus), batch)]
    queue: asyncio.Queue = asyncio.Queue()
    for chunk in chunks:
        queue.put_nowait(chunk)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            r = await client.post("/graphql", json={"query": query, "variables": {"input": {
                "lines": [{"sku": sku, "locationCode": "WH-1",
                           field: quantity(kind, round_ + 50, n)}  # not what singles set
                          for n, sku in chunk]}}})
            answer = r.json()["data"][name]
            assert answer.get("failed") == 0 and answer["applied"] == len(chunk), answer

    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                 timeout=300) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return len(skus) / (time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--bulk-clients", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bulk-bench-") as root:
        url, key, _server = private_database(Path(root))
        skus = fill(url, args.levels)
        api = ApiProcess(url, Path(root) / "api.log", {
            "INVENTORY_RATE_WRITE": "0", "INVENTORY_RATE_READ": "0",
            "INVENTORY_MAX_BODY_BYTES": str(4 << 20), "INVENTORY_QUEUE_TIMEOUT": "120",
            "INVENTORY_WEBHOOK_WORKER": "0", "INVENTORY_SWEEP_INTERVAL": "0"}).start()
        try:
            print(f"{args.levels} levels; single mutations with {args.clients} clients; bulk "
                  f"requests of {args.batch} lines with {args.bulk_clients} clients; load "
                  f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            print(f"{'operation':<10} {'single lines/s':>15} {'bulk lines/s':>13} {'ratio':>7}")
            for round_, kind in enumerate(("set", "adjust")):
                one = asyncio.run(singles(api.url, key, kind, skus, args.clients, round_))
                many = asyncio.run(bulks(api.url, key, kind, skus, args.batch,
                                         args.bulk_clients, round_))
                print(f"{kind:<10} {one:15.0f} {many:13.0f} {many / one:6.1f}x", flush=True)
            print(f"load average {os.getloadavg()[0]:.1f} at the end")
        finally:
            api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
