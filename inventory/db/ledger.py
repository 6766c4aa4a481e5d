"""Stock-changing statements. Each changes one stock level and appends its
ledger row in the same SQL statement (data-modifying CTE), so a level and its
ledger can never disagree and the change costs one round trip.

A guarded change returns the new level, or None when its guard refused it
(row missing, or the result would break on_hand >= reserved >= 0): callers turn
None into a typed error and write nothing else.

The quantity states, the guard (`available` and each state non-negative) and
the ledger's delta and after columns all come from domain/quantities.py: no
statement here names a state except where a use case moves that state.
Results are read by column name (`LevelRow.of`).

Every statement that changes a level's available also adds that change to its
item's `available` (the sum over the item's levels, which makes low stock an
indexed state of the item row: tables.LOW_STOCK), as one more data-modifying
CTE of the same statement (`_to_item`). A statement whose change leaves
available as it was does not touch the item row; one that changes several
levels adds their sum per item, so no statement modifies an item row twice
(CockroachDB refuses that).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping
from uuid import UUID

from sqlalchemy import (
    Integer, Select, bindparam, cast, func, insert, literal, select, text, true, tuple_, update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import Grouping
from .upsert import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import BigInteger, Text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from ..domain.models import MovementKind, ReservationStatus, StockLevelView
from ..domain.quantities import NAMES, STATES, Quantities, available
from .tables import items, movements, reservation_lines, reservations, stock_levels

sl = stock_levels


@dataclass(frozen=True)
class Why:
    """Ledger metadata carried by every change."""

    reason: str | None = None
    reference: str | None = None
    reservation_id: UUID | None = None
    idempotency_key: str | None = None
    actor: str | None = None  # who made the change ("key:<id>", "jwt:<sub>", "system:...")
    reason_code: str | None = None  # a domain Reason's value, beside the free-text reason
    shipment_id: UUID | None = None  # the inbound shipment or transfer it belongs to
    kit_item_id: UUID | None = None  # the kit whose reservation moves this component


@dataclass(frozen=True)
class LevelRow:
    item_id: UUID
    location_id: UUID
    quantities: Quantities
    version: int
    updated_at: object
    backorder_limit: int = 0

    def view(self, sku: str, location_code: str) -> StockLevelView:
        return StockLevelView(self.item_id, self.location_id, sku, location_code,
                              self.quantities, self.version, self.updated_at,
                              self.backorder_limit)

    @classmethod
    def of(cls, row: Any) -> "LevelRow":
        """From a row with the level's columns, by name."""
        return cls(row.item_id, row.location_id, Quantities.of_row(row), row.version,
                   row.updated_at, row.backorder_limit)

    @property
    def backorderable(self) -> int:
        """How many more units reservations may backorder here."""
        return max(0, self.backorder_limit - self.quantities.backordered)


# The statements below are built once per shape and executed with bound values.
# Building a statement per call costs SQLAlchemy a cache-key walk of the whole
# CTE tree on every execution (docs/performance.md, item 11); a reused
# statement object memoizes its key.


def _delta_param(name: str):
    return bindparam(f"p_d_{name}", type_=BigInteger)


def _ledger_columns(level, *, kind, version, delta: Mapping[str, Any] | None = None,
                    after: Mapping[str, Any] | None = None, reason, reference, reservation_id,
                    idempotency_key, actor, reason_code=None, shipment_id=None,
                    kit_item_id=None) -> dict[str, Any]:
    """A ledger row as {column: expression}: each state's delta (0 unless given)
    and after-value (the `level`'s column unless given), then the rest."""
    delta, after = delta or {}, after or {}
    return {
        "tenant_id": level.c.tenant_id, "item_id": level.c.item_id,
        "location_id": level.c.location_id, "kind": kind,
        **{f"{n}_delta": delta.get(n, literal(0, BigInteger)) for n in NAMES},
        **{f"{n}_after": after.get(n, level.c[n]) for n in NAMES},
        "version": version, "reason": reason, "reference": reference,
        "reservation_id": reservation_id, "idempotency_key": idempotency_key, "actor": actor,
        "reason_code": literal(None, Text) if reason_code is None else reason_code,
        "shipment_id": literal(None, PG_UUID(as_uuid=True)) if shipment_id is None
        else shipment_id,
        "kit_item_id": literal(None, PG_UUID(as_uuid=True)) if kit_item_id is None
        else kit_item_id,
    }


def _log_from(changed):
    """INSERT INTO movements SELECT ... FROM <changed level>; values bound by _params."""
    return _insert_ledger(_ledger_columns(
        changed, kind=bindparam("p_kind", type_=Text), version=changed.c.version,
        delta={n: _delta_param(n) for n in NAMES},
        reason=bindparam("p_reason", type_=Text), reference=bindparam("p_reference", type_=Text),
        reservation_id=bindparam("p_reservation_id", type_=PG_UUID(as_uuid=True)),
        idempotency_key=bindparam("p_idempotency_key", type_=Text),
        actor=bindparam("p_actor", type_=Text),
        reason_code=bindparam("p_reason_code", type_=Text),
        shipment_id=bindparam("p_shipment_id", type_=PG_UUID(as_uuid=True)),
        kit_item_id=bindparam("p_kit_item_id", type_=PG_UUID(as_uuid=True))))


def _insert_ledger(columns: dict[str, Any], from_=None, order_by=None):
    """INSERT INTO movements (the columns) SELECT their expressions [FROM from_]."""
    source = select(*(expr.label(name) for name, expr in columns.items()))
    if from_ is not None:
        source = source.select_from(from_)
    if order_by is not None:
        source = source.order_by(order_by)
    return insert(movements).from_select(list(columns), source).cte("logged")


def _expires_at(ttl_seconds):
    # `n * INTERVAL '1 second'` works on PostgreSQL and CockroachDB alike.
    return func.now() + ttl_seconds * text("INTERVAL '1 second'")


def _insert_reservation(head_rows, line_rows, *, tenant_id, rid, reference, ttl_seconds,
                        line_no, item_id, location_id, quantity, backordered=None, kit=None):
    """The one place reservation rows are written: an ACTIVE reservation for each
    row of `head_rows` (RETURNING id, created_at, expires_at; None: one, from no
    table) and a line for each row of `line_rows`. The other arguments are
    column expressions over those rows (`kit`: kit_item_id, kit_line, per_kit;
    None: not kit lines). Returns the two INSERT CTEs (head, line)."""
    head_source = select(tenant_id, rid, literal(ReservationStatus.ACTIVE.value, Text),
                         reference, _expires_at(ttl_seconds))
    if head_rows is not None:
        head_source = head_source.select_from(head_rows)
    head = insert(reservations).from_select(
        ["tenant_id", "id", "status", "reference", "expires_at"], head_source,
    ).returning(reservations.c.id, reservations.c.created_at, reservations.c.expires_at
                ).cte("head")
    columns = {"tenant_id": tenant_id, "reservation_id": rid, "line_no": line_no,
               "item_id": item_id, "location_id": location_id, "quantity": quantity}
    if backordered is not None:
        columns["backordered"] = backordered
    if kit is not None:
        columns.update(zip(("kit_item_id", "kit_line", "per_kit"), kit))
    line = insert(reservation_lines).from_select(
        list(columns),
        select(*(expr.label(name) for name, expr in columns.items())).select_from(line_rows),
    ).cte("line")
    return head, line


def _reservation_of_level(changed, rows, rid, reference, ttl_seconds, quantity):
    """A single-line reservation per row of `rows` (the changed level, or it
    joined with a batch): its one line is the changed level."""
    return _insert_reservation(
        rows, rows, tenant_id=changed.c.tenant_id, rid=rid, reference=reference,
        ttl_seconds=ttl_seconds, line_no=literal(0), item_id=changed.c.item_id,
        location_id=changed.c.location_id, quantity=quantity)


def _params(tenant_id: UUID, item_id: UUID, location_id: UUID, kind: MovementKind,
            delta: Mapping[str, int], why: Why) -> dict:
    return {
        "p_tenant_id": tenant_id, "p_item_id": item_id, "p_location_id": location_id,
        "p_kind": kind.value, **{f"p_d_{n}": delta.get(n, 0) for n in NAMES},
        "p_reason": why.reason, "p_reference": why.reference,
        "p_reservation_id": why.reservation_id, "p_idempotency_key": why.idempotency_key,
        "p_actor": why.actor, "p_reason_code": why.reason_code, "p_shipment_id": why.shipment_id,
        "p_kit_item_id": why.kit_item_id,
    }


def _level_columns(level) -> list:
    """item_id, location_id, every state, version, updated_at, backorder_limit of `level`."""
    return [level.c.item_id, level.c.location_id, *(level.c[n] for n in NAMES),
            level.c.version, level.c.updated_at, level.c.backorder_limit]


def _returning(stmt):
    return stmt.returning(sl.c.tenant_id, *_level_columns(sl))


def _to_item(changed, amount, name: str = "item_total"):
    """UPDATE items SET available = available + `amount` for the item of each row
    of `changed` (one row per item: a statement that changes several levels of
    an item passes their sum). Nothing when `changed` is empty (a refused
    guard)."""
    return update(items).where(
        items.c.tenant_id == changed.c.tenant_id, items.c.id == changed.c.item_id,
    ).values(available=items.c.available + amount).cte(name)


def _delta_available():
    """The change of available the bound deltas (p_d_*) make."""
    return available({n: _delta_param(n) for n in NAMES})


def _final(changed, to_item: bool) -> Select:
    """The new level, with its ledger row and (`to_item`: the deltas change
    available) the item's total."""
    stmt = select(*_level_columns(changed)).add_cte(_log_from(changed))
    return stmt.add_cte(_to_item(changed, _delta_available())) if to_item else stmt


def _changes_available(delta: Mapping[str, int]) -> bool:
    return available(Quantities(delta)) != 0


async def _one(conn: AsyncConnection, stmt: Select, params: dict) -> LevelRow | None:
    row = (await conn.execute(stmt, params)).first()
    if not row:
        return None
    return LevelRow.of(row)


# Bound names start with p_: execute-time parameters named like a column of an
# UPDATE or INSERT would become extra SET/VALUES entries in SQLAlchemy.


def _this_level():
    return (sl.c.tenant_id == bindparam("p_tenant_id"),
            sl.c.item_id == bindparam("p_item_id"),
            sl.c.location_id == bindparam("p_location_id"))


def _guarded_change(delta: Mapping[str, Any], *, versions=1, also=(), lowers=()):
    """The guarded level change every stock-changing statement here is built
    from: UPDATE the level (p_tenant_id, p_item_id, p_location_id) by `delta`
    ({state: expression}; states not named stay), only if `available` stays >= 0
    (and each state in `lowers`, those whose delta may be negative, stays >= 0;
    and `also`), bumping its version by `versions`. The CTE "changed" returns the
    new level, or nothing when the guard refused (nothing written: every other
    part of a statement selects FROM it)."""
    after = {n: sl.c[n] + delta[n] if n in delta else sl.c[n] for n in NAMES}
    conditions = [*_this_level(), available(after) >= 0]
    conditions.extend(after[n] >= 0 for n in NAMES if n in lowers)
    conditions.extend(after[s.name] <= sl.c[s.limit] for s in STATES
                      if s.limit and s.name in delta)
    conditions.extend(also)
    values = {**{n: after[n] for n in NAMES if n in delta},
              "version": sl.c.version + versions, "updated_at": func.now()}
    return _returning(update(sl).where(*conditions).values(**values)).cte("changed")


@functools.cache
def _change_statement(lowers: frozenset[str], expects: bool, to_item: bool) -> Select:
    also = [sl.c.on_hand == bindparam("p_expect_on_hand", type_=BigInteger)] if expects else []
    changed = _guarded_change({n: _delta_param(n) for n in NAMES}, also=also, lowers=lowers)
    return _final(changed, to_item)


async def change_level(
    conn: AsyncConnection,
    tenant_id: UUID,
    item_id: UUID,
    location_id: UUID,
    kind: MovementKind,
    delta: Mapping[str, int],
    *,
    why: Why = Why(),
    expect_on_hand: int | None = None,
) -> LevelRow | None:
    """Guarded update of an existing level by `delta` ({state: change}):
    refuses anything that would make a state or available negative (and, with
    expect_on_hand, any concurrent change since the caller read the level)."""
    params = _params(tenant_id, item_id, location_id, kind, delta, why)
    if expect_on_hand is not None:
        params["p_expect_on_hand"] = expect_on_hand
    lowers = frozenset(n for n, d in delta.items() if d < 0)
    return await _one(conn, _change_statement(
        lowers, expect_on_hand is not None, _changes_available(delta)), params)


# A new level starts with its item's backorder limit.
_ITEM_BACKORDER_LIMIT = select(items.c.backorder_limit).where(
    items.c.tenant_id == bindparam("p_tenant_id"), items.c.id == bindparam("p_item_id")
).scalar_subquery()


@functools.cache
def _add_statement(to_item: bool) -> Select:
    """Adds to a level, creating it on first receipt (upsert); only ever called
    with deltas >= 0, so it needs no guard."""
    stmt = pg_insert(sl).values(
        tenant_id=bindparam("p_tenant_id"), item_id=bindparam("p_item_id"),
        location_id=bindparam("p_location_id"), version=1,
        **{n: _delta_param(n) for n in NAMES}, backorder_limit=_ITEM_BACKORDER_LIMIT,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[sl.c.tenant_id, sl.c.item_id, sl.c.location_id],
        set_={
            **{n: sl.c[n] + stmt.excluded[n] for n in NAMES},
            "version": sl.c.version + 1,
            "updated_at": func.now(),
        },
    )
    return _final(_returning(stmt).cte("changed"), to_item)


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
    return await add_to_level(conn, tenant_id, item_id, location_id, kind,
                              {"on_hand": quantity}, why)


async def add_to_level(
    conn: AsyncConnection,
    tenant_id: UUID,
    item_id: UUID,
    location_id: UUID,
    kind: MovementKind,
    delta: Mapping[str, int],
    why: Why = Why(),
) -> LevelRow:
    """Adds `delta` ({state: change >= 0}) to a level, creating it if need be
    (upsert), in one statement."""
    assert all(d >= 0 for d in delta.values()), delta  # the upsert has no guard
    row = await _one(conn, _add_statement(_changes_available(delta)),
                     _params(tenant_id, item_id, location_id, kind, delta, why))
    assert row is not None  # an upsert always yields its row
    return row


@dataclass(frozen=True)
class Reserved:
    level: LevelRow
    created_at: object
    expires_at: object


def _build_reserve_one() -> Select:
    """One statement for a whole single-line reservation: the guarded level
    change, its ledger row, the reservation and its line. Nothing is written
    unless the guard passes (every other part selects FROM the changed row).
    Sent in autocommit, the statement is the whole transaction, one round trip."""
    qty = _delta_param("reserved")
    rid = bindparam("p_reservation_id", type_=PG_UUID(as_uuid=True))
    changed = _guarded_change({"reserved": qty})
    head, line = _reservation_of_level(
        changed, changed, rid, bindparam("p_reference", type_=Text),
        bindparam("p_ttl", type_=BigInteger), qty)
    return select(
        *_level_columns(changed), head.c.created_at, head.c.expires_at,
    ).select_from(changed.join(head, true())).add_cte(_log_from(changed)).add_cte(line).add_cte(
        _to_item(changed, -qty))


_RESERVE_ONE = _build_reserve_one()


async def reserve_one(
    conn: AsyncConnection,
    tenant_id: UUID,
    item_id: UUID,
    location_id: UUID,
    quantity: int,
    ttl_seconds: int,
    why: Why,
) -> Reserved | None:
    """A single-line reservation in one round trip (why.reservation_id is its new
    id); None, with nothing written, when the level is missing or short."""
    params = _params(tenant_id, item_id, location_id, MovementKind.RESERVE,
                     {"reserved": quantity}, why)
    params["p_ttl"] = ttl_seconds
    row = (await conn.execute(_RESERVE_ONE, params)).first()
    if not row:
        return None
    return Reserved(LevelRow.of(row), row.created_at, row.expires_at)


@dataclass(frozen=True)
class BatchEntry:
    """One reservation of a batch on the same level (see service/hot_levels.py)."""

    reservation_id: UUID
    quantity: int
    ttl_seconds: int
    why: Why


def _series():
    """`generate_series(1, :p_count) AS series(n)` (the column named explicitly,
    as both engines accept) and a function giving element n of an array
    parameter: a batch arrives as parallel arrays, so one statement text serves
    every batch size and is compiled once."""
    n = func.generate_series(1, bindparam("p_count", type_=Integer)).table_valued(
        "n").render_derived(name="series").c.n

    def element(name: str, type_):  # (:name::type[])[n]: parenthesized, or [n] reads as a type
        return Grouping(bindparam(name, type_=ARRAY(type_)))[n]

    return n, element


def _build_insert_reservation() -> Select:
    """A multi-line reservation and its lines (arrays p_items, p_locations,
    p_qtys, in line order) in one statement; RETURNING created_at, expires_at.
    The levels are changed by `change_level`, after the caller locked and
    checked them."""
    n, element = _series()
    lines = select(
        n.label("n"),
        element("p_items", PG_UUID(as_uuid=True)).label("item_id"),
        element("p_locations", PG_UUID(as_uuid=True)).label("location_id"),
        element("p_qtys", BigInteger).label("qty"),
        element("p_backs", BigInteger).label("back"),
        element("p_kits", PG_UUID(as_uuid=True)).label("kit_item_id"),
        element("p_kit_lines", Integer).label("kit_line"),
        element("p_per_kits", BigInteger).label("per_kit"),
    ).cte("lines")
    head, line = _insert_reservation(
        None, lines, tenant_id=bindparam("p_tenant_id", type_=PG_UUID(as_uuid=True)),
        rid=bindparam("p_reservation_id", type_=PG_UUID(as_uuid=True)),
        reference=bindparam("p_reference", type_=Text),
        ttl_seconds=bindparam("p_ttl", type_=BigInteger), line_no=lines.c.n - 1,
        item_id=lines.c.item_id, location_id=lines.c.location_id, quantity=lines.c.qty,
        backordered=lines.c.back,
        kit=(lines.c.kit_item_id, lines.c.kit_line, lines.c.per_kit))
    return select(head.c.created_at, head.c.expires_at).add_cte(line)


_INSERT_RESERVATION = _build_insert_reservation()


async def insert_reservation(
    conn: AsyncConnection,
    tenant_id: UUID,
    reservation_id: UUID,
    ttl_seconds: int,
    reference: str | None,
    lines: list[tuple[UUID, UUID, int, int]],
    kits: list[tuple[UUID | None, int | None, int | None]] | None = None,
) -> tuple[object, object]:
    """Inserts an ACTIVE reservation with its (item id, location id, quantity,
    backordered) lines and, per line, (kit item id, kit line, per kit) (None:
    no kit lines); returns (created_at, expires_at)."""
    kits = kits or [(None, None, None)] * len(lines)
    row = (await conn.execute(_INSERT_RESERVATION, {
        "p_tenant_id": tenant_id, "p_reservation_id": reservation_id,
        "p_reference": reference, "p_ttl": ttl_seconds, "p_count": len(lines),
        "p_items": [line[0] for line in lines],
        "p_locations": [line[1] for line in lines],
        "p_qtys": [line[2] for line in lines],
        "p_backs": [line[3] for line in lines],
        "p_kits": [kit for kit, _, _ in kits],
        "p_kit_lines": [kit_line for _, kit_line, _ in kits],
        "p_per_kits": [per_kit for _, _, per_kit in kits],
    })).one()
    return row.created_at, row.expires_at


def _build_reserve_many() -> Select:
    """The batch arrives as parallel arrays (element n of each is reservation n),
    so one statement text serves every batch size and is compiled once."""
    n, element = _series()
    batch = select(
        n.label("n"),
        element("p_rids", PG_UUID(as_uuid=True)).label("rid"),
        element("p_qtys", BigInteger).label("qty"),
        element("p_cums", BigInteger).label("cum"),
        element("p_ttls", BigInteger).label("ttl"),
        element("p_references", Text).label("reference"),
        element("p_keys", Text).label("idem_key"),
        element("p_actors", Text).label("actor"),
    ).cte("batch")
    p_total = bindparam("p_total", type_=BigInteger)
    p_count = bindparam("p_count", type_=Integer)
    changed = _guarded_change({"reserved": p_total}, versions=p_count)
    both = changed.join(batch, true())
    logged = _insert_ledger(_ledger_columns(
        changed, kind=literal(MovementKind.RESERVE.value, Text),
        delta={"reserved": batch.c.qty},
        after={"reserved": changed.c.reserved - p_total + batch.c.cum},
        version=changed.c.version - p_count + batch.c.n, reason=literal(None, Text),
        reference=batch.c.reference, reservation_id=batch.c.rid,
        idempotency_key=batch.c.idem_key, actor=batch.c.actor,
    ), both, batch.c.n)
    heads, lines = _reservation_of_level(
        changed, both, batch.c.rid, batch.c.reference, batch.c.ttl, batch.c.qty)
    return (
        select(heads.c.id, heads.c.created_at, heads.c.expires_at)
        .select_from(heads.join(changed, true())).add_cte(logged).add_cte(lines)
        .add_cte(_to_item(changed, -p_total))
    )


_RESERVE_MANY = _build_reserve_many()


async def reserve_many(
    conn: AsyncConnection,
    tenant_id: UUID,
    item_id: UUID,
    location_id: UUID,
    entries: list[BatchEntry],
) -> dict[UUID, tuple[object, object]] | None:
    """Several single-line reservations of one level in one statement: the level
    changes once by their total, and each gets its own ledger row (versions
    v+1..v+n, in order, as if applied one by one), reservation and line. Returns
    {reservation id: (created_at, expires_at)}, or None (nothing written) when
    the total does not fit. The caller has locked the level and checked."""
    count, total = len(entries), sum(e.quantity for e in entries)
    cums, running = [], 0
    for e in entries:
        running += e.quantity
        cums.append(running)
    result = (await conn.execute(_RESERVE_MANY, {
        "p_tenant_id": tenant_id, "p_item_id": item_id, "p_location_id": location_id,
        "p_count": count, "p_total": total, "p_cums": cums,
        "p_rids": [e.reservation_id for e in entries],
        "p_qtys": [e.quantity for e in entries],
        "p_ttls": [e.ttl_seconds for e in entries],
        "p_references": [e.why.reference for e in entries],
        "p_keys": [e.why.idempotency_key for e in entries],
        "p_actors": [e.why.actor for e in entries],
    })).all()
    if not result:
        return None
    return {r.id: (r.created_at, r.expires_at) for r in result}


def _build_reserve_fitting() -> Select:
    """A batch of single-line reservations of one level, all of one quantity, in
    ONE statement that decides too: it locks the level, takes the first k entries
    that fit (with equal quantities, first come first served means exactly the
    first k: once one does not fit, none after it does), and writes their ledger
    rows (versions v+1..v+k, running reserved_after), reservations and lines.
    Sent alone in
    autocommit it is the whole transaction, one round trip, and the level's lock
    is held only while it runs.

    Rows: the level's available before, then each reservation made (id,
    created_at, expires_at); one row with NULLs when none fit; none when the
    level does not exist."""
    n, element = _series()
    q = bindparam("p_qty", type_=BigInteger)
    batch = select(
        n.label("n"),
        element("p_rids", PG_UUID(as_uuid=True)).label("rid"),
        element("p_ttls", BigInteger).label("ttl"),
        element("p_references", Text).label("reference"),
        element("p_actors", Text).label("actor"),
    ).cte("batch")
    cur = select(*(sl.c[n] for n in NAMES), sl.c.version, sl.c.backorder_limit).where(
        *_this_level()).with_for_update().cte("cur")
    cur_available = available(cur.c)
    fit = select(batch).select_from(batch.join(cur, true())).where(
        batch.c.n * q <= cur_available).cte("fit")
    taken = select(func.count()).select_from(fit).scalar_subquery()  # k
    changed = _guarded_change({"reserved": q * taken}, versions=taken, also=[taken > 0])
    made = changed.join(fit, true()).join(cur, true())
    logged = _insert_ledger(_ledger_columns(
        changed, kind=literal(MovementKind.RESERVE.value, Text), delta={"reserved": q},
        after={"reserved": cur.c.reserved + q * fit.c.n}, version=cur.c.version + fit.c.n,
        reason=literal(None, Text), reference=fit.c.reference, reservation_id=fit.c.rid,
        idempotency_key=literal(None, Text), actor=fit.c.actor,
    ), made, fit.c.n)
    heads, lines = _reservation_of_level(changed, made, fit.c.rid, fit.c.reference, fit.c.ttl, q)
    return select(
        cur_available.label("available"),
        (cur.c.backorder_limit - cur.c.backordered).label("backorderable"),
        heads.c.id, heads.c.created_at, heads.c.expires_at,
    ).select_from(cur.outerjoin(heads, true())).add_cte(logged).add_cte(lines).add_cte(
        _to_item(changed, -(q * taken)))


_RESERVE_FITTING = _build_reserve_fitting()


async def reserve_fitting(
    conn: AsyncConnection,
    tenant_id: UUID,
    item_id: UUID,
    location_id: UUID,
    quantity: int,
    entries: list[BatchEntry],
) -> tuple[int, int | None, dict[UUID, tuple[object, object]]]:
    """Runs `_build_reserve_fitting`'s statement for `entries` (each of
    `quantity`, in arrival order): (available before, how many more units the
    level may backorder (None: no level), {reservation id: (created_at,
    expires_at)} of those made)."""
    rows = (await conn.execute(_RESERVE_FITTING, {
        "p_tenant_id": tenant_id, "p_item_id": item_id, "p_location_id": location_id,
        "p_qty": quantity, "p_count": len(entries),
        "p_rids": [e.reservation_id for e in entries],
        "p_ttls": [e.ttl_seconds for e in entries],
        "p_references": [e.why.reference for e in entries],
        "p_actors": [e.why.actor for e in entries],
    })).all()
    if not rows:  # no level: a preorder may make it (the use case decides)
        return 0, None, {}
    return rows[0].available, rows[0].backorderable, {
        r.id: (r.created_at, r.expires_at) for r in rows if r.id is not None}


# Built once (expanding IN): a statement built per call costs SQLAlchemy its
# construction and a cache-key walk on every execution.
_LOCK_LEVELS = (
    select(*_level_columns(sl))
    .where(sl.c.tenant_id == bindparam("p_tenant_id"),
           tuple_(sl.c.item_id, sl.c.location_id).in_(bindparam("p_keys", expanding=True)))
    .order_by(sl.c.item_id, sl.c.location_id)
    .with_for_update()
)


async def lock_level_rows(
    conn: AsyncConnection, tenant_id: UUID, keys: list[tuple[UUID, UUID]]
) -> dict[tuple[UUID, UUID], LevelRow]:
    """Reads and locks (FOR UPDATE) several levels in key order, so that
    multi-line writers queue instead of deadlocking. Missing levels are absent."""
    if not keys:
        return {}
    rows = await conn.execute(_LOCK_LEVELS, {"p_tenant_id": tenant_id, "p_keys": sorted(keys)})
    return {(r.item_id, r.location_id): LevelRow.of(r) for r in rows}


async def lock_levels(
    conn: AsyncConnection, tenant_id: UUID, keys: list[tuple[UUID, UUID]]
) -> dict[tuple[UUID, UUID], Quantities]:
    """`lock_level_rows`, the quantities only."""
    return {key: row.quantities
            for key, row in (await lock_level_rows(conn, tenant_id, keys)).items()}


# Bulk updates (service/bulk.py): every changed level, with its ledger row, in
# one statement, after `lock_level_rows`.
def _build_set_on_hand_many() -> Select:
    """Sets on hand of several levels (parallel arrays, element n is line n),
    creating those never stocked, and appends one ledger row per level (kind
    p_kind, on hand delta given), in ONE statement. The caller has locked the
    levels and decided each value, so it needs no guard; the CHECK constraints
    stay the last line of defence."""
    n, element = _series()
    lines = select(
        n.label("n"),
        element("p_items", PG_UUID(as_uuid=True)).label("item_id"),
        element("p_locations", PG_UUID(as_uuid=True)).label("location_id"),
        element("p_on_hands", BigInteger).label("on_hand"),
        element("p_deltas", BigInteger).label("delta"),
        element("p_reasons", Text).label("reason"),
    ).cte("lines")
    tenant = bindparam("p_tenant_id", type_=PG_UUID(as_uuid=True))
    upsert = pg_insert(sl).from_select(
        ["tenant_id", "item_id", "location_id", "on_hand", "version", "backorder_limit"],
        select(tenant, lines.c.item_id, lines.c.location_id, lines.c.on_hand,
               literal(1, BigInteger),
               select(items.c.backorder_limit).where(  # a new level: its item's limit
                   items.c.tenant_id == tenant, items.c.id == lines.c.item_id
               ).scalar_subquery()))
    upsert = upsert.on_conflict_do_update(
        index_elements=[sl.c.tenant_id, sl.c.item_id, sl.c.location_id],
        set_={"on_hand": upsert.excluded.on_hand, "version": sl.c.version + 1,
              "updated_at": func.now()})
    changed = _returning(upsert).cte("changed")
    both = changed.join(lines, (lines.c.item_id == changed.c.item_id)
                        & (lines.c.location_id == changed.c.location_id))
    logged = _insert_ledger(_ledger_columns(
        changed, kind=bindparam("p_kind", type_=Text), version=changed.c.version,
        delta={"on_hand": lines.c.delta}, reason=lines.c.reason,
        reference=literal(None, Text), reservation_id=literal(None, PG_UUID(as_uuid=True)),
        idempotency_key=bindparam("p_idempotency_key", type_=Text),
        actor=bindparam("p_actor", type_=Text)), from_=both, order_by=lines.c.n)
    # Only on hand changes, so available by each line's delta, summed per item.
    per_item = select(changed.c.tenant_id, changed.c.item_id,
                      cast(func.sum(lines.c.delta), BigInteger).label("delta")
                      ).select_from(both).group_by(
        changed.c.tenant_id, changed.c.item_id).having(func.sum(lines.c.delta) != 0
    ).cte("per_item")
    return select(*_level_columns(changed)).add_cte(logged).add_cte(
        _to_item(per_item, per_item.c.delta))


_SET_ON_HAND_MANY = _build_set_on_hand_many()


async def set_on_hand_many(
    conn: AsyncConnection,
    tenant_id: UUID,
    kind: MovementKind,
    writes: list[tuple[tuple[UUID, UUID], int, int, str | None]],
    why: Why = Why(),
) -> dict[tuple[UUID, UUID], LevelRow]:
    """((item id, location id), new on hand, its delta, reason) per level, each
    level once: the new levels, by key."""
    if not writes:
        return {}
    rows = await conn.execute(_SET_ON_HAND_MANY, {
        "p_tenant_id": tenant_id, "p_count": len(writes), "p_kind": kind.value,
        "p_items": [level[0] for level, _, _, _ in writes],
        "p_locations": [level[1] for level, _, _, _ in writes],
        "p_on_hands": [on_hand for _, on_hand, _, _ in writes],
        "p_deltas": [delta for _, _, delta, _ in writes],
        "p_reasons": [reason for _, _, _, reason in writes],
        "p_idempotency_key": why.idempotency_key, "p_actor": why.actor,
    })
    return {(r.item_id, r.location_id): LevelRow.of(r) for r in rows}


_CREATE_LEVEL = pg_insert(sl).from_select(
    ["tenant_id", "item_id", "location_id", "backorder_limit", "version"],
    select(items.c.tenant_id, items.c.id,
           bindparam("p_location_id", type_=PG_UUID(as_uuid=True)),
           items.c.backorder_limit, literal(0, BigInteger))
    .where(items.c.tenant_id == bindparam("p_tenant_id"), items.c.id == bindparam("p_item_id")),
).on_conflict_do_nothing()


async def create_levels(conn: AsyncConnection, tenant_id: UUID,
                        keys: list[tuple[UUID, UUID]]) -> None:
    """Empty levels (version 0, no ledger row, the item's backorder limit) for
    those of `keys` that do not exist: a preorder's level, or one whose own
    backorder limit is set before any stock arrives."""
    for item_id, location_id in sorted(keys):
        await conn.execute(_CREATE_LEVEL, {"p_tenant_id": tenant_id, "p_item_id": item_id,
                                           "p_location_id": location_id})


_SET_BACKORDER_LIMIT = _returning(update(sl).where(
    *_this_level(),
    sl.c.backordered <= func.coalesce(bindparam("p_limit", type_=BigInteger),
                                      _ITEM_BACKORDER_LIMIT),
).values(
    backorder_limit=func.coalesce(bindparam("p_limit", type_=BigInteger),
                                  _ITEM_BACKORDER_LIMIT),
    backorder_limit_set=bindparam("p_set"),
))


async def set_backorder_limit(conn: AsyncConnection, tenant_id: UUID, item_id: UUID,
                              location_id: UUID, limit: int | None) -> LevelRow | None:
    """A level's own backorder limit (None: its item's again). None, with nothing
    written, when more than the new limit is backordered there (or no level).
    A setting, not a movement: no ledger row, the version stays."""
    row = (await conn.execute(_SET_BACKORDER_LIMIT, {
        "p_tenant_id": tenant_id, "p_item_id": item_id, "p_location_id": location_id,
        "p_limit": limit, "p_set": limit is not None})).first()
    return LevelRow.of(row) if row else None
