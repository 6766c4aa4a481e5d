"""Kits: making one (its components checked in the transaction) and what a
kit is made of, cached per process.

An item is a kit or not for life, and a kit's components never change (a new
bundle is a new sku), so a definition once read stays true: the reserve path
asks the process cache (service/idcache.py) and reads only misses. Plain items
are cached too (as no parts), also whenever their id is resolved: the hot path
asks for every sku it reserves, and a plain item costs it nothing more."""
from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import kits as kit_rows
from ..db import queries
from ..domain.commands import KitComponent
from ..domain.errors import Rejected, invalid, not_found
from ..domain.kits import Part
from .context import Ctx
from .idcache import cache_for, cache_of_pool
from .reads import reading
from .resolve import archived_error


async def parts_of(conn: AsyncConnection, tenant_id: UUID, skus) -> dict[str, tuple[Part, ...]]:
    """{sku: its parts} of the known skus (() for a plain item); unknown skus are
    absent (asked again next time: one may be created a moment later)."""
    cache = cache_for(conn)
    found, missing = cache.lookup_parts(tenant_id, set(skus))
    if missing:
        fetched = await kit_rows.parts_by_skus(conn, tenant_id, missing)
        cache.remember_parts(tenant_id, fetched)
        found.update(fetched)
    return found


async def kits_among(ctx: Ctx, skus) -> dict[str, tuple[Part, ...]]:
    """The kits among `skus` with their parts, outside any transaction (the
    hot-level path decides with it how a reservation takes turns)."""
    cache = cache_of_pool(ctx.db.write_engine.sync_engine.pool)
    found, missing = cache.lookup_parts(ctx.tenant_id, set(skus))
    if missing:
        async with reading(ctx) as conn:  # errors become retryable answers
            fetched = await kit_rows.parts_by_skus(conn, ctx.tenant_id, missing)
        cache.remember_parts(ctx.tenant_id, fetched)
        found.update(fetched)
    return {sku: parts for sku, parts in found.items() if parts}


async def check_components(conn: AsyncConnection, tenant_id: UUID,
                           components: tuple[KitComponent, ...]) -> list[tuple[UUID, int]]:
    """(component item id, units per kit) of a new kit, or Rejected: NOT_FOUND
    for an unknown sku, ARCHIVED for an archived item, INVALID_INPUT for a kit
    (kits hold plain items: no nesting, so no cycle through other kits). Read
    in the creating transaction, so a concurrent archive serializes with it."""
    item_ids, _, flags = await queries.resolve_with_archived(
        conn, tenant_id, [c.sku for c in components], [])
    for i, c in enumerate(components):
        field = f"components[{i}].sku"
        if c.sku not in item_ids:
            raise Rejected(not_found(field, f"no item with sku {c.sku!r}"))
        if ("item", c.sku) in flags:
            raise Rejected(archived_error(field, f"item {c.sku!r} is archived: no new kit "
                                                 "can be made of it"))
        if ("kit", c.sku) in flags:
            raise Rejected(invalid(field, f"item {c.sku!r} is a kit: a kit's components are "
                                          "plain items (kits do not nest)"))
    return [(item_ids[c.sku], c.quantity) for c in components]


async def parts_by_item_ids(ctx: Ctx, item_ids: list[UUID]) -> dict[UUID, tuple[Part, ...]]:
    """Each kit's parts by its item id (plain items are absent): for reads."""
    async with reading(ctx) as conn:
        return await kit_rows.components_of(conn, ctx.tenant_id, item_ids)
