"""Configuration files of the cluster's processes: etcd's command line and one
Patroni file per node (JSON, which is YAML too).

The timings suit a test and development cluster on one machine (measured in
docs/distributed.md): a short leader lease, a one-second loop, no replication
slots (they lengthened the write pause after a failover), and a killed
postmaster failed over rather than restarted in place."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                     "/usr/lib/postgresql/17/bin")
APP_USER = "inventory"
APP_DATABASE = "inventory"
REPLICATION_USER = "replicator"
SUPERUSER = "postgres"


def postgres_bin_dir() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (Path(candidate) / "postgres").exists():
            return Path(candidate)
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise FileNotFoundError(
        "PostgreSQL server binaries not found (looked in "
        + ", ".join(PG_BIN_CANDIDATES) + "); run scripts/bootstrap as root, which installs "
        "the Debian packages postgresql, patroni, etcd-server and etcd-client")


@dataclass(frozen=True)
class NodePorts:
    name: str
    pg_port: int
    rest_port: int


def socket_dir(node_dir: Path) -> str:
    """The node's own folder, unless its socket path would pass the 107-byte limit
    of a Unix socket path (the port in the name keeps /tmp's unique)."""
    return str(node_dir) if len(str(node_dir)) < 80 else "/tmp"


def etcd_command(data_dir: Path, client_port: int, peer_port: int, token: str) -> list[str]:
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return [
        shutil.which("etcd") or "etcd",
        "--name", "etcd0", "--data-dir", str(data_dir),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"etcd0={peer}", "--initial-cluster-state", "new",
        "--initial-cluster-token", token, "--log-level", "warn",
    ]


def patroni_config(*, scope: str, node: NodePorts, node_dir: Path, etcd_port: int,
                   passwords: dict[str, str], bin_dir: Path, synchronous: bool = True) -> dict:
    """Patroni 3.0 settings for one node (docs/distributed.md). `synchronous` off
    only for a one-node cluster (a baseline for benchmarks): with no standby,
    strict synchronous mode would hold every commit."""
    hba = [
        "local all all peer",
        f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
        "host all all 127.0.0.1/32 scram-sha-256",
    ]
    return {
        "scope": scope,
        "namespace": "/inventory/",
        "name": node.name,
        "log": {"level": "WARNING", "dir": str(node_dir), "file_num": 2},
        "restapi": {"listen": f"127.0.0.1:{node.rest_port}",
                    "connect_address": f"127.0.0.1:{node.rest_port}"},
        # etcd 3.4 serves only the v3 API, which Patroni's `etcd3` section speaks.
        "etcd3": {"hosts": f"127.0.0.1:{etcd_port}"},
        "bootstrap": {
            "dcs": {
                # ttl >= loop_wait + 2 x retry_timeout, or the leader loses its
                # lease while it is still retrying.
                "ttl": 10, "loop_wait": 1, "retry_timeout": 4,
                "maximum_lag_on_failover": 1048576,
                # An acknowledged commit is on the leader and on a synchronous standby;
                # strict: with no standby, commits wait rather than go unreplicated.
                "synchronous_mode": synchronous, "synchronous_mode_strict": synchronous,
                # A crashed leader postmaster is failed over, not restarted in place.
                "primary_start_timeout": 0,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": False,
                    "parameters": {
                        "wal_log_hints": "on",
                        "wal_retrieve_retry_interval": "500ms",
                        "max_connections": 200,
                        "max_wal_senders": 10,
                        "hot_standby": "on",
                        # Standbys report their position often: replica lag measured
                        # from the primary stays fresh.
                        "wal_receiver_status_interval": "1s",
                        "hot_standby_feedback": "on",
                    },
                },
            },
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{node.pg_port}",
            "connect_address": f"127.0.0.1:{node.pg_port}",
            "data_dir": str(node_dir / "data"),
            "bin_dir": str(bin_dir),
            "pgpass": str(node_dir / "pgpass"),
            "pg_hba": hba,
            "authentication": {
                "superuser": {"username": SUPERUSER, "password": passwords["superuser"]},
                "replication": {"username": REPLICATION_USER,
                                "password": passwords["replication"]},
                "rewind": {"username": SUPERUSER, "password": passwords["superuser"]},
            },
            "parameters": {"unix_socket_directories": socket_dir(node_dir)},
        },
        "watchdog": {"mode": "off"},
        "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False,
                 "nosync": False},
    }


def write_patroni_config(path: Path, config: dict) -> None:
    path.write_text(json.dumps(config, indent=2) + "\n")
