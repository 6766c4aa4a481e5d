"""Replica connections for reads that accept bounded staleness."""
from __future__ import annotations

import logging

from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .dialect import staleness_sql

log = logging.getLogger(__name__)


async def fresh_connection(engine: AsyncEngine, max_staleness_ms: int
                           ) -> tuple[AsyncConnection, bool, float] | None:
    """(connection, is a replica, staleness in ms) when the node the replica pool
    connected to has data at most `max_staleness_ms` old; else None (the caller
    reads from the leader). The staleness is measured on the same connection
    that will serve the read: replay only moves forward, so the read is at
    least that fresh."""
    try:
        conn = await engine.connect()
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError) as error:
        log.debug("no replica connection: %s", error)
        return None
    try:
        is_replica, staleness_ms = (await conn.execute(
            text(staleness_sql(engine.dialect)))).one()
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DBAPIError, OSError) as error:
        log.debug("replica staleness unknown: %s", error)
        await conn.close()
        return None
    staleness_ms = float(staleness_ms)
    if staleness_ms > max_staleness_ms:
        await conn.close()
        return None
    return conn, bool(is_replica), staleness_ms
