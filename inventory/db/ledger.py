"""Stock-changing statements. Each changes one stock level and appends its
ledger row in the same SQL statement (data-modifying CTE), so a level and its
ledger can never disagree and the change costs one round trip.

A guarded change returns the new level, or None when its guard refused it
(row missing, or the result would break on_hand >= reserved >= 0): callers turn
None into a typed error and write nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Select, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import BigInteger, Text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from ..domain.models import MovementKind
from . import changes
from .tables import movements, stock_levels

sl = stock_levels


@dataclass(frozen=True)
class Why:
    """Ledger metadata carried by every change."""

    reason: str | None = None
    reference: str | None = None
    reservation_id: UUID | None = None
    idempotency_key: str | None = None
    actor: str | None = None  # who made the change ("key:<id>", "jwt:<sub>", "system:...")


@dataclass(frozen=True)
class LevelRow:
    item_id: UUID
    location_id: UUID
    on_hand: int
    reserved: int
    version: int
    updated_at: object


def _log_from(changed, kind: MovementKind, d_on: int, d_res: int, why: Why):
    """INSERT INTO movements SELECT ... FROM <changed level>."""
    source = select(
        changed.c.tenant_id,
        changed.c.item_id,
        changed.c.location_id,
        literal(kind.value, Text),
        literal(d_on, BigInteger),
        literal(d_res, BigInteger),
        changed.c.on_hand,
        changed.c.reserved,
        changed.c.version,
        literal(why.reason, Text),
        literal(why.reference, Text),
        literal(why.reservation_id, PG_UUID(as_uuid=True)),
        literal(why.idempotency_key, Text),
        literal(why.actor, Text),
    )
    return insert(movements).from_select(
        [
            "tenant_id", "item_id", "location_id", "kind", "on_hand_delta", "reserved_delta",
            "on_hand_after", "reserved_after", "version", "reason", "reference",
            "reservation_id", "idempotency_key", "actor",
        ],
        source,
    ).cte("logged")


def _returning(stmt):
    return stmt.returning(
        sl.c.tenant_id, sl.c.item_id, sl.c.location_id, sl.c.on_hand, sl.c.reserved,
        sl.c.version, sl.c.updated_at,
    )


def _final(changed, logged) -> Select:
    return select(
        changed.c.item_id, changed.c.location_id, changed.c.on_hand, changed.c.reserved,
        changed.c.version, changed.c.updated_at,
    ).add_cte(logged)


async def _one(
    conn: AsyncConnection, stmt: Select, tenant_id: UUID, kind: MovementKind, d_on: int, d_res: int
) -> LevelRow | None:
    row = (await conn.execute(stmt)).first()
    if not row:
        return None
    level = LevelRow(*row)
    changes.record(conn, changes.Change(
        tenant_id, level.item_id, level.location_id, level.on_hand, level.reserved,
        d_on, d_res, level.version, kind.value, level.updated_at,
    ))
    return level


async def change_level(
    conn: AsyncConnection,
    tenant_id: UUID,
    item_id: UUID,
    location_id: UUID,
    kind: MovementKind,
    *,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    why: Why = Why(),
    expect_on_hand: int | None = None,
) -> LevelRow | None:
    """Guarded update of an existing level: refuses anything that would make
    on_hand, reserved or available negative (and, with expect_on_hand, any
    concurrent change since the caller read the level)."""
    d_on, d_res = on_hand_delta, reserved_delta
    conditions = [
        sl.c.tenant_id == tenant_id,
        sl.c.item_id == item_id,
        sl.c.location_id == location_id,
        sl.c.on_hand + d_on >= sl.c.reserved + d_res,
    ]
    if d_on < 0:
        conditions.append(sl.c.on_hand + d_on >= 0)
    if d_res < 0:
        conditions.append(sl.c.reserved + d_res >= 0)
    if expect_on_hand is not None:
        conditions.append(sl.c.on_hand == expect_on_hand)
    changed = _returning(
        update(sl)
        .where(*conditions)
        .values(
            on_hand=sl.c.on_hand + d_on,
            reserved=sl.c.reserved + d_res,
            version=sl.c.version + 1,
            updated_at=func.now(),
        )
    ).cte("changed")
    return await _one(
        conn, _final(changed, _log_from(changed, kind, d_on, d_res, why)),
        tenant_id, kind, d_on, d_res,
    )


async def add_on_hand(
    conn: AsyncConnection,
    tenant_id: UUID,
    item_id: UUID,
    location_id: UUID,
    kind: MovementKind,
    quantity: int,
    why: Why = Why(),
) -> LevelRow:
    """Adds stock, creating the level on first receipt (upsert), in one statement."""
    stmt = pg_insert(sl).values(
        tenant_id=tenant_id, item_id=item_id, location_id=location_id,
        on_hand=quantity, reserved=0, version=1,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[sl.c.tenant_id, sl.c.item_id, sl.c.location_id],
        set_={
            "on_hand": sl.c.on_hand + stmt.excluded.on_hand,
            "version": sl.c.version + 1,
            "updated_at": func.now(),
        },
    )
    changed = _returning(stmt).cte("changed")
    row = await _one(
        conn, _final(changed, _log_from(changed, kind, quantity, 0, why)),
        tenant_id, kind, quantity, 0,
    )
    assert row is not None  # an upsert always yields its row
    return row


async def lock_levels(
    conn: AsyncConnection, tenant_id: UUID, keys: list[tuple[UUID, UUID]]
) -> dict[tuple[UUID, UUID], tuple[int, int]]:
    """Reads and locks (FOR UPDATE) several levels in key order, so that
    multi-line writers queue instead of deadlocking. Missing levels are absent."""
    if not keys:
        return {}
    from sqlalchemy import tuple_

    rows = await conn.execute(
        select(sl.c.item_id, sl.c.location_id, sl.c.on_hand, sl.c.reserved)
        .where(
            sl.c.tenant_id == tenant_id,
            tuple_(sl.c.item_id, sl.c.location_id).in_(sorted(keys)),
        )
        .order_by(sl.c.item_id, sl.c.location_id)
        .with_for_update()
    )
    return {(r.item_id, r.location_id): (r.on_hand, r.reserved) for r in rows}
