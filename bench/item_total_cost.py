#!/usr/bin/env python3
"""What keeping an item's available on its row costs the writes, against a
checkout without it, in one run.

    .venv/bin/python bench/item_total_cost.py --against <commit>       # e.g. main before it
    .venv/bin/python bench/item_total_cost.py --against <c1> --against <c2> --rounds 3

Every level change also writes its item's row (`items.available`, for the
low-stock index; docs/performance.md, "Low stock as indexable state"), so
reservations of one item at different locations, which wrote different rows
before, now all write one. This starts an embedded PostgreSQL with one database
per checkout (each `--against` commit, exported with `git archive` into the
temporary folder, then this working tree), one `inventory serve` (2 workers)
per checkout, and sends each the same closed-loop load, the checkouts in turn
(the order reversed every other round):

- `apart`: single-line reserveStock of 1 unit, 8 items at one location each;
- `spread`: the same, one item at 8 locations (the case that gains a shared row);
- `flash`: one level (the group-commit path);
- `order`: 2-line reserveStock of one item at 2 of its 8 locations.

Prints successful reservations per second, p50/p99 latency and transaction
retries per success for each, and each checkout's rate over the first
`--against`'s; read the ratios within a round, the machine is shared.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, TENANT, create_bench_key, free_port, say  # noqa: E402
from scratch_db import discard, load_average  # noqa: E402

RESERVE = ("mutation($i:ReserveStockInput!){reserveStock(input:$i){__typename "
           "... on UserError{code}}}")
CODES = [f"WH-{n:02d}" for n in range(1, 9)]
SCENARIOS = ("apart", "spread", "flash", "order")


def request(scenario: str, rng: random.Random) -> dict:
    if scenario == "apart":
        lines = [{"sku": f"APART-{rng.randint(1, 8)}", "locationCode": "WH-01", "quantity": 1}]
    elif scenario == "spread":
        lines = [{"sku": "SPREAD", "locationCode": rng.choice(CODES), "quantity": 1}]
    elif scenario == "flash":
        lines = [{"sku": "FLASH", "locationCode": "WH-01", "quantity": 1}]
    else:
        a, b = rng.sample(CODES, 2)
        lines = [{"sku": "ORDER", "locationCode": a, "quantity": 1},
                 {"sku": "ORDER", "locationCode": b, "quantity": 1}]
    return {"query": RESERVE, "variables": {"i": {"lines": lines, "ttlSeconds": 3600}}}


def set_up(url: str, key: str) -> None:
    """Locations, items and plenty of stock through the API of a server."""
    mutate = ("mutation($i:%sInput!){%s(input:$i){__typename ... on UserError{code message}}}")
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        def send(name: str, payload: dict) -> None:
            body = client.post("/graphql", json={
                "query": mutate % (name[0].upper() + name[1:], name),
                "variables": {"i": payload}}).json()
            if body.get("errors") or "code" in body["data"][name]:
                raise SystemExit(f"set-up {name} failed: {body}")

        for code in CODES:
            send("createLocation", {"code": code, "name": code})
        stocked = [(f"APART-{n}", ["WH-01"]) for n in range(1, 9)]
        stocked += [("SPREAD", CODES), ("FLASH", ["WH-01"]), ("ORDER", CODES)]
        for sku, codes in stocked:
            send("createItem", {"sku": sku, "name": sku, "reorderPoint": 10})
            for code in codes:
                send("receiveStock", {"sku": sku, "locationCode": code, "quantity": 10_000_000})


def retries(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(s.value for f in text_string_to_metric_families(text)
               if f.name == "inventory_tx_retries" for s in f.samples
               if s.name == "inventory_tx_retries_total")


async def load(url: str, key: str, scenario: str, clients: int, seconds: float) -> dict:
    rng = random.Random(7)
    latencies: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async def one_client() -> None:
            nonlocal failed
            while time.monotonic() < deadline:
                started = time.perf_counter()
                body = (await client.post("/graphql", json=request(scenario, rng))).json()
                if body.get("errors") or body["data"]["reserveStock"]["__typename"] != \
                        "Reservation":
                    failed += 1
                else:
                    latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one_client() for _ in range(clients)))
    latencies.sort()
    return {"rate": len(latencies) / seconds, "failed": failed,
            "p50": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies
            else float("nan"), "ok": len(latencies)}


def start_server(code_dir: Path, url: str, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "INVENTORY_DATABASE_URL": url, "INVENTORY_SEED_DEMO": "0",
           "INVENTORY_LOG_LEVEL": "WARNING", "INVENTORY_RATE_READ": "0",
           "INVENTORY_RATE_WRITE": "0", "INVENTORY_SWEEP_INTERVAL": "0",
           "INVENTORY_CHANGE_FEED": "off", "PYTHONPATH": str(code_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "inventory.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env, cwd=code_dir, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server of {code_dir} exited; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server of {code_dir} not ready; see {log}")


def migrate(code_dir: Path, url: str) -> None:
    subprocess.run([sys.executable, "-c", "import sys; from inventory.db import migrate; "
                    "migrate.upgrade(sys.argv[1])", url], cwd=code_dir, check=True,
                   env={**os.environ, "PYTHONPATH": str(code_dir)})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", action="append", required=True,
                        help="a commit to compare with (repeatable; the first is the base)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    from inventory.db import embedded
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="inventory-item-total-"))
    servers: list[subprocess.Popen] = []
    handle = None
    try:
        checkouts: dict[str, Path] = {}
        for n, commit in enumerate(args.against):
            archive = work / f"{n}.tar"
            subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), commit],
                           check=True)
            with tarfile.open(archive) as tar:
                tar.extractall(work / f"checkout{n}")
            checkouts[commit[:10]] = work / f"checkout{n}"
        checkouts["worktree"] = ROOT
        names = list(checkouts)
        base_url, handle = embedded.start(work / "db")
        urls, keys = {}, {}
        with psycopg.connect(base_url.replace("postgresql+psycopg://", "postgresql://"),
                             autocommit=True) as conn:
            for n, name in enumerate(names):
                conn.execute(f"CREATE DATABASE cost_{n}")
                urls[name] = base_url.replace("/postgres?", f"/cost_{n}?", 1)
        for name, code_dir in checkouts.items():
            migrate(code_dir, urls[name])
            keys[name] = create_bench_key(urls[name])
            port = free_port()
            servers.append(start_server(code_dir, urls[name], port, work / f"{name}.log"))
            urls[name] = f"http://127.0.0.1:{port}"
            set_up(urls[name], keys[name])
        say(f"load average {load_average()} "
            f"on {os.cpu_count()} cores; {args.clients} clients, {args.duration:.0f} s each")
        print(f"\n{'round':>5} {'scenario':8} {'checkout':10} {'ok/s':>7} {'p50 ms':>7} "
              f"{'p99 ms':>7} {'retries/ok':>10} {'failed':>6} {'vs base':>7}")
        for n in range(1, args.rounds + 1):
            for scenario in args.scenarios.split(","):
                rates, results = {}, {}
                for name in (names if n % 2 else names[::-1]):
                    asyncio.run(load(urls[name], keys[name], scenario, args.clients, 1))  # warm
                    before = retries(urls[name])
                    m = asyncio.run(load(urls[name], keys[name], scenario, args.clients,
                                         args.duration))
                    m["per_ok"] = (retries(urls[name]) - before) / max(m["ok"], 1)
                    results[name] = m
                    rates[name] = m["rate"]
                for name in names:
                    print(f"{n:>5} {scenario:8} {name:10} {rates[name]:7.0f} "
                          f"{results[name]['p50']:7.1f} {results[name]['p99']:7.1f} "
                          f"{results[name]['per_ok']:10.2f} {results[name]['failed']:6} "
                          f"{rates[name] / max(rates[names[0]], 1e-9):6.2f}x", flush=True)
        say(f"load average {load_average()}")
    finally:
        for process in servers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        discard(handle, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
