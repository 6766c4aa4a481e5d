"""Inbound shipments: expected stock raises `incoming` at its levels; receipts
move it on hand (partial and, when asked for, over-receipts); cancelling lowers
`incoming` by what is outstanding. Each level change writes its ledger row,
carrying the shipment's id, so the audit can hold every shipment to its ledger."""
from __future__ import annotations

import uuid
from dataclasses import replace
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import ledger, shipments
from ..db.ledger import Why
from ..domain.commands import CancelInbound, CreateInboundShipment, ReceiveInbound
from ..domain.errors import Rejected, UserError
from ..domain.models import MovementKind, StockLevelView
from ..domain.shipments import (
    InboundReceiptView,
    InboundShipmentView,
    InboundStatus,
    ReceiptLineView,
    inbound_status,
    plan_receipt,
    shipment_closed,
)
from .backorders import fill_waiting
from .context import Ctx
from .resolve import ids_for, one_found
from .runner import execute
from .stock import insufficient


def expected_here(row, sku: str, code: str, quantity: int):
    """`row`, the level after lowering its `incoming` by `quantity`; None (the
    guard refused) cannot happen while `incoming` holds what every open shipment
    and transfer still expects there, and is refused as INSUFFICIENT_STOCK."""
    if row is None:
        raise Rejected(insufficient(sku, code, quantity, 0,
                                    "incoming is below what this shipment still expects"))
    return row


def _lines_wanted(lines) -> list[tuple[str, str, str, str]]:
    return [(line.sku, f"lines[{i}].sku", line.location_code, f"lines[{i}].locationCode")
            for i, line in enumerate(lines)]


async def _locked(conn: AsyncConnection, ctx: Ctx, shipment_id: UUID) -> InboundShipmentView:
    found = await shipments.inbound_by_ids(conn, ctx.tenant_id, [shipment_id], lock=True)
    return one_found(found, shipment_id, "shipmentId", "no such inbound shipment")


async def _levels_first(conn: AsyncConnection, tenant_id: UUID,
                        levels: list[tuple[UUID, UUID]]) -> None:
    """Lock order: a shipment's levels, all of them in key order, before it
    changes any. Each change also writes its item's row, so changing the levels
    one at a time would hold one level and the item row while waiting for the
    next level, which a receiveStock there holds while waiting for the item
    row: a deadlock (tests/test_concurrency.py)."""
    keys = sorted(set(levels))
    if len(keys) > 1:
        await ledger.lock_levels(conn, tenant_id, keys)


async def create_inbound_shipment(ctx: Ctx, cmd: CreateInboundShipment, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        items, locs = await ids_for(conn, ctx.tenant_id, [], into=_lines_wanted(cmd.lines))
        shipment_id = uuid.uuid4()
        lines = [(items[line.sku], locs[line.location_code], line.quantity) for line in cmd.lines]
        await shipments.insert_inbound(conn, ctx.tenant_id, shipment_id, cmd.reference,
                                       cmd.expected_at, lines)
        why = Why(None, cmd.reference, None, key, ctx.actor, shipment_id=shipment_id)
        await _levels_first(conn, ctx.tenant_id, [(i, l) for i, l, _ in lines])
        for item_id, location_id, quantity in sorted(lines):
            await ledger.add_to_level(conn, ctx.tenant_id, item_id, location_id,
                                      MovementKind.INBOUND, {"incoming": quantity}, why)
        found = await shipments.inbound_by_ids(conn, ctx.tenant_id, [shipment_id])
        return found[shipment_id]

    return await execute(ctx, cmd, key, work)


async def receive_inbound(ctx: Ctx, cmd: ReceiveInbound, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        shipment = await _locked(conn, ctx, cmd.shipment_id)
        plan = plan_receipt(shipment, [(l.sku, l.location_code, l.quantity) for l in cmd.lines],
                            cmd.allow_over_receipt)
        if isinstance(plan, UserError):
            return plan
        # Stock arriving is new stock: refused into an archived item or location.
        await ids_for(conn, ctx.tenant_id, [], into=_lines_wanted(cmd.lines))
        why = Why(None, shipment.reference, None, key, ctx.actor, shipment_id=shipment.id)
        lines = list(shipment.lines)
        await _levels_first(conn, ctx.tenant_id, [
            (lines[step.line_no].item_id, lines[step.line_no].location_id) for step in plan])
        levels: dict[int, StockLevelView] = {}
        for step in sorted(plan, key=lambda s: (lines[s.line_no].item_id,
                                                lines[s.line_no].location_id)):
            line = lines[step.line_no]
            row = expected_here(await ledger.change_level(
                conn, ctx.tenant_id, line.item_id, line.location_id,
                MovementKind.INBOUND_RECEIVE,
                {"on_hand": step.quantity, "incoming": -step.incoming}, why=why),
                line.sku, line.location_code, step.incoming)
            row = await fill_waiting(conn, ctx.tenant_id, row, ctx.actor)  # backorders first
            await shipments.add_received(conn, ctx.tenant_id, shipment.id, step.line_no,
                                         step.quantity)
            lines[step.line_no] = replace(line, received=line.received + step.quantity)
            levels[step.line_no] = row.view(line.sku, line.location_code)
        status = inbound_status(lines)
        await shipments.set_inbound_status(conn, ctx.tenant_id, shipment.id, status)
        after = (await shipments.inbound_by_ids(conn, ctx.tenant_id, [shipment.id]))[shipment.id]
        return InboundReceiptView(after, tuple(
            ReceiptLineView(after.lines[step.line_no], step.quantity, levels[step.line_no])
            for step in plan))

    return await execute(ctx, cmd, key, work)


async def cancel_inbound(ctx: Ctx, cmd: CancelInbound, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        shipment = await _locked(conn, ctx, cmd.shipment_id)
        if shipment.status in (InboundStatus.CANCELLED, InboundStatus.RECEIVED):
            return shipment_closed("the shipment", shipment.status.value)
        why = Why(None, shipment.reference, None, key, ctx.actor, shipment_id=shipment.id)
        await _levels_first(conn, ctx.tenant_id, [
            (line.item_id, line.location_id) for line in shipment.lines if line.outstanding])
        for line in sorted(shipment.lines, key=lambda l: (l.item_id, l.location_id)):
            if line.outstanding:
                expected_here(await ledger.change_level(
                    conn, ctx.tenant_id, line.item_id, line.location_id,
                    MovementKind.INBOUND_CANCEL, {"incoming": -line.outstanding}, why=why),
                    line.sku, line.location_code, line.outstanding)
        await shipments.set_inbound_status(conn, ctx.tenant_id, shipment.id,
                                           InboundStatus.CANCELLED)
        return (await shipments.inbound_by_ids(conn, ctx.tenant_id, [shipment.id]))[shipment.id]

    return await execute(ctx, cmd, key, work)
