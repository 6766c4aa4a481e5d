"""What a subscription yields: ledger replay for known levels, then live
events, each version of a level once and in version order."""
from __future__ import annotations

from typing import AsyncIterator
from uuid import UUID

from .hub import Hub, Level, StockEvent


async def level_events(
    hub: Hub,
    tenant_id: UUID,
    item_ids: frozenset[UUID] | None,
    location_ids: frozenset[UUID] | None,
    since: dict[Level, int],
) -> AsyncIterator[StockEvent]:
    # Subscribe before replaying, so that nothing committed during the replay
    # falls between the two; the version check drops what both bring.
    sub = hub.subscribe(tenant_id, item_ids, location_ids)
    last: dict[Level, int] = {}
    try:
        await hub.start(sub)
        if since:
            async for event in hub.replay(tenant_id, since):
                if event.change.version > last.get(event.level, since[event.level]):
                    last[event.level] = event.change.version
                    yield event
            for level, version in since.items():
                last.setdefault(level, version)
        while True:
            event = await sub.get()
            seen = last.get(event.level)
            if seen is not None:
                if event.change.version <= seen:
                    continue
                if event.change.version > seen + 1:
                    # A gap (e.g. the feed saw a newer version first): fill it
                    # from the ledger so the client still gets every version.
                    async for missed in hub.replay(tenant_id, {event.level: seen},
                                                   {event.level: event.change.version}):
                        yield missed
            last[event.level] = event.change.version
            yield event
    finally:
        hub.unsubscribe(sub)


async def low_stock_events(
    hub: Hub, tenant_id: UUID, location_ids: frozenset[UUID] | None
) -> AsyncIterator[StockEvent]:
    """Only the changes that cross an item's reorder point, either way."""
    async for event in level_events(hub, tenant_id, None, location_ids, {}):
        if event.is_low != event.was_low:
            yield event
