"""The one place that knows how PostgreSQL and CockroachDB differ.

Everything else writes SQL that both engines accept. What differs:
- CockroachDB has hash-sharded indexes (`USING HASH`), which PostgreSQL rejects;
  a time-ordered index needs one there to avoid a single hot range.
- PostgreSQL reports deadlocks as 40P01; CockroachDB reports every retryable
  conflict as 40001 and an unknown commit outcome as 40003.
- The change feed: on PostgreSQL, ledger rows below the transaction-id horizon;
  on CockroachDB, a changefeed with resolved timestamps (statements below).
"""
from __future__ import annotations


from sqlalchemy.engine import Dialect

from ..domain.quantities import NAMES

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"  # PostgreSQL only
STATEMENT_COMPLETION_UNKNOWN = "40003"  # CockroachDB: "result is ambiguous"
RETRYABLE_SQLSTATES = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})
NUMERIC_OUT_OF_RANGE = "22003"
# A write that reached a node that no longer accepts writes (a demoted leader, a
# standby, or CockroachDB refusing a write in a read-only transaction): the write
# was not applied, the connection is useless for writes and the writer is elsewhere.
READ_ONLY_SQL_TRANSACTION = "25006"
WRONG_NODE_SQLSTATES = frozenset({READ_ONLY_SQL_TRANSACTION})


def is_cockroach(dialect: Dialect) -> bool:
    return dialect.name == "cockroachdb"


def time_ordered_index_ddl(dialect: Dialect, name: str, table: str, columns: str) -> str:
    """CREATE INDEX for an index whose leading key grows with time."""
    using = " USING HASH" if is_cockroach(dialect) else ""
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}){using}"


# How stale a replica's data is, in milliseconds, on the connection it runs on:
# (is a replica, staleness). PostgreSQL: a standby that is streaming and has
# replayed all it received is as fresh as the leader's last acknowledged commit
# (a synchronous standby receives each before it is acknowledged); one that is
# behind is at most as old as the last transaction it replayed (everything it
# lacks committed after that one). The replay timestamp alone grows while the
# leader is idle, hence the pairing. CockroachDB, with follower reads on the
# session (follower_read_session_options), reads at follower_read_timestamp().
_PG_STALENESS = """
SELECT pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                 AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')
            THEN 0
            ELSE coalesce(1000 * extract(epoch FROM clock_timestamp()
                                         - pg_last_xact_replay_timestamp()), 'Infinity')
       END
"""
_CRDB_STALENESS = """
SELECT true, 1000 * extract(epoch FROM now() - follower_read_timestamp())
"""


def staleness_sql(dialect: Dialect) -> str:
    return _CRDB_STALENESS if is_cockroach(dialect) else _PG_STALENESS


def follower_read_session_options() -> str:
    """CockroachDB's bounded-staleness reads for the `@boundedStaleness` directive.

    `AS OF SYSTEM TIME with_max_staleness('<maxMs>ms')` is CockroachDB's own
    bounded-staleness read, but it accepts only single-statement reads that touch
    at most one row, and the service's reads join items, locations and levels.
    So a replica session reads every statement at `follower_read_timestamp()`
    (about 4.2 s old, served by the nearest replica); a bound tighter than that
    is served by the leaseholder (strong), as on PostgreSQL when no standby is
    fresh enough."""
    return "-c default_transaction_use_follower_reads=on"


# PostgreSQL's ledger reader: rows whose writer's transaction id is below the
# oldest transaction still running. Columns: horizon, then those of Change, then
# the page key (xact_id, id), then the item's reorder point as the poll finds it
# (so that delivering a change needs no query of its own: events/hub.py). The
# first page also reads the horizon, in the same snapshot as the rows; the next
# pages keep it.
_PG_COLUMNS = ", ".join([
    "m.tenant_id", "m.item_id", "m.location_id",
    *(f"m.{n}_{part}" for part in ("after", "delta") for n in NAMES),
    "m.version", "m.kind", "m.created_at", "m.reservation_id",
    "m.xact_id::text AS xact_id", "m.id", "i.reorder_point"])
PG_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
_PG_FIRST = f"""WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xid)
SELECT horizon.xid::text AS horizon, {_PG_COLUMNS}
FROM horizon LEFT JOIN movements AS m
  ON m.xact_id >= CAST(:after AS xid8) AND m.xact_id < horizon.xid{{tenants}}
LEFT JOIN items AS i ON i.tenant_id = m.tenant_id AND i.id = m.item_id
ORDER BY m.xact_id, m.id LIMIT :page"""
_PG_NEXT = f"""SELECT CAST(:horizon AS text) AS horizon, {_PG_COLUMNS}
FROM movements AS m
JOIN items AS i ON i.tenant_id = m.tenant_id AND i.id = m.item_id
WHERE (m.xact_id, m.id) > (CAST(:last_xid AS xid8), CAST(:last_id AS uuid))
  AND m.xact_id < CAST(:horizon AS xid8){{tenants}}
ORDER BY m.xact_id, m.id LIMIT :page"""
_PG_TENANTS = " AND m.tenant_id = ANY(CAST(:tenants AS uuid[]))"
PG_FIRST_PAGE_ALL = _PG_FIRST.format(tenants="")
PG_FIRST_PAGE_TENANTS = _PG_FIRST.format(tenants=_PG_TENANTS)
PG_NEXT_PAGE_ALL = _PG_NEXT.format(tenants="")
PG_NEXT_PAGE_TENANTS = _PG_NEXT.format(tenants=_PG_TENANTS)
# Sent only on PostgreSQL (the compatibility check in tests/ exempts them).
POSTGRESQL_ONLY = frozenset({PG_HORIZON, PG_FIRST_PAGE_ALL, PG_FIRST_PAGE_TENANTS,
                             PG_NEXT_PAGE_ALL, PG_NEXT_PAGE_TENANTS})

# CockroachDB's ledger reader: a sinkless changefeed (CREATE CHANGEFEED without
# INTO, v25.2 and later) from a cursor, with resolved timestamps. Rangefeeds
# must be on (`SET CLUSTER SETTING kv.rangefeed.enabled = true`). Resolved
# timestamps come no more often than min_checkpoint_frequency (default 30s),
# so both are set. Written from CockroachDB's documentation; not run here.
CRDB_NOW = "SELECT cluster_logical_timestamp()::STRING"


def crdb_changefeed(cursor: str, resolved: str) -> str:
    """The statement for a cursor the caller validated (digits and a dot):
    changefeed options take literals, not placeholders."""
    return (f"CREATE CHANGEFEED FOR TABLE movements WITH updated, resolved = '{resolved}', "
            f"min_checkpoint_frequency = '{resolved}', cursor = '{cursor}'")


def snapshot_isolation(dialect: Dialect) -> str:
    """Isolation for a read-only audit page: one consistent snapshot per page.
    PostgreSQL's REPEATABLE READ is a snapshot; CockroachDB is SERIALIZABLE."""
    return "SERIALIZABLE" if is_cockroach(dialect) else "REPEATABLE READ"
