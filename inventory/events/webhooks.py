"""Webhook events from the committed ledger: each batch of the change feed
becomes delivery rows, written in the transaction that moves the dispatcher's
stored cursor past the batch.

So a crash anywhere between a commit and the receiver's answer loses nothing:
before the cursor moved, the next dispatcher reads the batch again (the unique
event key drops what was queued already); after it moved, the delivery rows are
there and the sender sends them (docs/webhooks.md).
"""
from __future__ import annotations

import collections
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import webhooks as rows
from ..db.changes import Batch
from ..domain import ids
from ..domain.models import MovementKind
from ..domain.quantities import NAMES, camel
from ..domain.webhooks import WebhookEvent, level_events
from .hub import Names, StockEvent


class LeaseLost(Exception):
    """Another process dispatches now; this one stops."""


def _body(event: str, at: datetime, data: dict[str, Any]) -> str:
    """The JSON body as signed and sent (Standard Webhooks: type, timestamp, data)."""
    return json.dumps({"type": event, "timestamp": at.astimezone(timezone.utc).isoformat(),
                       "data": data}, separators=(",", ":"))


def _level_data(e: StockEvent) -> dict[str, Any]:
    """The level after the change: each quantity state and its delta
    (domain/quantities.py), available before and after."""
    c = e.change
    return {"id": ids.encode("StockLevel", c.item_id, c.location_id), "sku": e.sku,
            "locationCode": e.location_code,
            **{camel(n): c.after[n] for n in NAMES},
            "available": e.available, "availableBefore": e.available_before,
            **{camel(f"{n}_delta"): c.delta[n] for n in NAMES},
            "version": c.version, "kind": c.kind, "reorderPoint": e.reorder_point}


def events_of(stock: list[StockEvent], reservations: dict[tuple, UUID]
              ) -> list[tuple[UUID, str, str, str]]:
    """(tenant, event name, event key, body) for a batch, in order per level;
    a reservation's expiry (one ledger row per line) is one event."""
    out = []
    expired: dict[tuple[UUID, UUID], list[StockEvent]] = collections.defaultdict(list)
    for e in stock:
        c = e.change
        for name in level_events(e.available_before, e.available, e.reorder_point):
            out.append((c.tenant_id, name.value,
                        f"{name.value}:{c.item_id}:{c.location_id}:{c.version}",
                        _body(name.value, c.at, _level_data(e))))
        reservation = reservations.get((c.tenant_id, c.item_id, c.location_id, c.version))
        if c.kind == MovementKind.EXPIRE.value and reservation is not None:
            expired[(c.tenant_id, reservation)].append(e)
    name = WebhookEvent.RESERVATION_EXPIRED.value
    for (tenant_id, reservation), lines in expired.items():
        data = {"reservationId": ids.encode("Reservation", reservation), "lines": [
            {"sku": e.sku, "locationCode": e.location_code,
             "quantity": -(e.change.delta["reserved"] + e.change.delta["backordered"])}
            for e in lines]}
        out.append((tenant_id, name, f"{name}:{reservation}",
                    _body(name, lines[0].change.at, data)))
    return out


async def expired_reservations(conn: AsyncConnection, stock: list[StockEvent]
                               ) -> dict[tuple, UUID]:
    """(tenant, item, location, version) of the batch's EXPIRE rows -> reservation."""
    by_tenant: dict[UUID, list] = collections.defaultdict(list)
    for e in stock:
        c = e.change
        if c.kind == MovementKind.EXPIRE.value:
            by_tenant[c.tenant_id].append((c.item_id, c.location_id, c.version))
    found: dict[tuple, UUID] = {}
    for tenant_id, versions in by_tenant.items():
        for key, reservation in (await rows.reservations_of(conn, tenant_id, versions)).items():
            found[(tenant_id, *key)] = reservation
    return found


class Dispatcher:
    """Turns change-feed batches into delivery rows, holding the lease."""

    def __init__(self, names: Names, holder: str, lease_s: float, retry_window_s: float):
        self.names = names
        self.holder = holder
        self.lease_s = lease_s
        self.retry_window = timedelta(seconds=retry_window_s)

    async def stock_events(self, batch: Batch) -> list[StockEvent]:
        """The changes of tenants with an enabled endpoint, with their names, a
        level's versions in order (as the reader sorts them). Repeats (a stretch
        read again) are not dropped here: the unique event key drops them."""
        if not batch.changes:
            return []
        async with self.names.db.reader.connect() as conn:
            wanted = await rows.tenants_with_endpoints(
                conn, sorted({c.tenant_id for c in batch.changes}))
        changes = [c for c in batch.changes if c.tenant_id in wanted]
        return await self.names.events(changes) if changes else []

    async def queue(self, conn: AsyncConnection, stock: list[StockEvent],
                    cursor: str) -> int:
        """In the caller's transaction: the batch's deliveries, then the cursor
        (with the lease renewed; LeaseLost, rolling back, if it was taken)."""
        queued = 0
        events = events_of(stock, await expired_reservations(conn, stock)) if stock else []
        if events:
            endpoints = await rows.enabled_endpoints(conn, sorted({e[0] for e in events}))
            by_tenant = collections.defaultdict(list)
            for endpoint in endpoints:
                by_tenant[endpoint.tenant_id].append(endpoint)
            deadline = datetime.now(timezone.utc) + self.retry_window
            first = {(p.tenant_id, p.id): p.next_seq for p in endpoints}
            seqs = dict(first)
            new = []
            for tenant_id, name, key, body in events:
                for endpoint in by_tenant.get(tenant_id, ()):
                    if name in endpoint.events:
                        ref = (tenant_id, endpoint.id)
                        new.append(dict(tenant_id=tenant_id, webhook_id=endpoint.id,
                                        seq=seqs[ref], event=name, event_key=key,
                                        payload=body, deadline=deadline))
                        seqs[ref] += 1
            await rows.queue_deliveries(
                conn, new, {ref: seq for ref, seq in seqs.items() if seq != first[ref]})
            queued = len(new)
        if not await rows.renew_lease(conn, self.holder, self.lease_s, cursor):
            raise LeaseLost()
        return queued
