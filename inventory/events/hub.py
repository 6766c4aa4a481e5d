"""Fan-out of committed changes to the subscribers of this process."""
from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from typing import AsyncIterator
from datetime import datetime
from uuid import UUID

from ..db import live, queries
from ..db.changes import Change
from ..db.engine import Database

log = logging.getLogger(__name__)
Level = tuple[UUID, UUID]  # (item_id, location_id) within a tenant


@dataclass(frozen=True)
class StockEvent:
    """A change with the names clients know it by."""

    change: Change
    sku: str
    location_code: str
    reorder_point: int

    @property
    def level(self) -> Level:
        return (self.change.item_id, self.change.location_id)

    @property
    def available(self) -> int:
        return self.change.on_hand - self.change.reserved

    @property
    def available_before(self) -> int:
        c = self.change
        return (c.on_hand - c.on_hand_delta) - (c.reserved - c.reserved_delta)

    @property
    def is_low(self) -> bool:
        return self.available <= self.reorder_point

    @property
    def was_low(self) -> bool:
        return self.available_before <= self.reorder_point


class SubscriberOverflow(Exception):
    """The subscriber fell further behind than its buffer allows."""


class Subscriber:
    """One subscription's bounded buffer. `offer` never blocks: when the buffer
    is full the subscription is marked overflowed, its buffer dropped, and the
    consumer gets SubscriberOverflow on its next read."""

    def __init__(self, tenant_id: UUID, item_ids: frozenset[UUID] | None,
                 location_ids: frozenset[UUID] | None, capacity: int):
        self.tenant_id = tenant_id
        self.item_ids = item_ids
        self.location_ids = location_ids
        self.capacity = capacity
        self.overflowed = False
        self._buffer: collections.deque[StockEvent] = collections.deque()
        self._wake = asyncio.Event()

    def matches(self, event: StockEvent) -> bool:
        c = event.change
        return (c.tenant_id == self.tenant_id
                and (self.item_ids is None or c.item_id in self.item_ids)
                and (self.location_ids is None or c.location_id in self.location_ids))

    def offer(self, event: StockEvent) -> None:
        if self.overflowed:
            return
        if len(self._buffer) >= self.capacity:
            self.overflowed = True
            self._buffer.clear()
        else:
            self._buffer.append(event)
        self._wake.set()

    async def get(self) -> StockEvent:
        while not self._buffer:
            if self.overflowed:
                raise SubscriberOverflow()
            self._wake.clear()
            await self._wake.wait()
        return self._buffer.popleft()


class Names:
    """id -> sku / location code / reorder point, loaded on first sight.
    SKUs and codes never change and no mutation changes a reorder point; a
    future one must call `forget`."""

    MAX_ENTRIES = 200_000

    def __init__(self, db: Database):
        self.db = db
        self.items: dict[tuple[UUID, UUID], tuple[str, int]] = {}
        self.locations: dict[tuple[UUID, UUID], str] = {}

    def forget(self) -> None:
        self.items.clear()
        self.locations.clear()

    async def events(self, changes: list[Change]) -> list[StockEvent]:
        missing_items: dict[UUID, set[UUID]] = collections.defaultdict(set)
        missing_locations: dict[UUID, set[UUID]] = collections.defaultdict(set)
        for c in changes:
            if (c.tenant_id, c.item_id) not in self.items:
                missing_items[c.tenant_id].add(c.item_id)
            if (c.tenant_id, c.location_id) not in self.locations:
                missing_locations[c.tenant_id].add(c.location_id)
        if missing_items or missing_locations:
            if len(self.items) + len(self.locations) > self.MAX_ENTRIES:
                self.forget()
            async with self.db.reader.connect() as conn:
                for tenant, ids in missing_items.items():
                    for id_, names in (await live.item_names(conn, tenant, list(ids))).items():
                        self.items[(tenant, id_)] = names
                for tenant, ids in missing_locations.items():
                    for id_, code in (await live.location_codes(conn, tenant, list(ids))).items():
                        self.locations[(tenant, id_)] = code
        out = []
        for c in changes:
            item = self.items.get((c.tenant_id, c.item_id))
            code = self.locations.get((c.tenant_id, c.location_id))
            if item and code:
                out.append(StockEvent(c, item[0], code, item[1]))
        return out


@dataclass
class HubStats:
    received: int = 0
    dispatched: int = 0
    duplicates: int = 0
    overflows: int = 0
    last_event_at: datetime | None = None


class Hub:
    def __init__(self, db: Database, capacity: int = 1000):
        self.db = db
        self.capacity = capacity
        self.names = Names(db)
        self.stats = HubStats()
        self._subscribers: dict[UUID, set[Subscriber]] = collections.defaultdict(set)
        # Newest version dispatched per level: feeds may bring a change twice
        # (poll overlap, catch-up after reconnect); it goes out once.
        self._last: dict[tuple[UUID, UUID, UUID], int] = {}

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def tenants(self) -> list[UUID]:
        return [t for t, subs in self._subscribers.items() if subs]

    def subscribe(self, tenant_id: UUID, item_ids: frozenset[UUID] | None = None,
                  location_ids: frozenset[UUID] | None = None) -> Subscriber:
        sub = Subscriber(tenant_id, item_ids, location_ids, self.capacity)
        self._subscribers[tenant_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers[sub.tenant_id].discard(sub)
        if sub.overflowed:
            self.stats.overflows += 1

    async def deliver(self, changes: list[Change]) -> None:
        """Called by the feed with committed changes, in any order."""
        self.stats.received += len(changes)
        fresh = []
        for c in sorted(changes, key=lambda c: (c.level, c.version)):
            if c.version <= self._last.get(c.level, 0):
                self.stats.duplicates += 1
                continue
            self._last[c.level] = c.version
            if self._subscribers.get(c.tenant_id):
                fresh.append(c)
        if not fresh:
            return
        for event in await self.names.events(fresh):
            for sub in self._subscribers.get(event.change.tenant_id, ()):
                if sub.matches(event):
                    sub.offer(event)
            self.stats.dispatched += 1
            self.stats.last_event_at = event.change.at

    REPLAY_PAGE = 2000

    async def replay(self, tenant_id: UUID, after: dict[Level, int],
                     below: dict[Level, int] | None = None) -> AsyncIterator[StockEvent]:
        """Changes a subscriber missed, rebuilt from the ledger page by page."""
        after = dict(after)
        while after:
            async with self.db.reader.connect() as conn:
                changes = await live.changes_after_versions(
                    conn, tenant_id, after, below, self.REPLAY_PAGE)
            for event in await self.names.events(changes):
                yield event
            if len(changes) < self.REPLAY_PAGE:
                return
            for c in changes:
                after[(c.item_id, c.location_id)] = c.version

    async def ids_for(self, tenant_id: UUID, skus: list[str], codes: list[str]
                      ) -> tuple[dict[str, UUID], dict[str, UUID]]:
        """sku -> item id and code -> location id, for those that exist."""
        async with self.db.reader.connect() as conn:
            return await queries.resolve(conn, tenant_id, skus, codes)
