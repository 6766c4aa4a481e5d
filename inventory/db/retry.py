"""The one retry runner every write goes through.

Runs a unit of work in a SERIALIZABLE transaction and, on a retryable conflict
(40001 on both engines, 40P01 deadlock on PostgreSQL), a connection lost
*before* COMMIT, or a write refused by a node that is no longer the leader
(25006: the write was not applied; the engine discards that connection and its
pool, see engine.py), rolls back and runs the whole unit again from the start
after a jittered exponential backoff, up to a bounded number of attempts.

A failure *during* COMMIT (connection dropped, CockroachDB 40003 "result is
ambiguous") leaves the outcome unknown. It is retried only when the unit of work
is idempotent (it carries an idempotency key): the re-run then finds the key if
the first commit landed and replays its result. Otherwise the caller gets
`CommitOutcomeUnknown` and must check before trying again.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Awaitable, Callable, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from .dialect import RETRYABLE_SQLSTATES, STATEMENT_COMPLETION_UNKNOWN, WRONG_NODE_SQLSTATES

if TYPE_CHECKING:
    from .engine import Database

T = TypeVar("T")
log = logging.getLogger(__name__)

# SQLSTATE classes meaning "the connection or server went away".
_CONNECTION_SQLSTATE_PREFIXES = ("08", "57P")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_delay_s: float = 0.002
    max_delay_s: float = 0.25
    # Connection failures are not contention: give up sooner so clients fail fast.
    max_connection_attempts: int = 3

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^attempt)]."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * (2 ** attempt)))


@dataclass
class RetryStats:
    """Process-wide counters, read by tests (metrics listen: the listener lists below)."""

    retries: Counter = field(default_factory=Counter)  # by SQLSTATE (or "connection")
    exhausted: int = 0
    transactions: int = 0


stats = RetryStats()
RetryListener = Callable[[int, str], None]
retry_listeners: list[RetryListener] = []  # called with (attempt, sqlstate) on each retry
# Called with no argument after each transaction this process committed (the
# change feed reads sooner: events/live.py).
commit_listeners: list[Callable[[], None]] = []
# Called with "started" for each transaction run, "exhausted" when one ran out of
# attempts (the metrics listen: observability/metrics.py).
transaction_listeners: list[Callable[[str], None]] = []


def _record_transaction(outcome: str) -> None:
    for listener in transaction_listeners:
        listener(outcome)


class DatabaseUnavailable(Exception):
    """The database could not be reached or no connection was free in time."""


class RetriesExhausted(Exception):
    def __init__(self, sqlstate: str, attempts: int):
        super().__init__(f"transaction conflicted {attempts} times (last SQLSTATE {sqlstate})")
        self.sqlstate = sqlstate
        self.attempts = attempts


class RetryTransaction(Exception):
    """Raised by a unit of work to be run again from the start (e.g. it lost a
    race to insert an idempotency key that a concurrent transaction committed)."""


class CommitOutcomeUnknown(Exception):
    """COMMIT was sent but its result never came back."""


def sqlstate_of(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None) or error
    return getattr(orig, "sqlstate", None)


def _is_connection_error(error: sa_exc.DBAPIError) -> bool:
    state = sqlstate_of(error)
    if state is not None:
        return state.startswith(_CONNECTION_SQLSTATE_PREFIXES)
    return bool(error.connection_invalidated) or isinstance(error, sa_exc.OperationalError)


def _record_retry(attempt: int, state: str) -> None:
    stats.retries[state] += 1
    for listener in retry_listeners:
        listener(attempt, state)


async def run_transaction(
    db: "Database",
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    idempotent: bool = False,
    policy: RetryPolicy | None = None,
    single_statement: bool = False,
) -> T:
    """Runs `work(conn)` in a SERIALIZABLE transaction, retried as DESIGN.md says.

    With `single_statement`, `work` sends one write statement (it may read before
    it, e.g. ids missing from a cache) in autocommit on a SERIALIZABLE session: the
    statement is its own transaction and commit, one round trip. A connection lost
    while it runs leaves the outcome unknown, as a lost COMMIT does."""
    policy = policy or db.retry_policy
    engine = db.single_writer if single_statement else db.writer
    stats.transactions += 1
    _record_transaction("started")
    connection_failures = 0
    last_state = ""
    for attempt in range(1, policy.max_attempts + 1):
        committing = False
        try:
            async with engine.connect() as conn:
                async with conn.begin():
                    committing = single_statement
                    result = await work(conn)
                    committing = True
                # Leaving the block committed successfully.
                for listener in commit_listeners:
                    listener()
                return result
        except RetryTransaction:
            last_state = "rerun"
        except sa_exc.TimeoutError as error:
            raise DatabaseUnavailable("no database connection free in time") from error
        except sa_exc.DBAPIError as error:
            state = sqlstate_of(error)
            if state in RETRYABLE_SQLSTATES:
                last_state = state
            elif state in WRONG_NODE_SQLSTATES:  # refused, so not applied: like a lost
                connection_failures += 1         # connection, whatever the phase
                last_state = state
                if connection_failures >= policy.max_connection_attempts:
                    raise DatabaseUnavailable(f"no writable database: {error.orig}") from error
            elif state == STATEMENT_COMPLETION_UNKNOWN or (
                committing and _is_connection_error(error)
            ):
                if not idempotent:
                    raise CommitOutcomeUnknown(str(error.orig)) from error
                last_state = state or "commit-unknown"
            elif _is_connection_error(error):
                connection_failures += 1
                last_state = state or "connection"
                if connection_failures >= policy.max_connection_attempts:
                    raise DatabaseUnavailable(f"database unreachable: {error.orig}") from error
            else:
                raise
        except OSError as error:  # connect() refused before any DBAPI wrapping
            connection_failures += 1
            last_state = "connection"
            if connection_failures >= policy.max_connection_attempts:
                raise DatabaseUnavailable(f"database unreachable: {error}") from error
        if attempt < policy.max_attempts:
            _record_retry(attempt, last_state)
            await asyncio.sleep(policy.delay(attempt))
    stats.exhausted += 1
    _record_transaction("exhausted")
    raise RetriesExhausted(last_state, policy.max_attempts)
