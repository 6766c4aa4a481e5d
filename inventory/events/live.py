"""One object per process that owns the hub and the change feed; the app
starts it in its lifespan."""
from __future__ import annotations

import asyncio
import contextlib

from ..config import _number as env_number
from ..db.dialect import change_feed_mode
from ..db.engine import Database
from .feeds import ChangeFeed, NotifyFeed, PollFeed
from .hub import Hub


class LiveStock:
    def __init__(self, db: Database, url: str):
        self.mode = change_feed_mode(db.engine.dialect)
        self.hub = Hub(db, capacity=env_number("INVENTORY_SUBSCRIBER_BUFFER", 1000, int))
        self.max_subscriptions = env_number("INVENTORY_WS_MAX_SUBSCRIPTIONS", 20, int)
        poller = PollFeed(db, self.hub, env_number("INVENTORY_CHANGE_POLL_INTERVAL", 0.2))
        self.feed: ChangeFeed = poller if self.mode == "poll" else NotifyFeed(url, self.hub, poller)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.feed.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
