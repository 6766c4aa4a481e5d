"""The ledger's upserts are compiled once and then served from SQLAlchemy's
statement cache: the `sqlalchemy.engine` INFO log says "[cached since ...]"
for the second execution of a statement, not "[generated in ...]" (compiled
for this execution) or "[no key]" (never cacheable: compiled every time).
postgresql.insert(...).on_conflict_* statements have no cache key unless
built with inventory/db/upsert.py."""
from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from inventory.db import ledger
from inventory.db.engine import normalize_url
from inventory.domain.models import MovementKind


def _compile_notes(records, marker: str) -> list[str]:
    """The "[generated in ...]" / "[cached since ...]" / "[no key]" note logged
    after each statement whose text contains `marker`."""
    messages = [r.getMessage() for r in records if r.name.startswith("sqlalchemy.engine")]
    return [after.split("]")[0] + "]" for before, after in zip(messages, messages[1:])
            if marker in before and after.startswith("[")]


async def test_the_ledger_upserts_are_cached(database_url, api, caplog):
    sku, code = await api.item(), await api.location()
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    engine = create_async_engine(normalize_url(database_url))
    try:
        async with engine.connect() as conn:
            tenant_id, item_id = (await conn.execute(
                text("SELECT tenant_id, id FROM items WHERE sku = :sku"), {"sku": sku})).one()
            location_id = (await conn.execute(
                text("SELECT id FROM locations WHERE tenant_id = :t AND code = :c"),
                {"t": tenant_id, "c": code})).scalar_one()
            for _ in range(2):
                await ledger.add_on_hand(conn, tenant_id, item_id, location_id,
                                         MovementKind.RECEIVE, 5)
                await ledger.create_levels(conn, tenant_id, [(item_id, location_id)])
            await conn.rollback()  # nothing kept: only the compilation is under test
    finally:
        await engine.dispose()
    upsert = _compile_notes(caplog.records, "DO UPDATE SET on_hand = (stock_levels.on_hand")
    create = _compile_notes(caplog.records, "ON CONFLICT DO NOTHING")
    assert len(upsert) == 2 and len(create) == 2, caplog.text
    assert upsert[1].startswith("[cached since"), upsert
    assert create[1].startswith("[cached since"), create
