"""Transfers in two steps: shipping takes the units off the source's on hand
and shows them as `incoming` at the destination; receipts land them (partial
receipts allowed, a final receipt records the shortfall as lost); cancelling
returns what was not received to the source. Each level change writes its
ledger row, carrying the transfer's id. The one-step `transferStock` is in
stock.py."""
from __future__ import annotations

import uuid
from dataclasses import replace
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import ledger, transfers
from ..db.ledger import Why
from ..domain.commands import CancelTransfer, ReceiveTransfer, ShipTransfer
from ..domain.errors import UserError
from ..domain.models import MovementKind
from ..domain.reasons import Reason
from ..domain.shipments import (
    StockTransferView,
    TransferStatus,
    plan_transfer_receipt,
    shipment_closed,
    transfer_status,
)
from .backorders import fill_waiting
from .context import Ctx
from .inbound import expected_here
from .resolve import ids_for, one_found
from .runner import execute
from .stock import depart, reason_code


async def _locked(conn: AsyncConnection, ctx: Ctx, transfer_id: UUID) -> StockTransferView:
    found = await transfers.transfers_by_ids(conn, ctx.tenant_id, [transfer_id], lock=True)
    return one_found(found, transfer_id, "transferId", "no such transfer")


async def ship_transfer(ctx: Ctx, cmd: ShipTransfer, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        transfer_id = uuid.uuid4()
        why = Why(cmd.reason, cmd.reference, None, key, ctx.actor, reason_code(cmd),
                  shipment_id=transfer_id)
        left = await depart(conn, ctx, cmd, MovementKind.TRANSFER_SHIP, why,
                            "not enough available stock to ship")
        if isinstance(left, UserError):
            return left
        await transfers.insert_transfer(conn, ctx.tenant_id, transfer_id, left.item_id,
                                        left.source_id, left.destination_id, cmd.quantity,
                                        cmd.expected_at, cmd.reference)
        into = await ledger.add_to_level(conn, ctx.tenant_id, left.item_id, left.destination_id,
                                         MovementKind.TRANSFER_INCOMING,
                                         {"incoming": cmd.quantity}, why)
        transfer = (await transfers.transfers_by_ids(conn, ctx.tenant_id, [transfer_id]))[
            transfer_id]
        return _with_levels(transfer, left.source, into)

    return await execute(ctx, cmd, key, work)


def _with_levels(transfer: StockTransferView, source=None, destination=None):
    return replace(
        transfer,
        source=source.view(transfer.sku, transfer.from_location_code) if source else None,
        destination=destination.view(transfer.sku, transfer.to_location_code)
        if destination else None)


async def receive_transfer(ctx: Ctx, cmd: ReceiveTransfer, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        transfer = await _locked(conn, ctx, cmd.transfer_id)
        plan = plan_transfer_receipt(transfer, cmd.quantity, cmd.final)
        if isinstance(plan, UserError):
            return plan
        received, lost = plan
        # Stock arriving is new stock: refused into an archived item or location.
        await ids_for(conn, ctx.tenant_id, [], into=[
            (transfer.sku, "transferId", transfer.to_location_code, "transferId")])
        why = Why(cmd.reason, transfer.reference, None, key, ctx.actor, reason_code(cmd),
                  shipment_id=transfer.id)
        row = None
        if received:
            row = expected_here(await ledger.change_level(
                conn, ctx.tenant_id, transfer.item_id, transfer.to_location_id,
                MovementKind.TRANSFER_RECEIVE, {"on_hand": received, "incoming": -received},
                why=why), transfer.sku, transfer.to_location_code, received)
        if lost:
            row = expected_here(await ledger.change_level(
                conn, ctx.tenant_id, transfer.item_id, transfer.to_location_id,
                MovementKind.TRANSFER_LOSS, {"incoming": -lost},
                why=replace(why, reason_code=reason_code(cmd, Reason.THEFT_OR_LOSS))),
                transfer.sku, transfer.to_location_code, lost)
        if row is not None:  # stock landed: backorders waiting here are filled first
            row = await fill_waiting(conn, ctx.tenant_id, row, ctx.actor)
        status = transfer_status(transfer.quantity, transfer.received + received,
                                 transfer.lost + lost)
        await transfers.account(conn, ctx.tenant_id, transfer.id, received=received, lost=lost,
                                status=status)
        after = (await transfers.transfers_by_ids(conn, ctx.tenant_id, [transfer.id]))[
            transfer.id]
        return _with_levels(after, destination=row)

    return await execute(ctx, cmd, key, work)


async def cancel_transfer(ctx: Ctx, cmd: CancelTransfer, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        transfer = await _locked(conn, ctx, cmd.transfer_id)
        if transfer.status in (TransferStatus.CANCELLED, TransferStatus.RECEIVED):
            return shipment_closed("the transfer", transfer.status.value)
        back = transfer.outstanding
        why = Why(cmd.reason, transfer.reference, None, key, ctx.actor, reason_code(cmd),
                  shipment_id=transfer.id)
        source_key = (transfer.item_id, transfer.from_location_id)
        dest_key = (transfer.item_id, transfer.to_location_id)
        await ledger.lock_levels(conn, ctx.tenant_id, [source_key, dest_key])
        into = expected_here(await ledger.change_level(
            conn, ctx.tenant_id, *dest_key, MovementKind.TRANSFER_CANCEL, {"incoming": -back},
            why=why), transfer.sku, transfer.to_location_code, back)
        source = await ledger.add_to_level(conn, ctx.tenant_id, *source_key,
                                           MovementKind.TRANSFER_RETURN, {"on_hand": back}, why)
        source = await fill_waiting(conn, ctx.tenant_id, source, ctx.actor)
        await transfers.account(conn, ctx.tenant_id, transfer.id, returned=back,
                                status=TransferStatus.CANCELLED)
        after = (await transfers.transfers_by_ids(conn, ctx.tenant_id, [transfer.id]))[
            transfer.id]
        return _with_levels(after, source, into)

    return await execute(ctx, cmd, key, work)
