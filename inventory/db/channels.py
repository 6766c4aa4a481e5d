"""Channel rows: a channel and its ordered locations."""
from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..domain.channels import ChannelLocationView, ChannelView
from .queries import children_by_head
from .tables import channel_locations, channels, locations
from .upsert import insert as pg_insert

cl = channel_locations


async def _with_locations(conn: AsyncConnection, tenant_id: UUID, heads: list[Any]
                          ) -> list[ChannelView]:
    found = await children_by_head(
        conn,
        select(cl.c.channel_id, cl.c.location_id, locations.c.code)
        .join(locations, and_(locations.c.tenant_id == cl.c.tenant_id,
                              locations.c.id == cl.c.location_id))
        .where(cl.c.tenant_id == tenant_id)
        .order_by(cl.c.channel_id, cl.c.position),
        cl.c.channel_id, heads, lambda r: ChannelLocationView(r.location_id, r.code))
    return [_view(h, found[h.id]) for h in heads]


async def channels_by_codes(conn: AsyncConnection, tenant_id: UUID, codes: list[str]
                            ) -> dict[str, ChannelView]:
    """The channels with these codes (unknown codes are absent), with their locations."""
    found = await _channels_where(conn, tenant_id, channels.c.code.in_(sorted(set(codes))))
    return {c.code: c for c in found}


async def channels_by_ids(conn: AsyncConnection, tenant_id: UUID, ids: list[UUID]
                          ) -> dict[UUID, ChannelView]:
    found = await _channels_where(conn, tenant_id, channels.c.id.in_(ids))
    return {c.id: c for c in found}


async def _channels_where(conn: AsyncConnection, tenant_id: UUID, condition
                          ) -> list[ChannelView]:
    """One statement (a reservation by channel reads its channel on every
    request): a row per channel location, in priority order."""
    rows = (await conn.execute(
        select(channels, cl.c.location_id, locations.c.code.label("location_code"))
        .select_from(channels.outerjoin(cl, and_(cl.c.tenant_id == channels.c.tenant_id,
                                                 cl.c.channel_id == channels.c.id))
                     .outerjoin(locations, and_(locations.c.tenant_id == cl.c.tenant_id,
                                                locations.c.id == cl.c.location_id)))
        .where(channels.c.tenant_id == tenant_id, condition)
        .order_by(channels.c.code, cl.c.position))).all()
    heads: dict[UUID, Any] = {}
    found: dict[UUID, list[ChannelLocationView]] = defaultdict(list)
    for r in rows:
        heads.setdefault(r.id, r)
        if r.location_id is not None:
            found[r.id].append(ChannelLocationView(r.location_id, r.location_code))
    return [_view(h, found[h.id]) for h in heads.values()]


def _view(head: Any, where: list[ChannelLocationView]) -> ChannelView:
    return ChannelView(head.id, head.code, head.name, head.version, tuple(where),
                       head.created_at, head.updated_at)


async def channels_page(conn: AsyncConnection, tenant_id: UUID, *, limit: int,
                        after_code: str | None = None) -> list[ChannelView]:
    stmt = select(channels).where(channels.c.tenant_id == tenant_id)
    if after_code is not None:
        stmt = stmt.where(channels.c.code > after_code)
    heads = (await conn.execute(stmt.order_by(channels.c.code).limit(limit))).all()
    return await _with_locations(conn, tenant_id, heads)


async def _set_locations(conn: AsyncConnection, tenant_id: UUID, channel_id: UUID,
                         location_ids: list[UUID]) -> None:
    await conn.execute(insert(cl), [
        dict(tenant_id=tenant_id, channel_id=channel_id, position=position,
             location_id=location_id)
        for position, location_id in enumerate(location_ids)])


async def insert_channel(conn: AsyncConnection, tenant_id: UUID, code: str, name: str,
                         location_ids: list[UUID]) -> UUID | None:
    """The new channel's id; None when the code is taken."""
    channel_id = (await conn.execute(
        pg_insert(channels).values(tenant_id=tenant_id, code=code, name=name)
        .on_conflict_do_nothing().returning(channels.c.id))).scalar()
    if channel_id is not None:
        await _set_locations(conn, tenant_id, channel_id, location_ids)
    return channel_id


async def update_channel(conn: AsyncConnection, tenant_id: UUID, code: str,
                         expected_version: int, name: str | None,
                         location_ids: list[UUID] | None) -> bool:
    """Compare-and-swap: changes the channel only if it is at `expected_version`
    (bumping it); False (nothing written) otherwise or when there is none."""
    values: dict[str, Any] = {"version": channels.c.version + 1, "updated_at": func.now()}
    if name is not None:
        values["name"] = name
    channel_id = (await conn.execute(
        update(channels).where(channels.c.tenant_id == tenant_id, channels.c.code == code,
                               channels.c.version == expected_version)
        .values(**values).returning(channels.c.id))).scalar()
    if channel_id is None:
        return False
    if location_ids is not None:
        await conn.execute(delete(cl).where(cl.c.tenant_id == tenant_id,
                                            cl.c.channel_id == channel_id))
        await _set_locations(conn, tenant_id, channel_id, location_ids)
    return True
