"""Sales channels: create, update (compare-and-swap on the version), read."""
from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import channels, queries
from ..domain.channels import ChannelView, CreateChannel, UpdateChannel
from ..domain.errors import ErrorCode, Rejected, UserError, not_found
from .context import Ctx
from .reads import reading
from .runner import execute


async def _location_ids(conn: AsyncConnection, tenant_id: UUID, codes: tuple[str, ...]
                        ) -> list[UUID]:
    """Ids in the order given, or Rejected (NOT_FOUND naming locationCodes[i])."""
    _, found = await queries.resolve(conn, tenant_id, [], codes)
    for i, code in enumerate(codes):
        if code not in found:
            raise Rejected(not_found(f"locationCodes[{i}]", f"no location with code {code!r}"))
    return [found[code] for code in codes]


async def _read_back(conn: AsyncConnection, tenant_id: UUID, code: str) -> ChannelView:
    return (await channels.channels_by_codes(conn, tenant_id, [code]))[code]


async def create_channel(ctx: Ctx, cmd: CreateChannel, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        location_ids = await _location_ids(conn, ctx.tenant_id, cmd.location_codes)
        if await channels.insert_channel(conn, ctx.tenant_id, cmd.code, cmd.name,
                                         location_ids) is None:
            return UserError(ErrorCode.ALREADY_EXISTS,
                             f"a channel with code {cmd.code!r} already exists", field="code")
        return await _read_back(conn, ctx.tenant_id, cmd.code)

    return await execute(ctx, cmd, key, work)


async def update_channel(ctx: Ctx, cmd: UpdateChannel, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        location_ids = None
        if cmd.location_codes is not None:
            location_ids = await _location_ids(conn, ctx.tenant_id, cmd.location_codes)
        if await channels.update_channel(conn, ctx.tenant_id, cmd.code, cmd.expected_version,
                                         cmd.name, location_ids):
            return await _read_back(conn, ctx.tenant_id, cmd.code)
        current = (await channels.channels_by_codes(conn, ctx.tenant_id, [cmd.code])).get(
            cmd.code)
        if current is None:
            raise Rejected(not_found("code", f"no channel with code {cmd.code!r}"))
        return UserError(
            ErrorCode.VERSION_MISMATCH,
            f"channel {cmd.code!r} is at version {current.version}, not "
            f"{cmd.expected_version}: read it again and retry", field="expectedVersion",
            expected=cmd.expected_version, actual=current.version)

    return await execute(ctx, cmd, key, work)


async def channels_by_codes(ctx: Ctx, codes: list[str]) -> dict[str, ChannelView]:
    async with reading(ctx) as conn:
        return await channels.channels_by_codes(conn, ctx.tenant_id, codes)


async def channels_page(ctx: Ctx, *, limit: int, after_code: str | None) -> list[ChannelView]:
    async with reading(ctx) as conn:
        return await channels.channels_page(conn, ctx.tenant_id, limit=limit,
                                            after_code=after_code)


async def channels_by_ids(ctx: Ctx, ids: list[UUID]) -> dict[UUID, ChannelView]:
    async with reading(ctx) as conn:
        return await channels.channels_by_ids(conn, ctx.tenant_id, ids)
