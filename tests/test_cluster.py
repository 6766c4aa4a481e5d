"""The service on a replicated cluster: a 3-node Patroni/etcd cluster started once
for this module by `inventory cluster up` (as users start it), faults injected
by the chaos tool's cluster faults, every write checked on the new leader."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from inventory.chaos.runner import ChaosConfig, ChaosStack, run_chaos, summary
from inventory.cluster import Cluster

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
        cluster):
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
        acknowledged = [c for c in result.state.calls if c.outcome == "ok"]
        assert len(acknowledged) >= 20, report
        # Probe commits went through after the last failover: writes resumed.
        last_fault = faults.records[-1].at
        assert any(t > last_fault for t in faults.commits), report

        # The same API processes, never restarted, serve a write and a read.
        async with httpx.AsyncClient(timeout=30, headers={
                "Authorization": f"Bearer {stack.api_key}"}) as client:
            for api in stack.apis:
                response = await client.post(api.url + "/graphql", json={
                    "query": "mutation($i: ReceiveStockInput!) { receiveStock(input: $i) { "
                             "__typename ... on StockLevel { onHand } } }",
                    "variables": {"i": {"sku": result.state.skus[0],
                                        "locationCode": result.state.locations[0],
                                        "quantity": 1}}})
                body = response.json()
                assert body["data"]["receiveStock"]["__typename"] == "StockLevel", body
                ready = await client.get(api.url + "/readyz")
                assert ready.status_code == 200, ready.text
