"""One object per process that owns the hub and the change feed; the app
starts it in its lifespan."""
from __future__ import annotations

import asyncio
import contextlib
import os

from ..db.dialect import change_feed_mode
from ..db.engine import Database
from .feeds import ChangeFeed, NotifyFeed, PollFeed
from .hub import Hub

ENV_HELP = {
    "INVENTORY_CHANGE_FEED": "how processes learn about stock changes: notify (PostgreSQL "
                             "LISTEN/NOTIFY, the default there) or poll (ledger polling, the "
                             "default and only choice on CockroachDB)",
    "INVENTORY_CHANGE_POLL_INTERVAL": "seconds between ledger polls with the poll feed "
                                      "(default 0.2)",
    "INVENTORY_SUBSCRIBER_BUFFER": "events buffered per subscription before it is closed "
                                   "with SUBSCRIPTION_OVERFLOW (default 1000)",
    "INVENTORY_WS_MAX_SUBSCRIPTIONS": "operations per WebSocket connection (default 20)",
}


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number; fix or unset it") from None


class LiveStock:
    def __init__(self, db: Database, url: str):
        self.mode = change_feed_mode(db.engine.dialect)
        self.hub = Hub(db, capacity=int(_env_number("INVENTORY_SUBSCRIBER_BUFFER", 1000)))
        self.max_subscriptions = int(_env_number("INVENTORY_WS_MAX_SUBSCRIPTIONS", 20))
        poller = PollFeed(db, self.hub, _env_number("INVENTORY_CHANGE_POLL_INTERVAL", 0.2))
        self.feed: ChangeFeed = poller if self.mode == "poll" else NotifyFeed(url, self.hub, poller)

        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.feed.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
