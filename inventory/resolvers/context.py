"""Per-request context: the service context (tenant and actor of the caller's
credential) and fresh DataLoaders (one batch query per kind of object per
request tick)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID

from strawberry.dataloader import DataLoader

from ..domain.channels import ChannelView
from ..domain.models import ItemView, LocationView, StockLevelView
from ..domain.kits import Part
from ..service import channels, kits, reads
from ..service.context import Ctx


class Loaders:
    """Created on first use: most requests (a level read, a mutation) need none,
    and building three DataLoaders per request showed in the profile.

    The load functions close over the service context, never over `self`: a
    loader holding its Loaders would be a reference cycle, and every value a
    request loaded (a page's levels and views) would wait for the cycle
    collector instead of being freed when the request ends."""

    def __init__(self, ctx: Ctx):
        self.ctx = ctx

    @staticmethod
    async def many(loader: DataLoader, keys: list) -> list:
        """`loader.load_many(keys)`, for the batches of the fast path (one call for
        a whole page): the keys the loader has not seen go to its load function
        in one call and are primed into its cache; those it has are taken from
        it. The same values, without a future, a task and a callback per key."""
        cache = loader.cache_map
        missing = [key for key in dict.fromkeys(keys) if cache.get(key) is None]
        if missing:
            loader.prime_many(dict(zip(missing, await loader.load_fn(missing))))
        values = []
        for key in keys:
            future = cache.get(key)
            values.append(future.result() if future.done() else await future)
        return values

    @cached_property
    def item(self) -> DataLoader[UUID, ItemView]:
        ctx = self.ctx
        async def load_items(keys: list[UUID]) -> list[ItemView]:
            found = await reads.items_by_ids(ctx, list(keys))
            return [found[k] for k in keys]

        return DataLoader(load_fn=load_items)

    @cached_property
    def location(self) -> DataLoader[UUID, LocationView]:
        ctx = self.ctx
        async def load_locations(keys: list[UUID]) -> list[LocationView]:
            found = await reads.locations_by_ids(ctx, list(keys))
            return [found[k] for k in keys]

        return DataLoader(load_fn=load_locations)

    @cached_property
    def levels_of_item(self) -> DataLoader[UUID, list[StockLevelView]]:
        ctx = self.ctx
        async def load_levels(keys: list[UUID]) -> list[list[StockLevelView]]:
            found = await reads.levels_for_items(ctx, list(keys))
            return [found.get(k, []) for k in keys]

        return DataLoader(load_fn=load_levels)

    @cached_property
    def kit_parts(self) -> DataLoader[UUID, tuple[Part, ...]]:
        """A kit's components by its item id; () for a plain item."""
        ctx = self.ctx
        async def load_parts(keys: list[UUID]) -> list[tuple[Part, ...]]:
            found = await kits.parts_by_item_ids(ctx, list(keys))
            return [found.get(k, ()) for k in keys]

        return DataLoader(load_fn=load_parts)

    @cached_property
    def level(self) -> DataLoader[tuple[UUID, UUID], StockLevelView | None]:
        ctx = self.ctx
        async def load_levels(keys: list[tuple[UUID, UUID]]) -> list[StockLevelView | None]:
            found = await reads.levels_by_keys(ctx, list(keys))
            return [found.get(k) for k in keys]

        return DataLoader(load_fn=load_levels)

    @cached_property
    def next_expected_at(self) -> DataLoader[tuple[UUID, UUID], datetime | None]:
        ctx = self.ctx
        async def load_next(keys: list[tuple[UUID, UUID]]) -> list[datetime | None]:
            found = await reads.next_expected_at(ctx, list(keys))
            return [found.get(k) for k in keys]

        return DataLoader(load_fn=load_next)

    @cached_property
    def channel(self) -> DataLoader[str, ChannelView | None]:
        """By code; None for an unknown code."""
        ctx = self.ctx
        async def load_channels(keys: list[str]) -> list[ChannelView | None]:
            found = await channels.channels_by_codes(ctx, list(keys))
            return [found.get(k) for k in keys]

        return DataLoader(load_fn=load_channels)


@dataclass
class Context:
    ctx: Ctx
    loaders: Loaders
    request: Any = None
    response: Any = None
    principal: Any = None  # inventory.auth.principal.Principal once authenticated
    limiter: Any = None  # inventory.auth.ratelimit.RateLimiter
    connection_params: Any = None  # WebSocket connection_init payload
    socket: Any = None  # inventory.auth.sockets.LiveSocket on an authenticated WebSocket

    def act_as(self, principal: Any, callers: "CallerContexts | None" = None) -> None:
        """Binds the context to the caller: every read and write is scoped by the
        credential's tenant and the ledger records its actor (`callers`: the
        bound service contexts remembered)."""
        self.principal = principal
        self.ctx = callers(principal) if callers is not None else bind(self.ctx, principal)
        self.loaders = Loaders(self.ctx)


def bind(ctx: Ctx, principal: Any) -> Ctx:
    """The service context acting for the caller."""
    return replace(ctx, tenant_id=principal.tenant_id, actor=principal.actor)


class CallerContexts:
    """The service context bound to each recent caller (tenant and actor),
    made once per caller rather than per request (`dataclasses.replace` was a
    visible part of the fixed cost of an operation)."""

    MAX_CALLERS = 10_000

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self._bound: dict[tuple, Ctx] = {}

    def __call__(self, principal: Any) -> Ctx:
        key = (principal.tenant_id, principal.actor)
        found = self._bound.get(key)
        if found is None:
            if len(self._bound) >= self.MAX_CALLERS:
                self._bound.clear()
            found = self._bound[key] = bind(self.ctx, principal)
        return found


def make_context(ctx: Ctx, request: Any = None, response: Any = None,
                 principal: Any = None, limiter: Any = None,
                 callers: CallerContexts | None = None) -> Context:
    """`callers`: the bound contexts of `ctx`, remembered (CallerContexts(ctx))."""
    context = Context(ctx=ctx, loaders=None, request=request, response=response,  # type: ignore[arg-type]
                      limiter=limiter)
    if principal is not None:
        context.act_as(principal, callers)
    else:
        context.loaders = Loaders(ctx)
    return context
