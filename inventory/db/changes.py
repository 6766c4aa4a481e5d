"""Stock-level changes of one write transaction, announced inside it.

Every ledger statement notes the level it produced (`record`). The runner wraps
each unit of work with `announcing`, which starts an empty list per attempt and,
just before COMMIT and in the same transaction, hands the list to the change
feed: on PostgreSQL one `pg_notify` per batch, delivered by the server only if
the transaction commits. A rolled-back or retried attempt therefore announces
nothing. Where notifications do not exist (CockroachDB) or the poll feed is
chosen, nothing is sent and readers poll the `movements` ledger instead.
"""
from __future__ import annotations

import contextlib

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable, TypeVar
from uuid import UUID

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .dialect import change_feed_mode

CHANNEL = "inventory_stock_changes"
MAX_PAYLOAD_BYTES = 7000  # PostgreSQL's limit is 8000 bytes per notification
_KEY = "inventory.pending_changes"
T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    """One new version of one stock level, as the ledger recorded it."""

    tenant_id: UUID
    item_id: UUID
    location_id: UUID
    on_hand: int
    reserved: int
    on_hand_delta: int
    reserved_delta: int
    version: int
    kind: str
    at: datetime

    @property
    def level(self) -> tuple[UUID, UUID, UUID]:
        return (self.tenant_id, self.item_id, self.location_id)

    def to_wire(self) -> list[Any]:
        return [str(self.tenant_id), str(self.item_id), str(self.location_id), self.on_hand,
                self.reserved, self.on_hand_delta, self.reserved_delta, self.version,
                self.kind, self.at.isoformat()]

    @classmethod
    def from_wire(cls, raw: list[Any]) -> "Change":
        t, i, l, on, res, d_on, d_res, v, kind, at = raw
        return cls(UUID(t), UUID(i), UUID(l), on, res, d_on, d_res, v, kind,
                   datetime.fromisoformat(at))


def record(conn: AsyncConnection, change: Change) -> None:
    """Notes a change if the current unit of work collects them (others, e.g.
    seeding, do not)."""
    pending = conn.info.get(_KEY)
    if pending is not None:
        pending.append(change)


def encode(changes: list[Change]) -> list[str]:
    """JSON payloads, each under PostgreSQL's notification size limit."""
    payloads, batch, size = [], [], 2
    for change in changes:
        item = json.dumps(change.to_wire(), separators=(",", ":"))
        if batch and size + len(item) + 1 > MAX_PAYLOAD_BYTES:
            payloads.append("[" + ",".join(batch) + "]")
            batch, size = [], 2
        batch.append(item)
        size += len(item) + 1
    if batch:
        payloads.append("[" + ",".join(batch) + "]")
    return payloads


def decode(payload: str) -> list[Change]:
    return [Change.from_wire(raw) for raw in json.loads(payload)]


async def announce(conn: AsyncConnection, changes: list[Change]) -> None:
    if not changes or change_feed_mode(conn.dialect) != "notify":
        return
    for payload in encode(changes):
        await conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


_NOTIFY = text("SELECT pg_notify(:channel, :payload)")  # built once: one per write


def announcing(work: Callable[[AsyncConnection], Awaitable[T]]):
    """Wraps a unit of work so that its changes are announced before COMMIT."""

    async def unit(conn: AsyncConnection) -> T:
        conn.info[_KEY] = []
        try:
            result = await work(conn)
            await announce(conn, conn.info[_KEY])
            return result
        finally:
            # The connection returns to the pool clean. A connection the server
            # dropped refuses even this until rolled back; the original error is
            # what matters (the retry runner handles it), and the next unit
            # resets the list anyway.
            with contextlib.suppress(sa_exc.SQLAlchemyError):
                conn.info.pop(_KEY, None)

    return unit
