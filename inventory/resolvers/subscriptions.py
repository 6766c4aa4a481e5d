"""Subscription resolvers: validate filters, then stream from the hub."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, AsyncIterator

from graphql import GraphQLError
from strawberry.types import Info

from ..observability.metrics import subscription_active
from ..graphql_runtime.errors import subscription_ended
from ..events.hub import StockEvent, SubscriberOverflow
from ..events.streams import level_events, low_stock_events
from .errors import invalid_argument

if TYPE_CHECKING:
    from ..schema.subscriptions import LevelVersionInput

MAX_FILTER = 500
MAX_SINCE = 5000


def _hub(info: Info):
    hub = info.context.ctx.hub
    if hub is None:
        raise GraphQLError("subscriptions are not enabled in this process",
                           extensions={"code": "UNAVAILABLE"})
    return hub


def _check_list(name: str, values: list | None, limit: int) -> None:
    if values is not None and len(values) > limit:
        raise invalid_argument(name, f"{name} takes at most {limit} entries")


def _missing(name: str, wanted, found: dict) -> None:
    unknown = sorted(set(wanted) - set(found))
    if unknown:
        raise GraphQLError(f"unknown {name}: {', '.join(unknown[:10])}",
                           extensions={"code": "NOT_FOUND", "field": name})


def _overflow() -> GraphQLError:
    return GraphQLError(
        "this subscription fell too far behind and was closed; subscribe again passing "
        "`since` with the last version you received per level to get what was missed",
        extensions={"code": "SUBSCRIPTION_OVERFLOW"},
    )


async def _guarded(events: AsyncIterator[StockEvent]) -> AsyncIterator[StockEvent]:
    """Errors that end a subscription reach the client typed and without
    internal detail (inventory/graphql_runtime/errors.py)."""
    try:
        with subscription_active():  # the active-subscriptions gauge on /metrics
            async for event in events:
                yield event
    except (GraphQLError, asyncio.CancelledError):
        raise
    except SubscriberOverflow:
        raise _overflow() from None
    except Exception as error:  # classified as every answer's errors are
        raise subscription_ended(error) from None


def stock_level_changed(info: Info, skus, location_codes, since) -> AsyncIterator[StockEvent]:
    return _guarded(_stock_level_changed(info, skus, location_codes, since))


def low_stock(info: Info, location_codes) -> AsyncIterator[StockEvent]:
    return _guarded(_low_stock(info, location_codes))


async def _stock_level_changed(
    info: Info, skus: list[str] | None, location_codes: list[str] | None,
    since: "list[LevelVersionInput] | None",
) -> AsyncIterator[StockEvent]:
    hub = _hub(info)
    tenant = info.context.ctx.tenant_id
    _check_list("skus", skus, MAX_FILTER)
    _check_list("locationCodes", location_codes, MAX_FILTER)
    _check_list("since", since, MAX_SINCE)
    since = since or []
    if any(entry.version < 0 for entry in since):
        raise invalid_argument("since", "versions are never negative")
    all_skus = set(skus or []) | {e.sku for e in since}
    all_codes = set(location_codes or []) | {e.location_code for e in since}
    item_ids, location_ids = await hub.ids_for(tenant, sorted(all_skus), sorted(all_codes))
    _missing("skus", all_skus, item_ids)
    _missing("locationCodes", all_codes, location_ids)
    known = {}
    for entry in since:
        level = (item_ids[entry.sku], location_ids[entry.location_code])
        known[level] = max(entry.version, known.get(level, 0))
    items = frozenset(item_ids[s] for s in skus) if skus is not None else None
    locations = (frozenset(location_ids[c] for c in location_codes)
                 if location_codes is not None else None)
    async for event in level_events(hub, tenant, items, locations, known):
        yield event


async def _low_stock(info: Info, location_codes: list[str] | None) -> AsyncIterator[StockEvent]:
    hub = _hub(info)
    tenant = info.context.ctx.tenant_id
    _check_list("locationCodes", location_codes, MAX_FILTER)
    _, location_ids = await hub.ids_for(tenant, [], sorted(set(location_codes or [])))
    _missing("locationCodes", location_codes or [], location_ids)
    locations = frozenset(location_ids.values()) if location_codes is not None else None
    async for event in low_stock_events(hub, tenant, locations):
        yield event
