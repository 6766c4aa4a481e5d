"""Create locations and items."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import queries
from ..domain.commands import CreateItem, CreateLocation
from ..domain.errors import ErrorCode, UserError
from .context import Ctx
from .runner import execute


async def create_location(ctx: Ctx, cmd: CreateLocation, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        created = await queries.insert_location(conn, ctx.tenant_id, cmd.code, cmd.name)
        if created is None:
            return UserError(
                ErrorCode.ALREADY_EXISTS, f"a location with code {cmd.code!r} already exists",
                field="code",
            )
        return created

    return await execute(ctx, cmd, key, work)


async def create_item(ctx: Ctx, cmd: CreateItem, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        created = await queries.insert_item(
            conn, ctx.tenant_id, cmd.sku, cmd.name, cmd.reorder_point
        )
        if created is None:
            return UserError(
                ErrorCode.ALREADY_EXISTS, f"an item with sku {cmd.sku!r} already exists",
                field="sku",
            )
        return created

    return await execute(ctx, cmd, key, work)
