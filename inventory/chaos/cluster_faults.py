"""Faults of a replicated cluster (inventory/cluster) and what they cost.

One fault at a time, each after the cluster is whole again: SIGKILL of the
leader's PostgreSQL, SIGKILL of the leader's Patroni (its PostgreSQL keeps
running until Patroni, restarted as a supervisor would, demotes it), a planned
switchover, and a standby killed (Patroni and PostgreSQL) and started again.

A probe commits a replicated transaction every 20 ms through the multi-host
URL; the write pause of a fault is the gap between the last commit
before it and the first after it. A sampler reads the standbys' replay lag from
the leader's `pg_stat_replication`.
"""
from __future__ import annotations

import asyncio
import logging
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg

from ..cluster import Cluster, ClusterError

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.02
PROBE_TIMEOUT_S = 1.0  # a zombie primary's commit waits forever for its standby
LEADER_FAULTS = ("leader postgres SIGKILL", "leader patroni SIGKILL", "switchover")
STANDBY_FAULT = "standby killed and rejoined"
FAULT_KINDS = LEADER_FAULTS + (STANDBY_FAULT,)


@dataclass
class FaultRecord:
    kind: str
    node: str
    at: float  # time.monotonic() just before the fault
    new_leader: str | None = None
    pause_s: float | None = None  # as a new client sees it (the probe)
    workload_pause_s: float | None = None  # between acknowledged workload writes


@dataclass
class ClusterFaults:
    cluster: Cluster
    writer_conninfo: str  # libpq, every host, target_session_attrs=read-write
    rng: random.Random
    kinds: tuple[str, ...] = FAULT_KINDS
    injected: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    records: list[FaultRecord] = field(default_factory=list)
    commits: list[float] = field(default_factory=list)  # probe commit times
    probe_errors: Counter = field(default_factory=Counter)
    lag_ms: list[float] = field(default_factory=list)  # replay lag samples, every standby

    # ---- faults ---------------------------------------------------------------------

    def _leader(self) -> str:
        return self.cluster.wait_leader(60)

    def kill_leader_postgres(self) -> FaultRecord:
        leader = self._leader()
        record = FaultRecord("leader postgres SIGKILL", leader, time.monotonic())
        if not self.cluster.kill_postgres(leader):
            raise ClusterError(f"no postmaster to kill on {leader}")
        record.new_leader = self.cluster.wait_leader(60, other_than=leader)
        return record

    def kill_leader_patroni(self) -> FaultRecord:
        leader = self._leader()
        record = FaultRecord("leader patroni SIGKILL", leader, time.monotonic())
        if not self.cluster.kill_patroni(leader):
            raise ClusterError(f"no Patroni to kill on {leader}")
        try:
            # The lease expires (ttl) and a standby is promoted; meanwhile the old
            # primary still accepts connections, its commits waiting for a standby.
            record.new_leader = self.cluster.wait_leader(60, other_than=leader)
        finally:
            self.cluster.start_patroni(leader)  # as a supervisor would; it demotes the old primary
        return record

    def switchover(self) -> FaultRecord:
        leader = self._leader()
        record = FaultRecord("switchover", leader, time.monotonic())
        record.new_leader = self.cluster.switchover()
        return record

    def kill_standby(self) -> FaultRecord:
        leader = self._leader()
        standbys = [n.name for n in self.cluster.nodes if n.name != leader]
        # The synchronous standby when there is one: its loss holds commits until
        # Patroni names another.
        sync = [n for n in self.cluster.sync_standbys() if n in standbys]
        node = sync[0] if sync else self.rng.choice(standbys)
        record = FaultRecord(STANDBY_FAULT, node, time.monotonic())
        self.cluster.kill_patroni(node)
        self.cluster.kill_postgres(node)
        time.sleep(self.rng.uniform(0.5, 1.5))
        self.cluster.start_patroni(node)
        record.new_leader = leader
        return record

    def inject(self, kind: str) -> FaultRecord:
        action = {"leader postgres SIGKILL": self.kill_leader_postgres,
                  "leader patroni SIGKILL": self.kill_leader_patroni,
                  "switchover": self.switchover, STANDBY_FAULT: self.kill_standby}[kind]
        return action()

    async def run(self, stop_at: float, interval_s: float, out=None) -> None:
        """Faults in turn until `stop_at` (loop time), each once the cluster is whole."""
        loop = asyncio.get_running_loop()
        order = list(self.kinds)
        self.rng.shuffle(order)
        turn = 0
        while True:
            await asyncio.sleep(interval_s * self.rng.uniform(0.7, 1.3))
            if loop.time() + interval_s / 2 >= stop_at:  # leave time to see writes resume
                return
            kind = order[turn % len(order)]
            turn += 1
            try:
                await asyncio.to_thread(self.cluster.wait_ready, 90)
                record = await asyncio.to_thread(self.inject, kind)
            except Exception as error:  # reported, not fatal: the run goes on
                self.errors[f"{kind}: {type(error).__name__}"] += 1
                log.warning("cluster fault %s failed: %s", kind, error)
                continue
            self.records.append(record)
            self.injected[kind] += 1
            if out:
                out(f"  fault: {kind} on {record.node}; leader now {record.new_leader}")

    # ---- measurements ---------------------------------------------------------------

    async def probe(self, stop: asyncio.Event) -> None:
        """Commits a transactional WAL message (a transaction that wrote WAL, so its
        commit waits for the synchronous standby like any write; a bare transaction
        id would commit without waiting) in a loop, reconnecting as needed, until
        `stop` is set."""
        conn: psycopg.AsyncConnection | None = None
        while not stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = await asyncio.wait_for(psycopg.AsyncConnection.connect(
                        self.writer_conninfo, autocommit=True, connect_timeout=1,
                        application_name="inventory-chaos-probe"), PROBE_TIMEOUT_S * 2)
                await asyncio.wait_for(conn.execute(
                    "SELECT pg_logical_emit_message(true, 'inventory-chaos-probe', '')"),
                    PROBE_TIMEOUT_S)
                self.commits.append(time.monotonic())
            except (asyncio.TimeoutError, psycopg.Error, OSError) as error:
                self.probe_errors[getattr(error, "sqlstate", None) or type(error).__name__] += 1
                if conn is not None:
                    await _close_quietly(conn)
                conn = None
                await asyncio.sleep(PROBE_INTERVAL_S)
                continue
            await asyncio.sleep(PROBE_INTERVAL_S)
        if conn is not None:
            await _close_quietly(conn)

    async def sample_lag(self, stop_at: float, interval_s: float = 0.25) -> None:
        """Replay lag of every standby, as the leader sees it (pg_stat_replication)."""
        loop = asyncio.get_running_loop()
        while loop.time() < stop_at:
            await asyncio.sleep(interval_s)
            try:
                leader = await asyncio.to_thread(self.cluster.leader)
                if leader is None:
                    continue
                async with await psycopg.AsyncConnection.connect(
                        self.cluster.superuser_dsn(leader), autocommit=True,
                        connect_timeout=1) as conn:
                    cursor = await conn.execute(
                        "SELECT 1000 * extract(epoch FROM replay_lag) FROM pg_stat_replication "
                        "WHERE replay_lag IS NOT NULL")
                    self.lag_ms += [float(lag) for (lag,) in await cursor.fetchall()]
            except (psycopg.Error, OSError, ClusterError):
                continue

    def compute_pauses(self, acknowledged: list[float] = ()) -> None:
        """Each fault's write pause: the longest gap, from the last commit before
        the fault until the next fault, between the probe's commits (a client
        that connects afresh) and between acknowledged workload writes (clients
        of the API, whose pooled connections may sit on a fenced-off primary)."""
        starts = [r.at for r in self.records] + [float("inf")]
        for record, end in zip(self.records, starts[1:]):
            record.pause_s = _longest_gap(self.commits, record.at, end)
            record.workload_pause_s = _longest_gap(acknowledged, record.at, end)

    def report(self, acknowledged: list[float] = ()) -> list[str]:
        """Summary lines; `acknowledged`: when each acknowledged workload write was."""
        self.compute_pauses(acknowledged)
        lines = []
        for label, attribute in (("probe", "pause_s"), ("workload", "workload_pause_s")):
            for kind in FAULT_KINDS:
                pauses = [getattr(r, attribute) for r in self.records
                          if r.kind == kind and getattr(r, attribute) is not None]
                if pauses:
                    lines.append(f"  write pause after {kind} ({label}): n={len(pauses)} p50="
                                 f"{statistics.median(pauses):.2f}s max={max(pauses):.2f}s "
                                 f"({', '.join(f'{p:.2f}' for p in pauses)})")
        failovers = sum(1 for r in self.records if r.kind in LEADER_FAULTS
                        and r.new_leader and r.new_leader != r.node)
        lines.insert(0, f"Leader changes: {failovers}; probe commits {len(self.commits)}, "
                        f"probe errors: " + (", ".join(
                            f"{k}={v}" for k, v in self.probe_errors.most_common()) or "none"))
        if self.lag_ms:
            lag = sorted(self.lag_ms)
            lines.append(f"  replica replay lag (pg_stat_replication, {len(lag)} samples): "
                         f"p50={statistics.median(lag):.1f}ms "
                         f"p99={lag[int(0.99 * (len(lag) - 1))]:.1f}ms max={lag[-1]:.1f}ms")
        return lines

    def leader_failovers(self) -> int:
        return sum(1 for r in self.records if r.kind in LEADER_FAULTS
                   and r.new_leader and r.new_leader != r.node)


def _longest_gap(times, start: float, end: float) -> float | None:
    ordered = sorted(times)
    before = [t for t in ordered if t <= start]
    after = [t for t in ordered if start < t < end]
    if not before or not after:
        return None
    window = [before[-1], *after]
    return max(b - a for a, b in zip(window, window[1:]))


async def _close_quietly(conn: psycopg.AsyncConnection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 1)
    except Exception:
        pass
