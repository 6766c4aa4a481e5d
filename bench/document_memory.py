"""Memory with many distinct documents: the server's resident size before and
after thousands of documents it has never seen.

    .venv/bin/python -m bench.document_memory [--count 2500]

Starts its own embedded PostgreSQL in a temporary folder and one API process,
then sends, one after another with one key:
1. --count distinct documents of about 250 KB each (a unique comment padding
   `{ __typename }`: the security probe's case, which took the server from 218 MB
   to 1,119 MB before the caches were bounded in bytes);
2. --count distinct dense documents of about 15 KB (1,400 `__typename`
   selections each: the largest that the parser cache keeps, at an estimated
   2 MB each).
Prints the resident set size (VmRSS of the server process and its children)
after start-up, after each phase, and the growth.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from inventory.web.process import ApiProcess
from inventory.auth import keys
from inventory.auth.principal import READ
from inventory.db import embedded, migrate
from inventory.db.engine import create_sync_engine
from inventory.service.context import DEFAULT_TENANT_ID


def rss_mb(pid: int) -> float:
    """VmRSS of the process and its children, in MB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return round(total / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="inventory-docmem-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        url, server = embedded.start(root / "db")
        migrate.upgrade(url)
        engine = create_sync_engine(url)
        with engine.begin() as conn:
            _, key = keys.create_key(conn, DEFAULT_TENANT_ID, [READ], "memory bench")
        engine.dispose()
        api = ApiProcess(url, root / "api.log", env={
            "INVENTORY_SWEEP_INTERVAL": "0", "INVENTORY_RATE_READ": "0",
            "INVENTORY_RATE_REFUSED": "0"})
        api.start()
        rows = []
        try:
            pid = api.process.pid
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            with httpx.Client(timeout=30, headers=headers) as client:
                for _ in range(20):  # warm-up
                    client.post(api.url + "/graphql", json={"query": "{ __typename }"})
                start = rss_mb(pid)
                rows.append(("after start-up and 20 requests", start, 0.0))
                padding = "x" * 250_000
                dense = " ".join(["__typename"] * 1400)
                for name, make in (
                        (f"{args.count} distinct ~250 KB documents (comment padding)",
                         lambda: f"# {uuid.uuid4().hex}{padding}\n{{ __typename }}"),
                        (f"{args.count} distinct ~15 KB dense documents",
                         lambda: f"{{ __typename # {uuid.uuid4().hex}\n{dense} }}")):
                    started = time.monotonic()
                    statuses: dict[int, int] = {}
                    for i in range(args.count):
                        status = client.post(api.url + "/graphql",
                                             json={"query": make()}).status_code
                        statuses[status] = statuses.get(status, 0) + 1
                        if i % 500 == 499:
                            print(f"  {name}: {i + 1} sent, RSS {rss_mb(pid)} MB", flush=True)
                    now = rss_mb(pid)
                    rows.append((f"{name} ({time.monotonic() - started:.0f} s, HTTP {statuses})",
                                 now, round(now - start, 1)))
        finally:
            api.stop()
            embedded.stop(server)
    print("\n| after | server RSS MB | growth MB |")
    print("| --- | --- | --- |")
    for name, value, growth in rows:
        print(f"| {name} | {value} | {growth} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
