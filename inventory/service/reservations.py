"""Reserve (all lines or none, backordering beyond available up to the level's
limit: service/backorders.py), commit (ship), release, and expire reservations."""
from __future__ import annotations

import logging
from dataclasses import replace
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import ledger, queries
from ..db.ledger import Why
from ..db.retry import run_transaction
from ..domain.commands import (
    CommitReservation, ExtendReservation, ReleaseReservation, ReserveStock,
)
from ..domain.errors import ErrorCode, Rejected, UserError, not_found
from ..domain.lifecycle import refuse_unfilled, release_split, take_from
from ..domain.models import MovementKind, ReservationLineView, ReservationStatus, ReservationView
from . import allocating, kits
from .backorders import fill_waiting
from .context import Ctx
from .resolve import ids_for
from .runner import execute

log = logging.getLogger(__name__)


async def reserve_stock(ctx: Ctx, cmd: ReserveStock, key: str | None):
    """Reserves all lines or none. How the request reaches the database (taking
    turns on a busy level, a batch, one statement) is the process's hot-level
    path (service/hot_levels.py); what is decided and written is `decide_then_write`."""
    return await ctx.hot_levels.reserve(ctx, cmd, key, decide_then_write)


def decide_then_write(ctx: Ctx, cmd: ReserveStock):
    """The reservation use case, as a unit of work for the runner."""

    async def work(conn: AsyncConnection, key: str | None):
        reservation_id = uuid4()
        why = Why(None, cmd.reference, reservation_id, key, ctx.actor)
        first = cmd.lines[0]
        one_level = len(cmd.lines) == 1 and first.location_code is not None
        if one_level:
            items, locs = await ids_for(conn, ctx.tenant_id, [
                (first.sku, "lines[0].sku", first.location_code, "lines[0].locationCode")])
            # A kit line changes its components' levels, not its own (it has none).
            one_level = not (await kits.parts_of(conn, ctx.tenant_id, [first.sku])).get(first.sku)
        if one_level:
            # One line at a location: the guarded statement decides and writes at
            # once (one round trip); only a refusal reads the level, to say what
            # is available.
            line = ReservationLineView(items[first.sku], locs[first.location_code], first.sku,
                                       first.location_code, first.quantity)
            made = await ledger.reserve_one(
                conn, ctx.tenant_id, line.item_id, line.location_id, line.quantity,
                cmd.ttl_seconds, why)
            if made is not None:
                return ReservationView(reservation_id, ReservationStatus.ACTIVE, cmd.reference,
                                       made.expires_at, made.created_at, (line,))
        # Decide before writing: lock every level any line could take from, in
        # key order, allocate and check every line, and report all the short ones.
        lines = await allocating.plan(conn, ctx.tenant_id, cmd)
        if isinstance(lines, UserError):
            return lines
        # A preorder backorders at a level never stocked: it is made, empty.
        await ledger.create_levels(conn, ctx.tenant_id, sorted(
            {(l.item_id, l.location_id) for l in lines if l.backordered}))
        created_at, expires_at = await ledger.insert_reservation(
            conn, ctx.tenant_id, reservation_id, cmd.ttl_seconds, cmd.reference,
            [(l.item_id, l.location_id, l.quantity, l.backordered) for l in lines],
            [(l.kit_item_id, l.kit_line, l.per_kit) for l in lines],
        )
        for line in sorted(lines, key=lambda l: (l.item_id, l.location_id, l.line_no)):
            row = await ledger.change_level(
                conn, ctx.tenant_id, line.item_id, line.location_id, MovementKind.RESERVE,
                {"reserved": line.filled, "backordered": line.backordered},
                why=replace(why, kit_item_id=line.kit_item_id),
            )
            assert row is not None, "level changed while locked"
        return ReservationView(
            reservation_id, ReservationStatus.ACTIVE, cmd.reference, expires_at, created_at,
            tuple(lines),
        )

    return work


def _not_active(status: ReservationStatus) -> UserError:
    if status is ReservationStatus.ACTIVE:  # past its expiry, not yet swept
        status = ReservationStatus.EXPIRED
    return UserError(
        ErrorCode.RESERVATION_NOT_ACTIVE,
        f"reservation is {status.value}, only an ACTIVE reservation can change",
        field="reservationId",
        status=status.value,
    )


async def _finish(
    conn: AsyncConnection,
    tenant_id: UUID,
    cmd: CommitReservation | ReleaseReservation,
    to_status: ReservationStatus,
    kind: MovementKind,
    ships: bool,
    key: str | None,
    actor: str | None = None,
) -> ReservationView | UserError:
    """Commits or releases what `cmd.lines` names (everything still held when
    it names nothing). The reservation takes `to_status` once no line holds
    anything; until then it stays ACTIVE. A commit takes only filled units
    (RESERVATION_BACKORDERED otherwise, nothing written); a release gives
    back backordered units first."""
    found = (await queries.reservations_by_ids(conn, tenant_id, [cmd.reservation_id])).get(
        cmd.reservation_id
    )
    if found is None:
        return not_found("reservationId", "no reservation with this id")
    taken = take_from(found.lines, cmd.lines) if found.status is ReservationStatus.ACTIVE else []
    if ships and not isinstance(taken, UserError):
        taken = refuse_unfilled(taken, cmd.lines) or taken
    left = 0 if isinstance(taken, UserError) else (
        sum(l.held for l in found.lines) - sum(q for _, q in taken))
    status = to_status if left == 0 else ReservationStatus.ACTIVE
    if not isinstance(taken, UserError):
        await _levels_first(conn, tenant_id, found, taken)
    # The status update is the guard (ACTIVE, not past expiry) and holds the
    # reservation's row for the rest of the transaction.
    if not await queries.finish_reservation(conn, tenant_id, found.id, status,
                                            only_if_live=True):
        return _not_active(found.status)
    if isinstance(taken, UserError):
        raise Rejected(taken)  # rolls the status update back: nothing written
    await queries.take_from_lines(
        conn, tenant_id, found.id, "committed" if ships else "released",
        [(line.line_no, q, 0 if ships else release_split(line, q)[1]) for line, q in taken])
    await _move_lines(conn, tenant_id, found, taken, kind, ships, key, actor)
    by_line = dict((line.line_no, q) for line, q in taken)
    lines = tuple(
        replace(l, committed=l.committed + by_line.get(l.line_no, 0)) if ships
        else replace(l, released=l.released + by_line.get(l.line_no, 0),
                     backordered=l.backordered - release_split(l, by_line.get(l.line_no, 0))[1])
        for l in found.lines)
    return replace(found, status=status, lines=lines)


async def _levels_first(conn: AsyncConnection, tenant_id: UUID, reservation: ReservationView,
                        taken: list[tuple[ReservationLineView, int]]) -> None:
    """Lock order: a reservation's levels before its rows. A fill
    (service/backorders.py) holds its level, then updates the backordered
    lines waiting there, while finishing a reservation holds its row and
    lines, then changes their levels: a deadlock when a fill wants a line
    being finished. And a change of several levels writes each level's item
    row with it, so it would wait for its next level while holding the item
    row a writer of that level waits for. So when the reservation has a
    backordered line or the change spans several levels, the levels are
    locked first, in key order, and the others queue on them. (A line this
    snapshot shows without backorders gets none later; a fill committed since
    the snapshot makes the lock fail with 40001, a re-run, not wait.)"""
    levels = sorted({(line.item_id, line.location_id) for line, _ in taken})
    if len(levels) > 1 or any(line.backordered for line in reservation.lines):
        await ledger.lock_levels(conn, tenant_id, levels)


async def _move_lines(
    conn: AsyncConnection,
    tenant_id: UUID,
    reservation: ReservationView,
    taken: list[tuple[ReservationLineView, int]],
    kind: MovementKind,
    ships: bool,
    key: str | None,
    actor: str | None = None,
) -> None:
    """A ledger row and level change per (line, quantity), in level key order.
    A commit ships filled units (refuse_unfilled checked); a release or expiry
    gives back backordered units first, and units it frees on hand fill the
    backorders waiting at that level."""
    why = Why(None, reservation.reference, reservation.id, key, actor)
    for line, quantity in sorted(taken, key=lambda t: (t[0].item_id, t[0].location_id,
                                                       t[0].line_no)):
        reserved, backordered = (quantity, 0) if ships else release_split(line, quantity)
        row = await ledger.change_level(
            conn, tenant_id, line.item_id, line.location_id, kind,
            {"on_hand": -quantity if ships else 0, "reserved": -reserved,
             "backordered": -backordered}, why=replace(why, kit_item_id=line.kit_item_id),
        )
        # The reservation held these units, so the guard cannot refuse them.
        assert row is not None, "reserved stock missing for an active reservation"
        if reserved and not ships:
            await fill_waiting(conn, tenant_id, row, actor)


async def commit_reservation(ctx: Ctx, cmd: CommitReservation, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        return await _finish(
            conn, ctx.tenant_id, cmd, ReservationStatus.COMMITTED,
            MovementKind.COMMIT, True, key, ctx.actor,
        )

    return await execute(ctx, cmd, key, work)


async def release_reservation(ctx: Ctx, cmd: ReleaseReservation, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        return await _finish(
            conn, ctx.tenant_id, cmd, ReservationStatus.RELEASED,
            MovementKind.RELEASE, False, key, ctx.actor,
        )

    return await execute(ctx, cmd, key, work)


async def extend_reservation(ctx: Ctx, cmd: ExtendReservation, key: str | None):
    """A new TTL, counted from now, for an ACTIVE reservation not past its
    expiry. No stock moves, so no ledger row is written."""

    async def work(conn: AsyncConnection, key: str | None):
        if await queries.extend_reservation(conn, ctx.tenant_id, cmd.reservation_id,
                                            cmd.ttl_seconds):
            return (await queries.reservations_by_ids(
                conn, ctx.tenant_id, [cmd.reservation_id]))[cmd.reservation_id]
        found = (await queries.reservations_by_ids(
            conn, ctx.tenant_id, [cmd.reservation_id])).get(cmd.reservation_id)
        if found is None:
            return not_found("reservationId", "no reservation with this id")
        return _not_active(found.status)

    return await execute(ctx, cmd, key, work)


async def expire_one(ctx: Ctx, tenant_id: UUID, reservation_id: UUID) -> bool:
    """Expires one reservation if it is still ACTIVE and past expiry. Safe to run
    from many processes at once: the status guard lets exactly one win."""

    async def work(conn: AsyncConnection) -> bool:
        found = (await queries.reservations_by_ids(conn, tenant_id, [reservation_id])).get(
            reservation_id)
        if found is None or found.status is not ReservationStatus.ACTIVE:
            return False  # finished meanwhile (the status guard below decides)
        held = [(line, line.held) for line in found.lines if line.held > 0]
        await _levels_first(conn, tenant_id, found, held)
        if not await queries.finish_reservation(
            conn, tenant_id, reservation_id, ReservationStatus.EXPIRED, only_if_expired=True
        ):
            return False
        await _move_lines(conn, tenant_id, found, held, MovementKind.EXPIRE, False, None, ctx.actor)
        return True

    return await run_transaction(ctx.db, work, idempotent=True)


async def sweep_expired(ctx: Ctx, batch: int = 100) -> int:
    """Expires up to `batch` overdue reservations (all tenants); returns how many."""
    async with ctx.db.reader.connect() as conn:
        overdue = await queries.expired_reservations(conn, batch)
    expired = 0
    for tenant_id, reservation_id in overdue:
        if await expire_one(ctx, tenant_id, reservation_id):
            expired += 1
    return expired

