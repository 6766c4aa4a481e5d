"""Bulk demo/benchmark data. Stock is written with its ledger rows (RECEIVE,
version 1) so a seeded database satisfies every invariant from the start.
Re-running is safe: existing items, locations and levels are left as they are."""
from __future__ import annotations

import random
import sys
from typing import Callable
from uuid import UUID

from sqlalchemy import Connection, cast, column, func, insert, literal, select, update, values
from sqlalchemy.types import BigInteger, Text
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from ..domain.quantities import NAMES
from .tables import items, locations, movements, stock_levels
from .upsert import insert as pg_insert

Progress = Callable[[str, int, int], None]
BATCH = 1000


def stderr_progress(what: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r  {what:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def seed(
    conn_factory: Callable[[], Connection],
    tenant_id: UUID,
    n_items: int,
    n_locations: int,
    *,
    progress: Progress = stderr_progress,
    rng: random.Random | None = None,
) -> dict[str, int]:
    rng = rng or random.Random(42)
    codes = [f"WH-{i:02d}" for i in range(1, n_locations + 1)]
    skus = [f"SKU-{i:06d}" for i in range(1, n_items + 1)]
    with conn_factory() as conn, conn.begin():
        conn.execute(
            pg_insert(locations).on_conflict_do_nothing(),
            [dict(tenant_id=tenant_id, code=c, name=f"Warehouse {c[3:]}") for c in codes],
        )
        location_ids = dict(conn.execute(
            select(locations.c.code, locations.c.id).where(
                locations.c.tenant_id == tenant_id, locations.c.code.in_(codes))
        ).all())
    progress("locations", n_locations, n_locations)
    levels_written = 0
    for start in range(0, n_items, BATCH):
        batch = skus[start:start + BATCH]
        with conn_factory() as conn, conn.begin():
            conn.execute(
                pg_insert(items).on_conflict_do_nothing(),
                [dict(tenant_id=tenant_id, sku=s, name=f"Demo item {s[4:]}",
                      reorder_point=rng.choice([0, 5, 10, 20])) for s in batch],
            )
            item_ids = conn.execute(
                select(items.c.sku, items.c.id).where(
                    items.c.tenant_id == tenant_id, items.c.sku.in_(batch))
            ).all()
            rows = [
                (item_id, location_ids[c], rng.randint(0, 200))
                for _, item_id in item_ids for c in codes
            ]
            levels_written += _insert_levels(conn, tenant_id, rows)
        progress("items", min(start + BATCH, n_items), n_items)
    with conn_factory() as conn:
        refresh_statistics(conn)
    return {"items": n_items, "locations": n_locations, "levels_written": levels_written}


BULK_TABLES = ("items", "locations", "stock_levels", "movements")


def refresh_statistics(conn: Connection, tables: tuple[str, ...] = BULK_TABLES) -> None:
    """ANALYZE the tables a bulk load wrote, at once: a plan chosen from the
    statistics of a (nearly) empty table, a sequential scan say, stays until
    autovacuum's next look (docs/reliability.md, "A new database under a
    sudden write load"). Every command that loads in bulk ends with this.
    Each in autocommit (CockroachDB runs `ANALYZE` as CREATE STATISTICS, a job
    of its own, not inside a transaction)."""
    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    for table in tables:
        conn.exec_driver_sql(f"ANALYZE {table}")


def _insert_levels(conn: Connection, tenant_id: UUID, rows: list[tuple[UUID, UUID, int]]) -> int:
    """New levels and their RECEIVE ledger rows in one statement; existing levels untouched."""
    if not rows:
        return 0
    source = values(
        column("item_id", PG_UUID(as_uuid=True)),
        column("location_id", PG_UUID(as_uuid=True)),
        column("qty", BigInteger),
        name="source",
    ).data(rows)
    created = (
        pg_insert(stock_levels)
        .from_select(
            ["tenant_id", "item_id", "location_id", "on_hand", "version"],
            select(literal(tenant_id, PG_UUID(as_uuid=True)), source.c.item_id,
                   source.c.location_id, source.c.qty, literal(1, BigInteger)),
        )
        .on_conflict_do_nothing()
        .returning(stock_levels.c.item_id, stock_levels.c.location_id, stock_levels.c.on_hand)
        .cte("created")
    )
    # Every other state starts at 0 (the columns' defaults): only on hand is named.
    row = {
        "tenant_id": literal(tenant_id, PG_UUID(as_uuid=True)), "item_id": created.c.item_id,
        "location_id": created.c.location_id, "kind": literal("RECEIVE", Text),
        **{f"{n}_{part}": created.c.on_hand if n == "on_hand" else literal(0, BigInteger)
           for part in ("delta", "after") for n in NAMES},
        "version": literal(1, BigInteger), "reason": literal("seed", Text),
    }
    log = insert(movements).from_select(
        list(row), select(*(expr.label(name) for name, expr in row.items())),
    ).returning(movements.c.id)
    # The items' available (tables.items): what their new levels hold, per item.
    per_item = select(created.c.item_id, cast(func.sum(created.c.on_hand), BigInteger)
                      .label("qty")).group_by(created.c.item_id).cte("per_item")
    totals = update(items).where(
        items.c.tenant_id == tenant_id, items.c.id == per_item.c.item_id,
    ).values(available=items.c.available + per_item.c.qty).cte("totals")
    return len(conn.execute(log.add_cte(created).add_cte(totals)).all())


def has_data(conn: Connection, tenant_id: UUID) -> bool:
    return conn.execute(
        select(items.c.id).where(items.c.tenant_id == tenant_id).limit(1)
    ).first() is not None
