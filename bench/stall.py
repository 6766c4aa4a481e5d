"""Stall benchmark: one key sends the server-freezing documents in a loop while
another tenant reads; the other tenant's latency is what counts.

    .venv/bin/python -m bench.stall [--seconds 10] [--attackers 4] [--victim-rate 50]

Starts its own embedded PostgreSQL in a temporary folder (ITEMS items in two
locations for the attacking tenant, a few for the reading tenant) and one API
process (`inventory serve`, default limits: cost, size bounds, rate limits).
The server is pinned to CPU 0 and this generator to CPU 1 (bench/loadgen.py).

The documents are the two from the security probe: a 474-byte query nesting
items and their stock levels five times under a 500-item page, three times
over (attack 2), and 611 bytes of fragments F0-F5 each spreading the next ten
times (attack 3, a million selections after expansion). Before the limits,
the first ran 18 s and the second blocked the server 8 s.

Phases, each --seconds long; the reader sends `stockLevel` reads at
--victim-rate per second on schedule (open loop) in all of them:
1. the reader alone (baseline);
2. plus --attackers connections of one key sending attacks 2 and 3 in turn,
   as fast as answered (closed loop), the same text every time;
3. the same with a unique comment in every document, so that no cache helps
   (each one is parsed and measured anew).
Prints the reader's p50/p99/max per phase and what the attacker got back
(QUERY_TOO_COSTLY, QUERY_TOO_COMPLEX, RATE_LIMITED, ...).
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path

from bench import loadgen
from inventory.web.process import ApiProcess
from inventory.auth import keys
from inventory.auth.principal import READ as READ_SCOPE
from inventory.db import embedded, migrate, seed
from inventory.db.engine import create_sync_engine
from inventory.service.context import DEFAULT_TENANT_ID

ITEMS, LOCATIONS = 600, 2
NESTED = ("items(first:500){nodes{stockLevels{item{stockLevels{item{stockLevels{item{"
          "stockLevels{item{stockLevels{onHand}}}}}}}}}}}")
ATTACK_2 = "{ " + " ".join(f"a{i}: {NESTED}" for i in range(3)) + " }"
ATTACK_3 = ("query { ...F0 } " + " ".join(
    f"fragment F{i} on Query {{ " + " ".join([f"...F{i + 1}"] * 10) + " }" for i in range(6))
    + ' fragment F6 on Query { stockLevel(sku: "SKU-000001", locationCode: "WH-01") '
      '{ onHand } }')
READ = "query($s: String!, $l: String!) { stockLevel(sku: $s, locationCode: $l) { onHand } }"


def classify(status: int, payload: bytes) -> str:
    try:
        body = json.loads(payload)
    except ValueError:
        return f"HTTP {status}, not JSON"
    errors = body.get("errors")
    if errors:
        return f"{status} {(errors[0].get('extensions') or {}).get('code')}"
    return "accepted" if status == 200 else f"HTTP {status}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--attackers", type=int, default=4,
                        help="connections of the attacking key, each sending as fast as answered")
    parser.add_argument("--victim-rate", type=float, default=50,
                        help="the other tenant's reads per second")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    args = parser.parse_args()
    if args.pin and (os.cpu_count() or 1) < 2:
        args.pin = False
    if args.pin:
        os.sched_setaffinity(0, {1})
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report: dict = {"seconds": args.seconds, "attackers": args.attackers,
                    "victim_rate": args.victim_rate}
    with tempfile.TemporaryDirectory(prefix="inventory-stall-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        url, server = embedded.start(root / "db")
        migrate.upgrade(url)
        engine = create_sync_engine(url)
        victim_tenant = uuid.uuid4()
        print(f"seeding {ITEMS} items x {LOCATIONS} locations ...", flush=True)
        seed.seed(engine.connect, DEFAULT_TENANT_ID, ITEMS, LOCATIONS)
        seed.seed(engine.connect, victim_tenant, 20, 2)
        with engine.begin() as conn:
            _, attacker_key = keys.create_key(conn, DEFAULT_TENANT_ID, [READ_SCOPE], "attacker")
            _, victim_key = keys.create_key(conn, victim_tenant, [READ_SCOPE], "reader")
        api = ApiProcess(url, root / "api.log", env={"INVENTORY_SWEEP_INTERVAL": "0"})
        api.start()
        if args.pin:
            os.sched_setaffinity(api.process.pid, {0})
        try:
            report.update(loadgen.run(phases(api.url + "/graphql", attacker_key, victim_key,
                                             args)))
        finally:
            api.stop()
            engine.dispose()
            embedded.stop(server)
    print("\n| phase | reader p50 ms | reader p99 ms | reader max ms | reader outcomes "
          "| attacker requests/s | attacker outcomes |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in ("reader alone", "attacks, same text", "attacks, unique text"):
        r = report[name]
        v, a = r["reader"], r.get("attacker")
        print(f"| {name} | {v['p50_ms']} | {v['p99_ms']} | {v['max_ms']} | {v['outcomes']} | "
              f"{a['offered_rps'] if a else '-'} | {a['outcomes'] if a else '-'} |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


async def phases(endpoint: str, attacker_key: str, victim_key: str, args) -> dict:
    counter = itertools.count()

    def read():
        n = next(counter)
        return {"query": READ, "variables": {"s": f"SKU-{n % 20 + 1:06d}",
                                             "l": f"WH-{n % 2 + 1:02d}"}}

    def attacks(unique: bool):
        documents = itertools.cycle([ATTACK_2, ATTACK_3])

        def body():
            document = next(documents)
            if unique:
                document = f"# {uuid.uuid4().hex}\n{document}"
            return {"query": document}
        return body

    def reader():
        return loadgen.open_loop(endpoint, {"Authorization": f"Bearer {victim_key}"},
                                 args.victim_rate, args.seconds, read, classify, preopen=8)

    out = {}
    # Warm-up: both documents once, and a few reads.
    await loadgen.closed_loop(endpoint, {"Authorization": f"Bearer {victim_key}"}, 2, 1, read,
                              classify)
    for name, attack in (("reader alone", None), ("attacks, same text", attacks(False)),
                         ("attacks, unique text", attacks(True))):
        print(f"[{name}] {args.seconds:.0f}s ...", flush=True)
        jobs = [reader()]
        if attack is not None:
            jobs.append(loadgen.closed_loop(
                endpoint, {"Authorization": f"Bearer {attacker_key}"}, args.attackers,
                args.seconds, attack, classify))
        tallies = await asyncio.gather(*jobs)
        out[name] = {"reader": tallies[0].summary()}
        if attack is not None:
            out[name]["attacker"] = tallies[1].summary()
        print(f"[{name}] " + json.dumps(out[name]), flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
