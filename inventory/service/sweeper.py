"""Background task that expires overdue reservations, in every server process.

Several processes may sweep at once: each reservation is expired by a guarded
status change in its own SERIALIZABLE transaction, so exactly one process wins
and the others skip it.
"""
from __future__ import annotations

import asyncio
import logging
import random

from ..observability import listeners
from ..observability.tracing import untraced
from .context import Ctx
from .reservations import sweep_expired

log = logging.getLogger(__name__)


async def run_sweeper(ctx: Ctx, interval_s: float) -> None:
    untraced()  # observed through metrics; idle polls would be a trace every few seconds
    while True:
        # Jitter keeps several processes from sweeping in lockstep.
        await asyncio.sleep(interval_s * random.uniform(0.8, 1.2))
        try:
            while True:
                expired = await sweep_expired(ctx)
                listeners.count(listeners.SWEEP, expired)
                if expired:
                    log.info("expired %d reservations", expired)
                if expired < 100:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as error:  # keep sweeping after a database outage
            listeners.count(listeners.SWEEP_FAILED)
            log.warning("sweep failed, will retry: %s", error)
