"""Reads, catalog writes and reservation/idempotency bookkeeping.

Every query is scoped by tenant_id, which leads every key.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from enum import Enum
from typing import Any, Callable, Iterable
from uuid import UUID

from sqlalchemy import (
    Uuid, and_, any_, bindparam, case, delete, func, literal, or_, select, text, tuple_,
    union_all, update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from .upsert import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import BigInteger, Text

from ..domain.models import (
    ItemView,
    LocationView,
    MovementKind,
    MovementView,
    ReservationLineView,
    ReservationStatus,
    ReservationView,
    StockLevelView,
)
from ..domain.quantities import NAMES, Quantities, available
from ..domain.reasons import Reason
from .driver import DriverStatement
from .tables import (
    idempotency_keys,
    items,
    locations,
    movements,
    reservation_lines,
    reservations,
    stock_levels,
)

sl = stock_levels


def _item(row: Any) -> ItemView:
    return ItemView(row.id, row.sku, row.name, row.reorder_point, row.created_at, row.version,
                    row.archived_at, backorder_limit=row.backorder_limit, is_kit=row.is_kit)


def _location(row: Any) -> LocationView:
    return LocationView(row.id, row.code, row.name, row.created_at, row.archived_at)


def _level(row: Any) -> StockLevelView:
    """From a row (or mapping) of `_LEVELS`, by column name."""
    m = getattr(row, "_mapping", row)
    return StockLevelView(m["item_id"], m["location_id"], m["sku"], m["code"],
                          Quantities.of_row(row), m["version"], m["updated_at"],
                          m["backorder_limit"])


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ---------------------------------------------------------------- catalog

async def resolve(
    conn: AsyncConnection, tenant_id: UUID, skus: Iterable[str], codes: Iterable[str]
) -> tuple[dict[str, UUID], dict[str, UUID]]:
    """Maps skus and location codes to ids in one round trip; unknown ones are absent."""
    items_found, locations_found, _ = await resolve_with_archived(conn, tenant_id, skus, codes)
    return items_found, locations_found


async def resolve_with_archived(
    conn: AsyncConnection, tenant_id: UUID, skus: Iterable[str], codes: Iterable[str]
) -> tuple[dict[str, UUID], dict[str, UUID], set[tuple[str, str]]]:
    """`resolve`, plus ("item", sku) and ("location", code) of those archived,
    and ("kit", sku) of the items that are kits (they hold no stock)."""
    skus, codes = sorted(set(skus)), sorted(set(codes))
    parts = []
    if skus:
        parts.append(
            select(literal("item", Text).label("kind"), items.c.sku.label("key"), items.c.id,
                   items.c.archived_at, items.c.is_kit)
            .where(items.c.tenant_id == tenant_id, items.c.sku.in_(skus))
        )
    if codes:
        parts.append(
            select(literal("location", Text).label("kind"), locations.c.code.label("key"),
                   locations.c.id, locations.c.archived_at, literal(False).label("is_kit"))
            .where(locations.c.tenant_id == tenant_id, locations.c.code.in_(codes))
        )
    found: dict[str, dict[str, UUID]] = {"item": {}, "location": {}}
    archived: set[tuple[str, str]] = set()
    if parts:
        stmt = union_all(*parts) if len(parts) > 1 else parts[0]
        for row in await conn.execute(stmt):
            found[row.kind][row.key] = row.id
            if row.archived_at is not None:
                archived.add((row.kind, row.key))
            if row.is_kit:
                archived.add(("kit", row.key))
    return found["item"], found["location"], archived


async def insert_location(
    conn: AsyncConnection, tenant_id: UUID, code: str, name: str
) -> LocationView | None:
    """None when the code is taken."""
    row = (await conn.execute(
        pg_insert(locations).values(tenant_id=tenant_id, code=code, name=name)
        .on_conflict_do_nothing().returning(*locations.c)
    )).first()
    return _location(row) if row else None


async def insert_item(
    conn: AsyncConnection, tenant_id: UUID, sku: str, name: str, reorder_point: int,
    backorder_limit: int = 0, is_kit: bool = False,
) -> ItemView | None:
    """None when the sku is taken."""
    row = (await conn.execute(
        pg_insert(items).values(
            tenant_id=tenant_id, sku=sku, name=name, reorder_point=reorder_point,
            backorder_limit=backorder_limit, is_kit=is_kit,
        ).on_conflict_do_nothing().returning(*items.c)
    )).first()
    return _item(row) if row else None


async def update_item(
    conn: AsyncConnection, tenant_id: UUID, sku: str, version: int, *,
    name: str | None, reorder_point: int | None, backorder_limit: int | None = None,
) -> ItemView | None:
    """Compare-and-swap: changes the given fields and bumps the version, only if
    the version is still `version`; None when it is not (or there is no such item)."""
    values: dict[str, Any] = {"version": items.c.version + 1}
    if name is not None:
        values["name"] = name
    if reorder_point is not None:
        values["reorder_point"] = reorder_point
    if backorder_limit is not None:
        values["backorder_limit"] = backorder_limit
    row = (await conn.execute(
        update(items).where(items.c.tenant_id == tenant_id, items.c.sku == sku,
                            items.c.version == version)
        .values(**values).returning(*items.c)
    )).first()
    return _item(row) if row else None


async def archive_item(conn: AsyncConnection, tenant_id: UUID, sku: str) -> ItemView | None:
    """Archives the item (a new version) unless it is already; None: no such item."""
    row = (await conn.execute(
        update(items).where(items.c.tenant_id == tenant_id, items.c.sku == sku)
        .values(archived_at=func.coalesce(items.c.archived_at, func.now()),
                version=items.c.version + case((items.c.archived_at.is_(None), 1), else_=0))
        .returning(*items.c)
    )).first()
    return _item(row) if row else None


async def archive_location(
    conn: AsyncConnection, tenant_id: UUID, code: str
) -> LocationView | None:
    """Archives the location unless it is already; None: no such location."""
    row = (await conn.execute(
        update(locations).where(locations.c.tenant_id == tenant_id, locations.c.code == code)
        .values(archived_at=func.coalesce(locations.c.archived_at, func.now()))
        .returning(*locations.c)
    )).first()
    return _location(row) if row else None


async def item_by_sku(conn: AsyncConnection, tenant_id: UUID, sku: str) -> ItemView | None:
    row = (await conn.execute(
        select(items).where(items.c.tenant_id == tenant_id, items.c.sku == sku)
    )).first()
    return _item(row) if row else None


async def items_by_ids(conn: AsyncConnection, tenant_id: UUID, ids: list[UUID]) -> dict[UUID, ItemView]:
    rows = await conn.execute(select(items).where(items.c.tenant_id == tenant_id, items.c.id.in_(ids)))
    return {r.id: _item(r) for r in rows}


async def location_by_code(conn: AsyncConnection, tenant_id: UUID, code: str) -> LocationView | None:
    row = (await conn.execute(
        select(locations).where(locations.c.tenant_id == tenant_id, locations.c.code == code)
    )).first()
    return _location(row) if row else None


# The locations of a page's levels (the DataLoader batch): on the driver, ids as one array.
_LOCATIONS_BY_IDS = DriverStatement(select(
    locations.c.id, locations.c.code, locations.c.name, locations.c.created_at,
    locations.c.archived_at,
).where(locations.c.tenant_id == bindparam("p_tenant"),
        locations.c.id == any_(bindparam("p_ids", type_=ARRAY(Uuid)))))


async def locations_by_ids(
    conn: AsyncConnection, tenant_id: UUID, ids: list[UUID]
) -> dict[UUID, LocationView]:
    rows = await _LOCATIONS_BY_IDS.rows(conn, {"p_tenant": tenant_id, "p_ids": list(ids)})
    return {r[0]: LocationView(*r) for r in rows}


# The columns of an ItemView, in its fields' order (a driver row of them is one).
_ITEM_COLUMNS = (items.c.id, items.c.sku, items.c.name, items.c.reorder_point,
                 items.c.created_at, items.c.version, items.c.archived_at,
                 items.c.backorder_limit, items.c.is_kit)
# One statement per combination of filters given (at most 36), built when first
# used: a page is read once per request, so on the driver (db/driver.py).
_ITEMS_PAGES: dict[tuple, DriverStatement] = {}


def _items_page_statement(after: bool, prefix: bool, low_stock: bool | None,
                          archived: bool | None) -> DriverStatement:
    key = (after, prefix, low_stock, archived)
    found = _ITEMS_PAGES.get(key)
    if found is None:
        stmt = select(*_ITEM_COLUMNS).where(items.c.tenant_id == bindparam("p_tenant"),
                                            *_archived(items, archived))
        if after:
            stmt = stmt.where(items.c.sku > bindparam("p_after"))
        if prefix:
            # Backslash is LIKE's default escape on PostgreSQL and CockroachDB
            # alike (_like_prefix escapes with it); an ESCAPE clause would be
            # PostgreSQL's like_escape(), which the compatibility check refuses.
            stmt = stmt.where(items.c.sku.like(bindparam("p_prefix")))
        if low_stock is not None:
            # Each side is the predicate of its partial index (tables.LOW_STOCK,
            # IN_STOCK): the page reads only items of the wanted kind, in sku order.
            # Kits are left out either way: a kit's `available` column stays 0 (what
            # it has is computed from its components when read: Item.lowStock), so
            # its flag says nothing; the index still serves the page.
            stmt = stmt.where(items.c.low if low_stock else ~items.c.low, ~items.c.is_kit)
        stmt = stmt.order_by(items.c.sku).limit(bindparam("p_limit", type_=BigInteger))
        # With a prefix, planned with its value every time, never prepared: a
        # prepared statement's generic plan cannot bound an index scan by
        # `LIKE $prefix`, so it walked the tenant's skus in order testing each
        # (all of them when fewer than a page match); given the value,
        # PostgreSQL scans the prefix's range of ix_items_tenant_sku_pattern.
        found = _ITEMS_PAGES[key] = DriverStatement(stmt, prepare=False if prefix else None)
    return found


async def items_page(
    conn: AsyncConnection,
    tenant_id: UUID,
    *,
    limit: int,
    after_sku: str | None = None,
    sku_prefix: str | None = None,
    low_stock: bool | None = None,
    archived: bool | None = None,
) -> list[ItemView]:
    """Keyset page ordered by sku. low_stock: total available <= reorder point
    (plain items only: kits are never listed by it)."""
    statement = _items_page_statement(after_sku is not None, bool(sku_prefix), low_stock,
                                      archived)
    rows = await statement.rows(conn, {
        "p_tenant": tenant_id, "p_limit": limit, "p_after": after_sku,
        "p_prefix": _like_prefix(sku_prefix) if sku_prefix else None})
    return [ItemView(*r) for r in rows]


def _archived(table, archived: bool | None) -> list:
    """The condition for archived (True), active (False) or all (None) rows."""
    if archived is None:
        return []
    return [table.c.archived_at.is_not(None) if archived else table.c.archived_at.is_(None)]


async def locations_page(
    conn: AsyncConnection, tenant_id: UUID, *, limit: int, after_code: str | None = None,
    archived: bool | None = None,
) -> list[LocationView]:
    stmt = select(locations).where(locations.c.tenant_id == tenant_id,
                                   *_archived(locations, archived))
    if after_code is not None:
        stmt = stmt.where(locations.c.code > after_code)
    rows = await conn.execute(stmt.order_by(locations.c.code).limit(limit))
    return [_location(r) for r in rows]


# Levels with their sku and location code (and tenant, for lookups across tenants).
_LEVELS = (
    select(
        sl.c.tenant_id, sl.c.item_id, sl.c.location_id, items.c.sku, locations.c.code,
        *(sl.c[n] for n in NAMES), sl.c.version, sl.c.updated_at, sl.c.backorder_limit,
    )
    .join(items, and_(items.c.tenant_id == sl.c.tenant_id, items.c.id == sl.c.item_id))
    .join(locations, and_(locations.c.tenant_id == sl.c.tenant_id,
                          locations.c.id == sl.c.location_id))
)


def _levels_select(tenant_id: UUID):
    return _LEVELS.where(sl.c.tenant_id == tenant_id)


# The levels of a page's items: once per page, so on the driver (db/driver.py),
# with the ids as one array (one text, one prepared statement, for any page).
_LEVELS_OF_ITEMS = DriverStatement(_LEVELS.where(
    sl.c.tenant_id == bindparam("p_tenant"),
    sl.c.item_id == any_(bindparam("p_items", type_=ARRAY(Uuid))),
).order_by(locations.c.code))
# Where a row of `_LEVELS` has each column (its states are consecutive, in NAMES order).
_AT = {column.name: i for i, column in enumerate(_LEVELS.selected_columns)}
_STATES = slice(_AT[NAMES[0]], _AT[NAMES[0]] + len(NAMES))
assert [c.name for c in _LEVELS.selected_columns][_STATES] == list(NAMES)


_VERSION, _UPDATED_AT, _BACKORDER_LIMIT = (
    _AT["version"], _AT["updated_at"], _AT["backorder_limit"])


def _level_of_tuple(r: tuple, new=object.__new__, of_values=Quantities.of_values
                    ) -> StockLevelView:
    """From a driver row of `_LEVELS`, by position. A page reads hundreds: its
    fields are set in one step, not one frozen-dataclass `__setattr__` each
    (the same object as `StockLevelView(...)` makes)."""
    made = new(StockLevelView)
    made.__dict__.update(item_id=r[1], location_id=r[2], sku=r[3], location_code=r[4],
                         quantities=of_values(r[_STATES]), version=r[_VERSION],
                         updated_at=r[_UPDATED_AT], backorder_limit=r[_BACKORDER_LIMIT])
    return made


async def levels_for_items(
    conn: AsyncConnection, tenant_id: UUID, item_ids: list[UUID]
) -> dict[UUID, list[StockLevelView]]:
    """All levels of many items in one statement (the DataLoader batch)."""
    rows = await _LEVELS_OF_ITEMS.rows(conn, {"p_tenant": tenant_id, "p_items": list(item_ids)})
    # Grouped by sku (one per item id in a statement's rows): a string hashes
    # once, a uuid.UUID in Python code on every lookup.
    by_sku: dict[str, list[StockLevelView]] = {}
    item_of: dict[str, UUID] = {}
    for r in rows:
        levels = by_sku.get(r[3])
        if levels is None:
            levels = by_sku[r[3]] = []
            item_of[r[3]] = r[1]
        levels.append(_level_of_tuple(r))
    return {item_of[sku]: levels for sku, levels in by_sku.items()}


async def levels_by_keys(
    conn: AsyncConnection, tenant_id: UUID, keys: list[tuple[UUID, UUID]]
) -> dict[tuple[UUID, UUID], StockLevelView]:
    rows = await conn.execute(
        _levels_select(tenant_id).where(tuple_(sl.c.item_id, sl.c.location_id).in_(keys))
    )
    return {(r.item_id, r.location_id): _level(r) for r in rows}


# Built once, values bound per call: a statement object built per request costs
# SQLAlchemy a cache-key walk of the whole tree on every execution
# (docs/performance.md, item 11); a reused one memoizes it.
_LEVELS_BY_CODES = _LEVELS.where(
    tuple_(items.c.tenant_id, items.c.sku).in_(bindparam("p_items", expanding=True)),
    tuple_(locations.c.tenant_id, locations.c.code).in_(bindparam("p_locations", expanding=True)),
)
# One level, the common case when requests do not overlap: sent on the driver
# (db/driver.py). Its text never changes, so the database plans it once
# (prepared, with a generic plan of three index lookups).
_LEVEL_BY_CODE = DriverStatement(_LEVELS.where(
    sl.c.tenant_id == bindparam("p_tenant"), items.c.sku == bindparam("p_sku"),
    locations.c.code == bindparam("p_code"),
))


async def levels_by_codes(
    conn: AsyncConnection, wanted: list[tuple[UUID, str, str]]
) -> dict[tuple[UUID, str, str], StockLevelView]:
    """Several (tenant, sku, location code) levels, of any tenants, in one statement.
    (The statement filters items and locations apart, so it may return other
    combinations of them too; only the wanted ones are kept.)"""
    if len(wanted) == 1:
        (tenant, sku, code), = wanted
        rows = await _LEVEL_BY_CODE.mappings(
            conn, {"p_tenant": tenant, "p_sku": sku, "p_code": code})
        return {(tenant, sku, code): _level(row) for row in rows}
    rows = await conn.execute(_LEVELS_BY_CODES, {
        "p_items": sorted({(t, sku) for t, sku, _ in wanted}),
        "p_locations": sorted({(t, code) for t, _, code in wanted}),
    })
    keep = set(wanted)
    return {(r.tenant_id, r.sku, r.code): _level(r) for r in rows
            if (r.tenant_id, r.sku, r.code) in keep}


# ---------------------------------------------------------------- reservations

async def reservations_by_ids(
    conn: AsyncConnection, tenant_id: UUID, ids: list[UUID]
) -> dict[UUID, ReservationView]:
    heads = (await conn.execute(
        select(reservations).where(reservations.c.tenant_id == tenant_id,
                                   reservations.c.id.in_(ids))
    )).all()
    return {r.id: r for r in await _with_lines(conn, tenant_id, heads)}


async def reservations_page(
    conn: AsyncConnection,
    tenant_id: UUID,
    *,
    limit: int,
    before: tuple[datetime, UUID] | None = None,
    status: ReservationStatus | None = None,
    reference: str | None = None,
    expires_before: datetime | None = None,
) -> list[ReservationView]:
    """Newest first, keyset-paginated on (created_at, id), with their lines."""
    r = reservations
    heads = (await conn.execute(newest_first(
        select(r).where(r.c.tenant_id == tenant_id), r, before, limit,
        status=status, reference=reference, expires_at=expires_before))).all()
    return await _with_lines(conn, tenant_id, heads)


def newest_first(stmt, table, before: tuple[datetime, UUID] | None, limit: int, *,
                 status: Enum | None = None, reference: str | None = None,
                 **earlier_than: datetime | None):
    """`stmt` as a newest-first page on (created_at, id) of `table`, after the
    row `before` (the keyset of the previous page's last row). The filters of
    the pages of reservations, inbound shipments and transfers, each left out
    when None: the row's `status` and `reference`, and each time column named
    in `earlier_than` (`expires_at=...`) before the time given."""
    if status is not None:
        stmt = stmt.where(table.c.status == status.value)
    if reference is not None:
        stmt = stmt.where(table.c.reference == reference)
    for column, at in earlier_than.items():
        if at is not None:
            stmt = stmt.where(table.c[column] < at)
    if before is not None:
        created, row_id = before
        stmt = stmt.where(or_(table.c.created_at < created,
                              and_(table.c.created_at == created, table.c.id < row_id)))
    return stmt.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)


async def children_by_head(conn: AsyncConnection, stmt, parent_id, heads: list[Any],
                           make: Callable[[Any], Any]) -> dict[UUID, list[Any]]:
    """The children of the rows `heads` (a reservation's or a shipment's
    lines, a channel's locations), read by ONE statement: `stmt`'s rows whose
    column `parent_id` names one of the heads, each made by `make` and listed
    under its head's id in the statement's order. Nothing is read for no heads."""
    found: dict[UUID, list[Any]] = defaultdict(list)
    if heads:
        rows = await conn.execute(stmt.where(parent_id.in_([h.id for h in heads])))
        for r in rows:
            found[getattr(r, parent_id.name)].append(make(r))
    return found


def with_names(stmt, child):
    """`stmt` joined to the item and the location that the row of `child` (a
    table with tenant_id, item_id and location_id) names: their sku and code."""
    return (stmt.join(items, and_(items.c.tenant_id == child.c.tenant_id,
                                  items.c.id == child.c.item_id))
            .join(locations, and_(locations.c.tenant_id == child.c.tenant_id,
                                  locations.c.id == child.c.location_id)))


async def _with_lines(conn: AsyncConnection, tenant_id: UUID,
                      heads: list[Any]) -> list[ReservationView]:
    """Reservation rows with their lines (one statement for all), in the given order."""
    rl = reservation_lines
    kit = items.alias("kit")
    lines = await children_by_head(
        conn,
        with_names(select(rl.c.reservation_id, rl.c.item_id, rl.c.location_id, items.c.sku,
                          locations.c.code, rl.c.quantity, rl.c.line_no, rl.c.committed,
                          rl.c.released, rl.c.backordered, rl.c.kit_item_id,
                          kit.c.sku.label("kit_sku"), rl.c.kit_line, rl.c.per_kit), rl)
        .outerjoin(kit, and_(kit.c.tenant_id == rl.c.tenant_id, kit.c.id == rl.c.kit_item_id))
        .where(rl.c.tenant_id == tenant_id)
        .order_by(rl.c.reservation_id, rl.c.line_no),
        rl.c.reservation_id, heads,
        lambda r: ReservationLineView(r.item_id, r.location_id, r.sku, r.code, r.quantity,
                                      r.line_no, r.committed, r.released, r.backordered,
                                      r.kit_item_id, r.kit_sku, r.kit_line, r.per_kit))
    return [
        ReservationView(
            h.id, ReservationStatus(h.status), h.reference, h.expires_at, h.created_at,
            tuple(lines[h.id]),
        )
        for h in heads
    ]


# ---------------------------------------------------------------- backorders

async def item_backorder_limits(conn: AsyncConnection, tenant_id: UUID,
                                item_ids: list[UUID]) -> dict[UUID, int]:
    """The items' default backorder limits (for levels not yet made)."""
    rows = await conn.execute(select(items.c.id, items.c.backorder_limit).where(
        items.c.tenant_id == tenant_id, items.c.id.in_(item_ids)))
    return {r.id: r.backorder_limit for r in rows}


async def waiting_lines(conn: AsyncConnection, tenant_id: UUID, item_id: UUID,
                        location_id: UUID) -> list[Any]:
    """The ACTIVE reservation lines of a level with backordered units, in
    arrival order (reservation created_at, id, line): reservation_id, line_no,
    backordered, reference."""
    rl, r = reservation_lines, reservations
    return (await conn.execute(
        select(rl.c.reservation_id, rl.c.line_no, rl.c.backordered, r.c.reference)
        .join(r, and_(r.c.tenant_id == rl.c.tenant_id, r.c.id == rl.c.reservation_id))
        .where(rl.c.tenant_id == tenant_id, rl.c.item_id == item_id,
               rl.c.location_id == location_id, rl.c.backordered > 0,
               r.c.status == ReservationStatus.ACTIVE.value)
        .order_by(r.c.created_at, r.c.id, rl.c.line_no))).all()


async def fill_line(conn: AsyncConnection, tenant_id: UUID, reservation_id: UUID,
                    line_no: int, quantity: int) -> None:
    rl = reservation_lines
    await conn.execute(update(rl).where(
        rl.c.tenant_id == tenant_id, rl.c.reservation_id == reservation_id,
        rl.c.line_no == line_no, rl.c.backordered >= quantity,
    ).values(backordered=rl.c.backordered - quantity))


async def set_item_backorder_limit(conn: AsyncConnection, tenant_id: UUID, item_id: UUID,
                                   limit: int) -> bool:
    """An item's default backorder limit, carried to every level of it that
    does not set its own (call it in the transaction that changes
    items.backorder_limit). False, with nothing written, when one of those
    levels has more than `limit` backordered."""
    inherits = and_(sl.c.tenant_id == tenant_id, sl.c.item_id == item_id,
                    sl.c.backorder_limit_set.is_(False))
    over = (await conn.execute(select(func.count()).select_from(sl).where(
        inherits, sl.c.backordered > limit))).scalar_one()
    if over:
        return False
    await conn.execute(update(sl).where(inherits).values(backorder_limit=limit))
    return True


async def finish_reservation(
    conn: AsyncConnection,
    tenant_id: UUID,
    reservation_id: UUID,
    to_status: ReservationStatus,
    *,
    only_if_expired: bool = False,
    only_if_live: bool = False,
) -> bool:
    """Moves an ACTIVE reservation to a final status. False when it was not ACTIVE
    (or, with the flags, when its expiry was not / was already past)."""
    r = reservations
    stmt = update(r).where(
        r.c.tenant_id == tenant_id, r.c.id == reservation_id,
        r.c.status == ReservationStatus.ACTIVE.value,
    )
    if only_if_expired:
        stmt = stmt.where(r.c.expires_at <= func.now())
    if only_if_live:
        stmt = stmt.where(r.c.expires_at > func.now())
    row = (await conn.execute(
        stmt.values(status=to_status.value, updated_at=func.now()).returning(r.c.id)
    )).first()
    return row is not None


async def take_from_lines(conn: AsyncConnection, tenant_id: UUID, reservation_id: UUID,
                          column: str, parts: list[tuple[int, int, int]]) -> None:
    """Adds each (line number, quantity, of it backordered) to the lines'
    `column` ("committed" or "released") and takes the backordered part off the
    line's `backordered`, guarded so a line never gives more than it holds. The
    caller holds the reservation's row (its status update) and checked the parts."""
    rl = reservation_lines
    taken = rl.c[column]
    await conn.execute(
        update(rl).where(
            rl.c.tenant_id == bindparam("p_tenant_id"),
            rl.c.reservation_id == bindparam("p_reservation_id"),
            rl.c.line_no == bindparam("p_line_no"),
            rl.c.quantity - rl.c.committed - rl.c.released >= bindparam("p_quantity"),
            rl.c.backordered >= bindparam("p_backordered"))
        .values({column: taken + bindparam("p_quantity"),
                 "backordered": rl.c.backordered - bindparam("p_backordered")}),
        [{"p_tenant_id": tenant_id, "p_reservation_id": reservation_id, "p_line_no": line_no,
          "p_quantity": quantity, "p_backordered": backordered}
         for line_no, quantity, backordered in parts])


async def extend_reservation(conn: AsyncConnection, tenant_id: UUID, reservation_id: UUID,
                             ttl_seconds: int) -> bool:
    """An ACTIVE reservation not yet past its expiry now expires `ttl_seconds`
    from now; False (nothing written) for any other."""
    r = reservations
    row = (await conn.execute(
        update(r).where(r.c.tenant_id == tenant_id, r.c.id == reservation_id,
                        r.c.status == ReservationStatus.ACTIVE.value,
                        r.c.expires_at > func.now())
        .values(expires_at=func.now() + literal(ttl_seconds, BigInteger)
                * text("INTERVAL '1 second'"),
                updated_at=func.now()).returning(r.c.id))).first()
    return row is not None


async def expired_reservations(conn: AsyncConnection, limit: int) -> list[tuple[UUID, UUID]]:
    """(tenant_id, id) of ACTIVE reservations past expiry, oldest first, all tenants."""
    r = reservations
    rows = await conn.execute(
        select(r.c.tenant_id, r.c.id)
        .where(r.c.status == ReservationStatus.ACTIVE.value, r.c.expires_at <= func.now())
        .order_by(r.c.expires_at)
        .limit(limit)
    )
    return [(row.tenant_id, row.id) for row in rows]


async def active_reservation_counts(conn: AsyncConnection) -> tuple[int, int, float]:
    """All tenants (for the metrics): ACTIVE reservations, those past their
    expiry (the sweeper's backlog), and how long the oldest of those has waited
    in seconds (0: none). Served by the partial index on ACTIVE rows."""
    active, overdue, lag = (await conn.execute(text(
        "SELECT count(*), count(*) FILTER (WHERE expires_at <= now()), "
        "EXTRACT(EPOCH FROM now() - min(expires_at) FILTER (WHERE expires_at <= now())) "
        "FROM reservations WHERE status = 'ACTIVE'"))).one()
    return active, overdue, float(lag or 0)


async def finished_reservation_counts(conn: AsyncConnection) -> dict[str, int]:
    """All tenants (for the metrics): reservations by status other than ACTIVE,
    each status present; a scan, so callers run it rarely."""
    counts = {"COMMITTED": 0, "RELEASED": 0, "EXPIRED": 0}
    counts.update({status: n for status, n in (await conn.execute(text(
        "SELECT status, count(*) FROM reservations WHERE status <> 'ACTIVE' "
        "GROUP BY status"))).all()})
    return counts


# ---------------------------------------------------------------- ledger reads

async def movements_page(
    conn: AsyncConnection,
    tenant_id: UUID,
    *,
    limit: int,
    item_id: UUID | None = None,
    location_id: UUID | None = None,
    before: tuple[datetime, UUID] | None = None,
    movement_id: UUID | None = None,
    kinds: Iterable[MovementKind] | None = None,
    reason_codes: Iterable[Reason] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> list[MovementView]:
    """Newest first, keyset-paginated on (created_at, id); optionally only the
    given kinds or reason codes, and only rows created strictly between the two
    times."""
    m = movements
    stmt = (
        select(m, items.c.sku, locations.c.code)
        .join(items, and_(items.c.tenant_id == m.c.tenant_id, items.c.id == m.c.item_id))
        .join(locations, and_(locations.c.tenant_id == m.c.tenant_id,
                              locations.c.id == m.c.location_id))
        .where(m.c.tenant_id == tenant_id)
    )
    if item_id is not None:
        stmt = stmt.where(m.c.item_id == item_id)
    if location_id is not None:
        stmt = stmt.where(m.c.location_id == location_id)
    if movement_id is not None:
        stmt = stmt.where(m.c.id == movement_id)
    if kinds is not None:
        stmt = stmt.where(m.c.kind.in_(sorted(k.value for k in kinds)))
    if reason_codes is not None:
        stmt = stmt.where(m.c.reason_code.in_(sorted(r.value for r in reason_codes)))
    if created_after is not None:
        stmt = stmt.where(m.c.created_at > created_after)
    if created_before is not None:
        stmt = stmt.where(m.c.created_at < created_before)
    rows = await conn.execute(newest_first(stmt, m, before, limit))
    return [
        MovementView(
            r.id, r.item_id, r.location_id, r.sku, r.code, MovementKind(r.kind),
            Quantities.of_row(r, "_delta"), Quantities.of_row(r, "_after"), r.version, r.reason,
            r.reference, r.reservation_id, r.created_at, r.actor,
            Reason(r.reason_code) if r.reason_code else None, r.shipment_id, r.kit_item_id,
        )
        for r in rows
    ]


# ---------------------------------------------------------------- idempotency

async def find_idempotency_records(
    conn: AsyncConnection, tenant_id: UUID, keys: list[str]
) -> dict[str, tuple[str, str, Any]]:
    """key -> (operation, request_hash, stored result) for the keys already used."""
    if not keys:  # a batch without keys asks nothing (no round trip)
        return {}
    k = idempotency_keys
    rows = await conn.execute(
        select(k.c.key, k.c.operation, k.c.request_hash, k.c.result)
        .where(k.c.tenant_id == tenant_id, k.c.key.in_(keys))
    )
    return {r.key: (r.operation, r.request_hash, r.result) for r in rows}


async def claim_idempotency_keys(
    conn: AsyncConnection, tenant_id: UUID, records: list[tuple[str, str, str]],
) -> set[str]:
    """Inserts the records (key, operation, request_hash) of distinct keys
    before the work they guard (their results come later, from
    `store_idempotency_results`, in the same transaction); returns the keys
    claimed, without those already used. Writing first, instead of reading
    first, keeps SERIALIZABLE from seeing a conflict between concurrent
    requests whose keys share an index page (docs/performance.md). A key that
    a concurrent transaction committed meanwhile fails the insert with 40001,
    and the re-run finds it."""
    if not records:
        return set()
    k = idempotency_keys
    rows = await conn.execute(
        pg_insert(k).values([
            dict(tenant_id=tenant_id, key=key, operation=operation, request_hash=request_hash,
                 result=None)
            for key, operation, request_hash in records])
        .on_conflict_do_nothing().returning(k.c.key)
    )
    return set(rows.scalars())


_STORE_RESULT = (
    update(idempotency_keys)
    .where(idempotency_keys.c.tenant_id == bindparam("p_tenant_id"),
           idempotency_keys.c.key == bindparam("p_key"))
    .values(result=bindparam("p_result", type_=idempotency_keys.c.result.type))
)


async def store_idempotency_results(conn: AsyncConnection, tenant_id: UUID,
                                    results: list[tuple[str, Any]]) -> None:
    """The (key, result) answers of keys this transaction claimed."""
    if results:
        await conn.execute(_STORE_RESULT, [
            {"p_tenant_id": tenant_id, "p_key": key, "p_result": result}
            for key, result in results])


async def release_idempotency_keys(conn: AsyncConnection, tenant_id: UUID,
                                   keys: list[str]) -> None:
    """Deletes the records of keys this transaction claimed and leaves unused."""
    if keys:
        k = idempotency_keys
        await conn.execute(delete(k).where(k.c.tenant_id == tenant_id, k.c.key.in_(keys)))
