"""Background task that expires overdue reservations, in every server process.

Several processes may sweep at once: each reservation is expired by a guarded
status change in its own SERIALIZABLE transaction, so exactly one process wins
and the others skip it.
"""
from __future__ import annotations

import asyncio
import logging
import random

from ..observability.tracing import untraced
from .context import Ctx
from .reservations import sweep_expired

log = logging.getLogger(__name__)


class SweeperStats:
    runs = 0
    expired = 0
    failures = 0


stats = SweeperStats()


async def run_sweeper(ctx: Ctx, interval_s: float) -> None:
    untraced()  # observed through metrics; idle polls would be a trace every few seconds
    while True:
        # Jitter keeps several processes from sweeping in lockstep.
        await asyncio.sleep(interval_s * random.uniform(0.8, 1.2))
        try:
            while True:
                expired = await sweep_expired(ctx)
                stats.runs += 1
                stats.expired += expired
                if expired:
                    log.info("expired %d reservations", expired)
                if expired < 100:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as error:  # keep sweeping after a database outage
            stats.failures += 1
            log.warning("sweep failed, will retry: %s", error)
