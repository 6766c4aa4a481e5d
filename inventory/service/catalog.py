"""Create, edit and archive locations and items."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import kits as kit_rows
from ..db import queries
from ..domain.commands import ArchiveItem, ArchiveLocation, CreateItem, CreateLocation, UpdateItem
from ..domain.errors import ErrorCode, Rejected, UserError, not_found
from ..domain.kits import takes_no_backorders
from . import kits
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
        # A kit's components are checked before anything is written.
        parts = await kits.check_components(conn, ctx.tenant_id, cmd.components)
        created = await queries.insert_item(
            conn, ctx.tenant_id, cmd.sku, cmd.name, cmd.reorder_point, cmd.backorder_limit,
            is_kit=bool(parts)
        )
        if created is None:
            return UserError(
                ErrorCode.ALREADY_EXISTS, f"an item with sku {cmd.sku!r} already exists",
                field="sku",
            )
        if parts:
            await kit_rows.insert_components(conn, ctx.tenant_id, created.id, parts)
        return created

    return await execute(ctx, cmd, key, work)


async def update_item(ctx: Ctx, cmd: UpdateItem, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        updated = await queries.update_item(
            conn, ctx.tenant_id, cmd.sku, cmd.version, name=cmd.name,
            reorder_point=cmd.reorder_point, backorder_limit=cmd.backorder_limit)
        if updated is not None:
            if updated.is_kit and cmd.backorder_limit:
                raise Rejected(takes_no_backorders())
            # The levels that follow the item's limit take the new one, in the
            # same transaction (their CHECK holds backordered to it).
            if cmd.backorder_limit is not None and not await queries.set_item_backorder_limit(
                    conn, ctx.tenant_id, updated.id, cmd.backorder_limit):
                raise Rejected(UserError(
                    ErrorCode.INVALID_INPUT,
                    f"a level of {cmd.sku!r} has more than {cmd.backorder_limit} units "
                    "backordered: the limit cannot go below that", field="backorderLimit"))
            return updated
        current = await queries.item_by_sku(conn, ctx.tenant_id, cmd.sku)
        if current is None:
            raise Rejected(not_found("sku", f"no item with sku {cmd.sku!r}"))
        return UserError(
            ErrorCode.VERSION_MISMATCH,
            f"item {cmd.sku!r} is at version {current.version}, not {cmd.version}: "
            "re-read the item and decide again",
            field="version", expected=cmd.version, actual=current.version,
        )

    return await execute(ctx, cmd, key, work)


async def archive_item(ctx: Ctx, cmd: ArchiveItem, key: str | None):
    return await _archive(ctx, cmd, key, queries.archive_item, cmd.sku, "sku", "item with sku")


async def archive_location(ctx: Ctx, cmd: ArchiveLocation, key: str | None):
    return await _archive(ctx, cmd, key, queries.archive_location, cmd.code, "code",
                          "location with code")


async def _archive(ctx: Ctx, cmd, key: str | None, archive, name: str, field_name: str,
                   what: str):
    async def work(conn: AsyncConnection, key: str | None):
        archived = await archive(conn, ctx.tenant_id, name)
        if archived is None:
            raise Rejected(not_found(field_name, f"no {what} {name!r}"))
        return archived

    return await execute(ctx, cmd, key, work)
