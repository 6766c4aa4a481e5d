"""What one overload refusal (503 OVERLOADED) costs the server, in CPU
microseconds, answered at the HTTP parser (`EarlyShedding`, what `inventory
serve` runs) and through the ASGI limiter alone (`serve --no-early-shedding`).

    .venv/bin/python bench/refusal_cost.py [--seconds 5] [--rounds 2] [--clients 32]

Starts its own embedded PostgreSQL and, per round and mode, one `inventory
serve` with one slot and no queue (INVENTORY_MAX_CONCURRENT=1,
INVENTORY_MAX_QUEUE=0). A request whose body never completes takes the slot, so
every other /graphql request is refused; --clients closed-loop keep-alive
clients (bench/loadgen.py) then send the overload benchmark's `stockLevel` read
for --seconds. The server's CPU time (from /proc, so other load on the machine
changes it little) divided by the refusals it answered is the cost of one
refusal. The server is pinned to CPU 0 and this generator to CPU 1; the modes
alternate, round after round, so both meet the same machine.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as bench/refusal_cost.py
from bench import loadgen  # noqa: E402
from bench.overload import READ, cpu_seconds  # noqa: E402
from inventory.chaos.runner import ApiProcess, create_client_key  # noqa: E402
from inventory.db import embedded, migrate, seed  # noqa: E402
from inventory.db.engine import create_sync_engine  # noqa: E402
from inventory.service.context import DEFAULT_TENANT_ID  # noqa: E402

MODES = {"at the parser (EarlyShedding)": (),
         "ASGI limiter only (--no-early-shedding)": ("--no-early-shedding",)}
BODY = {"query": READ, "variables": {"s": "SKU-000001", "l": "WH-01"}}


class OneSlotServer(ApiProcess):
    def __init__(self, url: str, log: Path, extra: tuple[str, ...]):
        super().__init__(url, log, env={
            "INVENTORY_MAX_CONCURRENT": "1", "INVENTORY_MAX_QUEUE": "0",
            "INVENTORY_SWEEP_INTERVAL": "0", "INVENTORY_RATE_READ": "0",
            "INVENTORY_RATE_WRITE": "0"})
        self.extra_args = extra


async def measure(server: OneSlotServer, api_key: str, clients: int, seconds: float) -> dict:
    host, port = "127.0.0.1", server.port
    body = json.dumps(BODY).encode()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write((f"POST /graphql HTTP/1.1\r\nHost: {host}:{port}\r\n"
                  f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:5])
    await writer.drain()
    await asyncio.sleep(0.5)  # the held request takes the slot
    headers = {"Authorization": f"Bearer {api_key}"}
    classify = lambda status, _payload: "refused" if status == 503 else f"HTTP {status}"  # noqa: E731
    await loadgen.closed_loop(server.url + "/graphql", headers, clients, 1, lambda: BODY, classify)
    before = cpu_seconds(server.process.pid)
    tally = await loadgen.closed_loop(server.url + "/graphql", headers, clients, seconds,
                                      lambda: BODY, classify)
    used = cpu_seconds(server.process.pid) - before
    writer.close()
    refused = tally.outcomes["refused"]
    return {"refused": refused, "refused_per_s": round(refused / tally.elapsed),
            "server_cpu_pct": round(100 * used / tally.elapsed),
            "cpu_us_per_refusal": round(used / max(refused, 1) * 1e6, 1),
            "other": {k: v for k, v in tally.outcomes.items() if k != "refused"}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    pin = (os.cpu_count() or 1) >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="inventory-refusal-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        url, db_server = embedded.start(root / "db")
        try:
            migrate.upgrade(url)
            engine = create_sync_engine(url)
            seed.seed(engine.connect, DEFAULT_TENANT_ID, 2, 1)
            _, api_key = create_client_key(engine, "refusal bench")
            engine.dispose()
            for round_ in range(args.rounds):
                for mode, extra in MODES.items():
                    server = OneSlotServer(url, root / "api.log", extra).start()
                    try:
                        if pin:
                            os.sched_setaffinity(server.process.pid, {0})
                        result = loadgen.run(measure(server, api_key, args.clients, args.seconds))
                    finally:
                        server.stop()
                    results[mode].append(result)
                    print(f"round {round_ + 1}, {mode}: {json.dumps(result)}", flush=True)
                    time.sleep(0.5)
        finally:
            embedded.stop(db_server)
    print(f"load average at end: {os.getloadavg()} (2 cores)")
    print("\n| refused | CPU us per refusal (each round) | median | refusals/s (each round) |")
    print("| --- | --- | --- | --- |")
    for mode, runs in results.items():
        costs = [r["cpu_us_per_refusal"] for r in runs]
        print(f"| {mode} | {', '.join(map(str, costs))} | {statistics.median(costs)} | "
              f"{', '.join(str(r['refused_per_s']) for r in runs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
