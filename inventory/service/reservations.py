"""Reserve (all lines or none), commit (ship), release, and expire reservations."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncConnection

from ..db import ledger, queries
from ..db.ledger import Why
from ..db.retry import run_transaction
from ..domain.commands import (
    MAX_LINES, CommitReservation, ReleaseReservation, ReserveStock, validate_idempotency_key,
)
from ..domain.errors import ErrorCode, Rejected, Shortage, UserError, not_found
from ..domain.models import MovementKind, ReservationLineView, ReservationStatus, ReservationView
from .batches import LevelBatches
from .context import Ctx
from .keylocks import ENABLED as batches_enabled, levels as level_queue
from .resolve import ids_for
from .runner import execute, key_reused, remember_many, replay_many, request_hash, transact

log = logging.getLogger(__name__)


async def reserve_stock(ctx: Ctx, cmd: ReserveStock, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        items, locs = await ids_for(conn, ctx.tenant_id, [
            (line.sku, f"lines[{i}].sku", line.location_code, f"lines[{i}].locationCode")
            for i, line in enumerate(cmd.lines)
        ])
        lines = [
            ReservationLineView(items[l.sku], locs[l.location_code], l.sku, l.location_code,
                                l.quantity)
            for l in cmd.lines
        ]
        if len(lines) == 1:
            # One line: the guarded statement decides and writes at once (one round
            # trip); only a refusal reads the level, to say what is available.
            line, reservation_id = lines[0], uuid4()
            made = await ledger.reserve_one(
                conn, ctx.tenant_id, line.item_id, line.location_id, line.quantity,
                cmd.ttl_seconds, Why(None, cmd.reference, reservation_id, key, ctx.actor),
            )
            if made is not None:
                return ReservationView(reservation_id, ReservationStatus.ACTIVE, cmd.reference,
                                       made.expires_at, made.created_at, tuple(lines))
        # Decide before writing: lock every level in key order, check every line,
        # and report all the short ones at once.
        levels = await ledger.lock_levels(
            conn, ctx.tenant_id, [(l.item_id, l.location_id) for l in lines]
        )
        shortages = []
        for line in lines:
            on_hand, reserved = levels.get((line.item_id, line.location_id), (0, 0))
            if on_hand - reserved < line.quantity:
                shortages.append(
                    Shortage(line.sku, line.location_code, line.quantity, on_hand - reserved)
                )
        if shortages:
            return _insufficient(shortages)
        reservation_id, created_at, expires_at = await queries.insert_reservation(
            conn, ctx.tenant_id, cmd.ttl_seconds, cmd.reference,
            [(l.item_id, l.location_id, l.quantity) for l in lines],
        )
        why = Why(None, cmd.reference, reservation_id, key, ctx.actor)
        for line in sorted(lines, key=lambda l: (l.item_id, l.location_id)):
            row = await ledger.change_level(
                conn, ctx.tenant_id, line.item_id, line.location_id, MovementKind.RESERVE,
                reserved_delta=line.quantity, why=why,
            )
            assert row is not None, "level changed while locked"
        return ReservationView(
            reservation_id, ReservationStatus.ACTIVE, cmd.reference, expires_at, created_at,
            tuple(lines),
        )

    keys = [(ctx.tenant_id, str(l.sku), str(l.location_code)) for l in cmd.lines[:MAX_LINES]]
    if len(keys) == 1 and batches_enabled and not (
            cmd.validate() or validate_idempotency_key(key)):
        # Single-line reservations of one level in this process are applied in
        # batches while the level is busy (flash sales; service/batches.py).
        return await hot_levels.submit(keys[0], _Request(ctx, cmd, key, work))
    # Same-level reservations in this process take turns (keylocks.py).
    async with level_queue.hold(keys):
        return await _reserve_alone(ctx, cmd, key, work)


async def _reserve_alone(ctx: Ctx, cmd: ReserveStock, key: str | None, work):
    """One reservation on its own: a valid single line without an idempotency
    key is one statement in autocommit; anything else is a transaction."""
    if key is None and len(cmd.lines) == 1 and not cmd.validate():
        made = await _reserve_in_one_statement(ctx, cmd)
        if made is not None:
            return made
        # Refused by the guard (or no such level): the transaction below tries
        # again and, refused again, reads the level in the same snapshot to say
        # exactly how much was available.
    return await execute(ctx, cmd, key, work)


async def _reserve_in_one_statement(ctx: Ctx, cmd: ReserveStock):
    """The whole reservation (guarded level change, ledger row, reservation and
    line) is one statement, sent in autocommit on a SERIALIZABLE session: its own
    transaction, one round trip instead of BEGIN, statement and COMMIT. There is no idempotency record to write
    in the same transaction, so this serves only requests without a key. None
    when the guard refused (nothing written)."""
    line = cmd.lines[0]

    async def unit(conn: AsyncConnection) -> ReservationView | None:
        # Ids come from the process cache (a miss reads them first, on this
        # connection, before the write).
        item_id, location_id = await _line_ids(conn, ctx.tenant_id, line)
        reservation_id = uuid4()
        made = await ledger.reserve_one(
            conn, ctx.tenant_id, item_id, location_id, line.quantity,
            cmd.ttl_seconds, Why(None, cmd.reference, reservation_id, None, ctx.actor))
        if made is None:
            return None
        return _single_line_view(reservation_id, cmd, item_id, location_id, made.created_at,
                                 made.expires_at)

    return await transact(ctx, unit, idempotent=False, single_statement=True)


def _insufficient(shortages: list[Shortage]) -> UserError:
    detail = ", ".join(
        f"{s.sku!r} at {s.location_code!r}: {s.requested} requested, {s.available} available"
        for s in shortages
    )
    return UserError(
        ErrorCode.INSUFFICIENT_STOCK, f"not enough stock for {detail}",
        shortages=tuple(shortages),
    )


async def _line_ids(conn: AsyncConnection, tenant_id: UUID, line) -> tuple[UUID, UUID]:
    """(item id, location id) of a single-line reservation's line, or Rejected
    (NOT_FOUND naming lines[0].sku or lines[0].locationCode)."""
    items, locs = await ids_for(conn, tenant_id, [
        (line.sku, "lines[0].sku", line.location_code, "lines[0].locationCode")])
    return items[line.sku], locs[line.location_code]


def _single_line_view(reservation_id: UUID, cmd: ReserveStock, item_id: UUID,
                      location_id: UUID, created_at, expires_at) -> ReservationView:
    """The ACTIVE reservation a single-line command made."""
    line = cmd.lines[0]
    return ReservationView(
        reservation_id, ReservationStatus.ACTIVE, cmd.reference, expires_at, created_at,
        (ReservationLineView(item_id, location_id, line.sku, line.location_code,
                             line.quantity),))


@dataclass(frozen=True)
class _Request:
    ctx: Ctx
    cmd: ReserveStock
    key: str | None
    work: Any  # the single-request unit of work, for a batch of one


async def _reserve_batch(batch: list[_Request]) -> list[ReservationView | UserError]:
    """Applies single-line reservations of one level: alone through the usual
    path, or together in one transaction that decides them in arrival order."""
    first = batch[0]
    line = first.cmd.lines[0]
    async with level_queue.hold([(first.ctx.tenant_id, str(line.sku), str(line.location_code))]):
        if len(batch) == 1:
            return [await _reserve_alone(first.ctx, first.cmd, first.key, first.work)]
        if not any(r.key for r in batch) and len({r.cmd.lines[0].quantity for r in batch}) == 1:
            outcome = await transact(first.ctx, _fitting_unit(batch), idempotent=False,
                                     single_statement=True)
        else:
            outcome = await transact(first.ctx, _group_unit(batch),
                                     idempotent=all(r.key for r in batch))
    return outcome if isinstance(outcome, list) else [outcome] * len(batch)


def _fitting_unit(batch: list[_Request]):
    """A batch without idempotency keys whose requests all want the same quantity
    (the flash sale): one statement decides and writes them all, in autocommit
    (ledger.reserve_fitting). With equal quantities, taking them in arrival order
    while they fit means taking the first k, which the statement can decide by
    itself; each refused request is told what was left at its turn, as alone."""
    first = batch[0]
    tenant_id, line = first.ctx.tenant_id, first.cmd.lines[0]
    quantity = line.quantity

    async def unit(conn: AsyncConnection) -> list[ReservationView | UserError]:
        item_id, location_id = await _line_ids(conn, tenant_id, line)
        entries = []
        for r in batch:
            rid = uuid4()
            entries.append(ledger.BatchEntry(rid, quantity, r.cmd.ttl_seconds,
                                             Why(None, r.cmd.reference, rid, None, r.ctx.actor)))
        available, made = await ledger.reserve_fitting(
            conn, tenant_id, item_id, location_id, quantity, entries)
        refused = _insufficient([Shortage(line.sku, line.location_code, quantity,
                                          available - quantity * len(made))])
        return [_single_line_view(e.reservation_id, r.cmd, item_id, location_id,
                                  *made[e.reservation_id])
                if e.reservation_id in made else refused
                for r, e in zip(batch, entries)]

    return unit


def _group_unit(batch: list[_Request]):
    first = batch[0]
    tenant_id, line = first.ctx.tenant_id, first.cmd.lines[0]
    prints = [request_hash(r.cmd) if r.key else "" for r in batch]

    async def unit(conn: AsyncConnection) -> list[ReservationView | UserError]:
        # Keys used before this transaction answer as stored (every copy of a key
        # is checked against the stored request, as it would be alone).
        keyed = [i for i, r in enumerate(batch) if r.key]
        results: list[Any] = [None] * len(batch)
        for i, answer in zip(keyed, await replay_many(
                conn, tenant_id, [(batch[i].cmd, batch[i].key, prints[i]) for i in keyed])):
            results[i] = answer
        replayed = {i for i in keyed if results[i] is not None}
        first_with_key: dict[str, int] = {}
        for i in keyed:
            first_with_key.setdefault(batch[i].key, i)
        try:
            item_id, location_id = await _line_ids(conn, tenant_id, line)
        except Rejected as rejected:  # unknown sku or code: not stored under any key
            return [result if i in replayed else rejected.error
                    for i, result in enumerate(results)]
        levels = await ledger.lock_levels(conn, tenant_id, [(item_id, location_id)])
        on_hand, reserved = levels.get((item_id, location_id), (0, 0))
        available, accepted = on_hand - reserved, []
        for i, r in enumerate(batch):
            if i in replayed or (r.key and first_with_key[r.key] != i):
                continue
            quantity = r.cmd.lines[0].quantity
            if quantity > available:
                results[i] = _insufficient([Shortage(line.sku, line.location_code, quantity,
                                                     available)])
                continue
            available -= quantity
            rid = uuid4()
            accepted.append((i, ledger.BatchEntry(
                rid, quantity, r.cmd.ttl_seconds,
                Why(None, r.cmd.reference, rid, r.key, r.ctx.actor))))
        if accepted:
            made = await ledger.reserve_many(conn, tenant_id, item_id, location_id,
                                             [entry for _, entry in accepted])
            assert made is not None, "level changed while locked"
            for i, entry in accepted:
                results[i] = _single_line_view(entry.reservation_id, batch[i].cmd, item_id,
                                               location_id, *made[entry.reservation_id])
        fresh = []
        for i in keyed:
            r, j = batch[i], first_with_key[batch[i].key]
            if i in replayed:
                continue
            if j == i:
                fresh.append((r.cmd, r.key, prints[i], results[i]))
            else:  # a key first used in this batch: the later copy replays it
                results[i] = (results[j] if prints[i] == prints[j]
                              else key_reused(r.key, batch[j].cmd.operation))
        await remember_many(conn, tenant_id, fresh)
        return results

    return unit


async def _finish(
    conn: AsyncConnection,
    tenant_id: UUID,
    reservation_id: UUID,
    to_status: ReservationStatus,
    kind: MovementKind,
    ships: bool,
    key: str | None,
    actor: str | None = None,
) -> ReservationView | UserError:
    found = (await queries.reservations_by_ids(conn, tenant_id, [reservation_id])).get(
        reservation_id
    )
    if found is None:
        return not_found("reservationId", "no reservation with this id")
    moved = await queries.finish_reservation(
        conn, tenant_id, reservation_id, to_status, only_if_live=True
    )
    if not moved:
        status = found.status
        if status is ReservationStatus.ACTIVE:  # past its expiry, not yet swept
            status = ReservationStatus.EXPIRED
        return UserError(
            ErrorCode.RESERVATION_NOT_ACTIVE,
            f"reservation is {status.value}, only an ACTIVE reservation can change",
            field="reservationId",
            status=status.value,
        )
    await _move_lines(conn, tenant_id, found, kind, ships, key, actor)
    return ReservationView(
        found.id, to_status, found.reference, found.expires_at, found.created_at, found.lines
    )


async def _move_lines(
    conn: AsyncConnection,
    tenant_id: UUID,
    reservation: ReservationView,
    kind: MovementKind,
    ships: bool,
    key: str | None,
    actor: str | None = None,
) -> None:
    why = Why(None, reservation.reference, reservation.id, key, actor)
    for line in sorted(reservation.lines, key=lambda l: (l.item_id, l.location_id)):
        row = await ledger.change_level(
            conn, tenant_id, line.item_id, line.location_id, kind,
            on_hand_delta=-line.quantity if ships else 0,
            reserved_delta=-line.quantity, why=why,
        )
        # The reservation held these units, so the guard cannot refuse them.
        assert row is not None, "reserved stock missing for an active reservation"


async def commit_reservation(ctx: Ctx, cmd: CommitReservation, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        return await _finish(
            conn, ctx.tenant_id, cmd.reservation_id, ReservationStatus.COMMITTED,
            MovementKind.COMMIT, True, key, ctx.actor,
        )

    return await execute(ctx, cmd, key, work)


async def release_reservation(ctx: Ctx, cmd: ReleaseReservation, key: str | None):
    async def work(conn: AsyncConnection, key: str | None):
        return await _finish(
            conn, ctx.tenant_id, cmd.reservation_id, ReservationStatus.RELEASED,
            MovementKind.RELEASE, False, key, ctx.actor,
        )

    return await execute(ctx, cmd, key, work)


async def expire_one(ctx: Ctx, tenant_id: UUID, reservation_id: UUID) -> bool:
    """Expires one reservation if it is still ACTIVE and past expiry. Safe to run
    from many processes at once: the status guard lets exactly one win."""

    async def work(conn: AsyncConnection) -> bool:
        if not await queries.finish_reservation(
            conn, tenant_id, reservation_id, ReservationStatus.EXPIRED, only_if_expired=True
        ):
            return False
        found = (await queries.reservations_by_ids(conn, tenant_id, [reservation_id]))[
            reservation_id
        ]
        await _move_lines(conn, tenant_id, found, MovementKind.EXPIRE, False, None, ctx.actor)
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


# One per process.
hot_levels: LevelBatches[_Request] = LevelBatches(_reserve_batch, name="reserveStock batch")
