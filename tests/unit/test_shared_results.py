"""Subscription results shared per selection (inventory/graphql_runtime/execution.py), on a real
strawberry schema with the product's Schema class: one payload object per event,
yielded to several subscriptions."""
from __future__ import annotations

import asyncio
import dataclasses
from typing import AsyncGenerator

import strawberry

from inventory.events.hub import Hub
from inventory.graphql_runtime.quiet import QuietSchema

calls: list[str] = []


@strawberry.type
class Tick:
    n: int
    shared_results: strawberry.Private[dict] = dataclasses.field(default_factory=dict)

    @strawberry.field
    def label(self, prefix: str = "") -> str:
        calls.append(prefix)
        return f"{prefix}{self.n}"

    @strawberry.field
    async def later(self, prefix: str = "") -> str:
        """Asynchronous, as every field of the product's schema is (its
        directives): the execution yields to the event loop before it ends."""
        calls.append(f"later {prefix}")
        await asyncio.sleep(0.01)
        return f"{prefix}{self.n}"


EVENTS: list[asyncio.Queue] = []


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, tag: str = "") -> AsyncGenerator[Tick, None]:
        queue: asyncio.Queue = asyncio.Queue()
        EVENTS.append(queue)
        while True:
            yield await queue.get()


schema = QuietSchema(query=Query, subscription=Subscription)
DOC = "subscription($tag: String, $p: String) { ticks(tag: $tag) { n label(prefix: $p) } }"


async def _next(stream) -> dict:
    return (await stream.__anext__()).data


async def test_one_execution_per_selection_and_event():
    calls.clear()
    EVENTS.clear()
    streams = [await schema.subscribe(DOC, variable_values=v) for v in (
        {"tag": "a", "p": "x"}, {"tag": "a", "p": "x"}, {"tag": "a", "p": "y"})]
    pending = [asyncio.ensure_future(_next(s)) for s in streams]
    while len(EVENTS) < 3:
        await asyncio.sleep(0.01)
    event = Tick(n=7)  # one payload object for every subscriber, as the hub's views
    for queue in EVENTS:
        queue.put_nowait(event)
    results = [await p for p in pending]
    assert results == [{"ticks": {"n": 7, "label": "x7"}}] * 2 + [
        {"ticks": {"n": 7, "label": "y7"}}]
    assert sorted(calls) == ["x", "y"]  # the two identical selections ran once
    for s in streams:
        await s.aclose()


async def test_asynchronous_selections_run_once_for_subscribers_woken_together():
    """The subscribers of one selection get the event in the same turn of the
    event loop and start executing before the first execution has ended: they
    share the execution under way. One of them leaving meanwhile does not cancel
    it for the others."""
    calls.clear()
    EVENTS.clear()
    doc = "subscription($p: String) { ticks { n later(prefix: $p) } }"
    streams = [await schema.subscribe(doc, variable_values={"p": "x"}) for _ in range(4)]
    pending = [asyncio.ensure_future(_next(s)) for s in streams]
    while len(EVENTS) < 4:
        await asyncio.sleep(0.01)
    event = Tick(n=3)
    for queue in EVENTS:
        queue.put_nowait(event)
    while not calls:
        await asyncio.sleep(0)
    pending[0].cancel()  # the first subscriber, whose execution the others share
    results = [await p for p in pending[1:]]
    assert results == [{"ticks": {"n": 3, "later": "x3"}}] * 3
    assert calls == ["later x"]
    for s in streams[1:]:
        await s.aclose()


async def test_payloads_without_shared_results_run_for_each_subscriber():
    calls.clear()
    EVENTS.clear()

    streams = [await schema.subscribe(DOC, variable_values={"p": "z"}) for _ in range(2)]
    pending = [asyncio.ensure_future(_next(s)) for s in streams]
    while len(EVENTS) < 2:
        await asyncio.sleep(0.01)
    for queue in EVENTS:
        queue.put_nowait(Tick(n=1))  # a new object per subscriber: nothing shared
    assert [await p for p in pending] == [{"ticks": {"n": 1, "label": "z1"}}] * 2
    assert calls == ["z", "z"]
    for s in streams:
        await s.aclose()


def test_subscribers_of_one_filter_are_one_selection_of_the_hub():
    hub = Hub(db=None)
    tenant, item = object(), object()
    a = hub.subscribe(tenant, frozenset({item}))
    b = hub.subscribe(tenant, frozenset({item}))
    c = hub.subscribe(tenant, None)
    assert (hub.subscriber_count, hub.selection_count) == (3, 2)
    assert a.selection is b.selection is not c.selection
    hub.unsubscribe(a)
    hub.unsubscribe(b)
    assert (hub.subscriber_count, hub.selection_count, hub.tenants()) == (1, 1, [tenant])
    hub.unsubscribe(c)
    assert (hub.selection_count, hub.tenants()) == (0, [])
