#!/usr/bin/env python3
"""Memory of a streamed export: the server's resident memory while it streams
GET /export/levels.csv and /export/movements.jsonl, for a small and a large
table in the same run (flat means the large export's peak is no higher than
the small one's, give or take the noise).

    .venv/bin/python bench/export_memory.py                     # 10,000 then 1,000,000 rows
    .venv/bin/python bench/export_memory.py --rows 200000

Starts an embedded PostgreSQL in a temporary folder, migrates, writes items,
locations, stock levels and their RECEIVE ledger rows with set-based SQL (fast,
and the ledger still matches the levels), starts one `inventory serve`, then
downloads each export with httpx while sampling the server's RSS (psutil) every
50 ms. Also runs `inventory export levels > /dev/null` and reports that
process's peak RSS. Prints rows, bytes, seconds, rows/s and RSS before, peak and
growth for each.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from inventory.web.process import ApiProcess  # noqa: E402
from bench.private_db import TENANT, private_database  # noqa: E402

LOCATIONS = 4


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def fill(url: str, rows: int, tag: str) -> None:
    """`rows` stock levels (rows/4 items x 4 locations) and one RECEIVE each."""
    items = rows // LOCATIONS
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO locations (tenant_id, code, name) SELECT %s, %s || '-' || n, 'L' "
            "FROM generate_series(1, %s) n ON CONFLICT DO NOTHING", (TENANT, tag, LOCATIONS))
        conn.execute(
            "INSERT INTO items (tenant_id, sku, name) SELECT %s, %s || '-' || lpad(n::text, 7, '0'), "
            "'Item ' || n FROM generate_series(1, %s) n", (TENANT, tag, items))
        conn.execute(
            "INSERT INTO stock_levels (tenant_id, item_id, location_id, on_hand, version) "
            "SELECT %s, i.id, l.id, 10 + (hashtext(i.sku) & 1023), 1 FROM items i, locations l "
            "WHERE i.sku LIKE %s AND l.code LIKE %s",
            (TENANT, f"{tag}-%", f"{tag}-%"))
        conn.execute(
            "INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, "
            "reserved_delta, on_hand_after, reserved_after, version, reason) "
            "SELECT sl.tenant_id, sl.item_id, sl.location_id, 'RECEIVE', sl.on_hand, 0, "
            "sl.on_hand, 0, 1, 'bench' FROM stock_levels sl JOIN items i ON i.id = sl.item_id "
            "WHERE i.sku LIKE %s", (f"{tag}-%",))
        conn.execute("ANALYZE")


class Sampler:
    """Peak RSS of a process (and its children), sampled every 50 ms."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.peak = self.before = self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in [self.process, *self.process.children(True)])

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.NoSuchProcess:  # it ended between two samples
                return

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def download(base: str, key: str, path: str) -> tuple[int, int, float]:
    started = time.monotonic()
    size = lines = 0
    with httpx.stream("GET", base + path, headers={"Authorization": f"Bearer {key}"},
                      timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return size, lines, time.monotonic() - started


def mib(n: int) -> str:
    return f"{n / 2**20:7.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="export-bench-") as root:
        url, key, _server = private_database(Path(root))
        api = ApiProcess(url, Path(root) / "api.log",
                         {"INVENTORY_WEBHOOK_WORKER": "0", "INVENTORY_SWEEP_INTERVAL": "0",
                          "INVENTORY_LOG_LEVEL": "WARNING"}).start()
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'export':<26} {'rows':>9} {'MiB':>7} {'s':>6} {'rows/s':>8} "
              f"{'RSS MiB':>8} {'peak':>7} {'growth':>7}")
        try:
            filled = 0
            for target, tag in ((args.small, "S"), (args.rows, "L")):
                t = time.monotonic()
                fill(url, target - filled, tag)
                filled = target
                sys.stderr.write(f"  ({target} levels written in {time.monotonic() - t:.0f}s)\n")
                for path in ("/export/levels.csv", "/export/movements.jsonl"):
                    with Sampler(api.process.pid) as rss:
                        size, lines, seconds = download(api.url, key, path)
                    print(f"{path:<26} {lines:>9} {mib(size)} {seconds:6.1f} "
                          f"{lines / seconds:8.0f} {mib(rss.before)} {mib(rss.peak)} "
                          f"{mib(rss.peak - rss.before)}", flush=True)
            cli = subprocess.Popen(
                [sys.executable, "-m", "inventory.cli", "export", "levels"],
                env={**os.environ, "INVENTORY_DATABASE_URL": url}, stdout=subprocess.DEVNULL)
            with Sampler(cli.pid) as rss:
                t = time.monotonic()
                cli.wait()
            print(f"{'inventory export levels':<26} {filled:>9} {'':>7} "
                  f"{time.monotonic() - t:6.1f} {'':>8} {'':>8} {mib(rss.peak)}")
        finally:
            api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
