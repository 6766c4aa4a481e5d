"""Subscription resolvers: check the filters, then stream from the live stock
use case (service/live.py).

On a socket that can take frames directly (graphql-transport-ws,
web/frames.py), a subscription writes each event's frame itself instead of
yielding the event to strawberry: the frame is made once per event and
selection, and what is left per subscriber is its buffer, its version check
and one socket write (docs/live-stock.md). Errors that end a subscription still
go through strawberry (raised from the stream), and so does the start: access
checks, filters, NOT_FOUND.
"""
from __future__ import annotations

import asyncio
from contextlib import contextmanager
from contextvars import ContextVar
from typing import AsyncIterator, Iterator, Protocol

from graphql import GraphQLError
from strawberry.types import Info

from ..observability.metrics import subscription_active
from ..domain.errors import Rejected
from ..graphql_runtime.errors import subscription_ended
from ..schema.subscriptions import LevelVersionInput, LowStockChange, StockLevelChange
from ..service import live
from ..service.live import StockEvent, SubscriberOverflow
from .errors import invalid_argument

MAX_FILTER = 500
MAX_SINCE = 5000


@contextmanager
def _typed() -> Iterator[None]:
    """A use case's refusal as a typed GraphQL error."""
    try:
        yield
    except Rejected as rejected:
        error = rejected.error
        extensions = {"code": error.code.value}
        if error.field:
            extensions["field"] = error.field
        raise GraphQLError(error.message, extensions=extensions) from None


def _check_list(name: str, values: list | None, limit: int) -> None:
    if values is not None and len(values) > limit:
        raise invalid_argument(name, f"{name} takes at most {limit} entries")


def _overflow() -> GraphQLError:
    return GraphQLError(
        "this subscription fell too far behind and was closed; subscribe again passing "
        "`since` with the last version you received per level to get what was missed",
        extensions={"code": "SUBSCRIPTION_OVERFLOW"},
    )


class Frames(Protocol):
    """Sends one operation's results on its socket (web/frames.py)."""

    async def send(self, payload: StockLevelChange | LowStockChange) -> None: ...


# Set by the WebSocket edge for each operation whose results it can send
# itself; None elsewhere (the legacy graphql-ws protocol, HTTP, tests that
# call the schema directly): there events are yielded to strawberry.
direct_frames: ContextVar[Frames | None] = ContextVar("direct_frames", default=None)


async def _guarded(events: AsyncIterator[StockEvent],
                   payload: type[StockLevelChange] | type[LowStockChange]
                   ) -> AsyncIterator[StockEvent]:
    """Errors that end a subscription reach the client typed and without
    internal detail (inventory/graphql_runtime/errors.py)."""
    frames = direct_frames.get()
    try:
        with subscription_active():  # the active-subscriptions gauge on /metrics
            if frames is None:
                async for event in events:
                    yield event
            else:  # nothing is yielded: the frames go out below strawberry
                async for event in events:
                    await frames.send(event.view(payload, payload.of))
    except (GraphQLError, asyncio.CancelledError):
        raise
    except SubscriberOverflow:
        raise _overflow() from None
    except Exception as error:  # classified as every answer's errors are
        raise subscription_ended(error) from None


def stock_level_changed(info: Info, skus, location_codes, since) -> AsyncIterator[StockEvent]:
    return _guarded(_stock_level_changed(info, skus, location_codes, since), StockLevelChange)


def low_stock(info: Info, location_codes) -> AsyncIterator[StockEvent]:
    return _guarded(_low_stock(info, location_codes), LowStockChange)


async def _stock_level_changed(
    info: Info, skus: list[str] | None, location_codes: list[str] | None,
    since: list[LevelVersionInput] | None,
) -> AsyncIterator[StockEvent]:
    ctx = info.context.ctx
    with _typed():
        live.hub_of(ctx)
    _check_list("skus", skus, MAX_FILTER)
    _check_list("locationCodes", location_codes, MAX_FILTER)
    _check_list("since", since, MAX_SINCE)
    since = since or []
    if any(entry.version < 0 for entry in since):
        raise invalid_argument("since", "versions are never negative")
    with _typed():
        async for event in live.level_changes(
                ctx, skus, location_codes,
                [(entry.sku, entry.location_code, entry.version) for entry in since]):
            yield event


async def _low_stock(info: Info, location_codes: list[str] | None) -> AsyncIterator[StockEvent]:
    ctx = info.context.ctx
    with _typed():
        live.hub_of(ctx)
    _check_list("locationCodes", location_codes, MAX_FILTER)
    with _typed():
        async for event in live.low_stock_changes(ctx, location_codes):
            yield event
