"""Overload benchmark: measure capacity, then offer ~10x of it and see what the
server does with and without load shedding.

    .venv/bin/python bench/overload.py [--factor 10] [--seconds 15] [--no-baseline]

Starts its own embedded PostgreSQL in a temporary folder and one API process
per mode (`inventory serve`, limiter on with 16 slots and a short queue,
--max-queue 16 waiting for at most --queue-timeout 0.25 s, then off with
INVENTORY_MAX_CONCURRENT=0). The request mix is 80% `stockLevel` reads and 20%
`receiveStock` writes (each with an idempotency key) on random seeded levels.

1. Capacity: 16 closed-loop clients for --seconds; accepted requests/s = C.
2. Overload: factor x 16 closed-loop clients (160 by default) for --seconds,
   each sending its next request as soon as the last one answered, shed or not
   (a retry storm: no client honours Retry-After), client timeout 10 s. Reports
   offered and accepted rates (offered/capacity is the overload factor actually
   reached), p50/p99 of the accepted requests, shed (503 OVERLOADED), other
   errors and timeouts. (An open-loop Poisson generator at 10x was tried first:
   in Python on this 2-core machine it could not keep its own schedule.)
3. The ledger audit over the whole database after each mode.

Requests carry an all-scopes API key created in the private database, and rate
limits are off (INVENTORY_RATE_READ/WRITE=0) so that every refusal counted is
shedding (503), never rate limiting (429).

The load generator runs on the same 2-core machine as the server, so the rate
it can offer is itself bounded; the figures say what it managed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

from inventory.chaos.runner import ApiProcess, create_client_key
from inventory.db import embedded, migrate, seed
from inventory.db.audit import audit
from inventory.db.engine import create_sync_engine
from inventory.service.context import DEFAULT_TENANT_ID

ITEMS, LOCATIONS = 200, 2
READ = "query($s: String!, $l: String!) { stockLevel(sku: $s, locationCode: $l) { onHand } }"
WRITE = ("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) "
         "{ __typename ... on UserError { code } } }")


def request_body(rng: random.Random) -> dict:
    sku, loc = f"SKU-{rng.randint(1, ITEMS):06d}", f"WH-{rng.randint(1, LOCATIONS):02d}"
    if rng.random() < 0.8:
        return {"query": READ, "variables": {"s": sku, "l": loc}}
    return {"query": WRITE, "variables": {"i": {"sku": sku, "locationCode": loc, "quantity": 1,
                                                 "idempotencyKey": uuid.uuid4().hex}}}


class Tally:
    def __init__(self):
        self.latencies: list[float] = []
        self.outcomes: Counter = Counter()
        self.sent = 0

    async def one(self, client: httpx.AsyncClient, url: str, body: dict) -> None:
        self.sent += 1
        started = time.perf_counter()
        try:
            response = await client.post(url, json=body, timeout=10)
        except httpx.TimeoutException:
            self.outcomes["client timeout (10 s)"] += 1
            return
        except httpx.TransportError as error:
            self.outcomes[f"connection error {type(error).__name__}"] += 1
            return
        elapsed = time.perf_counter() - started
        if response.status_code == 503:
            self.outcomes["shed (503 OVERLOADED)"] += 1
            return
        payload = response.json() if response.status_code == 200 else {}
        errors = payload.get("errors")
        data = payload.get("data") or {}
        code = (errors[0].get("extensions") or {}).get("code") if errors else (
            (data.get("receiveStock") or {}).get("code"))
        if response.status_code != 200 or code:
            self.outcomes[f"error {response.status_code} {code}"] += 1
            return
        self.outcomes["accepted"] += 1
        self.latencies.append(elapsed)

    def summary(self, seconds: float) -> dict:
        lat = sorted(self.latencies)
        pct = (lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1)
               if lat else None)
        return {
            "offered_rps": round(self.sent / seconds, 1),
            "accepted_rps": round(self.outcomes["accepted"] / seconds, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else None,
            "outcomes": dict(self.outcomes),
        }


async def closed_loop(url: str, clients: int, seconds: float, rng: random.Random,
                      api_key: str) -> Tally:
    tally = Tally()
    stop_at = time.monotonic() + seconds

    async def loop():
        # One connection per client: httpx's shared pool gets slow with
        # hundreds of connections, which would throttle the generator itself.
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {api_key}"}) as client:
            while time.monotonic() < stop_at:
                await tally.one(client, url, request_body(rng))

    await asyncio.gather(*[loop() for _ in range(clients)])
    return tally


def run_mode(name: str, url: str, root: Path, env: dict, args, rng, capacity: float | None,
             api_key: str):
    api = ApiProcess(url, root / f"api-{name}.log", env={
        "INVENTORY_SWEEP_INTERVAL": "0", "INVENTORY_RATE_READ": "0", "INVENTORY_RATE_WRITE": "0",
        **env})
    api.start()
    if args.pin:
        # Server on CPU 0, this load generator on CPU 1 (set in main): the
        # generator's own CPU use must not be mistaken for server latency.
        os.sched_setaffinity(api.process.pid, {0})
    try:
        endpoint = api.url + "/graphql"
        asyncio.run(closed_loop(endpoint, 8, 3, rng, api_key))  # warm-up
        if capacity is None:
            print(f"[{name}] measuring capacity: 16 clients, {args.seconds:.0f}s ...", flush=True)
            cap = asyncio.run(closed_loop(endpoint, 16, args.seconds, rng, api_key)).summary(
                args.seconds)
            capacity = cap["accepted_rps"]
            print(f"[{name}] capacity {capacity} req/s (p50 {cap['p50_ms']} ms, "
                  f"p99 {cap['p99_ms']} ms)", flush=True)
        else:
            cap = None
        clients = int(16 * args.factor)
        print(f"[{name}] {clients} clients ({args.factor:g}x the capacity run's 16) for "
              f"{args.seconds:.0f}s ...", flush=True)
        started = time.monotonic()
        tally = asyncio.run(closed_loop(endpoint, clients, args.seconds, rng, api_key))
        result = tally.summary(time.monotonic() - started)
        result["clients"] = clients
        alive = api.process.poll() is None
    finally:
        api.stop()
    return capacity, cap, result, alive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factor", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run without the limiter")
    parser.add_argument("--max-queue", type=int, default=16,
                        help="INVENTORY_MAX_QUEUE for the limited run (latency-first setting)")
    parser.add_argument("--queue-timeout", type=float, default=0.25,
                        help="INVENTORY_QUEUE_TIMEOUT for the limited run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin the server to CPU 0 and the load generator to CPU 1")
    args = parser.parse_args()
    if args.pin and (os.cpu_count() or 1) < 2:
        args.pin = False
    if args.pin:
        os.sched_setaffinity(0, {1})  # this process: the load generator
    logging.basicConfig(level=logging.WARNING)
    # SIGTERM (e.g. from `timeout`) unwinds normally so the private servers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rng = random.Random(1)
    report: dict = {"mix": "80% stockLevel, 20% receiveStock", "factor": args.factor,
                    "pinned": args.pin,
                    "max_queue": args.max_queue, "queue_timeout_s": args.queue_timeout}
    with tempfile.TemporaryDirectory(prefix="inventory-overload-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        url, server = embedded.start(root / "db")
        migrate.upgrade(url)
        engine = create_sync_engine(url)
        seed.seed(engine.connect, DEFAULT_TENANT_ID, ITEMS, LOCATIONS)
        _, api_key = create_client_key(engine, "overload bench")
        try:
            modes = [("limiter on", {"INVENTORY_MAX_QUEUE": str(args.max_queue),
                                     "INVENTORY_QUEUE_TIMEOUT": str(args.queue_timeout)})]
            if not args.no_baseline:
                modes.append(("limiter off", {"INVENTORY_MAX_CONCURRENT": "0"}))
            capacity = None
            for name, env in modes:
                capacity, cap, result, alive = run_mode(name, url, root, env, args, rng, capacity,
                                                        api_key)
                with engine.connect() as conn:
                    checked = audit(conn)
                result.update(server_stayed_up=alive, audit_ok=checked.ok,
                              audit=f"{checked.levels} levels, {checked.ledger_rows} ledger rows, "
                                    f"{len(checked.discrepancies)} discrepancies")
                if cap:
                    report["capacity"] = cap
                report[name] = result
                print(f"[{name}] " + json.dumps(result), flush=True)
        finally:
            engine.dispose()
            embedded.stop(server)
    print("\n| mode | offered req/s | accepted req/s | p50 ms | p99 ms | shed | other errors "
          "| audit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in ("limiter on", "limiter off"):
        r = report.get(name)
        if not r:
            continue
        o = dict(r["outcomes"])
        shed = o.pop("shed (503 OVERLOADED)", 0)
        o.pop("accepted", None)
        print(f"| {name} | {r['offered_rps']} | {r['accepted_rps']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {shed} | {o or 0} | {'ok' if r['audit_ok'] else 'FAILED'} |")
    for name in ("limiter on", "limiter off"):
        if name in report:
            factor = report[name]["offered_rps"] / max(report["capacity"]["accepted_rps"], 1)
            print(f"{name}: offered {factor:.1f}x capacity")
    print(f"capacity (16 closed-loop clients): {report['capacity']['accepted_rps']} req/s, "
          f"p50 {report['capacity']['p50_ms']} ms, p99 {report['capacity']['p99_ms']} ms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(report[n]["audit_ok"] for n, _ in modes) else 1


if __name__ == "__main__":
    sys.exit(main())
