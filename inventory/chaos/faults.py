"""Faults injected while the workload runs. Each runs as an asyncio task on its
own schedule and counts what it did; blocking calls run in a thread."""
from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from typing import Awaitable, Callable

import psycopg

from ..db import embedded

log = logging.getLogger(__name__)
CONTROL_APP_NAME = "inventory-chaos-control"  # our own connections are never killed

_KILL_ONE = """
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend' AND application_name <> %s
    ORDER BY random() LIMIT 1
"""


class Faults:
    def __init__(self, libpq_url: str, server, apis, rng: random.Random):
        self.libpq_url = libpq_url
        self.server = server  # the embedded server handle (restartable)
        self.apis = apis  # list of ApiProcess
        self.random = rng
        self.injected: Counter = Counter()
        self.errors: Counter = Counter()
        self.db_down = asyncio.Event()  # set while the server is being restarted

    async def _every(self, interval_s: float, stop_at: float, action: Callable[[], Awaitable]):
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval_s * self.random.uniform(0.5, 1.5))
            if loop.time() >= stop_at:
                return
            try:
                await action()
            except Exception as error:  # a fault that fails to inject is reported, not fatal
                self.errors[type(error).__name__] += 1
                log.warning("fault injection failed: %s", error)

    async def kill_backend(self) -> None:
        if self.db_down.is_set():
            return

        def kill() -> bool:
            with psycopg.connect(self.libpq_url, application_name=CONTROL_APP_NAME,
                                 autocommit=True, connect_timeout=2) as conn:
                return bool(conn.execute(_KILL_ONE, (CONTROL_APP_NAME,)).fetchall())

        if await asyncio.to_thread(kill):
            self.injected["backend terminated"] += 1

    async def restart_database(self) -> None:
        mode = self.random.choice(["fast", "immediate"])  # immediate = crash + recovery
        self.db_down.set()
        try:
            await asyncio.to_thread(embedded.stop, self.server, mode)
            await asyncio.sleep(self.random.uniform(0.2, 1.0))
            await asyncio.to_thread(embedded.start_again, self.server)
        finally:
            self.db_down.clear()
        self.injected[f"database restarted ({mode})"] += 1

    async def kill_api(self) -> None:
        api = self.random.choice(self.apis)
        await asyncio.to_thread(api.kill)
        self.injected["API process SIGKILLed"] += 1
        await asyncio.sleep(self.random.uniform(0.2, 1.0))
        # `serve` checks migrations before listening, so it cannot start while
        # the database is being restarted: try again, as a supervisor would.
        for attempt in range(10):
            try:
                await asyncio.to_thread(api.start)
                break
            except RuntimeError:
                self.errors["API restart attempt failed (database down?)"] += 1
                await asyncio.sleep(1)
        self.injected["API process restarted"] += 1

    def tasks(self, stop_at: float, backend_kill_s: float, db_restart_s: float,
              api_kill_s: float) -> list[asyncio.Task]:
        """Schedules each fault whose interval is > 0."""
        plan = [(backend_kill_s, self.kill_backend), (db_restart_s, self.restart_database),
                (api_kill_s, self.kill_api)]
        return [asyncio.create_task(self._every(interval, stop_at, action))
                for interval, action in plan if interval > 0]
