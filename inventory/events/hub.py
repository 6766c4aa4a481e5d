"""Fan-out of committed changes to the subscribers of this process."""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable
from uuid import UUID

from ..db import live, queries
from ..db.changes import Change
from ..db.engine import Database
from ..observability import listeners

log = logging.getLogger(__name__)
Level = tuple[UUID, UUID]  # (item_id, location_id) within a tenant


@dataclass(frozen=True)
class StockEvent:
    """A change with the names clients know it by. One object per change, shared
    by every subscriber it goes to."""

    change: Change
    sku: str
    location_code: str
    reorder_point: int
    # What each kind of subscription makes of this event, made once for all its
    # subscribers (see `view`).
    _views: dict = field(default_factory=dict, compare=False, repr=False)

    def view(self, kind: type, make: Callable[["StockEvent"], Any]) -> Any:
        """`make(self)`, computed once per event and kind."""
        made = self._views.get(kind)
        if made is None:
            made = self._views[kind] = make(self)
        return made

    @property
    def level(self) -> Level:
        return (self.change.item_id, self.change.location_id)

    @property
    def available(self) -> int:
        return self.change.after.available

    @property
    def available_before(self) -> int:
        return (self.change.after - self.change.delta).available

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

    def __init__(self, selection: "Selection", capacity: int):
        # Changes the feed found below this position had committed before the
        # subscription started: not live events (set once known, see Hub.start).
        self.start: Any = None
        self.selection = selection
        self.tenant_id = selection.tenant_id
        self.capacity = capacity
        self.overflowed = False
        self._buffer: collections.deque[StockEvent] = collections.deque()
        self._wake = asyncio.Event()

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
        while True:
            while not self._buffer:
                if self.overflowed:
                    raise SubscriberOverflow()
                self._wake.clear()
                await self._wake.wait()
            event = self._buffer.popleft()
            position = event.change.position
            if self.start is None or position is None or position >= self.start:
                return event


class Selection:
    """The subscribers that asked for the same levels of one tenant (items and
    locations, None meaning all): each event is matched once for all of them."""

    def __init__(self, tenant_id: UUID, item_ids: frozenset[UUID] | None,
                 location_ids: frozenset[UUID] | None):
        self.tenant_id = tenant_id
        self.item_ids = item_ids
        self.location_ids = location_ids
        self.subscribers: set[Subscriber] = set()

    def matches(self, change: Change) -> bool:
        return ((self.item_ids is None or change.item_id in self.item_ids)
                and (self.location_ids is None or change.location_id in self.location_ids))


class Names:
    """id -> sku / location code / reorder point, loaded on first sight.
    SKUs and codes never change; a reorder point does (updateItem, in any
    process). A change the PostgreSQL feed read carries its item's reorder
    point as of that read, which is used. For the others (the changefeed,
    ledger replays) an item's entry is read again once it is
    REORDER_POINT_TTL_S old: such an event uses a reorder point at most that
    much older than the event (docs/live-stock.md)."""

    MAX_ENTRIES = 200_000
    REORDER_POINT_TTL_S = 1.0

    def __init__(self, db: Database, clock: Callable[[], float] = time.monotonic):
        self.db = db
        self.clock = clock
        self.items: dict[tuple[UUID, UUID], tuple[str, int]] = {}
        self._loaded: dict[tuple[UUID, UUID], float] = {}  # item -> when its entry was read
        self.locations: dict[tuple[UUID, UUID], str] = {}

    def forget(self) -> None:
        self.items.clear()
        self._loaded.clear()
        self.locations.clear()

    def known(self, changes: list[Change]) -> list[StockEvent] | None:
        """The events of `changes` from what is cached, without a query; None
        when a name or a reorder point must be read first (`events`)."""
        items, locations = self._missing(changes, self.clock() - self.REORDER_POINT_TTL_S)
        return None if items or locations else self._made(changes)

    async def events(self, changes: list[Change]) -> list[StockEvent]:
        now = self.clock()
        missing_items, missing_locations = self._missing(
            changes, now - self.REORDER_POINT_TTL_S)
        if missing_items or missing_locations:
            if len(self.items) + len(self.locations) > self.MAX_ENTRIES:
                self.forget()
            async with self.db.reader.connect() as conn:
                for tenant, ids in missing_items.items():
                    for id_, names in (await live.item_names(conn, tenant, list(ids))).items():
                        self.items[(tenant, id_)] = names
                        self._loaded[(tenant, id_)] = now
                for tenant, ids in missing_locations.items():
                    for id_, code in (await live.location_codes(conn, tenant, list(ids))).items():
                        self.locations[(tenant, id_)] = code
        return self._made(changes)

    def _missing(self, changes: list[Change], stale: float
                 ) -> tuple[dict[UUID, set[UUID]], dict[UUID, set[UUID]]]:
        """Per tenant, the items and locations whose entries must be read."""
        missing_items: dict[UUID, set[UUID]] = collections.defaultdict(set)
        missing_locations: dict[UUID, set[UUID]] = collections.defaultdict(set)
        for c in changes:
            loaded = self._loaded.get((c.tenant_id, c.item_id))
            # With its own reorder point a change needs only the sku, which never changes.
            if loaded is None or (c.reorder_point is None and loaded <= stale):
                missing_items[c.tenant_id].add(c.item_id)
            if (c.tenant_id, c.location_id) not in self.locations:
                missing_locations[c.tenant_id].add(c.location_id)
        return missing_items, missing_locations

    def _made(self, changes: list[Change]) -> list[StockEvent]:
        out = []
        for c in changes:
            item = self.items.get((c.tenant_id, c.item_id))
            code = self.locations.get((c.tenant_id, c.location_id))
            if item and code:
                out.append(StockEvent(c, item[0], code,
                                      item[1] if c.reorder_point is None else c.reorder_point))
        return out


class Hub:
    def __init__(self, db: Database, capacity: int = 1000,
                 now: Callable[[], Awaitable[Any]] | None = None,
                 wake: Callable[[], None] | None = None):
        self.db = db
        self.capacity = capacity
        self._now = now  # the feed's position at this moment
        self._wake_feed = wake  # asks the feed to read now (it reads slowly while idle)
        self.names = Names(db)
        # tenant -> (item ids, location ids) -> the subscribers of that selection
        self._selections: dict[UUID, dict[tuple, Selection]] = collections.defaultdict(dict)
        # Newest version dispatched per level: feeds may bring a change twice
        # (poll overlap, catch-up after reconnect); it goes out once.
        self._last: dict[tuple[UUID, UUID, UUID], int] = {}

    @property
    def subscriber_count(self) -> int:
        return sum(len(sel.subscribers) for by_key in self._selections.values()
                   for sel in by_key.values())

    @property
    def selection_count(self) -> int:
        return sum(len(by_key) for by_key in self._selections.values())

    def tenants(self) -> list[UUID]:
        # Called from the feed's thread too: list() copies the entries in one
        # step under the interpreter lock, so a subscription starting meanwhile
        # cannot change the dict under the loop.
        return [t for t, by_key in list(self._selections.items()) if by_key]

    def subscribe(self, tenant_id: UUID, item_ids: frozenset[UUID] | None = None,
                  location_ids: frozenset[UUID] | None = None) -> Subscriber:
        by_key = self._selections[tenant_id]
        selection = by_key.get((item_ids, location_ids))
        if selection is None:
            selection = by_key[(item_ids, location_ids)] = Selection(
                tenant_id, item_ids, location_ids)
        sub = Subscriber(selection, self.capacity)
        selection.subscribers.add(sub)
        return sub

    async def start(self, sub: Subscriber) -> None:
        """Marks where `sub` starts, once it is registered (so that nothing
        found after this point can slip past it): changes found below had
        committed before it subscribed and are not sent to it live."""
        if self._now is not None:
            sub.start = await self._now()
        if self._wake_feed is not None:
            self._wake_feed()

    def unsubscribe(self, sub: Subscriber) -> None:
        selection = sub.selection
        selection.subscribers.discard(sub)
        by_key = self._selections.get(selection.tenant_id, {})
        if not selection.subscribers and by_key.get(
                (selection.item_ids, selection.location_ids)) is selection:
            del by_key[(selection.item_ids, selection.location_ids)]
            if not by_key:
                self._selections.pop(selection.tenant_id, None)
        if sub.overflowed:
            listeners.count(listeners.SUBSCRIPTION_OVERFLOW)  # /metrics

    async def deliver(self, changes: list[Change]) -> None:
        """Called by the feed with committed changes, in any order."""
        later = self.deliver_now(changes)
        if later is not None:
            await later

    def deliver_now(self, changes: list[Change]) -> Awaitable[None] | None:
        """`deliver`, done at once when the names of the changes are known
        (the usual case: then the subscribers are offered the events before
        this returns); otherwise what to await for the rest. The feed's thread
        calls this straight on the process's loop: a task would first wait for
        a turn of the loop of its own."""
        fresh = []
        for c in sorted(changes, key=lambda c: (c.level, c.version)):
            if c.version <= self._last.get(c.level, 0):
                continue
            self._last[c.level] = c.version
            if self._selections.get(c.tenant_id):
                fresh.append(c)
        if not fresh:
            return None
        events = self.names.known(fresh)
        if events is None:
            return self._deliver_named(fresh)
        self._offer(events)
        return None

    async def _deliver_named(self, fresh: list[Change]) -> None:
        self._offer(await self.names.events(fresh))

    def _offer(self, events: list[StockEvent]) -> None:
        for event in events:
            for selection in list(self._selections.get(event.change.tenant_id, {}).values()):
                if selection.matches(event.change):
                    for sub in selection.subscribers:
                        sub.offer(event)

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
