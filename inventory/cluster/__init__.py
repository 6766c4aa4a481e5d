"""A replicated PostgreSQL cluster on loopback: etcd holds the leader lease and
Patroni manages each PostgreSQL node (synchronous replication, automatic
failover). `inventory cluster up/status/down`, the cluster tests, the chaos
run's cluster faults and the benchmarks all start it through `Cluster`."""
from .control import Cluster, ClusterError, NodeStatus

__all__ = ["Cluster", "ClusterError", "NodeStatus"]
