"""One object per process that owns the hub and the change feed; the app
starts it in its lifespan."""
from __future__ import annotations

import asyncio
import contextlib

from ..db import retry
from ..db.changes import ledger_reader
from ..db.engine import Database
from .feeds import FeedThread
from .hub import Hub


class LiveStock:
    def __init__(self, db: Database, url: str, *, mode: str = "ledger",
                 poll_interval_s: float = 0.05, subscriber_buffer: int = 1000,
                 max_subscriptions: int = 20):
        self.mode = mode  # "ledger", or "off": no change feed runs
        # Positions for subscriptions starting, on this loop; the feed reads with
        # a reader of its own, in its own thread.
        self.reader = ledger_reader(url, poll_interval_s)
        self.feed = FeedThread(lambda: ledger_reader(url, poll_interval_s), None)
        self.hub = Hub(db, capacity=subscriber_buffer, now=self._position,
                       wake=self.feed.wake)
        self.feed.hub = self.hub
        self.max_subscriptions = max_subscriptions
        self._started = False
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
            self.feed.start()
            self._started = True
            self._loop = asyncio.get_running_loop()
            # A first subscription then finds a connection ready for its position.
            self._warming = asyncio.create_task(self._warm())
            retry.commit_listeners.append(self._committed)

    async def _warm(self) -> None:
        with contextlib.suppress(Exception):  # a subscription start will say it
            await self.reader.start()

    def _committed(self) -> None:
        """A transaction of this process committed: while anyone subscribes, the
        reader looks for it now instead of at its next poll. (Commits of other
        processes wait for the poll; so do commits on another event loop, e.g.
        of an app that was never stopped.)"""
        if self._loop is asyncio.get_running_loop() and self.hub.tenants():
            self.feed.wake()

    async def stop(self) -> None:
        if self._committed in retry.commit_listeners:
            retry.commit_listeners.remove(self._committed)
        if self._started:
            self._warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warming
            await self.feed.stop()
        await self.reader.close()
