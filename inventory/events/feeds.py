"""Change feeds: how committed changes reach this process's hub.

Both feeds deliver at-least-once; the hub's per-level version check makes
delivery to subscribers exactly-once and in order.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Protocol

import psycopg

from ..db import live
from ..db.changes import CHANNEL, decode
from ..db.engine import Database, libpq_conninfo
from .hub import Hub

log = logging.getLogger(__name__)
# Rows of transactions that started shortly before a tenant's first subscriber
# joined may have committed after it: deliver those too.
JOIN_GRACE = timedelta(seconds=1)
LISTENER_NAME = "inventory-change-listener"  # application_name, seen in pg_stat_activity


class ChangeFeed(Protocol):
    connected: bool

    async def run(self) -> None:
        """Runs until cancelled, reconnecting by itself."""


class PollFeed:
    """Polls the ledger for rows created since a cursor (database time).

    A row's created_at is its transaction's *start*; a transaction committing
    later than `overlap` after it started would be missed, so every poll re-reads
    the last `overlap` of ledger (the hub drops what it already dispatched)."""

    PAGE = 5000

    def __init__(self, db: Database, hub: Hub, interval_s: float = 0.2,
                 overlap_s: float = 5.0):
        self.db, self.hub = db, hub
        self.interval_s = interval_s
        self.overlap = timedelta(seconds=overlap_s)
        self.connected = False
        self.polls = 0
        self._joined: dict = {}  # tenant -> when it first had subscribers (db time)

    async def catch_up(self, since: datetime, from_join: bool = True) -> datetime:
        """Delivers every ledger row from `since` on (with from_join, none from
        before the tenant's first subscriber joined); returns the new cursor."""
        while True:
            async with self.db.reader.connect() as conn:
                now = await live.db_now(conn)
                tenants = self._tenants(now)
                rows = (await live.changes_since(conn, tenants, since, self.PAGE)
                        if tenants else [])
            await self.hub.deliver(
                [c for c in rows if c.at >= self._joined[c.tenant_id] - JOIN_GRACE]
                if from_join else rows)
            if len(rows) < self.PAGE:
                return now
            since = rows[-1].at

    def _tenants(self, now: datetime) -> list:
        """Tenants with subscribers. A tenant's history from before its first
        subscriber joined is not delivered as live events (the overlap window
        would otherwise replay up to `overlap` of it); clients that want it
        pass `since`."""
        tenants = self.hub.tenants()
        for tenant in tenants:
            self._joined.setdefault(tenant, now)
        for tenant in set(self._joined) - set(tenants):
            del self._joined[tenant]
        return tenants

    async def run(self) -> None:
        cursor: datetime | None = None
        while True:
            try:
                if cursor is None:
                    async with self.db.reader.connect() as conn:
                        cursor = await live.db_now(conn)
                cursor = await self.catch_up(cursor - self.overlap)
                self.connected = True
                self.polls += 1
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep polling through database outages
                self.connected = False
                log.warning("change poll failed, retrying: %s", error)
            await asyncio.sleep(self.interval_s)


def libpq_url(url: str) -> str:
    return libpq_conninfo(url)  # every host of a multi-host URL: it follows the leader


class NotifyFeed:
    """LISTENs on one dedicated connection. After a drop it reconnects with
    backoff and, once listening again, catches up from the ledger from just
    before the last change it saw, so nothing committed meanwhile is missed."""

    def __init__(self, url: str, hub: Hub, catch_up: PollFeed):
        self.url = libpq_url(url)
        self.hub = hub
        self.poller = catch_up
        self.connected = False
        self.reconnects = 0

    async def run(self) -> None:
        cursor: datetime | None = None
        delay = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name=LISTENER_NAME)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    now = (await (await conn.execute("SELECT now()")).fetchone())[0]
                    if cursor is not None:
                        # Listening again: anything committed from here on arrives
                        # as a notification; fetch what came while we were away.
                        self.reconnects += 1
                        await self.poller.catch_up(cursor - self.poller.overlap, from_join=False)
                        log.info("change listener reconnected and caught up")
                    cursor = now
                    self.connected, delay = True, 0.1
                    async for notification in conn.notifies():
                        changes = decode(notification.payload)
                        await self.hub.deliver(changes)
                        cursor = max(cursor, max(c.at for c in changes))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.connected = False
                log.warning("change listener lost its connection (%s); reconnecting in %.1fs",
                            error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
