"""Live stock for subscribers: the subscription filters turned into ids, then
the matching changes from this process's hub (inventory/events): a replay from
the ledger of what a client missed, then live events, each version of a level
once and in order."""
from __future__ import annotations

from typing import AsyncIterator
from uuid import UUID

from ..domain.errors import ErrorCode, Rejected, UserError
from ..events.hub import Hub, StockEvent, SubscriberOverflow
from ..events.streams import level_events, low_stock_events
from .context import Ctx

__all__ = ["StockEvent", "SubscriberOverflow", "hub_of", "level_changes", "low_stock_changes"]


def hub_of(ctx: Ctx) -> Hub:
    """This process's hub, or Rejected (UNAVAILABLE) when it runs none."""
    if ctx.hub is None:
        raise Rejected(UserError(ErrorCode.UNAVAILABLE,
                                 "subscriptions are not enabled in this process"))
    return ctx.hub


def _missing(name: str, wanted, found: dict) -> None:
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise Rejected(UserError(ErrorCode.NOT_FOUND, f"unknown {name}: {', '.join(unknown[:10])}",
                                 field=name))


async def level_changes(
    ctx: Ctx, skus: list[str] | None, location_codes: list[str] | None,
    since: list[tuple[str, str, int]],
) -> AsyncIterator[StockEvent]:
    """Changes of the levels of these skus at these locations (None: any);
    `since` holds (sku, location code, last version seen) to replay what came
    after. Rejected (NOT_FOUND, field skus or locationCodes) for an unknown sku
    or code, before anything is yielded."""
    hub = hub_of(ctx)
    all_skus = set(skus or []) | {sku for sku, _, _ in since}
    all_codes = set(location_codes or []) | {code for _, code, _ in since}
    item_ids, location_ids = await hub.ids_for(ctx.tenant_id, sorted(all_skus),
                                               sorted(all_codes))
    _missing("skus", all_skus, item_ids)
    _missing("locationCodes", all_codes, location_ids)
    known: dict[tuple[UUID, UUID], int] = {}
    for sku, code, version in since:
        level = (item_ids[sku], location_ids[code])
        known[level] = max(version, known.get(level, 0))
    items = frozenset(item_ids[s] for s in skus) if skus is not None else None
    locations = (frozenset(location_ids[c] for c in location_codes)
                 if location_codes is not None else None)
    async for event in level_events(hub, ctx.tenant_id, items, locations, known):
        yield event


async def low_stock_changes(ctx: Ctx, location_codes: list[str] | None
                            ) -> AsyncIterator[StockEvent]:
    """Changes that cross an item's reorder point, either way, at these
    locations (None: any). Rejected (NOT_FOUND) for an unknown code."""
    hub = hub_of(ctx)
    _, location_ids = await hub.ids_for(ctx.tenant_id, [], sorted(set(location_codes or [])))
    _missing("locationCodes", location_codes or [], location_ids)
    locations = frozenset(location_ids.values()) if location_codes is not None else None
    async for event in low_stock_events(hub, ctx.tenant_id, locations):
        yield event
