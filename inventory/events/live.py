"""One object per process that owns the hub and the change feed; the app
starts it in its lifespan."""
from __future__ import annotations

import asyncio
import contextlib

from ..db import retry
from ..db.changes import ledger_reader
from ..db.engine import Database
from ..observability.tracing import untraced
from .feeds import LedgerFeed
from .hub import Hub


class LiveStock:
    def __init__(self, db: Database, url: str, *, mode: str = "ledger",
                 poll_interval_s: float = 0.05, subscriber_buffer: int = 1000,
                 max_subscriptions: int = 20):
        self.mode = mode  # "ledger", or "off": no change feed runs
        self.reader = ledger_reader(url, poll_interval_s)
        self.hub = Hub(db, capacity=subscriber_buffer, now=self._position,
                       wake=self.reader.wake)
        self.max_subscriptions = max_subscriptions
        self.feed = LedgerFeed(self.reader, self.hub)
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._position_query: asyncio.Future | None = None

    async def _position(self):
        """The reader's position now, for a subscription just registered.
        Subscriptions starting together share one query: a query already under
        way began before this subscription registered, so its position is the
        same or earlier, and an earlier start only lets through more changes."""
        if self._position_query is None or self._position_query.done():
            self._position_query = asyncio.ensure_future(self.reader.start())
        return self.reader.position_of(await asyncio.shield(self._position_query))

    def start(self) -> None:
        if self.mode != "off":
            self._task = asyncio.create_task(self._run())
            self._loop = asyncio.get_running_loop()
            retry.commit_listeners.append(self._committed)

    def _committed(self) -> None:
        """A transaction of this process committed: while anyone subscribes, the
        reader looks for it now instead of at its next poll. (Commits of other
        processes wait for the poll; so do commits on another event loop, e.g.
        of an app that was never stopped.)"""
        if self._loop is asyncio.get_running_loop() and self.hub.tenants():
            self.reader.wake()

    async def _run(self) -> None:
        untraced()  # its polls would be a root trace every 50 ms; observed through stats
        await self.feed.run()

    async def stop(self) -> None:
        if self._committed in retry.commit_listeners:
            retry.commit_listeners.remove(self._committed)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.reader.close()
