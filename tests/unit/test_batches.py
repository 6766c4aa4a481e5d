"""The per-level batcher (group commit) on its own: batch forming, order, errors."""
from __future__ import annotations

import asyncio

import pytest

from inventory.service.hot_levels import MAX_BATCH, LevelBatches


async def test_batches_form_only_while_the_key_is_busy_and_keep_arrival_order():
    """The first request of an idle key runs alone; those that arrive meanwhile
    go together, in arrival order; another key does not wait for this one. The
    "transactions" wait on a gate the test opens: no timing is assumed."""
    seen: list[list[int]] = []
    gate = asyncio.Event()

    async def run(batch: list[int]) -> list[int]:
        seen.append(batch)
        if batch != [99]:
            await gate.wait()
        return [n * 10 for n in batch]

    batches = LevelBatches(run, name="test batch")
    first = asyncio.ensure_future(batches.submit("a", 0))
    for _ in range(100):  # event-loop turns until its batch (of one) is applied
        if seen:
            break
        await asyncio.sleep(0)
    assert seen == [[0]]
    rest = [asyncio.ensure_future(batches.submit("a", n)) for n in range(1, 10)]
    assert await batches.submit("b", 99) == 990  # while key "a" is still busy
    gate.set()
    results = await asyncio.gather(first, *rest)
    assert results == [n * 10 for n in range(10)]
    assert seen == [[0], [99], [1, 2, 3, 4, 5, 6, 7, 8, 9]]
    assert len(batches) == 0  # nothing left behind once the queues are drained


async def test_a_batch_is_at_most_max_batch():
    sizes: list[int] = []

    async def run(batch: list[int]) -> list[int]:
        sizes.append(len(batch))
        await asyncio.sleep(0)
        return batch

    batches = LevelBatches(run, name="test batch")
    await asyncio.gather(*(batches.submit("k", n) for n in range(MAX_BATCH * 2 + 1)))
    assert max(sizes) == MAX_BATCH and sum(sizes) == MAX_BATCH * 2 + 1


async def test_a_failing_batch_fails_its_requests_and_later_ones_still_run():
    calls = 0

    async def run(batch: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise RuntimeError("database said no")
        return batch

    batches = LevelBatches(run, name="test batch")
    first = asyncio.ensure_future(batches.submit("k", 1))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(batches.submit("k", n)) for n in (2, 3)]
    with pytest.raises(RuntimeError):
        await first
    assert await asyncio.gather(*rest) == [2, 3]


async def test_a_caller_that_leaves_does_not_break_the_batch():
    applied: list[int] = []

    async def run(batch: list[int]) -> list[int]:
        await asyncio.sleep(0.02)
        applied.extend(batch)
        return batch

    batches = LevelBatches(run, name="test batch")
    leaving = asyncio.ensure_future(batches.submit("k", 1))
    staying = asyncio.ensure_future(batches.submit("k", 2))
    await asyncio.sleep(0.005)
    leaving.cancel()
    assert await staying == 2
    assert applied == [1, 2]  # the request already taken was still applied
    assert len(batches) == 0


async def test_too_few_results_fail_the_requests_instead_of_hanging():
    async def run(batch: list[int]) -> list[int]:
        await asyncio.sleep(0)
        return batch[:1]

    batches = LevelBatches(run, name="test batch")
    first = asyncio.ensure_future(batches.submit("k", 1))
    await asyncio.sleep(0)
    await first
    rest = [asyncio.ensure_future(batches.submit("k", n)) for n in (2, 3)]
    done = await asyncio.wait_for(asyncio.gather(*rest, return_exceptions=True), 1)
    assert all(isinstance(r, RuntimeError) for r in done)


async def test_a_cancelled_drain_cancels_the_requests_waiting_on_it():
    """The drain task cancelled (as the event loop's shutdown cancels every
    task): the requests waiting on it end cancelled instead of hanging."""
    started = asyncio.Event()

    async def run(batch: list[int]) -> list[int]:
        started.set()
        await asyncio.sleep(10)
        return batch

    batches = LevelBatches(run, name="test batch")
    before = asyncio.all_tasks()
    waiting = [asyncio.ensure_future(batches.submit("k", n)) for n in range(3)]
    await started.wait()
    (drain,) = asyncio.all_tasks() - before - set(waiting) - {asyncio.current_task()}
    drain.cancel()
    done = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 1)
    assert all(isinstance(r, asyncio.CancelledError) for r in done)
    assert len(batches) == 0


def test_event_loop_shutdown_leaves_no_request_waiting_and_no_error():
    """A server's shutdown ends its event loop, which cancels every task: the
    waiting requests end cancelled, the batcher forgets its queue, and nothing
    is reported to the loop's exception handler."""
    errors: list[dict] = []
    state: dict = {}

    async def run(batch: list[int]) -> list[int]:
        state["started"].set()
        await asyncio.sleep(10)
        return batch

    async def serve() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(
            context))
        state["started"] = asyncio.Event()
        state["batches"] = batches = LevelBatches(run, name="test batch")
        state["waiting"] = [asyncio.ensure_future(batches.submit("k", n)) for n in range(3)]
        await state["started"].wait()
        # Returning with the batch running: the runner's close is the shutdown.

    with asyncio.Runner() as runner:
        runner.run(serve())
    assert all(task.cancelled() for task in state["waiting"])
    assert len(state["batches"]) == 0
    assert errors == []
