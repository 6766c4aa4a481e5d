"""The webhook worker: runs in every API process, and works in the one that
holds the lease (a row of `webhook_dispatch`, renewed every third of its
length; a dead holder's lease is taken over when it expires).

The holder runs two loops:
- dispatch: reads the committed ledger through the change feed's reader from
  the stored cursor and queues deliveries (events/webhooks.py);
- send: per enabled endpoint, its oldest pending delivery when due, one at a
  time per endpoint (order per endpoint, so per stock level too), retried with
  exponential backoff until its deadline, then FAILED.

Why in the API processes rather than a separate `inventory webhooks` process:
`scripts/serve` and every deployment get webhooks with nothing more to run,
and the lease keeps it to one sender. A delivery sent by a holder that died
before recording it is sent again by the next one: at least once, same
webhook-id. See docs/webhooks.md.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from datetime import datetime, timezone

import httpx

from ..db import webhooks as rows
from ..db.changes import LedgerReader
from ..db.retry import run_transaction
from ..domain.webhooks import WebhookSettings, next_attempt
from ..events.hub import Names
from ..events.webhooks import Dispatcher, LeaseLost
from ..observability.tracing import untraced
from .context import Ctx
from .webhooks import attempt

log = logging.getLogger(__name__)
DUE_PAGE = 200


class WebhookWorker:
    def __init__(self, ctx: Ctx, reader: LedgerReader, settings: WebhookSettings):
        self.ctx, self.reader, self.settings = ctx, reader, settings
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.dispatcher = Dispatcher(Names(ctx.db), self.holder, settings.lease_s,
                                     settings.retry_window_s)
        self.cursor: str | None = None  # everything before it is queued
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Runs until cancelled: waits for the lease, works while holding it."""
        untraced()  # background polls would be a trace each
        while True:
            try:
                held, cursor = await run_transaction(
                    self.ctx.db, lambda conn: rows.take_lease(conn, self.holder,
                                                              self.settings.lease_s))
                if held:
                    log.info("webhook worker %s holds the lease", self.holder)
                    await self._work(cursor)
            except asyncio.CancelledError:
                await self._release()
                raise
            except LeaseLost:
                log.info("webhook worker %s lost the lease", self.holder)
            except Exception as error:  # keep trying through database outages
                log.warning("webhook worker: %s; trying again", error)
            await asyncio.sleep(self.settings.lease_s / 3 * random.uniform(0.8, 1.2))

    async def _work(self, cursor: str | None) -> None:
        if cursor is None:  # the first holder ever starts at the present
            cursor = await self.reader.start()
            await run_transaction(self.ctx.db, lambda conn: rows.renew_lease(
                conn, self.holder, self.settings.lease_s, cursor))
        self.cursor = cursor
        tasks = [asyncio.create_task(self._dispatch(cursor)),
                 asyncio.create_task(self._send()), asyncio.create_task(self._renew())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raises what ended it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            cursor = self.cursor
            if not await run_transaction(self.ctx.db, lambda conn: rows.renew_lease(
                    conn, self.holder, self.settings.lease_s, cursor)):
                raise LeaseLost()

    async def _release(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(run_transaction(
                self.ctx.db, lambda conn: rows.release_lease(conn, self.holder)))

    async def _dispatch(self, floor: str) -> None:
        """Ledger -> delivery rows, the cursor stored with them."""
        delay = 0.1
        while True:
            try:
                async for batch in self.reader.batches(self.cursor):
                    stock = await self.dispatcher.stock_events(batch)
                    if stock:  # else the renewal stores the cursor
                        queued = await run_transaction(
                            self.ctx.db,
                            lambda conn: self.dispatcher.queue(conn, stock, batch.cursor))
                        if queued:
                            self._wake.set()
                    self.cursor = batch.cursor  # stored by the next queue or renewal
                    delay = 0.1
            except (asyncio.CancelledError, LeaseLost):
                raise
            except Exception as error:
                log.warning("webhook dispatch: %s; resuming from its cursor", error)
                self.cursor = self.reader.resume_from(self.cursor, floor)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _send(self) -> None:
        """Each endpoint's oldest due delivery, endpoints in parallel."""
        inflight: dict[tuple, asyncio.Task] = {}
        async with httpx.AsyncClient(timeout=self.settings.timeout_s,
                                     follow_redirects=False, trust_env=False) as client:
            try:
                while True:
                    self._wake.clear()
                    async with self.ctx.db.reader.connect() as conn:
                        due = await rows.due_deliveries(conn, DUE_PAGE)
                    for d in due:
                        ref = (d.tenant_id, d.webhook_id)
                        if ref not in inflight:
                            task = inflight[ref] = asyncio.create_task(self._one(client, d))
                            task.add_done_callback(lambda _, ref=ref: (
                                inflight.pop(ref, None), self._wake.set()))
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.settings.poll_s)
            finally:
                for task in inflight.values():
                    task.cancel()

    async def _one(self, client: httpx.AsyncClient, due: rows.Due) -> None:
        try:
            ok, status, error = await attempt(client, due, self.settings)
            if ok:
                await run_transaction(self.ctx.db,
                                      lambda conn: rows.delivered(conn, due, status))
                return
            retry_at = next_attempt(datetime.now(timezone.utc), due.attempts + 1,
                                    self.settings.backoff_s, due.deadline)
            await run_transaction(self.ctx.db, lambda conn: rows.attempt_failed(
                conn, due, status, error, retry_at, self.settings.disable_after))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the next poll tries it again
            log.warning("webhook delivery %s: %s", due.id, error)
