#!/usr/bin/env python3
"""Where does a request's time go? Samples one service worker with py-spy while
wrk drives a scenario, and prints the hottest functions (self and inclusive).

    .venv/bin/python bench/profile.py level            # or page, reserve, order, flash, mix
    .venv/bin/python bench/profile.py reserve --seconds 10 --svg /tmp/reserve.svg

Runs on its own embedded database (seeded like bench/run.py); one worker so a
single process holds all the Python time. Like bench/run.py it creates an API
key (sent by wrk from BENCH_API_KEY) and turns rate limits off.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402  (bench/ is a folder of scripts, not a package)
    BENCH, CREATE_ITEM, FLASH_SKU, ROOT, Database, Server, create_bench_key, free_port,
    fresh_statistics, graphql, need, say, top_up,
)


def package_of(frame: str) -> str:
    """'func (path/to/file.py:12)' -> the library (or 'inventory') the code is in."""
    path = frame.rpartition("(")[2]
    return path.split("/")[0] if "/" in path else path.split(".py")[0] or "(unknown)"


def summarize(raw: Path, top: int) -> str:
    self_time, inclusive, packages, total = Counter(), Counter(), Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        self_time[frames[-1]] += n
        packages[package_of(frames[-1])] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples", "", "self time by package:"] + [
        f"  {100 * n / total:5.1f}%  {name}" for name, n in packages.most_common()]
    out += ["", "self time:"] + [f"  {100 * n / total:5.1f}%  {f}"
                                 for f, n in self_time.most_common(top)]
    out += ["", "inclusive:"] + [f"  {100 * n / total:5.1f}%  {f}"
                                 for f, n in inclusive.most_common(top * 2)]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="?", default="level")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--svg", type=Path, help="also write a flame graph")
    args = parser.parse_args()
    py_spy = need("py-spy", "install the dev extra (scripts/bootstrap)")
    from inventory.db import embedded

    work = Path(tempfile.mkdtemp(prefix="inventory-profile-"))
    url, handle = embedded.start(work / "db")
    env = {**os.environ, "INVENTORY_DATABASE_URL": url, "INVENTORY_SEED_DEMO": "0",
           "INVENTORY_GRAPHIQL": "0", "INVENTORY_LOG_LEVEL": "WARNING",
           "INVENTORY_RATE_READ": "0", "INVENTORY_RATE_WRITE": "0"}
    cli = [sys.executable, "-m", "inventory.cli"]
    subprocess.run(cli + ["seed", "--items", "1000", "--locations", "4"], env=env,
                   check=True, cwd=ROOT, capture_output=True)
    api_key = create_bench_key(url)
    port = free_port()
    service = Server("service", cli + ["serve", "--port", str(port)], env, port, "/readyz",
                     work / "service.log")
    try:
        graphql(service.url, CREATE_ITEM, {"i": {"sku": FLASH_SKU, "name": "flash"}}, api_key)
        top_up(service.url, [f"SKU-{n:06d}" for n in range(1, 301)] + [FLASH_SKU], 10_000_000,
               api_key)
        lua_env = {**os.environ, "BENCH_SCENARIO": args.scenario,
                   "BENCH_LUA_DIR": str(BENCH / "lua"), "BENCH_WRITE_ITEMS": "300",
                   "BENCH_API_KEY": api_key}
        wrk = [need("wrk", "run scripts/bootstrap"), f"-t{min(2, args.clients)}", f"-c{args.clients}",
               f"-d{args.seconds + 2:g}s", "-s", str(BENCH / "lua" / "scenario.lua"),
               service.url]
        raw = work / "profile.txt"
        say(f"driving {args.scenario} with wrk and sampling the worker with py-spy ...")
        load = subprocess.Popen(wrk, env=lua_env, stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        fresh_statistics(Database(url, None))  # see bench/run.py
        subprocess.run([py_spy, "record", "-p", str(service.process.pid), "-d",
                        str(int(args.seconds)), "-r", "250", "--nonblocking", "--format",
                        "raw", "-o", str(raw)], check=True, capture_output=True)
        if args.svg:
            # a second, shorter sample for the flame graph
            subprocess.run([py_spy, "record", "-p", str(service.process.pid), "-d", "1",
                            "--nonblocking", "-o", str(args.svg)], capture_output=True)
        summary = load.communicate()[0]
        print(next((l for l in summary.splitlines() if l.startswith("BENCH_JSON")), summary))
        print(summarize(raw, args.top))
    finally:
        service.stop()
        embedded.stop(handle)
        shutil.rmtree(work, ignore_errors=True)  # the database and the server's log
    return 0


if __name__ == "__main__":
    sys.exit(main())
