"""Turns skus and location codes into ids, or a NOT_FOUND naming the field."""
from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import queries
from ..domain.errors import Rejected, not_found
from .idcache import cache_for


async def ids_for(
    conn: AsyncConnection, tenant_id: UUID, wanted: list[tuple[str, str, str, str]]
) -> tuple[dict[str, UUID], dict[str, UUID]]:
    """`wanted` is a list of (sku, sku field, code, code field). Raises Rejected
    (NOT_FOUND) for the first unknown sku or code; nothing has been written yet."""
    skus = {sku for sku, _, _, _ in wanted}
    codes = {code for _, _, code, _ in wanted}
    # Known ids come from the process cache; only misses cost a round trip.
    cache = cache_for(conn)
    item_ids, location_ids, miss_skus, miss_codes = cache.lookup(tenant_id, skus, codes)
    if miss_skus or miss_codes:
        found_items, found_locs = await queries.resolve(conn, tenant_id, miss_skus, miss_codes)
        cache.remember(tenant_id, found_items, found_locs)
        item_ids.update(found_items)
        location_ids.update(found_locs)
    for sku, sku_field, code, code_field in wanted:
        if sku not in item_ids:
            raise Rejected(not_found(sku_field, f"no item with sku {sku!r}"))
        if code not in location_ids:
            raise Rejected(not_found(code_field, f"no location with code {code!r}"))
    return item_ids, location_ids
