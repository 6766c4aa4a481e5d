"""The per-process queue of same-level reservations."""
from __future__ import annotations

import asyncio

from inventory.service.hot_levels import KeyLocks


async def test_same_key_takes_turns_other_keys_do_not_wait():
    locks, inside, peak, order = KeyLocks(), {"a": 0, "b": 0}, {"a": 0, "b": 0}, []

    async def work(key: str, n: int):
        async with locks.hold([key]):
            inside[key] += 1
            peak[key] = max(peak[key], inside[key])
            order.append((key, n))
            await asyncio.sleep(0.005)
            inside[key] -= 1

    await asyncio.gather(*(work(k, n) for n in range(5) for k in ("a", "b")))
    assert peak == {"a": 1, "b": 1}
    assert [n for k, n in order if k == "a"] == list(range(5))  # arrival order
    assert len(locks) == 0  # entries are dropped when nobody uses them


async def test_multi_key_holders_cannot_deadlock_and_cancellation_cleans_up():
    locks = KeyLocks()

    async def both(keys):
        async with locks.hold(keys):
            await asyncio.sleep(0.002)

    await asyncio.wait_for(asyncio.gather(*(
        both(["x", "y"] if n % 2 else ["y", "x"]) for n in range(20))), timeout=5)
    async with locks.hold(["x"]):
        waiter = asyncio.create_task(both(["x"]))
        await asyncio.sleep(0.01)
        waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert len(locks) == 0
