#!/usr/bin/env python3
"""The database's side of keeping an item's available on its row, without
Python in the way: pgbench runs the single-line reservation statement
(bench/pgbench/reserve.sql's shape: guarded level change, ledger row,
reservation, line) with and without the item CTE, in one run.

    .venv/bin/python bench/item_total_sql.py                 # 3 rounds of 8 s, 32 clients
    .venv/bin/python bench/item_total_sql.py --rounds 2 --duration 5

Scenarios (1 unit per reservation, SERIALIZABLE, 40001 retried by pgbench's
--max-tries): `apart` 8 items at one location each, `spread` one item at 8
locations (every reservation now writes the same item row), `flash` one level.
20,000 more items without stock make the catalogue large enough for index
scans: on a table of ten rows PostgreSQL scans sequentially, and a sequential
scan in SERIALIZABLE takes a predicate lock on the whole table, so every
writer of an item row would conflict with every reader of any (a conflict the
real catalogue does not have).
Prints transactions per second, retries per transaction and failures; the
with/without ratio per round is what to read on a shared machine
(docs/performance.md, "Low stock as indexable state").
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import TENANT, libpq, pgbench_binary, say  # noqa: E402
from scratch_db import discard, load_average  # noqa: E402

LEVEL = {"apart": ("'APART-' || :n", "'WH-01'"), "spread": ("'SPREAD'", "'WH-0' || :n"),
         "flash": ("'FLASH'", "'WH-01'")}
ITEM_CTE = """item_total AS (
  UPDATE items SET available = items.available - 1 FROM changed
  WHERE items.tenant_id = changed.tenant_id AND items.id = changed.item_id),
"""


def script(scenario: str, with_item: bool) -> str:
    sku, code = LEVEL[scenario]
    return f"""\\set n random(1, 8)
BEGIN ISOLATION LEVEL SERIALIZABLE;
WITH r AS (SELECT gen_random_uuid() AS id),
changed AS (
  UPDATE stock_levels SET reserved = reserved + 1, version = version + 1, updated_at = now()
  WHERE tenant_id = :tenant::uuid AND (item_id, location_id) = (
    SELECT i.id, l.id FROM items i, locations l
    WHERE i.tenant_id = :tenant::uuid AND i.sku = {sku}
      AND l.tenant_id = :tenant::uuid AND l.code = {code})
    AND on_hand >= reserved + 1
  RETURNING tenant_id, item_id, location_id, on_hand, reserved, version, updated_at),
{ITEM_CTE if with_item else ""}logged AS (
  INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta, reserved_delta,
                         on_hand_after, reserved_after, version, reservation_id, actor)
  SELECT tenant_id, item_id, location_id, 'RESERVE', 0, 1, on_hand, reserved, version,
         r.id, 'bench' FROM changed, r),
line AS (
  INSERT INTO reservation_lines (tenant_id, reservation_id, line_no, item_id, location_id, quantity)
  SELECT tenant_id, r.id, 0, item_id, location_id, 1 FROM changed, r),
head AS (
  INSERT INTO reservations (tenant_id, id, status, reference, expires_at)
  SELECT tenant_id, r.id, 'ACTIVE', NULL, now() + 3600 * INTERVAL '1 second' FROM changed, r
  RETURNING created_at)
SELECT changed.version, head.created_at FROM changed, head;
COMMIT;
"""


FILL = """
INSERT INTO locations (tenant_id, code, name)
  SELECT %(t)s::uuid, 'WH-0' || g, 'Warehouse ' || g FROM generate_series(1, 8) g;
INSERT INTO items (tenant_id, sku, name, reorder_point)
  SELECT %(t)s::uuid, 'APART-' || g, 'x', 10 FROM generate_series(1, 8) g
  UNION ALL SELECT %(t)s::uuid, 'SPREAD', 'x', 10 UNION ALL SELECT %(t)s::uuid, 'FLASH', 'x', 10;
INSERT INTO stock_levels (tenant_id, item_id, location_id, on_hand, version)
  SELECT i.tenant_id, i.id, l.id, 1000000000, 0 FROM items i JOIN locations l
    ON l.tenant_id = i.tenant_id AND (i.sku = 'SPREAD' OR l.code = 'WH-01');
UPDATE items SET available = s.total FROM (
  SELECT item_id, SUM(on_hand) AS total FROM stock_levels GROUP BY item_id) s
  WHERE items.id = s.item_id;
INSERT INTO items (tenant_id, sku, name, reorder_point)
  SELECT %(t)s::uuid, 'FILL-' || g, 'x', 10 FROM generate_series(1, 20000) g;
ANALYZE
"""


def run(url: str, path: Path, clients: int, seconds: int) -> dict:
    out = subprocess.run(
        [pgbench_binary(), "-n", "-M", "prepared", f"-c{clients}", "-j2", f"-T{seconds}",
         "--max-tries=100", "-D", f"tenant={TENANT}", "-f", str(path), url],
        capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode not in (0, 2):
        raise SystemExit(f"pgbench failed:\n{out.stdout}\n{out.stderr}")

    def grab(pattern: str) -> float:
        m = re.search(pattern, out.stdout)
        return float(m.group(1)) if m else 0.0

    done = grab(r"number of transactions actually processed: (\d+)")
    return {"tps": grab(r"tps = ([\d.]+) \(without initial connection time\)"),
            "retries": grab(r"total number of retries: (\d+)") / max(done, 1),
            "failed": int(grab(r"number of failed transactions: (\d+)"))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    from inventory.db import embedded, migrate

    work = Path(tempfile.mkdtemp(prefix="inventory-item-sql-"))
    handle = None
    try:
        url, handle = embedded.start(work / "db")
        migrate.upgrade(url)
        url = libpq(url)
        with psycopg.connect(url) as conn:
            for statement in FILL.split(";\n"):
                if statement.strip():
                    conn.execute(statement, {"t": TENANT})
        paths = {}
        for scenario in LEVEL:
            for with_item in (False, True):
                path = paths[(scenario, with_item)] = work / f"{scenario}-{with_item}.sql"
                path.write_text(script(scenario, with_item))
        say(f"load average {load_average()} "
            f"on {os.cpu_count()} cores; {args.clients} clients, {args.duration} s each")
        print(f"\n{'round':>5} {'scenario':8} {'item row':8} {'tx/s':>7} {'retries/tx':>10} "
              f"{'failed':>6} {'with/without':>12}")
        for n in range(1, args.rounds + 1):
            for scenario in LEVEL:
                found = {}
                for with_item in ((False, True) if n % 2 else (True, False)):
                    found[with_item] = run(url, paths[(scenario, with_item)], args.clients,
                                           args.duration)
                for with_item in (False, True):
                    m = found[with_item]
                    ratio = m["tps"] / max(found[False]["tps"], 1e-9)
                    print(f"{n:>5} {scenario:8} {'yes' if with_item else 'no':8} "
                          f"{m['tps']:7.0f} {m['retries']:10.2f} {m['failed']:6} "
                          f"{ratio:11.2f}x", flush=True)
        say(f"load average {load_average()}")
    finally:
        discard(handle, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
