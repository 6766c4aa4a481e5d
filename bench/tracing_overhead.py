#!/usr/bin/env python3
"""Throughput cost of tracing: the same request mix against `inventory serve`
with tracing off and with tracing on (exported over OTLP/HTTP to a local sink
that accepts and counts the batches, so export cost is included).

    .venv/bin/python bench/tracing_overhead.py [--requests 3000] [--concurrency 16] [--rounds 2]

Starts an embedded PostgreSQL in a temporary folder, seeds it, creates an API
key (every request sends it; rate limits are off for the run), then starts the
server once per mode and round (alternating off/on so drift hits both), drives
a fixed mix (70% stockLevel reads, 20% single-line reserveStock, 10%
receiveStock) with a bounded number of requests, and prints req/s, p50 and p99
per run and the on/off ratio of the medians. All load goes to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inventory.db import embedded, migrate  # noqa: E402
from tests.support import create_api_key  # noqa: E402

READ = "query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) { onHand available } }"
RESERVE = """mutation($s: String!, $c: String!) { reserveStock(input: {
  lines: [{sku: $s, locationCode: $c, quantity: 1}], ttlSeconds: 600}) {
  __typename ... on UserError { code } } }"""
RECEIVE = """mutation($s: String!, $c: String!, $q: Quantity!) { receiveStock(input: {
  sku: $s, locationCode: $c, quantity: $q}) { __typename ... on UserError { code } } }"""


class Sink:
    """An OTLP/HTTP endpoint that accepts span batches and counts them, in its
    own process so that receiving spans takes no CPU from the load generator."""

    def __init__(self):
        context = multiprocessing.get_context("fork")
        self._batches = context.Value("q", 0)
        self._bytes = context.Value("q", 0)
        self.port = free_port()
        self.process = context.Process(target=self._serve, daemon=True)
        self.process.start()

    def _serve(self):
        server = ThreadingHTTPServer(("127.0.0.1", self.port), SinkHandler)
        server.counters = (self._batches, self._bytes)
        server.serve_forever()

    @property
    def batches(self) -> int:
        return self._batches.value

    @property
    def bytes(self) -> int:
        return self._bytes.value

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


class SinkHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        batches, size = self.server.counters
        with batches.get_lock():
            batches.value += 1
        with size.get_lock():
            size.value += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, env_extra: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "INVENTORY_DATABASE_URL": url, "INVENTORY_SEED_DEMO": "0",
           "INVENTORY_LOG_LEVEL": "WARNING", "INVENTORY_GRAPHIQL": "0",
           # The benchmark's one key sends far more than the default per-key budget.
           "INVENTORY_RATE_READ": "0", "INVENTORY_RATE_WRITE": "0", **env_extra}
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        if name not in env_extra:
            env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "inventory.cli", "serve", "--port", str(port)],
        env=env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early; see {log_path}")
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server not ready in 60 s; see {log_path}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def drive(base: str, headers: dict[str, str], pairs: list[tuple[str, str]], n: int,
                concurrency: int):
    """Sends n requests of the fixed mix; returns (elapsed s, latencies s, failures)."""
    latencies: list[float] = []
    failures = 0
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as client:
        async def worker():
            nonlocal failures
            for i in counter:
                sku, code = pairs[(i * 7) % len(pairs)]
                kind = i % 10
                if kind < 7:
                    body = {"query": READ, "variables": {"s": sku, "c": code}}
                elif kind < 9:
                    body = {"query": RESERVE, "variables": {"s": sku, "c": code}}
                else:
                    body = {"query": RECEIVE, "variables": {"s": sku, "c": code, "q": 1}}
                started = time.perf_counter()
                response = await client.post(base + "/graphql", json=body)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200 or "errors" in response.json():
                    failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, failures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per run")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="runs per mode (alternating)")
    args = parser.parse_args()
    if not (0 < args.requests <= 50_000 and 0 < args.concurrency <= 256 and 0 < args.rounds <= 5):
        raise SystemExit("keep it bounded: --requests <= 50000, --concurrency <= 256, --rounds <= 5")

    work = Path(tempfile.mkdtemp(prefix="inventory-bench-tracing-"))
    print(f"Starting embedded PostgreSQL in {work} ...", flush=True)
    url, pg = embedded.start(work / "db")
    migrate.upgrade(url)
    env = {**os.environ, "INVENTORY_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "inventory.cli", "seed", "--items", "20",
                    "--locations", "2"], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    pairs = [(f"SKU-{i:06d}", f"WH-{j:02d}") for i in range(1, 21) for j in range(1, 3)]
    headers = {"Authorization": f"Bearer {create_api_key(url, name='bench-tracing')}"}

    sink = Sink()
    modes = {
        "off": {},
        "on": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.port}",
               "OTEL_SERVICE_NAME": "inventory-bench"},
    }
    results: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
    log_path = work / "server.log"
    print(f"{args.requests} requests per run (after {args.warmup} warm-up), "
          f"{args.concurrency} concurrent clients, mix 70% read / 20% reserve / 10% receive\n")
    print(f"{'run':<8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}{'span batches':>14}")
    for round_no in range(1, args.rounds + 1):
        for mode, extra in modes.items():
            process, base = start_server(url, extra, log_path)
            try:
                # Stock for every pair, far more than the run can reserve.
                for sku, code in pairs:
                    response = httpx.post(base + "/graphql", headers=headers, timeout=30, json={
                        "query": RECEIVE, "variables": {"s": sku, "c": code, "q": 1_000_000}})
                    if response.status_code != 200 or "errors" in response.json():
                        raise SystemExit(f"could not stock {sku}@{code}: {response.text}")
                asyncio.run(drive(base, headers, pairs, args.warmup, args.concurrency))
                batches_before = sink.batches
                elapsed, latencies, failed = asyncio.run(
                    drive(base, headers, pairs, args.requests, args.concurrency))
            finally:
                stop(process)
            rate = args.requests / elapsed
            p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
            results[mode].append((rate, p50, p99))
            batches = sink.batches - batches_before if mode == "on" else 0
            print(f"{mode + ' #' + str(round_no):<8}{rate:>10.0f}{p50:>10.1f}{p99:>10.1f}"
                  f"{failed:>8}{batches:>14}", flush=True)

    def median(mode: str, index: int) -> float:
        return statistics.median(r[index] for r in results[mode])

    print()
    for mode in ("off", "on"):
        print(f"median {mode:<4} {median(mode, 0):8.0f} req/s   p50 {median(mode, 1):6.1f} ms   "
              f"p99 {median(mode, 2):6.1f} ms")
    ratio = median("on", 0) / median("off", 0)
    print(f"tracing on / off throughput: {ratio:.2f} ({(1 - ratio) * 100:+.0f}% cost)")
    print(f"spans exported to the sink: {sink.batches} batches, {sink.bytes / 1e6:.1f} MB")
    sink.stop()
    del pg  # the embedded server stops with this process
    return 0


if __name__ == "__main__":
    sys.exit(main())
