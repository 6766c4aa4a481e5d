"""The read coalescer on its own: sharing, duplicate keys, errors, cancellation."""
from __future__ import annotations

import asyncio

import pytest

from inventory.service.coalesce import MAX_KEYS, Coalescer


class Bad(Exception):
    pass


async def test_one_turn_shares_one_load_and_duplicate_keys_share_an_answer():
    loads: list[list[str]] = []

    async def load(keys: list[str]) -> dict[str, str]:
        loads.append(sorted(keys))
        await asyncio.sleep(0)
        return {k: k.upper() for k in keys if k != "missing"}

    lookups = Coalescer(load, name="test")
    answers = await asyncio.gather(*(lookups.get(k) for k in ("a", "b", "a", "missing")))
    assert answers == ["A", "B", "A", None]
    assert loads == [["a", "b", "missing"]]
    assert await lookups.get("c") == "C" and loads[-1] == ["c"]  # a later turn: its own load


async def test_a_failing_shared_load_is_retried_key_by_key():
    async def load(keys: list[str]) -> dict[str, str]:
        if "poison" in keys:
            raise Bad("cannot encode")
        return {k: k.upper() for k in keys}

    lookups = Coalescer(load, name="test")
    good, bad, other = await asyncio.gather(
        lookups.get("a"), lookups.get("poison"), lookups.get("b"), return_exceptions=True)
    assert good == "A" and other == "B" and isinstance(bad, Bad)


async def test_errors_that_are_not_retried_alone_fail_every_waiter_once():
    calls = 0

    async def load(keys: list[str]) -> dict[str, str]:
        nonlocal calls
        calls += 1
        raise ConnectionError("database down")

    lookups = Coalescer(load, name="test",
                        retry_alone=lambda e: not isinstance(e, ConnectionError))
    results = await asyncio.gather(*(lookups.get(k) for k in "abc"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results) and calls == 1


async def test_a_waiter_that_leaves_does_not_cancel_the_others():
    async def load(keys: list[str]) -> dict[str, str]:
        await asyncio.sleep(0.01)
        return {k: k for k in keys}

    lookups = Coalescer(load, name="test")
    leaving, staying = (asyncio.ensure_future(lookups.get(k)) for k in "ab")
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying == "b"


async def test_a_turn_with_very_many_keys_is_split():
    sizes: list[int] = []

    async def load(keys: list[int]) -> dict[int, int]:
        sizes.append(len(keys))
        return {k: k for k in keys}

    lookups = Coalescer(load, name="test")
    answers = await asyncio.gather(*(lookups.get(n) for n in range(MAX_KEYS * 2 + 5)))
    assert answers == list(range(MAX_KEYS * 2 + 5))
    assert max(sizes) == MAX_KEYS and sum(sizes) == MAX_KEYS * 2 + 5


async def test_an_empty_answer_for_a_key_is_none_not_a_hang():
    async def load(keys: list[str]) -> dict[str, str]:
        return {}

    lookups = Coalescer(load, name="test")
    assert await asyncio.wait_for(lookups.get("x"), 1) is None


@pytest.mark.parametrize("n", [1, 3])
async def test_a_malformed_answer_fails_the_waiters_instead_of_hanging(n):
    async def load(keys: list[str]):
        return None  # a bug in the loader

    lookups = Coalescer(load, name="test")
    tasks = [asyncio.ensure_future(lookups.get(str(i))) for i in range(n)]
    done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1)
    assert all(isinstance(r, Exception) for r in done)


async def test_with_one_load_at_a_time_later_lookups_wait_and_go_together():
    loads: list[list[str]] = []
    release = asyncio.Event()

    async def load(keys: list[str]) -> dict[str, str]:
        loads.append(sorted(keys))
        if len(loads) == 1:
            await release.wait()  # the first load is slow
        return {k: k.upper() for k in keys}

    lookups = Coalescer(load, name="test", max_loads=1)
    first = asyncio.ensure_future(lookups.get("a"))
    await asyncio.sleep(0.01)  # its load is running
    later = [asyncio.ensure_future(lookups.get(k)) for k in ("b", "c")]
    await asyncio.sleep(0.01)
    later.append(asyncio.ensure_future(lookups.get("d")))  # another turn, still waiting
    await asyncio.sleep(0.01)
    assert loads == [["a"]]  # nothing else went while the first load ran
    release.set()
    assert await asyncio.gather(first, *later) == ["A", "B", "C", "D"]
    assert loads == [["a"], ["b", "c", "d"]]  # the waiting lookups went as one
    assert await lookups.get("e") == "E" and loads[-1] == ["e"]  # idle again: at once
