#!/usr/bin/env python3
"""SERIALIZABLE against READ COMMITTED on the same stock statements, with pgbench.

    .venv/bin/python bench/isolation.py                  # 2 rounds of 5 s per case, ~1.5 min
    .venv/bin/python bench/isolation.py --rounds 3 --seconds 8

Starts an embedded PostgreSQL in a temporary folder with a table shaped like a
stock level (on_hand, reserved, version; no CHECK constraint, so an oversell
shows instead of failing) and runs, alternately under each isolation level:

  hot      64 clients reserve 1 unit of ONE row with the service's guarded
           statement (UPDATE ... WHERE on_hand >= reserved + 1)
  spread   32 clients do the same on random rows of 1,000
  decide   64 clients read the row's available units, then (if any) add 1 to
           reserved: the decide-then-write shape of a multi-line reservation,
           with only 200 units on the row (sold out within a run), to see
           whether it oversells

pgbench retries serialization failures (--max-tries=10). Prints per case and
level: successful transactions/s, retries/s, failed transactions, and for
`decide` the units reserved beyond what was on hand. Ratios within one run are
what to read on a shared machine.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from inventory.db import embedded  # noqa: E402

LEVELS = ("SERIALIZABLE", "READ COMMITTED")
DECIDE_STOCK = 200  # small enough to sell out within a run at either level
SCRIPTS = {
    "hot": (64, """BEGIN ISOLATION LEVEL {level};
UPDATE bench_levels SET reserved = reserved + 1, version = version + 1
WHERE id = 0 AND on_hand >= reserved + 1;
COMMIT;
"""),
    "spread": (32, """\\set i random(1, 1000)
BEGIN ISOLATION LEVEL {level};
UPDATE bench_levels SET reserved = reserved + 1, version = version + 1
WHERE id = :i AND on_hand >= reserved + 1;
COMMIT;
"""),
    "decide": (64, """BEGIN ISOLATION LEVEL {level};
SELECT on_hand - reserved AS available FROM bench_levels WHERE id = -1 \\gset
\\if :available > 0
UPDATE bench_levels SET reserved = reserved + 1, version = version + 1 WHERE id = -1;
\\endif
COMMIT;
"""),
}


def say(text: str) -> None:
    print(text, flush=True)


def pgbench_binary() -> str:
    return str(embedded.binaries_dir() / "pgbench")


def reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_levels")
        conn.execute("CREATE TABLE bench_levels (id int PRIMARY KEY, on_hand bigint NOT NULL, "
                     "reserved bigint NOT NULL DEFAULT 0, version bigint NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO bench_levels (id, on_hand) "
                     "SELECT i, 100000000 FROM generate_series(0, 1000) i")
        conn.execute("INSERT INTO bench_levels (id, on_hand) VALUES (-1, %s)", (DECIDE_STOCK,))
        conn.execute("ANALYZE bench_levels")


def run(url: str, case: str, level: str, seconds: int, workdir: Path) -> dict:
    clients, template = SCRIPTS[case]
    script = workdir / f"{case}-{level.replace(' ', '_')}.sql"
    script.write_text(template.format(level=level))
    argv = [pgbench_binary(), "-n", "-M", "prepared", f"-c{clients}", "-j2", f"-T{seconds}",
            "--max-tries=10", "-f", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode not in (0, 2):  # 2: some transactions failed, reported below
        raise SystemExit(f"pgbench failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")

    def grab(pattern: str) -> float:
        m = re.search(pattern, out.stdout)
        return float(m.group(1)) if m else 0.0

    result = {"tps": grab(r"tps = ([\d.]+) \(without initial connection time\)"),
              "retries_per_s": grab(r"total number of retries: (\d+)") / seconds,
              "failed": int(grab(r"number of failed transactions: (\d+)"))}
    if case == "decide":
        with psycopg.connect(url, autocommit=True) as conn:
            on_hand, reserved = conn.execute(
                "SELECT on_hand, reserved FROM bench_levels WHERE id = -1").fetchone()
            if reserved < on_hand:
                raise SystemExit(f"decide: only {reserved} of {on_hand} units sold in {seconds} s; "
                                 "run longer (--seconds) so that the row sells out")
            result["oversold"] = reserved - on_hand
            conn.execute("UPDATE bench_levels SET reserved = 0 WHERE id = -1")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="runs per case and level")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per run")
    parser.add_argument("--cases", default=",".join(SCRIPTS),
                        help=f"comma-separated, of {', '.join(SCRIPTS)}")
    args = parser.parse_args()
    unknown = set(args.cases.split(",")) - set(SCRIPTS)
    if unknown:
        parser.error(f"unknown cases {', '.join(sorted(unknown))}; choose among {', '.join(SCRIPTS)}")

    with tempfile.TemporaryDirectory(prefix="inventory-isolation-") as tmp:
        say(f"starting an embedded PostgreSQL in {tmp} ...")
        url, server = embedded.start(Path(tmp) / "db")
        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        reset(url)
        results: dict[tuple[str, str], list[dict]] = {}
        for case in args.cases.split(","):
            for n in range(args.rounds):
                order = LEVELS if n % 2 == 0 else LEVELS[::-1]
                for level in order:
                    r = run(url, case, level, args.seconds, Path(tmp))
                    results.setdefault((case, level), []).append(r)
                    extra = f", oversold {r['oversold']}" if "oversold" in r else ""
                    say(f"  {case:<7} {level:<15} {r['tps']:9.0f} tx/s, "
                        f"{r['retries_per_s']:8.0f} retries/s, {r['failed']} failed{extra}")
        say("")
        say(f"{'case':<8} {'level':<15} {'tx/s (runs)':<24} {'retries/s':>10} {'failed':>7} "
            f"{'oversold':>9}")
        for (case, level), runs in results.items():
            rates = ", ".join(f"{r['tps']:.0f}" for r in runs)
            retries = sum(r["retries_per_s"] for r in runs) / len(runs)
            failed = sum(r["failed"] for r in runs)
            oversold = ", ".join(str(r["oversold"]) for r in runs) if case == "decide" else "-"
            say(f"{case:<8} {level:<15} {rates:<24} {retries:>10.0f} {failed:>7} {oversold:>9}")
        del server


if __name__ == "__main__":
    main()
