"""Kit rows: a kit's components (`kit_components`, 0016)."""
from __future__ import annotations

from collections import defaultdict
from uuid import UUID

from sqlalchemy import and_, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.kits import Part
from .tables import items, kit_components

kc = kit_components


async def insert_components(conn: AsyncConnection, tenant_id: UUID, kit_item_id: UUID,
                            parts: list[tuple[UUID, int]]) -> None:
    """(component item id, units per kit), in order."""
    await conn.execute(insert(kc), [
        dict(tenant_id=tenant_id, kit_item_id=kit_item_id, position=position,
             component_item_id=item_id, quantity=quantity)
        for position, (item_id, quantity) in enumerate(parts)])


async def components_of(conn: AsyncConnection, tenant_id: UUID, kit_item_ids: list[UUID]
                        ) -> dict[UUID, tuple[Part, ...]]:
    """Each kit's parts, in order (kits without rows are absent)."""
    if not kit_item_ids:
        return {}
    rows = await conn.execute(
        select(kc.c.kit_item_id, kc.c.component_item_id, items.c.sku, kc.c.quantity)
        .join(items, and_(items.c.tenant_id == kc.c.tenant_id,
                          items.c.id == kc.c.component_item_id))
        .where(kc.c.tenant_id == tenant_id, kc.c.kit_item_id.in_(sorted(set(kit_item_ids))))
        .order_by(kc.c.kit_item_id, kc.c.position))
    found: dict[UUID, list[Part]] = defaultdict(list)
    for r in rows:
        found[r.kit_item_id].append(Part(r.component_item_id, r.sku, r.quantity))
    return {k: tuple(v) for k, v in found.items()}


_component = items.alias("component")
# Built once (expanding IN): asked on a cache miss of the reserve path.
_BY_SKUS = (
    select(items.c.sku, items.c.id, items.c.is_kit, kc.c.component_item_id,
           _component.c.sku.label("component_sku"), kc.c.quantity)
    .select_from(items.outerjoin(kc, and_(kc.c.tenant_id == items.c.tenant_id,
                                          kc.c.kit_item_id == items.c.id))
                 .outerjoin(_component, and_(_component.c.tenant_id == kc.c.tenant_id,
                                             _component.c.id == kc.c.component_item_id)))
    .where(items.c.tenant_id == bindparam("p_tenant_id"),
           items.c.sku.in_(bindparam("p_skus", expanding=True)))
    .order_by(items.c.sku, kc.c.position)
)


async def parts_by_skus(conn: AsyncConnection, tenant_id: UUID, skus: list[str]
                        ) -> dict[str, tuple[Part, ...]]:
    """{sku: its parts} for every known sku: () for a plain item; unknown skus
    are absent. One statement."""
    if not skus:
        return {}
    found: dict[str, list[Part]] = {}
    for r in await conn.execute(_BY_SKUS, {"p_tenant_id": tenant_id, "p_skus": sorted(set(skus))}):
        parts = found.setdefault(r.sku, [])
        if r.component_item_id is not None:
            parts.append(Part(r.component_item_id, r.component_sku, r.quantity))
    return {sku: tuple(parts) for sku, parts in found.items()}
