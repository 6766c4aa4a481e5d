"""Turns skus and location codes into ids, or a NOT_FOUND naming the field."""
from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import queries
from ..domain.errors import Rejected, not_found


async def ids_for(
    conn: AsyncConnection, tenant_id: UUID, wanted: list[tuple[str, str, str, str]]
) -> tuple[dict[str, UUID], dict[str, UUID]]:
    """`wanted` is a list of (sku, sku field, code, code field). Raises Rejected
    (NOT_FOUND) for the first unknown sku or code; nothing has been written yet."""
    skus = {sku for sku, _, _, _ in wanted}
    codes = {code for _, _, code, _ in wanted}
    item_ids, location_ids = await queries.resolve(conn, tenant_id, skus, codes)
    for sku, sku_field, code, code_field in wanted:
        if sku not in item_ids:
            raise Rejected(not_found(sku_field, f"no item with sku {sku!r}"))
        if code not in location_ids:
            raise Rejected(not_found(code_field, f"no location with code {code!r}"))
    return item_ids, location_ids
