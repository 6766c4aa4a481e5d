"""Counts pushed to observability by the parts of the service that make them.

A producer (the hot-level batches, read coalescing, the expiry sweeper, load
shedding, the ledger audit, the subscription hub) calls `count(event, amount)`
as the thing happens; the metrics module listens (it registers itself when the
app installs observability). This module imports nothing, so every layer may
call it, and observability never imports the producers. The retry runner, in db
below observability, keeps its own listener lists (db/retry.py).
"""
from __future__ import annotations

from typing import Callable

# The events; `amount` says how many of what each one counts.
RESERVATION_BATCH = "reservation_batch"  # one transaction for several reservations (requests)
READ_BATCH = "read_batch"  # one statement for several stockLevel lookups (lookups)
SWEEP = "sweep"  # a completed sweep of expired reservations (reservations expired)
SWEEP_FAILED = "sweep_failed"  # a sweep that failed and will retry (1)
SHED = "shed"  # a /graphql request refused with 503 OVERLOADED (1)
SHED_EARLY = "shed_early"  # of those, one refused at the HTTP parser (1)
AUDIT = "audit"  # a ledger audit (1)
AUDIT_FAILED = "audit_failed"  # a ledger audit that found a discrepancy (1)
SUBSCRIPTION_OVERFLOW = "subscription_overflow"  # a subscriber fell too far behind (1)

Listener = Callable[[str, int], None]
listeners: list[Listener] = []  # called with (event, amount)


def count(event: str, amount: int = 1) -> None:
    for listener in listeners:
        listener(event, amount)
