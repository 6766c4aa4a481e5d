"""Receive, adjust, set, move and transfer stock at a location."""
from __future__ import annotations

from typing import NamedTuple
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import ledger
from ..db.ledger import LevelRow, Why
from ..domain.commands import (
    AdjustStock, MoveStock, ReceiveStock, SetBackorderLimit, SetStock, ShipTransfer,
    TransferStock,
)
from ..domain.errors import ErrorCode, Rejected, Shortage, UserError, insufficient_quantity
from ..domain.models import MovementKind, StockLevelView, TransferView
from ..domain.quantities import Quantities, adjust_delta, move_delta, state_column
from ..domain.reasons import Reason
from . import kits
from .backorders import fill_waiting
from .context import Ctx
from .resolve import ids_for, kit_has_no_stock
from .runner import execute


def _view(sku: str, code: str, row: LevelRow) -> StockLevelView:
    return row.view(sku, code)


def reason_code(cmd, default: Reason | None = None) -> str | None:
    """The ledger's reason code of a command (its `reason_code`, else `default`)."""
    code = cmd.reason_code or default
    return code.value if code else None


def insufficient(sku: str, code: str, requested: int, available: int, what: str) -> UserError:
    return UserError(
        ErrorCode.INSUFFICIENT_STOCK,
        f"{what}: {requested} of {sku!r} at {code!r} requested, {available} available",
        shortages=(Shortage(sku, code, requested, available),),
    )


async def _current(conn: AsyncConnection, tenant_id: UUID, item_id: UUID, location_id: UUID
                   ) -> Quantities | None:
    """The level's quantities, under lock; None when it was never stocked."""
    levels = await ledger.lock_levels(conn, tenant_id, [(item_id, location_id)])
    return levels.get((item_id, location_id))


async def receive_stock(ctx: Ctx, cmd: ReceiveStock, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        items, locs = await ids_for(
            conn, ctx.tenant_id, [], into=[(cmd.sku, "sku", cmd.location_code, "locationCode")]
        )
        row = await ledger.add_on_hand(
            conn, ctx.tenant_id, items[cmd.sku], locs[cmd.location_code], MovementKind.RECEIVE,
            cmd.quantity, Why(cmd.reason, cmd.reference, None, key, ctx.actor, reason_code(cmd)),
        )
        row = await fill_waiting(conn, ctx.tenant_id, row, ctx.actor)  # backorders first
        return _view(cmd.sku, cmd.location_code, row)

    return await execute(ctx, cmd, key, work)


async def adjust_stock(ctx: Ctx, cmd: AdjustStock, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        level = [(cmd.sku, "sku", cmd.location_code, "locationCode")]
        # Only a positive adjustment is new stock (refused into an archived level).
        items, locs = await (ids_for(conn, ctx.tenant_id, [], into=level) if cmd.delta > 0
                             else ids_for(conn, ctx.tenant_id, level))
        item_id, location_id = items[cmd.sku], locs[cmd.location_code]
        why = Why(cmd.reason, None, None, key, ctx.actor, reason_code(cmd))
        delta = adjust_delta(cmd.state, cmd.delta)
        if cmd.delta > 0:
            row = await ledger.add_to_level(
                conn, ctx.tenant_id, item_id, location_id, MovementKind.ADJUST, delta, why)
            row = await fill_waiting(conn, ctx.tenant_id, row, ctx.actor)
            return _view(cmd.sku, cmd.location_code, row)
        row = await ledger.change_level(
            conn, ctx.tenant_id, item_id, location_id, MovementKind.ADJUST, delta, why=why)
        if row is None:
            now = await _current(conn, ctx.tenant_id, item_id, location_id) or Quantities()
            return _short(cmd.sku, cmd.location_code, "state", cmd.state, -cmd.delta, now,
                          "cannot adjust on hand below what is reserved or set aside")
        return _view(cmd.sku, cmd.location_code, row)

    return await execute(ctx, cmd, key, work)


async def set_stock(ctx: Ctx, cmd: SetStock, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        items, locs = await ids_for(
            conn, ctx.tenant_id, [(cmd.sku, "sku", cmd.location_code, "locationCode")]
        )
        item_id, location_id = items[cmd.sku], locs[cmd.location_code]
        existing = await _current(conn, ctx.tenant_id, item_id, location_id)
        now = existing or Quantities()
        on_hand = now.on_hand
        if cmd.compare_quantity is not None and cmd.compare_quantity != on_hand:
            return UserError(
                ErrorCode.QUANTITY_MISMATCH,
                f"on hand of {cmd.sku!r} at {cmd.location_code!r} is {on_hand}, not "
                f"{cmd.compare_quantity}: re-read the level and decide again",
                field="compareQuantity",
                expected=cmd.compare_quantity,
                actual=on_hand,
            )
        if cmd.on_hand > on_hand:  # new stock: refused into an archived level
            await ids_for(conn, ctx.tenant_id, [],
                          into=[(cmd.sku, "sku", cmd.location_code, "locationCode")])
        held = on_hand - now.available  # on hand but not sellable (reserved, damaged, ...)
        if cmd.on_hand < held:
            return insufficient(
                cmd.sku, cmd.location_code, on_hand - cmd.on_hand, now.available,
                f"cannot set on hand below the {held} reserved or set aside",
            )
        why = Why(cmd.reason, None, None, key, ctx.actor, reason_code(cmd))
        if existing is None:
            row = await ledger.add_on_hand(
                conn, ctx.tenant_id, item_id, location_id, MovementKind.SET, cmd.on_hand, why
            )
        else:
            row = await ledger.change_level(
                conn, ctx.tenant_id, item_id, location_id, MovementKind.SET,
                {"on_hand": cmd.on_hand - on_hand}, why=why, expect_on_hand=on_hand,
            )
            assert row is not None, "level changed while locked"
        row = await fill_waiting(conn, ctx.tenant_id, row, ctx.actor)
        return _view(cmd.sku, cmd.location_code, row)

    return await execute(ctx, cmd, key, work)


def _short(sku: str, code: str, field_name: str, stock_state: str, requested: int,
           now: Quantities, what: str) -> UserError:
    """Why taking `requested` out of `stock_state` was refused: INSUFFICIENT_STOCK
    for AVAILABLE, INSUFFICIENT_QUANTITY for a named state."""
    state = state_column(stock_state)
    if state is None:
        return insufficient(sku, code, requested, now.available, what)
    return insufficient_quantity(field_name, sku, code, stock_state, requested, now[state])


async def move_stock(ctx: Ctx, cmd: MoveStock, key: str | None):
    """One guarded statement and one ledger row (MOVE): on hand never changes."""
    async def work(conn: AsyncConnection, key: str | None):
        items, locs = await ids_for(
            conn, ctx.tenant_id, [(cmd.sku, "sku", cmd.location_code, "locationCode")]
        )
        item_id, location_id = items[cmd.sku], locs[cmd.location_code]
        row = await ledger.change_level(
            conn, ctx.tenant_id, item_id, location_id, MovementKind.MOVE,
            move_delta(cmd.from_state, cmd.to_state, cmd.quantity),
            why=Why(cmd.reason, None, None, key, ctx.actor, reason_code(cmd)))
        if row is None:
            now = await _current(conn, ctx.tenant_id, item_id, location_id) or Quantities()
            return _short(cmd.sku, cmd.location_code, "from", cmd.from_state, cmd.quantity, now,
                          f"cannot move out of {cmd.from_state}")
        row = await fill_waiting(conn, ctx.tenant_id, row, ctx.actor)
        return _view(cmd.sku, cmd.location_code, row)

    return await execute(ctx, cmd, key, work)


async def set_backorder_limit(ctx: Ctx, cmd: SetBackorderLimit, key: str | None):
    """A level's own backorder limit (None: its item's again); the level is made
    (empty) if it does not exist yet. A setting: no ledger row, no new version."""
    async def work(conn: AsyncConnection, key: str | None):
        items, locs = await ids_for(
            conn, ctx.tenant_id, [(cmd.sku, "sku", cmd.location_code, "locationCode")])
        if (await kits.parts_of(conn, ctx.tenant_id, [cmd.sku])).get(cmd.sku):
            # A kit has no levels and takes no backorders (its components may).
            raise Rejected(kit_has_no_stock("sku", cmd.sku))
        item_id, location_id = items[cmd.sku], locs[cmd.location_code]
        await ledger.create_levels(conn, ctx.tenant_id, [(item_id, location_id)])
        row = await ledger.set_backorder_limit(conn, ctx.tenant_id, item_id, location_id,
                                               cmd.backorder_limit)
        if row is None:
            now = await _current(conn, ctx.tenant_id, item_id, location_id) or Quantities()
            return UserError(
                ErrorCode.INVALID_INPUT,
                f"{now.backordered} units of {cmd.sku!r} are backordered at "
                f"{cmd.location_code!r}: the limit cannot go below that",
                field="backorderLimit")
        return _view(cmd.sku, cmd.location_code, row)

    return await execute(ctx, cmd, key, work)


class Departure(NamedTuple):
    item_id: UUID
    source_id: UUID
    destination_id: UUID
    source: LevelRow  # the source level after the units left it


async def depart(conn: AsyncConnection, ctx: Ctx, cmd: TransferStock | ShipTransfer,
                 kind: MovementKind, why: Why, refusal: str) -> Departure | UserError:
    """The first half of moving `cmd.quantity` of `cmd.sku` from one location
    to another (transferStock, shipTransfer): resolves the sku and both
    locations (the destination takes new stock, so it may not be archived),
    locks both levels in key order so that opposite moves queue instead of
    deadlocking, and takes the units off the source's on hand (a ledger row of
    `kind`). INSUFFICIENT_STOCK saying `refusal` when the source has too few."""
    items, locs = await ids_for(
        conn, ctx.tenant_id, [(cmd.sku, "sku", cmd.from_location_code, "fromLocationCode")],
        into=[(cmd.sku, "sku", cmd.to_location_code, "toLocationCode")])
    item_id = items[cmd.sku]
    source_id, dest_id = locs[cmd.from_location_code], locs[cmd.to_location_code]
    await ledger.lock_levels(conn, ctx.tenant_id, [(item_id, source_id), (item_id, dest_id)])
    out = await ledger.change_level(conn, ctx.tenant_id, item_id, source_id, kind,
                                    {"on_hand": -cmd.quantity}, why=why)
    if out is None:
        now = await _current(conn, ctx.tenant_id, item_id, source_id) or Quantities()
        return insufficient(cmd.sku, cmd.from_location_code, cmd.quantity, now.available,
                            refusal)
    return Departure(item_id, source_id, dest_id, out)


async def transfer_stock(ctx: Ctx, cmd: TransferStock, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        why = Why(cmd.reason, cmd.reference, None, key, ctx.actor, reason_code(cmd))
        left = await depart(conn, ctx, cmd, MovementKind.TRANSFER_OUT, why,
                            "not enough unreserved stock to transfer")
        if isinstance(left, UserError):
            return left
        into = await ledger.add_on_hand(conn, ctx.tenant_id, left.item_id, left.destination_id,
                                        MovementKind.TRANSFER_IN, cmd.quantity, why)
        into = await fill_waiting(conn, ctx.tenant_id, into, ctx.actor)
        return TransferView(
            cmd.sku, cmd.quantity, _view(cmd.sku, cmd.from_location_code, left.source),
            _view(cmd.sku, cmd.to_location_code, into),
        )

    return await execute(ctx, cmd, key, work)
