#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind: a measure of the
app's CPU per request that other processes on the machine do not sway (CPU
time per request rises with the machine's load, by 30% and more on the shared
2-core machine; instruction counts move by about 1%).

    .venv/bin/python bench/instructions.py                      # page, reserve, level
    .venv/bin/python bench/instructions.py --scenarios page --requests 20
    .venv/bin/python bench/instructions.py --scenarios level,page --app both   # and the floor
    .venv/bin/python bench/instructions.py --scenarios kit,kitlines   # kits' cost
    .venv/bin/python bench/instructions.py --scenarios operation   # `{ __typename }`
    .venv/bin/python bench/instructions.py --scenarios receive   # receiveStock (the service's only)

Starts an embedded PostgreSQL in a temporary folder, seeds it like
bench/run.py (`inventory seed --items 1000 --locations 4`), then per scenario
runs one Python process under `valgrind --tool=callgrind` with instrumentation
off: it builds the app in process (create_app, its lifespan), sends warm-up
requests through httpx's ASGI transport (no sockets, no HTTP parsing: the
GraphQL stack, the app's own code, SQLAlchemy and psycopg), switches
instrumentation on (callgrind_control), sends `--requests` more, `--concurrency`
at a time, and switches it off. Instructions of the server process only (the
database's work is in another process, not counted). Prints instructions per
request; compare two checkouts by running this file of each (PYTHONPATH set to
the checkout), the spread between runs of one checkout is about 1%.
`--app minimal` counts bench/minimal_app.py instead (the same requests to its
endpoints, the same SQL), `--app both` each in turn and their ratio: a
load-proof view of the app's share of bench/run.py's "service / minimal"
(which also counts the database's and the load generator's CPU, and
uvicorn's HTTP parsing, none of which is counted here). The webhook worker is
off in these processes (see below).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

PAGE = ("query($p:String!){items(first:50,filter:{skuPrefix:$p}){edges{node{sku "
        "totalAvailable stockLevels{onHand reserved available location{code}}}}}}")
RESERVE = ("mutation($i:ReserveStockInput!){reserveStock(input:$i){__typename "
           "... on Reservation{id status expiresAt} ... on UserError{code message}}}")
RECEIVE = ("mutation($i:ReceiveStockInput!){receiveStock(input:$i){__typename "
           "... on StockLevel{onHand version} ... on UserError{code message}}}")
LEVEL = ("query($s:String!,$l:String!){stockLevel(sku:$s,locationCode:$l)"
         "{onHand reserved available version}}")


def minimal_request(scenario: str, n: int) -> tuple[str, dict]:
    """The same request to bench/minimal_app.py: (path, body)."""
    if scenario == "page":
        return "/page", {"prefix": f"SKU-000{n % 10}"}
    if scenario == "reserve":
        return "/reserve", {"lines": [[f"SKU-{1 + n % 300:06d}", "WH-01"]]}
    return "/level", {"sku": f"SKU-{1 + n % 1000:06d}", "code": f"WH-0{1 + n % 4}"}


# Kits (issue 16): KIT-BENCH-i is one each of SKU-(601+3i), (602+3i), (603+3i);
# `kit` reserves one kit, `kitlines` the same three components as three lines.
KITS = 20


def _components(i: int) -> list[str]:
    return [f"SKU-{601 + 3 * i + j:06d}" for j in range(3)]


def request(scenario: str, n: int) -> dict:
    sku = f"SKU-{1 + n % 1000:06d}"
    if scenario == "operation":  # the fixed cost of an operation: no database
        return {"query": "{ __typename }"}
    if scenario in ("kit", "kitlines"):
        i = n % KITS
        lines = ([{"sku": f"KIT-BENCH-{i}", "locationCode": "WH-01", "quantity": 1}]
                 if scenario == "kit" else
                 [{"sku": c, "locationCode": "WH-01", "quantity": 1} for c in _components(i)])
        return {"query": RESERVE, "variables": {"i": {"lines": lines, "ttlSeconds": 3600}}}
    if scenario == "page":
        return {"query": PAGE, "variables": {"p": f"SKU-000{n % 10}"}}
    if scenario == "receive":  # the ledger's upsert (db/ledger.py add_to_level)
        return {"query": RECEIVE, "variables": {"i": {
            "sku": sku, "locationCode": f"WH-0{1 + n % 4}", "quantity": 1}}}
    if scenario == "reserve":
        return {"query": RESERVE, "variables": {"i": {"lines": [
            {"sku": f"SKU-{1 + n % 300:06d}", "locationCode": "WH-01", "quantity": 1}],
            "ttlSeconds": 3600}}}
    return {"query": LEVEL, "variables": {"s": sku, "l": f"WH-0{1 + n % 4}"}}


# valgrind's client requests, built when a C compiler and valgrind's header are
# here: instrumentation switched on and off exactly where called. Otherwise
# callgrind_control, which waits for the process to run guest code, so the
# process spins meanwhile, and the spin that follows "on" is counted: longer,
# and so more instructions, the busier the machine (up to 10% of a 2 M read).
TOGGLE_SOURCE = """#include <valgrind/callgrind.h>
void instrumentation_on(void) { CALLGRIND_START_INSTRUMENTATION; }
void instrumentation_off(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""


def build_toggle(work: Path) -> str | None:
    """The client requests as a shared library in `work`, or None."""
    if not (shutil.which("cc") and Path("/usr/include/valgrind/callgrind.h").exists()):
        return None
    source = work / "toggle.c"
    source.write_text(TOGGLE_SOURCE)
    built = subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(work / "toggle.so"),
                            str(source)], capture_output=True)
    return str(work / "toggle.so") if built.returncode == 0 else None


def callgrind(on: bool) -> None:
    """Instrumentation on or off in this process."""
    toggle = os.environ.get("INSTRUCTIONS_TOGGLE")
    if toggle:
        import ctypes

        library = ctypes.CDLL(toggle)
        (library.instrumentation_on if on else library.instrumentation_off)()
        return
    control = subprocess.Popen(["callgrind_control", "-i", "on" if on else "off",
                                str(os.getpid())], stdout=subprocess.DEVNULL)
    while control.poll() is None:
        pass


async def serve_requests(args) -> None:
    """The child under callgrind: the app in process, driven through ASGI."""
    import httpx

    if args.app == "minimal":
        from minimal_app import app

        def send(client, n):
            path, body = minimal_request(args.scenario, n)
            return client.post(path, json=body)
    else:
        from inventory.config import Settings
        try:
            from inventory.web.app import create_app
        except ImportError:  # checkouts before the web package
            from inventory.app import create_app
        app = create_app(Settings.from_env())

        def send(client, n):
            return client.post("/graphql", json=request(args.scenario, n))

    headers = {"Authorization": f"Bearer {os.environ['BENCH_API_KEY']}"}
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://bench", headers=headers) as client:
            async def batch(start: int, count: int) -> None:
                for first in range(start, start + count, args.concurrency):
                    answers = await asyncio.gather(*(
                        send(client, n)
                        for n in range(first, min(start + count, first + args.concurrency))))
                    for answer in answers:
                        body = answer.json()
                        if answer.status_code != 200 or body.get("errors") or body.get("error"):
                            raise SystemExit(f"{args.scenario}: {answer.status_code} {body}")

            # kit, kitlines and operation are the service's only: no --app minimal.
            if args.scenario in ("kit", "kitlines"):
                await kit_setup(client)
            await batch(0, args.warmup)
            callgrind(True)
            await batch(args.warmup, args.requests)
            callgrind(False)


async def kit_setup(client) -> None:
    """The kits (made once: a second run finds them) and 1,000 units of each
    component at WH-01, so both kit scenarios start from the same stock and
    every reservation succeeds."""
    for i in range(KITS):
        await client.post("/graphql", json={
            "query": "mutation($i:CreateItemInput!){createItem(input:$i){__typename}}",
            "variables": {"i": {"sku": f"KIT-BENCH-{i}", "name": "Bench kit", "components": [
                {"sku": c, "quantity": 1} for c in _components(i)]}}})
    answer = await client.post("/graphql", json={
        "query": "mutation($i:BulkSetStockInput!){bulkSetStock(input:$i){__typename}}",
        "variables": {"i": {"lines": [
            {"sku": c, "locationCode": "WH-01", "onHand": 1000}
            for i in range(KITS) for c in _components(i)]}}})
    if answer.status_code != 200 or answer.json().get("errors"):
        raise SystemExit(f"kit setup: {answer.status_code} {answer.text}")


def count(out: Path) -> int:
    """Instructions recorded in a callgrind output file."""
    found = {}
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            name, value = line.split()[:2]
            found[name] = int(value)
    if not found:
        raise SystemExit(f"no totals in {out}")
    return max(found.values())  # callgrind writes "summary: 0" when toggled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="page,reserve,level")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--app", choices=("service", "minimal", "both"), default="service",
                        help="the service, bench/minimal_app.py (the floor), or both in turn")
    parser.add_argument("--child", choices=("page", "reserve", "receive", "level", "kit",
                                            "kitlines", "operation"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.scenario = args.child
        asyncio.run(serve_requests(args))
        return 0
    from run import create_bench_key, say
    from scratch_db import discard, load_average

    from inventory.db import embedded

    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    work = Path(tempfile.mkdtemp(prefix="inventory-instructions-"))
    handle = None
    try:
        url, handle = embedded.start(work / "db")
        env = {**os.environ, "INVENTORY_DATABASE_URL": url, "INVENTORY_SEED_DEMO": "0",
               "INVENTORY_LOG_LEVEL": "WARNING", "INVENTORY_RATE_READ": "0",
               "INVENTORY_RATE_WRITE": "0", "INVENTORY_SWEEP_INTERVAL": "0",
               # Background work on wall-clock timers (the webhook worker's lease
               # and polls) would be counted many times over: callgrind runs the
               # process about 50 times slower, and more so on a loaded machine.
               "INVENTORY_WEBHOOK_WORKER": "0",
               "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))}
        code = Path(env["PYTHONPATH"].split(os.pathsep)[0])  # the checkout measured
        subprocess.run([sys.executable, "-m", "inventory.cli", "seed", "--items", "1000",
                        "--locations", "4"], env=env, check=True, cwd=code,
                       capture_output=True)
        env["BENCH_API_KEY"] = create_bench_key(url)
        toggle = build_toggle(work)
        if toggle:
            env["INSTRUCTIONS_TOGGLE"] = toggle
        say("instrumentation switched by " + ("valgrind's client requests" if toggle
                                              else "callgrind_control"))
        say(f"load average {load_average()}")
        apps = ("service", "minimal") if args.app == "both" else (args.app,)
        counted: dict[tuple[str, str], list[float]] = {}
        for scenario in args.scenarios.split(","):
            for repeat in range(args.repeats):
                for app in apps:  # in turn, so that both see the same database
                    out = work / f"callgrind.{scenario}.{app}.{repeat}"
                    started = time.monotonic()
                    subprocess.run(
                        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                         f"--callgrind-out-file={out}", sys.executable, __file__, "--child",
                         scenario, "--app", app, "--requests", str(args.requests),
                         "--warmup", str(args.warmup), "--concurrency", str(args.concurrency)],
                        env=env, check=True, cwd=code, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
                    per_request = count(out) / args.requests
                    counted.setdefault((scenario, app), []).append(per_request)
                    print(f"{scenario:8} {app:8} {per_request / 1e6:8.2f} M instructions per "
                          f"request ({args.requests} requests, {args.concurrency} at a time; "
                          f"{time.monotonic() - started:.0f} s)", flush=True)
        if len(apps) == 2:
            for scenario in args.scenarios.split(","):
                service = min(counted[scenario, "service"])
                floor = min(counted[scenario, "minimal"])
                print(f"{scenario:8} minimal / service: {floor / service:.2f} "
                      "(instructions of the app alone; the database's are not counted)")
        say(f"load average {load_average()}")
    finally:
        discard(handle, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
