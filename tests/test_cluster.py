"""The service on a replicated cluster: a 3-node Patroni/etcd cluster started once
for this module by `inventory cluster up` (as users start it), faults injected
by the chaos tool's cluster faults, every write checked on the new leader."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from inventory.chaos.runner import ChaosConfig, ChaosStack, run_chaos, summary
from inventory.cluster import Cluster
from inventory.db import migrate

from .live_support import WsClient
from .support import ROOT


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inventory.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster():
    # Under /tmp, not pytest's private tmp folder: PostgreSQL runs as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="inventory-cluster-test-"))
    os.chmod(folder, 0o755)
    up = _cli("cluster", "up", "--nodes", "3", "--dir", str(folder / "c"))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "INVENTORY_DATABASE_URL='postgresql+psycopg://" in up.stdout, up.stdout
        assert "target_session_attrs=read-write" in up.stdout
        assert "INVENTORY_READ_DATABASE_URL=" in up.stdout
        yield Cluster.load(folder / "c")
    finally:
        down = _cli("cluster", "down", "--dir", str(folder / "c"))
        shutil.rmtree(folder, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr


def test_status_shows_a_leader_and_a_synchronous_standby(cluster):
    result = _cli("cluster", "status", "--dir", str(cluster.dir))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("node")]
    roles = sorted(row[1] for row in rows[1:])  # rows[0] is the header
    assert roles == ["leader", "replica", "sync_standby"], result.stdout
    assert "replay lag ms" in result.stdout


async def test_service_keeps_serving_across_leader_kills_and_loses_no_acknowledged_write(
        cluster, graphql):
    """Two API processes with the multi-host URL; the leader's postmaster is
    SIGKILLed while clients write; every acknowledged write must be on the new
    leader exactly once, and the same processes keep serving afterwards."""
    config = ChaosConfig(duration_s=14, clients=6, api_processes=2, backend_kill_s=0,
                         db_restart_s=0, api_kill_s=0, grace_s=30, seed=13, progress_s=5,
                         cluster=cluster, cluster_fault_s=4,
                         cluster_faults=("leader postgres SIGKILL",))
    with ChaosStack(config) as stack:
        leader_before = cluster.leader()
        result = await run_chaos(stack, config)
        report = summary(result)
        print(report)
        assert result.violations == [], report
        faults = result.cluster_faults
        assert faults.leader_failovers() >= 1, report
        assert cluster.leader() != leader_before or faults.leader_failovers() >= 2, report
        # The check above covers writes acknowledged on both sides of a leader
        # kill (how many depends on how busy the machine is, not on the service).
        acknowledged = [c.done_at for c in result.state.calls if c.outcome == "ok" and c.done_at]
        first_fault = faults.records[0].at
        assert any(t < first_fault for t in acknowledged), report
        assert any(t > first_fault for t in acknowledged), report
        # Probe commits went through after the last failover: writes resumed.
        last_fault = faults.records[-1].at
        assert any(t > last_fault for t in faults.commits), report

        # The same API processes, never restarted, serve a write and a read.
        for process in stack.apis:
            client = graphql(process, api_key=stack.api_key)
            response = await client.post(
                "mutation($i: ReceiveStockInput!) { receiveStock(input: $i) { "
                "__typename ... on StockLevel { onHand } } }",
                {"i": {"sku": result.state.skus[0], "locationCode": result.state.locations[0],
                       "quantity": 1}})
            body = response.json()
            assert body["data"]["receiveStock"]["__typename"] == "StockLevel", body
            ready = await client.http("GET", "/readyz")
            assert ready.status_code == 200, ready.text


@pytest.fixture(scope="module")
def cluster_api(cluster, start_api_server):
    """One API process on the cluster: writes and strong reads on the leader,
    bounded-staleness reads on the standbys."""
    migrate.upgrade(cluster.writer_url)
    with start_api_server("cluster-api", database_url=cluster.writer_url,
                          INVENTORY_READ_DATABASE_URL=cluster.reader_url) as server:
        yield server


@pytest.fixture
def capi(cluster_api, graphql):
    """The GraphQL client on the cluster's API process."""
    return graphql(cluster_api)


BOUNDED_LEVEL = """query($sku: String!, $code: String!, $ms: Int!) @boundedStaleness(maxMs: $ms) {
  stockLevel(sku: $sku, locationCode: $code) { onHand } }"""


async def test_a_bounded_staleness_read_never_returns_data_older_than_its_bound(cluster, capi):
    """A writer adds 1 unit at a time; readers read with a bound of B ms. Every read
    must show at least every unit acknowledged more than B ms before it was sent.
    Once the standbys apply WAL only 2 s after its commit, their data is older
    than B and the leader must serve instead."""
    bound_ms = 300
    sku, code = await capi.item(), await capi.location()
    await capi.receive(sku, code, 1)
    acks: list[tuple[float, int]] = []  # (acknowledged at, onHand after)
    reads: list[tuple[float, int, dict, str]] = []  # (sent at, onHand, consistency, phase)
    phase = "replaying"
    stop = asyncio.Event()

    async def writer():
        while not stop.is_set():
            level = await capi.receive(sku, code, 1)
            acks.append((time.monotonic(), level["onHand"]))

    async def reader():
        while not stop.is_set():
            sent, current = time.monotonic(), phase
            body = await capi.raw(BOUNDED_LEVEL, {"sku": sku, "code": code, "ms": bound_ms})
            assert "errors" not in body, body
            reads.append((sent, body["data"]["stockLevel"]["onHand"],
                          body["extensions"]["consistency"], current))
            await asyncio.sleep(0.01)

    async def wait_for(condition, timeout=20) -> None:
        """Until `condition` or the timeout; the checks below say what was missing."""
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(writer())] + [asyncio.create_task(reader()) for _ in range(3)]
    try:
        await wait_for(lambda: sum(1 for r in reads if r[2]["servedBy"] == "replica") >= 20
                       and len(acks) >= 20)
        cluster.set_replay_delay(2000)
        phase = "delayed"
        # Patroni reloads every standby within a loop or two (loop_wait 1 s).
        delayed_at = time.monotonic() + 3
        await wait_for(lambda: sum(1 for r in reads if r[0] > delayed_at) >= 20)
    finally:
        cluster.set_replay_delay(0)
        stop.set()
        await asyncio.gather(*tasks)

    acks.sort()
    for sent, on_hand, served, _phase in reads:
        assert served["stalenessMs"] <= bound_ms, served
        due = [n for at, n in acks if at <= sent - bound_ms / 1000]
        if due:
            assert on_hand >= max(due), (f"read sent at {sent:.3f} saw {on_hand}, but "
                                         f"{max(due)} was acknowledged > {bound_ms} ms before")
    # Standbys 2 s behind: every read sent well after the change went to the leader.
    late = [r for r in reads if r[0] > delayed_at]
    assert late and all(r[2]["servedBy"] == "leader" for r in late), late[:5]
    replica_reads = [r for r in reads if r[2]["servedBy"] == "replica"]
    assert len(replica_reads) >= 20


async def test_strong_reads_on_the_cluster_are_served_by_the_leader(cluster, capi):
    sku, code = await capi.item(), await capi.location()
    await capi.receive(sku, code, 5)
    body = await capi.raw("query($sku: String!, $code: String!) { stockLevel(sku: $sku, "
                          "locationCode: $code) { onHand } }", {"sku": sku, "code": code})
    assert body["data"]["stockLevel"]["onHand"] == 5
    assert body["extensions"]["consistency"] == {"servedBy": "leader", "stalenessMs": 0}


async def test_without_a_writer_mutations_are_unavailable_and_readyz_503_until_one_is_back(
        cluster, cluster_api, graphql):
    """Maintenance mode keeps Patroni from failing over while the leader's
    PostgreSQL is down: no node accepts writes. Mutations must answer UNAVAILABLE
    with retryAfterMs and /readyz 503 (never a 500); once Patroni may act again, a
    standby is promoted and both recover without restarting the API."""
    mutation = ("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) { __typename "
                "... on UserError { code } ... on TransientError { retryAfterMs } "
                "... on StockLevel { onHand } } }")
    api = graphql(cluster_api)
    sku, code = await api.item(), await api.location()
    variables = {"i": {"sku": sku, "locationCode": code, "quantity": 1}}

    async def attempt() -> tuple[int, str | None, int | None, int]:
        """(HTTP status of a mutation, its code, retryAfterMs, /readyz status)."""
        response = await api.post(mutation, variables)
        body = response.json()
        if response.status_code == 200 and "data" in body and body["data"]:
            payload = body["data"]["receiveStock"]
            found = (payload.get("code"), payload.get("retryAfterMs"))
        else:  # refused before the resolver (the credential lookup needs the database)
            error = body["errors"][0]["extensions"]
            found = (error.get("code"), error.get("retryAfterMs"))
        ready = await api.http("GET", "/readyz")
        return response.status_code, *found, ready.status_code

    status, code_seen, _, ready = await attempt()
    assert (status, code_seen, ready) == (200, None, 200)
    cluster.set_maintenance(True)
    leader = cluster.leader()
    try:
        assert cluster.kill_postgres(leader)
        outage: list[tuple] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(outage) < 3:
            seen = await attempt()
            assert seen[0] in (200, 503) and seen[3] in (200, 503), seen  # never a 500
            if seen[1] == "UNAVAILABLE":
                outage.append(seen)
        assert len(outage) == 3, outage
        for _status, _code, retry_after_ms, ready in outage:
            assert retry_after_ms and retry_after_ms > 0
            assert ready == 503
    finally:
        cluster.set_maintenance(False)
    deadline = time.monotonic() + 60
    while True:
        seen = await attempt()
        assert seen[0] in (200, 503) and seen[3] in (200, 503), seen
        if seen[1] is None and seen[3] == 200:
            break
        assert time.monotonic() < deadline, f"no recovery in 60 s: {seen}"
        await asyncio.sleep(0.2)
    cluster.wait_ready(90)  # whole again for the tests that follow


async def test_a_subscription_receives_every_acknowledged_change_across_a_failover(
        cluster, cluster_api, start_api_server, graphql):
    """Subscribed on one API process, written through another: the leader's
    PostgreSQL is SIGKILLed between writes. The subscriber's change feed must
    reconnect to the new leader and catch up, so that every acknowledged change
    arrives, once and in order."""
    try:
        with start_api_server("cluster-writer", database_url=cluster.writer_url) \
                as writer_server:
            api, writer = graphql(cluster_api), graphql(writer_server)
            probe = (await api.item(), await api.location())
            await api.receive(*probe, 1)
            sku, code = await api.item(), await api.location()
            acknowledged: dict[int, int] = {}  # version -> onHand, as the writer was told

            async def write(n: int) -> None:
                """receiveStock of 1 with a key, retried with that key until acknowledged."""
                variables = {"i": {"sku": sku, "locationCode": code, "quantity": 1,
                                   "idempotencyKey": f"failover-sub-{sku}-{n}"}}
                deadline = time.monotonic() + 60
                while True:
                    try:
                        response = await writer.post(
                            "mutation($i: ReceiveStockInput!) { receiveStock(input: "
                            "$i) { __typename ... on UserError { code } "
                            "... on StockLevel { onHand version } } }", variables)
                        assert response.status_code in (200, 503), response.text
                        payload = (response.json().get("data") or {}).get("receiveStock") or {}
                        if payload.get("__typename") == "StockLevel":
                            acknowledged[payload["version"]] = payload["onHand"]
                            return
                        assert payload.get("code") in (None, "UNAVAILABLE", "RESULT_UNKNOWN",
                                                       "TRANSACTION_CONFLICT"), payload
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, f"write {n} never acknowledged"
                    await asyncio.sleep(0.2)

            async with WsClient(cluster_api.url) as ws:
                await ws.subscribe_ready(probe, {"skus": [sku]})
                for n in range(10):
                    await write(n)
                old_leader = cluster.leader()
                assert await asyncio.to_thread(cluster.kill_postgres, old_leader)
                for n in range(10, 20):
                    await write(n)
                assert await asyncio.to_thread(cluster.wait_leader, 60, old_leader)
                for n in range(20, 25):
                    await write(n)
                received = [(c["version"], c["onHand"]) for c in await ws.changes(
                    len(acknowledged), timeout=30)]
                # Nothing twice: a change written after them is the next event.
                await write(25)
                (marker,) = await ws.changes(1, timeout=30)
        assert received == sorted(acknowledged.items())[:25], received
        assert len(received) == 25
        assert (marker["version"], marker["onHand"]) == max(acknowledged.items())
    finally:
        await asyncio.to_thread(cluster.wait_ready, 90)
