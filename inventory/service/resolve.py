"""Turns skus and location codes into ids, or a NOT_FOUND naming the field; and
refuses stock into an archived item or location (ARCHIVED) or into a kit
(KIT_HAS_NO_STOCK)."""
from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import queries
from ..domain.errors import ErrorCode, Rejected, UserError, not_found
from .idcache import cache_for

Wanted = tuple[str, str, str, str]  # (sku, sku field, code, code field)


def one_found(found: dict, key, field: str, message: str):
    """`found[key]`, or Rejected (NOT_FOUND naming `field`) when it is absent."""
    if key not in found:
        raise Rejected(not_found(field, message))
    return found[key]


async def ids_for(
    conn: AsyncConnection, tenant_id: UUID, wanted: list[Wanted], *, into: list[Wanted] = (),
) -> tuple[dict[str, UUID], dict[str, UUID]]:
    """`wanted` and `into` are lists of (sku, sku field, code, code field); the
    levels of `into` take new stock, so their item and location must not be
    archived. Raises Rejected (NOT_FOUND, ARCHIVED) for the first bad one;
    nothing has been written yet."""
    everything = [*wanted, *into]
    skus = {sku for sku, _, _, _ in everything}
    # A code None asks only for the sku (a line given by channel).
    codes = {code for _, _, code, _ in everything if code is not None}
    archived: set[tuple[str, str]] = set()
    if into:
        # Archiving can happen at any time: asked every time, in the
        # transaction (so a concurrent archive serializes with it), never cached.
        item_ids, location_ids, archived = await queries.resolve_with_archived(
            conn, tenant_id, skus, codes)
        _remember(conn, tenant_id, item_ids, location_ids, archived)
    else:
        # Known ids come from the process cache; only misses cost a round trip.
        cache = cache_for(conn)
        item_ids, location_ids, miss_skus, miss_codes = cache.lookup(tenant_id, skus, codes)
        if miss_skus or miss_codes:
            found_items, found_locs, flags = await queries.resolve_with_archived(
                conn, tenant_id, miss_skus, miss_codes)
            _remember(conn, tenant_id, found_items, found_locs, flags)
            item_ids.update(found_items)
            location_ids.update(found_locs)
    for sku, sku_field, code, code_field in everything:
        if sku not in item_ids:
            raise Rejected(not_found(sku_field, f"no item with sku {sku!r}"))
        if code is not None and code not in location_ids:
            raise Rejected(not_found(code_field, f"no location with code {code!r}"))
    for sku, sku_field, code, code_field in into:
        if ("item", sku) in archived:
            raise Rejected(archived_error(sku_field, f"item {sku!r} is archived"))
        if ("location", code) in archived:
            raise Rejected(archived_error(code_field, f"location {code!r} is archived"))
        if ("kit", sku) in archived:
            raise Rejected(kit_has_no_stock(sku_field, sku))
    return item_ids, location_ids


def _remember(conn: AsyncConnection, tenant_id: UUID, item_ids: dict[str, UUID],
              location_ids: dict[str, UUID], flags: set[tuple[str, str]]) -> None:
    """Caches the ids, and that the plain items among them are not kits (so
    the reserve path need not ask: service/kits.py; a kit's parts are read
    when first needed)."""
    cache = cache_for(conn)
    cache.remember(tenant_id, item_ids, location_ids)
    cache.remember_parts(tenant_id, {sku: () for sku in item_ids if ("kit", sku) not in flags})


def archived_error(field_name: str, what: str) -> UserError:
    return UserError(ErrorCode.ARCHIVED, f"{what}: it takes no new stock", field=field_name)


def kit_has_no_stock(field_name: str, sku: str) -> UserError:
    return UserError(ErrorCode.KIT_HAS_NO_STOCK,
                     f"item {sku!r} is a kit: it holds no stock of its own, its components do",
                     field=field_name)
