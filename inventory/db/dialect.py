"""The one place that knows how PostgreSQL and CockroachDB differ.

Everything else writes SQL that both engines accept. What differs:
- CockroachDB has hash-sharded indexes (`USING HASH`), which PostgreSQL rejects;
  a time-ordered index needs one there to avoid a single hot range.
- PostgreSQL reports deadlocks as 40P01; CockroachDB reports every retryable
  conflict as 40001 and an unknown commit outcome as 40003.
"""
from __future__ import annotations

from sqlalchemy.engine import Dialect

SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"  # PostgreSQL only
STATEMENT_COMPLETION_UNKNOWN = "40003"  # CockroachDB: "result is ambiguous"
RETRYABLE_SQLSTATES = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})
UNIQUE_VIOLATION = "23505"
CHECK_VIOLATION = "23514"
NUMERIC_OUT_OF_RANGE = "22003"


def is_cockroach(dialect: Dialect) -> bool:
    return dialect.name == "cockroachdb"


def time_ordered_index_ddl(dialect: Dialect, name: str, table: str, columns: str) -> str:
    """CREATE INDEX for an index whose leading key grows with time."""
    using = " USING HASH" if is_cockroach(dialect) else ""
    return f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns}){using}"


def snapshot_isolation(dialect: Dialect) -> str:
    """Isolation for a read-only audit page: one consistent snapshot per page.
    PostgreSQL's REPEATABLE READ is a snapshot; CockroachDB is SERIALIZABLE."""
    return "SERIALIZABLE" if is_cockroach(dialect) else "REPEATABLE READ"
