"""`inventory cluster up | status | down`."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .control import Cluster, ClusterError

DEFAULT_DIR = Path(".inventory-cluster")


def add_parser(sub) -> None:
    cluster = sub.add_parser(
        "cluster", help="a replicated PostgreSQL cluster on loopback (Patroni, etcd)")
    actions = cluster.add_subparsers(dest="cluster_command", required=True)

    def with_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                       help=f"the cluster's folder (default {DEFAULT_DIR})")

    up = actions.add_parser("up", help="start etcd and N Patroni nodes; print the URLs")
    with_dir(up)
    up.add_argument("--nodes", type=int, default=3,
                    help="PostgreSQL nodes (default 3; 1 runs without replication)")
    up.add_argument("--timeout", type=float, default=120,
                    help="seconds to wait for a leader and a synchronous standby")
    up.set_defaults(func=cmd_up)
    status = actions.add_parser("status", help="roles, timelines and replay lag of the nodes")
    with_dir(status)
    status.set_defaults(func=cmd_status)
    down = actions.add_parser("down", help="stop everything `up` started")
    with_dir(down)
    down.set_defaults(func=cmd_down)


def _print_urls(cluster: Cluster) -> None:
    print("\nINVENTORY_DATABASE_URL='" + cluster.writer_url + "'")
    print("INVENTORY_READ_DATABASE_URL='" + cluster.reader_url + "'", flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    try:
        cluster = Cluster.up(args.dir, args.nodes, out=lambda s: print(s, flush=True),
                             timeout=args.timeout)
    except (ClusterError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    standbys = ", ".join(cluster.sync_standbys()) or "none (one node: no replication)"
    print(f"\nCluster {cluster.state['scope']} ready in {cluster.dir}: leader "
          f"{cluster.leader()}, synchronous standby {standbys}.")
    print("Use it with (then `inventory migrate`, `inventory serve`):")
    _print_urls(cluster)
    print(f"\nStop it with `inventory cluster down --dir {cluster.dir}`.")
    return 0


def _load(args: argparse.Namespace) -> Cluster | None:
    try:
        return Cluster.load(args.dir)
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def cmd_status(args: argparse.Namespace) -> int:
    cluster = _load(args)
    if cluster is None:
        return 1
    rows = cluster.status()
    print(f"Cluster {cluster.state['scope']} in {cluster.dir}")
    print(f"{'node':8} {'role':13} {'state':10} {'port':>6} {'timeline':>8} "
          f"{'lag bytes':>10} {'replay lag ms':>13}")
    for row in rows:
        print(f"{row.name:8} {row.role:13} {row.state:10} {row.pg_port:>6} "
              f"{'' if row.timeline is None else row.timeline:>8} "
              f"{'' if row.lag_bytes is None else row.lag_bytes:>10} "
              f"{'' if row.replay_lag_ms is None else f'{row.replay_lag_ms:.0f}':>13}")
    _print_urls(cluster)
    return 0 if any(row.role == "leader" for row in rows) else 1


def cmd_down(args: argparse.Namespace) -> int:
    cluster = _load(args)
    if cluster is None:
        return 1
    cluster.down(out=lambda s: print(s, flush=True))
    print(f"Cluster stopped; its data stays in {cluster.dir} (remove the folder to discard it).")
    return 0
