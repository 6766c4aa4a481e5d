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
first and its own delays looked like server latency. The database's processes
are pinned to CPU 1 too: unpinned, at 10x the scheduler moved them onto the
server's CPU, which the generator's load on CPU 1 pushed them to, so the
generator's work took CPU from the server under test through the database.
On CPU 1 the database shares a core with the generator instead (its answers
may be slower at 10x; the server's CPU is its own in every phase).

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

For each phase it also reports the CPU used by the server process and by this
generator (percent of one core, from /proc and os.times), the load average,
and how many refusals the server answered at its HTTP parser
(inventory_requests_shed_early_total). It ends with the goodput ratio (accepted
req/s at 10x over capacity) and the accepted p99 against the target (>= 0.8x,
< 500 ms); `--repeat N` runs the limiter-on mode N times, each with its own
capacity, and prints the spread; `--compare-asgi` follows each with the same
run on `serve --no-early-shedding` (refusals through the ASGI limiter only).

Requests carry an all-scopes API key created in the private database, and rate
limits are off (INVENTORY_RATE_READ/WRITE=0) so that every refusal counted is
shedding (503), never rate limiting (429).

The load generator runs on the same 2-core machine as the server, so the rate
it can offer is itself bounded; the figures say what it managed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by the server process and by this generator over one phase, as
    percent of one core."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.server0 = cpu_seconds(server_pid)
        times = os.times()
        self.generator0 = times.user + times.system
        self.wall0 = time.monotonic()

    def read(self) -> dict:
        wall = max(time.monotonic() - self.wall0, 1e-9)
        times = os.times()
        return {"server_cpu_pct": round(100 * (cpu_seconds(self.server_pid) - self.server0) / wall),
                "generator_cpu_pct": round(
                    100 * (times.user + times.system - self.generator0) / wall)}


def pin_database(pgdata: Path, cpu: int) -> int:
    """Pins the embedded server's postmaster and its processes to `cpu` (new
    backends inherit it); returns how many processes were pinned."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(pid, {cpu})
    return len(pids)


def shed_early(url: str, api_key: str) -> float | None:
    """The server's count of refusals answered at its HTTP parser (None if
    /metrics does not answer this key)."""
    try:
        text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {api_key}"},
                         timeout=5).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("inventory_requests_shed_early_total "):
            return float(line.split()[1])
    return None


def closed_loop(url: str, clients: int, seconds: float, rng: random.Random, api_key: str):
    return loadgen.run(loadgen.closed_loop(
        url, {"Authorization": f"Bearer {api_key}"}, clients, seconds,
        lambda: request_body(rng), classify))


def run_mode(name: str, url: str, root: Path, env: dict, args, rng, capacity: float | None,
             api_key: str, serve_args: tuple[str, ...] = ()):
    api = ApiProcess(url, root / f"api-{name.replace(' ', '-')}.log", env={
        "INVENTORY_SWEEP_INTERVAL": "0", "INVENTORY_RATE_READ": "0",
        "INVENTORY_RATE_WRITE": "0", **env})
    api.extra_args = serve_args
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
            meter = CpuMeter(api.process.pid)
            cap = closed_loop(endpoint, 16, args.seconds, rng, api_key).summary()
            cap.update(meter.read())
            capacity = cap["accepted_rps"]
            print(f"[{name}] capacity {capacity} req/s (p50 {cap['p50_ms']} ms, "
                  f"p99 {cap['p99_ms']} ms; CPU: server {cap['server_cpu_pct']}%, generator "
                  f"{cap['generator_cpu_pct']}%)", flush=True)
        else:
            cap = None
        early_before = shed_early(api.url, api_key)
        meter = CpuMeter(api.process.pid)
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
        result.update(meter.read())
        early_after = shed_early(api.url, api_key)
        if early_before is not None and early_after is not None:
            result["shed_at_parser"] = int(early_after - early_before)
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
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
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the limiter-on mode this many times, each with its own "
                             "capacity measurement, and print the spread")
    parser.add_argument("--compare-asgi", action="store_true",
                        help="after each limiter-on run, the same with `serve "
                             "--no-early-shedding` (refusals through the ASGI limiter only)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin the server to CPU 0, and the load generator and the "
                             "database to CPU 1")
    parser.add_argument("--no-pin-database", dest="pin_database", action="store_false",
                        help="leave the database's processes unpinned (server and generator "
                             "still pinned)")
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
                    "pinned": args.pin, "max_concurrent": args.max_concurrent,
                    "max_queue": args.max_queue, "queue_timeout_s": args.queue_timeout,
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    "runs": []}
    limited = {"INVENTORY_MAX_CONCURRENT": str(args.max_concurrent),
               "INVENTORY_MAX_QUEUE": str(args.max_queue),
               "INVENTORY_QUEUE_TIMEOUT": str(args.queue_timeout)}
    plan = []
    for n in range(args.repeat):
        number = f" #{n + 1}" if args.repeat > 1 else ""
        plan.append((f"limiter on{number}", limited, True, ()))
        if args.compare_asgi:
            plan.append((f"limiter on, ASGI only{number}", limited, True,
                         ("--no-early-shedding",)))
    if not args.no_baseline:
        plan.append(("limiter off", {"INVENTORY_MAX_CONCURRENT": "0"}, False, ()))
    with tempfile.TemporaryDirectory(prefix="inventory-overload-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        url, server = embedded.start(root / "db")
        if args.pin and args.pin_database:
            report["database_processes_pinned_to_cpu_1"] = pin_database(root / "db" / "pgdata", 1)
        migrate.upgrade(url)
        engine = create_sync_engine(url)
        seed.seed(engine.connect, DEFAULT_TENANT_ID, ITEMS, LOCATIONS)
        _, api_key = create_client_key(engine, "overload bench")
        try:
            capacity = cap = None
            for name, env, own_capacity, serve_args in plan:
                capacity, measured, result, alive = run_mode(
                    name, url, root, env, args, rng, None if own_capacity else capacity, api_key,
                    serve_args)
                cap = measured or cap
                with engine.connect() as conn:
                    checked = audit(conn)
                result.update(server_stayed_up=alive, audit_ok=checked.ok,
                              audit=f"{checked.levels} levels, {checked.ledger_rows} ledger rows, "
                                    f"{len(checked.discrepancies)} discrepancies")
                report["runs"].append({"mode": name, "capacity": cap, "spike": result})
                print(f"[{name}] " + json.dumps(result), flush=True)
        finally:
            engine.dispose()
            embedded.stop(server)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_report(report, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if all(run["spike"]["audit_ok"] for run in report["runs"]) else 1


def print_report(report: dict, args) -> None:
    print("\n| mode | capacity req/s (CPU server/generator %) | offered req/s | accepted req/s "
          "| accepted / capacity | p50 ms | p99 ms | shed (at parser) "
          "| CPU server/generator % | other | audit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    limited = []
    for run in report["runs"]:
        cap, r = run["capacity"], run["spike"]
        ratio = r["accepted_rps"] / max(cap["accepted_rps"], 1e-9)
        o = dict(r["outcomes"])
        shed = o.pop("shed (503 OVERLOADED)", 0)
        o.pop("accepted", None)
        print(f"| {run['mode']} | {cap['accepted_rps']} ({cap['server_cpu_pct']}/"
              f"{cap['generator_cpu_pct']}) | {r['offered_rps']} | {r['accepted_rps']} | "
              f"{ratio:.2f} | {r['p50_ms']} | {r['p99_ms']} | {shed} "
              f"({r.get('shed_at_parser', '?')}) | {r['server_cpu_pct']}/"
              f"{r['generator_cpu_pct']} | {o or 0} | {'ok' if r['audit_ok'] else 'FAILED'} |")
        if run["mode"].startswith("limiter on") and not args.storm:
            limited.append((run["mode"], ratio, r["p99_ms"] or float("inf")))
    pinned_database = "database_processes_pinned_to_cpu_1" in report
    print("pinning: " + (f"server on CPU 0; generator{' and database' if pinned_database else ''}"
                         f" on CPU 1" if report["pinned"] else "none"))
    print(f"load average: {report['load_average_at_start']} at start, "
          f"{report['load_average_at_end']} at end (2 cores)")
    for mode, ratio, p99 in limited:
        met = ratio >= 0.8 and p99 < 500
        print(f"{mode}: goodput at {args.factor:g}x {ratio:.2f}x capacity, accepted p99 {p99} ms "
              f"(target >= 0.8x and < 500 ms: {'met' if met else 'NOT met'})")
    for kind in ("limiter on", "limiter on, ASGI only"):
        runs = [(ratio, p99) for mode, ratio, p99 in limited
                if mode.split(" #")[0] == kind]
        if len(runs) > 1:
            ratios, p99s = sorted(r for r, _ in runs), sorted(p for _, p in runs)
            print(f"{kind}, spread over {len(runs)} runs: goodput {ratios[0]:.2f}-"
                  f"{ratios[-1]:.2f}x (median {ratios[len(ratios) // 2]:.2f}x), "
                  f"p99 {p99s[0]}-{p99s[-1]} ms")


if __name__ == "__main__":
    sys.exit(main())
