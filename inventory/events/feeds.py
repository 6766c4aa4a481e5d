"""The change feed: brings committed changes from the ledger to this process's hub.

One `LedgerFeed` per process reads with a `LedgerReader` (inventory/db/changes.py)
from a cursor. When its connection drops (a restart, a failover to a new
primary) it waits, reconnects through the pool and resumes from its cursor, so
nothing committed meanwhile is missed; what it reads twice the hub drops by
(level, version).
"""
from __future__ import annotations

import asyncio
import logging

from ..db.changes import LedgerReader
from .hub import Hub

log = logging.getLogger(__name__)


class LedgerFeed:
    def __init__(self, reader: LedgerReader, hub: Hub):
        self.reader, self.hub = reader, hub
        self.connected = False
        self.cursor: str | None = None

    async def run(self) -> None:
        """Runs until cancelled, reconnecting by itself."""
        floor: str | None = None
        delay = 0.1
        while True:
            try:
                if floor is None:
                    floor = self.cursor = await self.reader.start()
                async for batch in self.reader.batches(self.cursor, self.hub.tenants):
                    if not self.connected:
                        self.connected, delay = True, 0.1
                    if batch.changes:
                        await self.hub.deliver(batch.changes)
                    self.cursor = batch.cursor
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep reading through database outages
                self.connected = False
                log.warning("change feed lost its connection (%s); resuming from its cursor "
                            "in %.1fs", error, delay)
                if self.cursor is not None:
                    self.cursor = self.reader.resume_from(self.cursor, floor)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
