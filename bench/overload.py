"""Overload benchmark: measure capacity, then offer ~10x of it and see what the
server does with and without load shedding.

    .venv/bin/python bench/overload.py [--factor 10] [--seconds 15] [--no-baseline]

Starts its own embedded PostgreSQL in a temporary folder and one API process
per mode (`inventory serve`, limiter on with latency-first settings: 8 slots,
at most 16 waiting for at most 0.25 s; then off with INVENTORY_MAX_CONCURRENT=0).
The request mix is 80% `stockLevel` reads and 20% `receiveStock` writes (each
with an idempotency key) on random seeded levels. The server is pinned to CPU 0
and this generator to CPU 1, and the generator is `bench/loadgen.py` (raw
keep-alive HTTP/1.1 on uvloop): with httpx the generator itself ran out of CPU
first and its own delays looked like server latency.

1. Capacity: 16 closed-loop clients for --seconds; accepted requests/s = C.
2. Spike: an open-loop schedule of factor x C requests/s (10x by default) for
   --seconds, whatever the answers, over --preopen keep-alive connections opened
   beforehand (as a load balancer keeps upstream connections; more are opened
   when all are busy). Latency counts from each request's scheduled time.
   Reports offered and accepted rates, p50/p90/p99 of the accepted requests,
   shed (503 OVERLOADED), other errors and timeouts (client timeout 10 s).
   --storm instead runs factor x 16 closed-loop clients that resend at once,
   shed or not (a retry storm: no client honours Retry-After).
3. The ledger audit over the whole database after each mode.

Requests carry an all-scopes API key created in the private database, and rate
limits are off (INVENTORY_RATE_READ/WRITE=0) so that every refusal counted is
shedding (503), never rate limiting (429).

The load generator runs on the same 2-core machine as the server, so the rate
it can offer is itself bounded; the figures say what it managed.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as bench/overload.py
from bench import loadgen  # noqa: E402
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


def classify(status: int, payload: bytes) -> str:
    if status == 503:
        return "shed (503 OVERLOADED)"
    body = json.loads(payload) if status == 200 else {}
    errors = body.get("errors")
    data = body.get("data") or {}
    code = (errors[0].get("extensions") or {}).get("code") if errors else (
        (data.get("receiveStock") or {}).get("code"))
    return f"error {status} {code}" if status != 200 or code else "accepted"


def closed_loop(url: str, clients: int, seconds: float, rng: random.Random, api_key: str):
    return loadgen.run(loadgen.closed_loop(
        url, {"Authorization": f"Bearer {api_key}"}, clients, seconds,
        lambda: request_body(rng), classify))


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
        closed_loop(endpoint, 8, 3, rng, api_key)  # warm-up
        if capacity is None:
            print(f"[{name}] measuring capacity: 16 clients, {args.seconds:.0f}s ...", flush=True)
            cap = closed_loop(endpoint, 16, args.seconds, rng, api_key).summary()
            capacity = cap["accepted_rps"]
            print(f"[{name}] capacity {capacity} req/s (p50 {cap['p50_ms']} ms, "
                  f"p99 {cap['p99_ms']} ms)", flush=True)
        else:
            cap = None
        if args.storm:
            clients = int(16 * args.factor)
            print(f"[{name}] retry storm: {clients} closed-loop clients ({args.factor:g}x the "
                  f"capacity run's 16) for {args.seconds:.0f}s ...", flush=True)
            result = closed_loop(endpoint, clients, args.seconds, rng, api_key).summary()
            result["clients"] = clients
        else:
            rate = args.factor * capacity
            print(f"[{name}] open loop: {rate:.0f} req/s ({args.factor:g}x capacity) for "
                  f"{args.seconds:.0f}s ...", flush=True)
            tally = loadgen.run(loadgen.open_loop(
                endpoint, {"Authorization": f"Bearer {api_key}"}, rate, args.seconds,
                lambda: request_body(rng), classify, preopen=args.preopen))
            result = tally.summary()
            result["connections_opened"] = tally.connections
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
    parser.add_argument("--max-concurrent", type=int, default=8,
                        help="INVENTORY_MAX_CONCURRENT for the limited run")
    parser.add_argument("--max-queue", type=int, default=16,
                        help="INVENTORY_MAX_QUEUE for the limited run (latency-first setting)")
    parser.add_argument("--queue-timeout", type=float, default=0.25,
                        help="INVENTORY_QUEUE_TIMEOUT for the limited run")
    parser.add_argument("--preopen", type=int, default=256,
                        help="keep-alive connections opened before the spike, as a load "
                             "balancer keeps upstream connections (more open when all are busy)")
    parser.add_argument("--storm", action="store_true",
                        help="instead of an open-loop spike, factor x 16 closed-loop clients that "
                             "resend at once, shed or not (a retry storm)")
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
                    "max_concurrent": args.max_concurrent, "max_queue": args.max_queue, "queue_timeout_s": args.queue_timeout}
    with tempfile.TemporaryDirectory(prefix="inventory-overload-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        url, server = embedded.start(root / "db")
        migrate.upgrade(url)
        engine = create_sync_engine(url)
        seed.seed(engine.connect, DEFAULT_TENANT_ID, ITEMS, LOCATIONS)
        _, api_key = create_client_key(engine, "overload bench")
        try:
            modes = [("limiter on", {"INVENTORY_MAX_CONCURRENT": str(args.max_concurrent),
                                     "INVENTORY_MAX_QUEUE": str(args.max_queue),
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
