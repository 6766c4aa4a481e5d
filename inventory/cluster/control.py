"""Start, inspect, fault and stop a Patroni/etcd cluster on loopback.

Everything the cluster runs is recorded in `<dir>/cluster.json` (ports, process
ids, passwords), so `status` and `down` work from another process. Processes are
only ever signalled by the ids recorded there, after checking that the process
with that id still runs our own configuration: other clusters, started by other
users of the machine, are never touched. Every port is chosen free when the
cluster starts. PostgreSQL refuses to run as root, so when started as root,
Patroni (and the PostgreSQL it runs) runs as the `postgres` system user; etcd
runs as the caller.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import quote

import httpx
import psycopg
from psycopg import sql

from sqlalchemy.dialects import postgresql

from ..web.process import free_port
from ..db.dialect import staleness_sql
from .config import (APP_DATABASE, APP_USER, SUPERUSER, NodePorts, etcd_command,
                     patroni_config, postgres_bin_dir, write_patroni_config)

STATE_FILE = "cluster.json"
SERVICE_USER = "postgres"
Out = Callable[[str], None]


class ClusterError(Exception):
    """The cluster could not be started, reached or stopped; the message says what
    to do next."""


@dataclass
class NodeStatus:
    name: str
    role: str  # leader, sync_standby, replica, or "down"
    state: str  # Patroni's state (running, streaming, starting, ...) or "down"
    pg_port: int
    timeline: int | None = None
    lag_bytes: int | None = None  # Patroni's view: WAL bytes behind the leader
    replay_lag_ms: float | None = None  # data age on a standby (see replay_lag_sql)


# A node's data age, as bounded-staleness reads measure it (db/dialect.py).
REPLAY_LAG_SQL = staleness_sql(postgresql.dialect())


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Cluster:
    def __init__(self, directory: Path, state: dict):
        self.dir = directory
        self.state = state
        self._children: dict[int, subprocess.Popen] = {}  # reaped when we started them

    # ---- recorded state -------------------------------------------------------------

    @property
    def nodes(self) -> list[NodePorts]:
        return [NodePorts(n["name"], n["pg_port"], n["rest_port"]) for n in self.state["nodes"]]

    def node(self, name: str) -> NodePorts:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ClusterError(f"no node named {name!r} in {self.dir}")

    def _save(self) -> None:
        path = self.dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2) + "\n")
        os.chmod(tmp, 0o600)  # holds the passwords
        tmp.replace(path)

    @classmethod
    def load(cls, directory: Path) -> "Cluster":
        directory = directory.resolve()
        path = directory / STATE_FILE
        if not path.exists():
            raise ClusterError(f"no cluster in {directory} (start one with `inventory cluster "
                               f"up --dir {directory}`)")
        return cls(directory, json.loads(path.read_text()))

    def _url(self, user: str, password: str, database: str, hosts: list[NodePorts],
             **query: str) -> str:
        params = [f"host=127.0.0.1:{node.pg_port}" for node in hosts]
        params += [f"{key}={value}" for key, value in query.items()]
        return (f"postgresql+psycopg://{quote(user)}:{quote(password, safe='')}@/{database}?"
                + "&".join(params))

    @property
    def writer_url(self) -> str:
        """Every node, the one that accepts writes chosen at connect time: after a
        failover, new connections find the new leader."""
        return self._url(APP_USER, self.state["passwords"]["app"], APP_DATABASE, self.nodes,
                         target_session_attrs="read-write")

    @property
    def reader_url(self) -> str:
        """Every node, a standby preferred (the leader when no standby is up);
        connections spread over the standbys where libpq supports it."""
        query = {"target_session_attrs": "prefer-standby"}
        if psycopg.pq.version() >= 160000:
            query["load_balance_hosts"] = "random"
        return self._url(APP_USER, self.state["passwords"]["app"], APP_DATABASE, self.nodes,
                         **query)

    def superuser_dsn(self, name: str, database: str = "postgres") -> str:
        """libpq URL of one node as the superuser (tools and tests, not the service)."""
        node = self.node(name)
        return (f"postgresql://{SUPERUSER}:{quote(self.state['passwords']['superuser'], safe='')}"
                f"@127.0.0.1:{node.pg_port}/{database}")

    def app_dsn(self, name: str) -> str:
        node = self.node(name)
        return (f"postgresql://{APP_USER}:{quote(self.state['passwords']['app'], safe='')}"
                f"@127.0.0.1:{node.pg_port}/{APP_DATABASE}")

    def _node_dir(self, name: str) -> Path:
        return self.dir / name

    def _config_path(self, name: str) -> Path:
        return self._node_dir(name) / "patroni.json"

    # ---- processes ------------------------------------------------------------------

    def _spawn(self, command: list[str], log_path: Path, as_service_user: bool) -> int:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        extra: dict = {}
        if as_service_user and _running_as_root():
            account = pwd.getpwnam(SERVICE_USER)
            extra = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
            env["HOME"] = account.pw_dir
        else:
            env["HOME"] = os.environ.get("HOME", "/")
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env, cwd=str(self.dir),
                                       start_new_session=True, **extra)
        self._children[process.pid] = process
        return process.pid

    def _signal(self, pid: int | None, marker: str, sig: int) -> bool:
        """Signals `pid` only if it is alive and its command line names `marker` (a
        path of this cluster): a recycled process id is left alone."""
        if not _alive(pid) or marker not in _cmdline(pid):
            return False
        os.kill(pid, sig)
        return True

    def _wait_gone(self, pid: int | None, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            child = self._children.get(pid)
            if child is not None:
                child.poll()
            if not _alive(pid):
                return True
            time.sleep(0.05)
        return False

    def _record(self, name: str) -> dict:
        for record in self.state["nodes"]:
            if record["name"] == name:
                return record
        raise ClusterError(f"no node named {name!r} in {self.dir}")

    def patroni_pid(self, name: str) -> int | None:
        pid = self._record(name).get("patroni_pid")
        return pid if _alive(pid) and str(self._config_path(name)) in _cmdline(pid) else None

    def postmaster_pid(self, name: str) -> int | None:
        data_dir = self._node_dir(name) / "data"
        try:
            pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and str(data_dir) in _cmdline(pid) else None

    def start_patroni(self, name: str) -> int:
        node_dir = self._node_dir(name)
        pid = self._spawn(["patroni", str(self._config_path(name))], node_dir / "patroni.out",
                          as_service_user=True)
        self._record(name)["patroni_pid"] = pid
        self._save()
        return pid

    def kill_patroni(self, name: str) -> bool:
        """SIGKILL of the node's Patroni (its PostgreSQL keeps running)."""
        pid = self._record(name).get("patroni_pid")
        killed = self._signal(pid, str(self._config_path(name)), signal.SIGKILL)
        if killed:
            self._wait_gone(pid, 5)
        return killed

    def kill_postgres(self, name: str) -> bool:
        """SIGKILL of the node's postmaster (Patroni sees it die)."""
        pid = self.postmaster_pid(name)
        if pid is None:
            return False
        os.kill(pid, signal.SIGKILL)
        return True

    # ---- Patroni's REST API ---------------------------------------------------------

    def _rest(self, name: str) -> str:
        return f"http://127.0.0.1:{self.node(name).rest_port}"

    def members(self, timeout: float = 2) -> list[dict]:
        """Patroni's view of the members, from the first node that answers."""
        last: Exception | None = None
        for node in self.nodes:
            try:
                response = httpx.get(self._rest(node.name) + "/cluster", timeout=timeout)
                if response.status_code == 200:
                    return response.json().get("members", [])
            except httpx.HTTPError as error:
                last = error
        raise ClusterError(f"no Patroni node answers ({last}); is the cluster up? "
                           f"(`inventory cluster status --dir {self.dir}`)")

    def leader(self) -> str | None:
        try:
            members = self.members()
        except ClusterError:
            return None
        for member in members:
            if member.get("role") == "leader" and member.get("state") == "running":
                return member["name"]
        return None

    def sync_standbys(self) -> list[str]:
        return [m["name"] for m in self.members() if m.get("role") == "sync_standby"]

    def _ready(self, members: list[dict]) -> bool:
        roles = [m.get("role") for m in members]
        running = all(m.get("state") in ("running", "streaming") for m in members)
        return (len(members) == len(self.nodes) and running and roles.count("leader") == 1
                and ("sync_standby" in roles or len(self.nodes) == 1))

    def wait_ready(self, timeout: float = 120, out: Out | None = None,
                   progress_s: float = 5) -> None:
        """Until every node runs, one leads and one is its synchronous standby."""
        deadline = time.monotonic() + timeout
        next_report = time.monotonic() + progress_s
        members: list[dict] = []
        while time.monotonic() < deadline:
            try:
                members = self.members(timeout=1)
            except ClusterError:
                members = []
            if self._ready(members):
                return
            if out and time.monotonic() >= next_report:
                next_report += progress_s
                out("  waiting for the cluster: " + (", ".join(
                    f"{m['name']} {m.get('role')} {m.get('state')}" for m in members)
                    or "no Patroni node answers yet"))
            time.sleep(0.2)
        raise ClusterError(
            f"cluster not ready after {timeout:.0f}s (members: {members or 'none answer'}); "
            f"see the logs in {self.dir}/node*/ and {self.dir}/etcd.log")

    def wait_leader(self, timeout: float = 60, other_than: str | None = None) -> str:
        """Until a running leader (not `other_than`) holds the lease; returns its name."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader and leader != other_than:
                return leader
            time.sleep(0.1)
        raise ClusterError(f"no new leader within {timeout:.0f}s")

    def switchover(self, candidate: str | None = None) -> str:
        """A planned switchover to `candidate` (default: a synchronous standby);
        returns the new leader's name."""
        leader = self.leader()
        if leader is None:
            raise ClusterError("no leader to switch over from")
        candidate = candidate or next(iter(self.sync_standbys()), None)
        if candidate is None:
            raise ClusterError("no synchronous standby to switch over to")
        response = httpx.post(self._rest(leader) + "/switchover",
                              json={"leader": leader, "candidate": candidate}, timeout=30)
        if response.status_code != 200:
            raise ClusterError(f"switchover refused: {response.status_code} {response.text}")
        return self.wait_leader(60, other_than=leader)

    def set_maintenance(self, paused: bool) -> None:
        """Patroni's maintenance mode: while on, Patroni neither fails over nor
        restarts a stopped PostgreSQL (a leaderless cluster on demand)."""
        self._patch_config({"pause": paused})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # every member acts on it within a loop
            try:
                response = httpx.get(self._rest(self.nodes[0].name) + "/config", timeout=2)
                if response.status_code == 200 and bool(response.json().get("pause")) == paused:
                    time.sleep(2)  # > loop_wait: each Patroni has read it
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ClusterError("maintenance mode not confirmed within 15s")

    def _patch_config(self, patch: dict) -> None:
        last = None
        for node in self.nodes:
            try:
                response = httpx.patch(self._rest(node.name) + "/config", json=patch, timeout=10)
            except httpx.HTTPError as error:
                last = error
                continue
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        raise ClusterError(f"configuration change refused: {last}")

    def set_replay_delay(self, delay_ms: int) -> None:
        """Makes every standby apply WAL `delay_ms` after its commit
        (recovery_min_apply_delay, through Patroni's dynamic configuration): a
        lagging standby on demand. Commits are not held (they wait for the standby
        to flush, not to apply). Patroni reloads the nodes within its loop."""
        self._patch_config({"postgresql": {"parameters": {
            "recovery_min_apply_delay": f"{int(delay_ms)}ms"}}})

    # ---- status ---------------------------------------------------------------------

    def status(self) -> list[NodeStatus]:
        try:
            members = {m["name"]: m for m in self.members()}
        except ClusterError:
            members = {}
        result = []
        for node in self.nodes:
            member = members.get(node.name)
            status = NodeStatus(node.name, member.get("role", "?") if member else "down",
                                member.get("state", "?") if member else "down", node.pg_port)
            if member:
                status.timeline = member.get("timeline")
                lag = member.get("lag")
                status.lag_bytes = lag if isinstance(lag, int) else None
                status.replay_lag_ms = replay_lag_ms(self.superuser_dsn(node.name))
            result.append(status)
        return result

    # ---- up and down ----------------------------------------------------------------

    @classmethod
    def up(cls, directory: Path, nodes: int = 3, out: Out = print,
           timeout: float = 120) -> "Cluster":
        """Starts etcd and `nodes` Patroni nodes under `directory` and waits until a
        leader and a synchronous standby serve; creates the service's database."""
        if nodes < 1:
            raise ClusterError("--nodes must be at least 1 (2 or more for replication)")
        directory = directory.resolve()
        bin_dir = postgres_bin_dir()
        for tool in ("patroni", "etcd"):
            if not any((Path(p) / tool).exists() for p in ("/usr/bin", "/usr/local/bin")):
                raise ClusterError(f"`{tool}` is not installed; run scripts/bootstrap as root "
                                   "(Debian packages patroni, etcd-server, etcd-client)")
        if (directory / STATE_FILE).exists():
            existing = cls.load(directory)
            if existing.running():
                raise ClusterError(f"a cluster already runs in {directory}; "
                                   f"`inventory cluster down --dir {directory}` first")
            raise ClusterError(f"{directory} holds a stopped cluster; remove the folder "
                               "or choose another --dir")
        directory.mkdir(parents=True, exist_ok=True)
        _check_reachable_by_service_user(directory)
        state = {
            "scope": f"inventory-{secrets.token_hex(4)}",
            "passwords": {k: secrets.token_urlsafe(18) for k in ("superuser", "replication",
                                                                 "app")},
            "etcd": {"client_port": free_port(), "peer_port": free_port()},
            "nodes": [{"name": f"node{i + 1}", "pg_port": free_port(), "rest_port": free_port()}
                      for i in range(nodes)],
        }
        cluster = cls(directory, state)
        cluster._save()
        try:
            cluster._start(bin_dir, out, timeout)
        except BaseException:
            out("start failed; stopping what was started ...")
            cluster.down(out=lambda _: None)
            raise
        return cluster

    def _start(self, bin_dir: Path, out: Out, timeout: float) -> None:
        etcd = self.state["etcd"]
        out(f"Starting etcd on 127.0.0.1:{etcd['client_port']} ...")
        etcd["pid"] = self._spawn(
            etcd_command(self.dir / "etcd", etcd["client_port"], etcd["peer_port"],
                         self.state["scope"]),
            self.dir / "etcd.log", as_service_user=False)
        self._save()
        self._wait_etcd(30)
        service_account = pwd.getpwnam(SERVICE_USER) if _running_as_root() else None
        for node in self.nodes:
            node_dir = self._node_dir(node.name)
            node_dir.mkdir(exist_ok=True)
            write_patroni_config(self._config_path(node.name), patroni_config(
                scope=self.state["scope"], node=node, node_dir=node_dir,
                etcd_port=etcd["client_port"], passwords={
                    "superuser": self.state["passwords"]["superuser"],
                    "replication": self.state["passwords"]["replication"]},
                bin_dir=bin_dir, synchronous=len(self.nodes) > 1))
            if service_account:
                for path in (node_dir, self._config_path(node.name)):
                    os.chown(path, service_account.pw_uid, service_account.pw_gid)
            os.chmod(node_dir, 0o700)
            os.chmod(self._config_path(node.name), 0o600)
        for node in self.nodes:
            out(f"Starting Patroni {node.name} (PostgreSQL on 127.0.0.1:{node.pg_port}, "
                f"REST on {node.rest_port}) ...")
            self.start_patroni(node.name)
        self.wait_ready(timeout, out)
        self._create_service_database()

    def _wait_etcd(self, timeout: float) -> None:
        url = f"http://127.0.0.1:{self.state['etcd']['client_port']}/health"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(self.state["etcd"]["pid"]):
                raise ClusterError(f"etcd exited; see {self.dir}/etcd.log")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ClusterError(f"etcd not healthy after {timeout:.0f}s; see {self.dir}/etcd.log")

    def _create_service_database(self) -> None:
        """The service's role and database (Patroni 3.0 bootstraps none)."""
        leader = self.wait_leader(30)
        password = self.state["passwords"]["app"]
        with psycopg.connect(self.superuser_dsn(leader), autocommit=True,
                             connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                  (APP_USER,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_USER), sql.Literal(password)))
                # pg_monitor: the service reads its standby's replay position.
                conn.execute(f"GRANT pg_monitor TO {APP_USER}")
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (APP_DATABASE,)).fetchone():
                conn.execute(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_USER}")

    def running(self) -> bool:
        pids = [self.state.get("etcd", {}).get("pid")]
        pids += [n.get("patroni_pid") for n in self.state["nodes"]]
        return any(_alive(pid) for pid in pids) or any(
            self.postmaster_pid(n.name) for n in self.nodes)

    def down(self, out: Out = print, timeout: float = 30) -> None:
        """Stops every process this cluster recorded: Patroni (which stops its
        PostgreSQL), then any postmaster left behind, then etcd."""
        for node in self.nodes:
            pid = self._record(node.name).get("patroni_pid")
            if self._signal(pid, str(self._config_path(node.name)), signal.SIGTERM):
                out(f"Stopping {node.name} ...")
        for node in self.nodes:
            pid = self._record(node.name).get("patroni_pid")
            if not self._wait_gone(pid, timeout):
                self._signal(pid, str(self._config_path(node.name)), signal.SIGKILL)
                self._wait_gone(pid, 5)
            postmaster = self.postmaster_pid(node.name)
            if postmaster:  # left running by a killed Patroni: stop it too
                os.kill(postmaster, signal.SIGTERM)
                if not self._wait_gone(postmaster, timeout):
                    os.kill(postmaster, signal.SIGKILL)
                    self._wait_gone(postmaster, 5)
        etcd = self.state.get("etcd", {})
        if self._signal(etcd.get("pid"), str(self.dir / "etcd"), signal.SIGTERM):
            out("Stopping etcd ...")
            if not self._wait_gone(etcd["pid"], timeout):
                self._signal(etcd.get("pid"), str(self.dir / "etcd"), signal.SIGKILL)
        for child in self._children.values():
            child.poll()


def replay_lag_ms(dsn: str) -> float | None:
    try:
        with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
            _recovering, lag = conn.execute(REPLAY_LAG_SQL).fetchone()
            return float(lag)
    except psycopg.Error:
        return None


def _check_reachable_by_service_user(directory: Path) -> None:
    """As root, Patroni runs as `postgres`, which must be able to enter every
    folder above its node folders."""
    if not _running_as_root():
        return
    for folder in [directory, *directory.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            raise ClusterError(
                f"{folder} is not searchable by the `{SERVICE_USER}` user that runs "
                f"PostgreSQL; `chmod o+x {folder}` or choose a --dir elsewhere (e.g. under /tmp)")
