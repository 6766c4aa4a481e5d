"""`inventory chaos`: the workload plus faults against a private stack (its own
embedded PostgreSQL, or with --cluster its own Patroni cluster, in a temporary
folder, and its own API processes), then the checks. Never touches another
server: every process it kills is its own."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..web.process import ApiProcess as BaseApiProcess
from ..auth.keys import create_key
from ..auth.principal import ALL_SCOPES
from ..db import embedded, migrate
from ..db.engine import create_sync_engine, libpq_conninfo
from ..service.context import DEFAULT_TENANT_ID
from .checker import CheckReport, check
from .cluster_faults import FAULT_KINDS, ClusterFaults
from .faults import Faults
from .workload import Workload, WorkloadState, auth_headers

SWEEP_INTERVAL_S = 0.5
INITIAL_STOCK = 8  # low, so reservations and transfers do run short (INSUFFICIENT_STOCK)
BACKORDER_LIMIT = 6  # of every other item's levels
# Rate limits stay ON (the limiter runs on every request, under faults too) but
# far above what the workload can send, so a 429 is never expected: the workload
# counts it as a violation. Callers override them (bench/overload.py turns them off).
RATE_LIMIT_ENV = {"INVENTORY_RATE_READ": "100000", "INVENTORY_RATE_WRITE": "100000"}


def create_client_key(engine, name: str) -> tuple[str, str]:
    """An all-scopes API key for the default tenant, stored in the database of
    `engine`; returns (the actor its ledger rows carry, the key to send)."""
    with engine.begin() as conn:
        key_id, key = create_key(conn, DEFAULT_TENANT_ID, list(ALL_SCOPES), name)
    return f"key:{key_id}", key


class ApiProcess(BaseApiProcess):
    """An API process of the chaos stack: fast sweeps and a short pool timeout so
    faults surface quickly, rate limits high (see RATE_LIMIT_ENV)."""

    defaults = {**BaseApiProcess.defaults,
                "INVENTORY_SWEEP_INTERVAL": str(SWEEP_INTERVAL_S),
                "INVENTORY_POOL_TIMEOUT": "2", **RATE_LIMIT_ENV}


@dataclass
class ChaosConfig:
    duration_s: float = 60
    clients: int = 16
    api_processes: int = 2
    items: int = 12
    locations: int = 3
    backend_kill_s: float = 0.3  # mean interval between faults; 0 disables a fault
    db_restart_s: float = 20
    api_kill_s: float = 15
    grace_s: float = 30  # how long unresolved calls keep retrying after the end
    seed: int | None = None
    progress_s: float = 5
    # A replicated cluster instead of the embedded server: `cluster` is one already
    # running (the tests'), else `cluster_nodes` > 0 starts a private one.
    cluster: object | None = None
    cluster_nodes: int = 0
    cluster_fault_s: float = 0  # mean interval between cluster faults; 0: none
    cluster_faults: tuple[str, ...] = FAULT_KINDS


@dataclass
class ChaosResult:
    state: WorkloadState
    faults: Faults
    checks: CheckReport
    elapsed_s: float
    violations: list[str] = field(default_factory=list)
    cluster_faults: ClusterFaults | None = None


class ChaosStack:
    """Private database + API processes, torn down on exit."""

    def __init__(self, config: ChaosConfig):
        self.config = config
        self.folder = tempfile.TemporaryDirectory(prefix="inventory-chaos-")
        self.server = None
        self.cluster = None
        self.own_cluster = False
        self.apis: list[ApiProcess] = []

    def __enter__(self) -> "ChaosStack":
        try:
            return self._start()
        except BaseException:
            self.__exit__()  # a half-started stack must not leave a server running
            raise

    def _start(self) -> "ChaosStack":
        root = Path(self.folder.name)
        os.chmod(root, 0o755)  # the server may run as its own system user
        if self.config.cluster is not None or self.config.cluster_nodes:
            from ..cluster import Cluster

            self.cluster = self.config.cluster
            if self.cluster is None:
                self.own_cluster = True
                self.cluster = Cluster.up(root / "cluster", self.config.cluster_nodes,
                                          out=lambda s: print(s, flush=True))
            self.url = self.cluster.writer_url
        else:
            self.url, self.server = embedded.start(root / "db")
        self.libpq_url = libpq_conninfo(self.url)
        migrate.upgrade(self.url)
        self.engine = create_sync_engine(self.url)
        # The workload's credential: every request sends it, every acknowledged
        # write's ledger rows must name it (checker.py).
        self.actor, self.api_key = create_client_key(self.engine, "chaos workload")
        self.apis = [ApiProcess(self.url, root / f"api{i}.log")
                     for i in range(self.config.api_processes)]
        for api in self.apis:
            api.start()
        return self

    def __exit__(self, *exc) -> None:
        for api in self.apis:
            api.stop()
        if getattr(self, "engine", None):
            self.engine.dispose()
        if self.server is not None:
            try:
                embedded.stop(self.server)
            except Exception:
                pass  # already stopped
        if self.own_cluster and self.cluster is not None:
            self.cluster.down(out=lambda _: None)
        self.folder.cleanup()


async def _setup(urls: list[str], config: ChaosConfig, tag: str, api_key: str) -> WorkloadState:
    """Items and locations, each level stocked, through the API itself."""
    skus = [f"CH-{tag}-{i}" for i in range(config.items)]
    codes = [f"L{tag}-{j}" for j in range(config.locations)]
    async with httpx.AsyncClient(timeout=30, headers=auth_headers(api_key)) as client:
        async def gql(query: str, variables: dict) -> dict:
            response = await client.post(urls[0] + "/graphql",
                                         json={"query": query, "variables": variables})
            body = response.json()
            assert "errors" not in body, body
            return body["data"]

        for code in codes:
            await gql("mutation($i: CreateLocationInput!) { createLocation(input: $i) "
                      "{ __typename } }", {"i": {"code": code, "name": code}})
        for n, sku in enumerate(skus):
            # Every other item takes backorders: reservations beyond stock, fills
            # as stock comes back, commits refused while units wait.
            await gql("mutation($i: CreateItemInput!) { createItem(input: $i) { __typename } }",
                      {"i": {"sku": sku, "name": sku,
                             "backorderLimit": BACKORDER_LIMIT * (n % 2)}})
            for code in codes:
                await gql("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) "
                          "{ __typename } }",
                          {"i": {"sku": sku, "locationCode": code, "quantity": INITIAL_STOCK}})
    return WorkloadState(skus=skus, locations=codes)


async def run_chaos(stack: ChaosStack, config: ChaosConfig, out=print) -> ChaosResult:
    rng = random.Random(config.seed)
    urls = [api.url for api in stack.apis]
    state = await _setup(urls, config, tag=f"{rng.randrange(16**6):06x}", api_key=stack.api_key)
    workload = Workload(state, lambda: urls, seed=rng.randrange(2**32), api_key=stack.api_key)
    faults = Faults(stack.libpq_url, stack.server, stack.apis, rng)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    stop_at = started + config.duration_s
    fault_tasks = faults.tasks(loop.time() + config.duration_s, config.backend_kill_s,
                               config.db_restart_s if stack.server is not None else 0,
                               config.api_kill_s)
    cluster_faults = None
    probe_stop = asyncio.Event()
    cluster_tasks: list[asyncio.Task] = []
    if stack.cluster is not None:
        cluster_faults = ClusterFaults(stack.cluster, stack.libpq_url, rng,
                                       kinds=tuple(config.cluster_faults))
        end = loop.time() + config.duration_s
        cluster_tasks = [asyncio.create_task(cluster_faults.sample_lag(end))]
        if config.cluster_fault_s > 0:
            cluster_tasks.append(asyncio.create_task(cluster_faults.run(
                end, config.cluster_fault_s, out=out)))
        probe = asyncio.create_task(cluster_faults.probe(probe_stop))
    clients = [asyncio.create_task(workload.client_loop(stop_at, config.grace_s))
               for _ in range(config.clients)]

    def line() -> str:
        o = state.outcomes
        return (f"[{time.monotonic() - started:5.0f}s] ops ok={o['ok']} failed={o['failed']} "
                f"unresolved={o['unresolved']} indeterminate attempts="
                f"{sum(state.indeterminate.values())} | faults "
                + ", ".join(f"{k}={n}" for k, n in sorted(
                    (faults.injected + (cluster_faults.injected if cluster_faults
                                        else Counter())).items()))
                + f" | violations={len(state.violations)}")

    while not all(t.done() for t in clients):
        await asyncio.wait(clients, timeout=config.progress_s)
        out(line())
    for task in fault_tasks + cluster_tasks + clients:
        await task  # surfaces any crash of the harness itself
    if stack.cluster is not None:  # the checks read the leader: wait for a whole cluster
        await asyncio.to_thread(stack.cluster.wait_ready, 90)
        await asyncio.sleep(1)  # the probe sees writes resume after the last fault
        probe_stop.set()
        await probe
    out("workload done; waiting for the sweeper, then checking ...")
    # Let every API process sweep: reservations of the last second must expire.
    await asyncio.sleep(1 + 3 * SWEEP_INTERVAL_S)
    checks = await asyncio.to_thread(
        check, stack.engine, state.calls, overdue_grace_s=2 * SWEEP_INTERVAL_S + 1,
        actor=stack.actor)
    return ChaosResult(state, faults, checks, time.monotonic() - started,
                       violations=state.violations + checks.violations,
                       cluster_faults=cluster_faults)


def summary(result: ChaosResult) -> str:
    s = result.state
    by_op: dict[str, dict[str, int]] = {}
    for call in s.calls:
        by_op.setdefault(call.op, {}).setdefault(call.outcome, 0)
        by_op[call.op][call.outcome] += 1
    codes: dict[str, int] = {}
    for call in s.calls:
        if call.code:
            codes[call.code] = codes.get(call.code, 0) + 1
    lines = [
        f"Chaos run: {result.elapsed_s:.0f}s, {len(s.calls)} operations "
        f"({len(s.calls) / max(result.elapsed_s, 1):.0f}/s), "
        f"{s.observed_quantities} responses checked for negative quantities",
        "Operations by outcome: " + ", ".join(f"{k}={v}" for k, v in sorted(s.outcomes.items())),
    ]
    lines += [f"  {op}: " + ", ".join(f"{k}={v}" for k, v in sorted(o.items()))
              for op, o in sorted(by_op.items())]
    lines += [
        "Typed failures: " + (", ".join(f"{k}={v}" for k, v in sorted(codes.items())) or "none"),
        "Indeterminate attempts (retried with the same key): "
        + (", ".join(f"{k}={v}" for k, v in s.indeterminate.most_common()) or "none"),
        "Faults injected: " + (", ".join(f"{k}={v}" for k, v in sorted(
            result.faults.injected.items())) or "none")
        + (f" (failed to inject: {dict(result.faults.errors)})" if result.faults.errors else ""),
        f"Checked: audit of {result.checks.audit_summary}; {result.checks.acknowledged_checked} "
        f"acknowledged writes present exactly once, by {result.checks.actor}; "
        f"unresolved calls applied "
        f"{result.checks.unresolved_applied}, not applied {result.checks.unresolved_not_applied}",
        f"Violations: {len(result.violations)}",
    ]
    if result.cluster_faults is not None:
        cf = result.cluster_faults
        lines.append("Cluster faults: " + (", ".join(
            f"{k}={v}" for k, v in sorted(cf.injected.items())) or "none")
            + (f" (failed: {dict(cf.errors)})" if cf.errors else ""))
        lines += cf.report([c.done_at for c in s.calls if c.outcome == "ok" and c.done_at])
    lines += [f"  VIOLATION {v}" for v in result.violations[:50]]
    return "\n".join(lines)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "chaos", help="fault-injection workload on a private database; exit 1 on violations")
    p.add_argument("--duration", type=float, default=60, help="seconds of workload")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients")
    p.add_argument("--api-processes", type=int, default=2)
    p.add_argument("--backend-kill-interval", type=float, default=0.3,
                   help="mean seconds between pg_terminate_backend calls (0: off)")
    p.add_argument("--db-restart-interval", type=float, default=20,
                   help="mean seconds between database restarts (0: off)")
    p.add_argument("--api-kill-interval", type=float, default=15,
                   help="mean seconds between SIGKILLs of an API process (0: off)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--cluster", action="store_true",
                   help="run on a private Patroni cluster (inventory cluster) instead of the "
                        "embedded server; database restarts are replaced by cluster faults")
    p.add_argument("--nodes", type=int, default=3, help="cluster nodes with --cluster")
    p.add_argument("--cluster-fault-interval", type=float, default=12,
                   help="mean seconds between cluster faults with --cluster (0: off)")
    p.add_argument("--cluster-faults", default=",".join(FAULT_KINDS),
                   help="comma-separated cluster faults to cycle through (default: all: "
                        + ", ".join(FAULT_KINDS) + ")")
    p.set_defaults(func=cmd_chaos)


def cmd_chaos(args: argparse.Namespace) -> int:
    if args.duration <= 0 or args.clients < 1 or args.api_processes < 1:
        print("--duration, --clients and --api-processes must be positive", file=sys.stderr)
        return 2
    kinds = tuple(k.strip() for k in args.cluster_faults.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        print(f"--cluster-faults: unknown {unknown}; choose from {', '.join(FAULT_KINDS)}",
              file=sys.stderr)
        return 2
    config = ChaosConfig(
        duration_s=args.duration, clients=args.clients, api_processes=args.api_processes,
        backend_kill_s=args.backend_kill_interval, db_restart_s=args.db_restart_interval,
        api_kill_s=args.api_kill_interval, seed=args.seed,
        cluster_nodes=args.nodes if args.cluster else 0,
        cluster_fault_s=args.cluster_fault_interval if args.cluster else 0,
        cluster_faults=kinds)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    # SIGTERM unwinds normally so the private database and API processes stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"Starting a private {'Patroni cluster' if args.cluster else 'PostgreSQL'} and "
          f"{config.api_processes} API processes ...", flush=True)
    with ChaosStack(config) as stack:
        print(f"Running {config.clients} clients for {config.duration_s:.0f}s against "
              + ", ".join(api.url for api in stack.apis), flush=True)
        result = asyncio.run(run_chaos(stack, config, out=lambda s: print(s, flush=True)))
    print(summary(result), flush=True)
    return 1 if result.violations else 0
