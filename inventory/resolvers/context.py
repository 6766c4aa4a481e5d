"""Per-request context: the service context and fresh DataLoaders (one batch
query per kind of object per request tick)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from strawberry.dataloader import DataLoader

from ..domain.models import ItemView, LocationView, StockLevelView
from ..service import reads
from ..service.context import Ctx


class Loaders:
    def __init__(self, ctx: Ctx):
        async def load_items(keys: list[UUID]) -> list[ItemView]:
            found = await reads.items_by_ids(ctx, list(keys))
            return [found[k] for k in keys]

        async def load_locations(keys: list[UUID]) -> list[LocationView]:
            found = await reads.locations_by_ids(ctx, list(keys))
            return [found[k] for k in keys]

        async def load_levels(keys: list[UUID]) -> list[list[StockLevelView]]:
            found = await reads.levels_for_items(ctx, list(keys))
            return [found.get(k, []) for k in keys]

        self.item = DataLoader(load_fn=load_items)
        self.location = DataLoader(load_fn=load_locations)
        self.levels_of_item = DataLoader(load_fn=load_levels)


@dataclass
class Context:
    ctx: Ctx
    loaders: Loaders
    request: Any = None
    response: Any = None
    # WebSocket only: the `connection_init` payload (strawberry sets it).
    connection_params: Any = None


def make_context(ctx: Ctx, request: Any = None, response: Any = None) -> Context:
    return Context(ctx=ctx, loaders=Loaders(ctx), request=request, response=response)
