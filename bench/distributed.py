"""Throughput of the service on a 3-node Patroni cluster (synchronous
replication) against one node, both started in the same run by `inventory
cluster up` (the one-node cluster runs the same PostgreSQL 15 under Patroni,
without replication), each behind one API process.

Scenarios, each a closed loop of `--clients` connections for `--seconds`:
- reserve: reserveStock of one unit on a random level, with an idempotency key;
- read: a strong stockLevel read (the leader);
- bounded read: the same read with @boundedStaleness(maxMs: 1000), which the
  3-node cluster serves from a standby (the one-node cluster from its leader).

Targets alternate within each repeat, so both see the same machine load; the
figures to compare are the ratios within one run. Prints a table (median and
range over the repeats) and writes the results as JSON.

    .venv/bin/python -m bench.distributed [--seconds 8] [--clients 16] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from bench.loadgen import closed_loop, run
from inventory.web.process import ApiProcess
from inventory.auth.keys import create_key
from inventory.auth.principal import ALL_SCOPES
from inventory.cluster import Cluster
from inventory.db import migrate
from inventory.db.engine import create_sync_engine
from inventory.service.context import DEFAULT_TENANT_ID

ITEMS = 200
STOCK = 10**9
LEVEL = "query($s: String!, $c: String!) %s { stockLevel(sku: $s, locationCode: $c) { onHand } }"
RESERVE = ("mutation($i: ReserveStockInput!) { reserveStock(input: $i) { __typename "
           "... on UserError { code } } }")


class BenchApi(ApiProcess):
    defaults = {**ApiProcess.defaults, "INVENTORY_RATE_READ": "0", "INVENTORY_RATE_WRITE": "0",
                "INVENTORY_SWEEP_INTERVAL": "0", "INVENTORY_QUEUE_TIMEOUT": "30"}
    ready_path = "/readyz"


def say(message: str) -> None:
    print(message, flush=True)


def prepare(cluster: Cluster, folder: Path, name: str) -> tuple[BenchApi, str, list[str]]:
    migrate.upgrade(cluster.writer_url)
    engine = create_sync_engine(cluster.writer_url)
    with engine.begin() as conn:
        key = create_key(conn, DEFAULT_TENANT_ID, list(ALL_SCOPES), "bench")[1]
    engine.dispose()
    env = {"INVENTORY_READ_DATABASE_URL": cluster.reader_url} if len(cluster.nodes) > 1 else {}
    api = BenchApi(cluster.writer_url, folder / f"{name}-api.log", env).start(90)
    headers = {"Authorization": f"Bearer {key}"}
    skus = [f"B-{i:04d}" for i in range(ITEMS)]
    with httpx.Client(timeout=30, headers=headers) as client:
        def gql(query: str, variables: dict) -> None:
            body = client.post(api.url + "/graphql", json={"query": query,
                                                           "variables": variables}).json()
            if "errors" in body:
                raise SystemExit(f"set-up failed: {body['errors']}")

        gql("mutation($i: CreateLocationInput!) { createLocation(input: $i) { __typename } }",
            {"i": {"code": "WH", "name": "WH"}})
        for sku in skus:
            gql("mutation($i: CreateItemInput!) { createItem(input: $i) { __typename } }",
                {"i": {"sku": sku, "name": sku}})
            gql("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) { __typename } }",
                {"i": {"sku": sku, "locationCode": "WH", "quantity": STOCK}})
    return api, key, skus


def scenario_body(kind: str, skus: list[str]):
    if kind == "reserve":
        def body() -> dict:
            return {"query": RESERVE, "variables": {"i": {
                "lines": [{"sku": random.choice(skus), "locationCode": "WH", "quantity": 1}],
                "ttlSeconds": 3600, "idempotencyKey": uuid.uuid4().hex}}}
        return body
    directive = "@boundedStaleness(maxMs: 1000)" if kind == "bounded read" else ""
    encoded = [orjson.dumps({"query": LEVEL % directive, "variables": {"s": s, "c": "WH"}})
               for s in skus]
    return lambda: random.choice(encoded)


def classify(status: int, payload: bytes) -> str:
    if status != 200:
        return f"HTTP {status}"
    body = orjson.loads(payload)
    if body.get("errors"):
        return f"error {body['errors'][0].get('extensions', {}).get('code')}"
    data = body.get("data") or {}
    reserved = data.get("reserveStock")
    if reserved is not None and reserved.get("__typename") != "Reservation":
        return f"rejected {reserved.get('code')}"
    served = (body.get("extensions") or {}).get("consistency", {}).get("servedBy")
    return "accepted" if served in (None, "leader", "replica") else "unexpected"


def replica_share(api: BenchApi, key: str, skus: list[str]) -> float:
    served = []
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as client:
        for sku in skus[:50]:
            body = client.post(api.url + "/graphql", json={
                "query": LEVEL % "@boundedStaleness(maxMs: 1000)",
                "variables": {"s": sku, "c": "WH"}}).json()
            served.append(body["extensions"]["consistency"]["servedBy"])
    return served.count("replica") / len(served)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="inventory-bench-distributed-"))
    os.chmod(folder, 0o755)  # PostgreSQL runs as `postgres`
    clusters: dict[str, Cluster] = {}
    apis: dict[str, BenchApi] = {}
    results: dict[str, dict[str, list[dict]]] = {}
    try:
        for name, nodes in (("1 node", 1), ("3 nodes", 3)):
            say(f"Starting a {name} cluster ...")
            clusters[name] = Cluster.up(folder / name.replace(" ", "-"), nodes,
                                        out=lambda s: None)
        prepared = {}
        for name, cluster in clusters.items():
            say(f"Preparing the API and {ITEMS} stocked items on the {name} cluster ...")
            prepared[name] = prepare(cluster, folder, name.replace(" ", "-"))
            apis[name] = prepared[name][0]
        say(f"Replica share of bounded reads on 3 nodes: "
            f"{replica_share(*prepared['3 nodes']):.0%}")
        for repeat in range(args.repeats):
            order = list(prepared) if repeat % 2 == 0 else list(reversed(prepared))
            for kind in ("reserve", "read", "bounded read"):
                for name in order:
                    api, key, skus = prepared[name]
                    tally = run(closed_loop(api.url + "/graphql",
                                            {"Authorization": f"Bearer {key}"}, args.clients,
                                            args.seconds, scenario_body(kind, skus), classify))
                    summary = tally.summary()
                    results.setdefault(kind, {}).setdefault(name, []).append(summary)
                    say(f"  repeat {repeat + 1} {kind:12} {name:7}: "
                        f"{summary['accepted_rps']:7.1f}/s p50 {summary['p50_ms']} ms "
                        f"p99 {summary['p99_ms']} ms {summary['outcomes']}")
    finally:
        for api in apis.values():
            api.stop()
        for cluster in clusters.values():
            cluster.down(out=lambda s: None)
        shutil.rmtree(folder, ignore_errors=True)
    say(f"\nThroughput (accepted/s, {args.clients} clients, {args.seconds:g} s each, "
        f"median [min-max] of {args.repeats}):")
    say(f"{'scenario':14} {'1 node':>22} {'3 nodes':>22} {'3 nodes / 1 node':>17}")
    for kind, by_target in results.items():
        cells, medians = [], []
        for name in ("1 node", "3 nodes"):
            rates = [r["accepted_rps"] for r in by_target[name]]
            medians.append(statistics.median(rates))
            cells.append(f"{medians[-1]:7.0f} [{min(rates):.0f}-{max(rates):.0f}]")
        say(f"{kind:14} {cells[0]:>22} {cells[1]:>22} {medians[1] / medians[0]:16.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
