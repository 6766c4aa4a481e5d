"""Prometheus metrics, served at /metrics.

Counters and histograms are updated as things happen: the retry runner
(db/retry.py's listener lists) and the rest of the service
(observability/listeners.py) push their counts here through listeners that
`listen()` registers; nothing here imports what it counts. The connection
pool's gauges are read by `sync_process()` when /metrics is scraped and every
few seconds in every process; reservations by status are counted with one query
(db/queries.py) at scrape time, cached briefly.

Several workers (`inventory serve --workers N`): the CLI sets
PROMETHEUS_MULTIPROC_DIR before the workers start, prometheus_client keeps each
process's values in files there, and a scrape of any worker reports the sum
over all of them (see docs/observability.md).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from ..db import queries, retry
from . import listeners

SYNC_INTERVAL_S = 5.0
RESERVATIONS_CACHE_S = 10.0
RESERVATIONS_FULL_CACHE_S = 60.0

REQUESTS = Counter(
    "inventory_graphql_requests_total",
    "GraphQL operations by operation (type and root fields; 'refused' for requests "
    "answered before parsing, e.g. 401) and outcome: "
    "ok, user_error (typed business rejection), rejected (bad request), error (server side)",
    ["operation", "outcome"],
)
ERRORS = Counter(
    "inventory_graphql_errors_total",
    "Error codes returned to clients (GraphQL errors and typed UserError results)",
    ["operation", "code"],
)
LATENCY = Histogram(
    "inventory_graphql_request_duration_seconds",
    "Time to run a GraphQL operation (parse, validate, execute)",
    ["operation"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TX = Counter("inventory_tx_total", "Write transactions started by the retry runner")
TX_RETRIES = Counter("inventory_tx_retries_total",
                     "Write transaction retries by SQLSTATE (or 'connection', 'rerun')",
                     ["sqlstate"])
TX_EXHAUSTED = Counter("inventory_tx_retries_exhausted_total",
                       "Write transactions that ran out of attempts (TRANSACTION_CONFLICT)")
# pool: "read" (autocommit reads) or "write" (SERIALIZABLE sessions), db/engine.py
POOL_IN_USE = Gauge("inventory_db_pool_connections_in_use",
                    "Database connections checked out of the pool", ["pool"],
                    multiprocess_mode="livesum")
POOL_WAITING = Gauge("inventory_db_pool_waiting",
                     "Requests waiting for a free database connection", ["pool"],
                     multiprocess_mode="livesum")
POOL_CAPACITY = Gauge("inventory_db_pool_capacity",
                      "Pool size plus allowed overflow", ["pool"], multiprocess_mode="livesum")
SUBSCRIPTIONS = Gauge("inventory_subscriptions_active", "Open GraphQL subscriptions",
                      multiprocess_mode="livesum")
RESERVATIONS = Gauge("inventory_reservations", "Reservations by status (all tenants)",
                     ["status"], multiprocess_mode="mostrecent")
RESERVATIONS_OVERDUE = Gauge("inventory_reservations_overdue",
                             "ACTIVE reservations past their expiry, not yet swept",
                             multiprocess_mode="mostrecent")
BATCHES = Counter("inventory_reservation_batches_total",
                  "Transactions that applied several single-line reservations of one busy "
                  "level together (group commit, service/hot_levels.py)")
BATCHED = Counter("inventory_reservations_batched_total",
                  "Reservation requests answered by such a batch")
READ_BATCHES = Counter("inventory_read_batches_total",
                       "Statements that answered the stockLevel reads of several concurrent "
                       "requests at once (service/coalesce.py)")
READS_COALESCED = Counter("inventory_reads_coalesced_total",
                          "stockLevel reads answered by such a shared statement")
SWEEPER_RUNS = Counter("inventory_sweeper_runs_total", "Completed sweeps of expired reservations")
SWEEPER_EXPIRED = Counter("inventory_sweeper_expired_total", "Reservations expired by the sweeper")
SWEEPER_FAILURES = Counter("inventory_sweeper_failures_total", "Sweeps that failed (and will retry)")
SWEEPER_LAG = Gauge("inventory_sweeper_lag_seconds",
                    "How long the oldest ACTIVE reservation past its expiry has waited for "
                    "the sweeper (0: none)", multiprocess_mode="mostrecent")
SHED = Counter("inventory_requests_shed_total",
               "/graphql requests refused with 503 OVERLOADED by the load limiter (web/overload.py)")
SHED_EARLY = Counter("inventory_requests_shed_early_total",
                     "Of the shed requests, those refused at the HTTP parser, before any "
                     "ASGI work (web/overload.py EarlyShedding)")
SUBSCRIPTION_OVERFLOWS = Counter(
    "inventory_subscription_overflows_total",
    "Subscriptions ended because their client fell too far behind (buffer full)")
AUDITS = Counter("inventory_ledger_audits_total", "Ledger audits run (ledgerAudit query)")
AUDIT_FAILURES = Counter("inventory_ledger_audit_failures_total",
                         "Ledger audits that found a discrepancy between levels and the ledger")
READY = Gauge("inventory_ready",
              "1 when the database answers and is at the head migration (as /readyz), "
              "checked at each scrape", multiprocess_mode="mostrecent")
SWEEPER_LAST_RUN = Gauge("inventory_sweeper_last_run_timestamp_seconds",
                         "When a sweep last completed in any process (Unix time; seen within "
                         f"{SYNC_INTERVAL_S:g} s)", multiprocess_mode="max")


def subscription_started() -> None:
    """Call when a subscription starts streaming (issue 4's subscriptions)."""
    SUBSCRIPTIONS.inc()


def subscription_ended() -> None:
    """Call when it ends, however it ends (use try/finally)."""
    SUBSCRIPTIONS.dec()


@contextlib.contextmanager
def subscription_active():
    """`with subscription_active(): ...` around a subscription's stream."""
    subscription_started()
    try:
        yield
    finally:
        subscription_ended()


# (operation, outcome) -> the children of REQUESTS and LATENCY with those labels:
# `labels` takes a lock and builds a key on every call. Bounded: operation
# labels are (type and at most three root fields of the schema, or "invalid").
_operation_children: dict[tuple[str, str], tuple[Any, Any]] = {}


def observe_operation(operation: str, outcome: str, elapsed_s: float, codes: list[str]) -> None:
    children = _operation_children.get((operation, outcome))
    if children is None:
        children = _operation_children[operation, outcome] = (
            REQUESTS.labels(operation, outcome), LATENCY.labels(operation))
    children[0].inc()
    children[1].observe(elapsed_s)
    for code in codes:
        ERRORS.labels(operation, code).inc()


# `operation` label of /graphql requests answered before any operation ran.
REFUSED = "refused"
# Codes for the HTTP statuses of such answers: the gate's 401 and 413 (their
# bodies carry the same codes), strawberry's own refusals (unreadable body, a
# mutation over GET), anything else as HTTP_<status> (bounded: statuses are).
REFUSAL_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 405: "METHOD_NOT_ALLOWED",
                 413: "PAYLOAD_TOO_LARGE", 429: "RATE_LIMITED"}


def observe_refusal(status: int) -> None:
    """A /graphql request answered with `status` before GraphQL ran (no latency:
    the histogram is of operations)."""
    REQUESTS.labels(REFUSED, "error" if status >= 500 else "rejected").inc()
    ERRORS.labels(REFUSED, REFUSAL_CODES.get(status, f"HTTP_{status}")).inc()


def _on_retry(attempt: int, state: str) -> None:
    TX_RETRIES.labels(state).inc()


def _on_transaction(outcome: str) -> None:
    (TX if outcome == "started" else TX_EXHAUSTED).inc()


def _on_count(event: str, amount: int) -> None:
    if event == listeners.RESERVATION_BATCH:
        BATCHES.inc()
        BATCHED.inc(amount)
    elif event == listeners.READ_BATCH:
        READ_BATCHES.inc()
        READS_COALESCED.inc(amount)
    elif event == listeners.SWEEP:
        SWEEPER_RUNS.inc()
        SWEEPER_EXPIRED.inc(amount)
        SWEEPER_LAST_RUN.set(time.time())
    elif event in _COUNTERS:
        _COUNTERS[event].inc(amount)


_COUNTERS = {listeners.SWEEP_FAILED: SWEEPER_FAILURES, listeners.SHED: SHED,
             listeners.SHED_EARLY: SHED_EARLY, listeners.AUDIT: AUDITS,
             listeners.AUDIT_FAILED: AUDIT_FAILURES,
             listeners.SUBSCRIPTION_OVERFLOW: SUBSCRIPTION_OVERFLOWS}
_state = {"multiprocess": False}


def listen(multiprocess: bool = False) -> None:
    """Registers the metrics' listeners (once per process; the app installs
    them). `multiprocess`: PROMETHEUS_MULTIPROC_DIR is set, several worker
    processes share the figures."""
    _state["multiprocess"] = multiprocess
    for hooks, listener in ((retry.retry_listeners, _on_retry),
                            (retry.transaction_listeners, _on_transaction),
                            (listeners.listeners, _on_count)):
        if listener not in hooks:
            hooks.append(listener)


def sync_process(db=None) -> None:
    """Reads this process's connection pool figures into the gauges."""
    if db is not None:
        for name, engine in (("read", db.engine), ("write", db.write_engine)):
            in_use, waiting, capacity = pool_status(engine.pool)
            POOL_IN_USE.labels(name).set(in_use)
            POOL_WAITING.labels(name).set(waiting)
            POOL_CAPACITY.labels(name).set(capacity)


def pool_status(pool) -> tuple[int, int, int]:
    """(checked out, waiting, size + max overflow) of a SQLAlchemy QueuePool."""
    in_use = pool.checkedout() if hasattr(pool, "checkedout") else 0
    capacity = (pool.size() + max(pool._max_overflow, 0)) if hasattr(pool, "size") else 0
    # Waiters block in the pool's asyncio.Queue; SQLAlchemy does not count them,
    # so read the queue's getters (0 if these internals ever change).
    queue = getattr(getattr(pool, "_pool", None), "_queue", None)
    getters = getattr(queue, "_getters", ())
    waiting = sum(1 for g in getters if not g.done())
    return in_use, waiting, capacity


_reservations_cache = {"active_at": 0.0, "all_at": 0.0}


async def refresh_reservations(db) -> None:
    """Counts reservations at scrape time, cached: ACTIVE and overdue (ACTIVE past
    expiry: the sweeper's backlog) come from the partial index on ACTIVE rows and
    are refreshed every RESERVATIONS_CACHE_S; the other statuses grow without end
    and need a scan, so they are counted only every RESERVATIONS_FULL_CACHE_S."""
    now = time.monotonic()
    if now - _reservations_cache["active_at"] < RESERVATIONS_CACHE_S:
        return
    _reservations_cache["active_at"] = now
    full = now - _reservations_cache["all_at"] >= RESERVATIONS_FULL_CACHE_S
    async with asyncio.timeout(2):
        async with db.reader.connect() as conn:
            active, overdue, lag = await queries.active_reservation_counts(conn)
            finished = await queries.finished_reservation_counts(conn) if full else None
    RESERVATIONS.labels("ACTIVE").set(active)
    RESERVATIONS_OVERDUE.set(overdue)
    SWEEPER_LAG.set(lag)
    if finished is not None:
        _reservations_cache["all_at"] = now
        for status, n in finished.items():
            RESERVATIONS.labels(status).set(n)


def multiprocess_mode() -> bool:
    return _state["multiprocess"]


def render() -> bytes:
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


async def sync_loop(db) -> None:
    """Keeps this process's pool figures fresh for scrapes served by another worker."""
    while True:
        sync_process(db)
        await asyncio.sleep(SYNC_INTERVAL_S)


def process_exited() -> None:
    """Drops this process's live gauges (pool, subscriptions) from the sums."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())


__all__ = ["CONTENT_TYPE_LATEST", "render", "sync_process", "refresh_reservations",
           "subscription_started", "subscription_ended", "subscription_active"]
