"""A lean closed-loop HTTP/1.1 load generator for JSON POSTs, in plain asyncio.

Why not httpx: at a few hundred requests per second httpx spends about a
millisecond of CPU per request, so on a 2-core machine the generator itself
saturates first and its own event-loop delay shows up as "server latency".
This one writes pre-encoded requests on keep-alive connections and parses only
the status line and Content-Length, so one core offers thousands of requests
per second (with uvloop) and the latencies it records are the server's.
"""
from __future__ import annotations

import asyncio
import collections
import time
from typing import Callable
from urllib.parse import urlsplit

import orjson


class Connection:
    """One keep-alive connection; `post` sends a body and returns (status, body)."""

    def __init__(self, url: str, headers: dict[str, str]):
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path or "/"
        fixed = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                     f"Content-Type: application/json\r\n{fixed}")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.connect()
        self.writer.write(f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length, close = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked responses are not supported by this generator")
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


Classify = Callable[[int, bytes], str]  # (status, body) -> outcome name; "accepted" is timed
NextBody = Callable[[], "dict | bytes"]  # a JSON document, or one already encoded


def encode(body: "dict | bytes") -> bytes:
    return body if isinstance(body, bytes) else orjson.dumps(body)


async def closed_loop(url: str, headers: dict[str, str], clients: int, seconds: float,
                      next_body: NextBody, classify: Classify,
                      timeout_s: float = 10.0) -> "Tally":
    """`clients` connections, each sending its next request as soon as the last answered."""
    tally = Tally()
    stop_at = time.monotonic() + seconds

    async def client() -> None:
        connection = Connection(url, headers)
        try:
            while time.monotonic() < stop_at:
                tally.sent += 1
                body = encode(next_body())
                if not await tally.exchange(connection, body, time.perf_counter(), classify,
                                            timeout_s):
                    await asyncio.sleep(0.01)  # connection lost: do not spin
        finally:
            connection.close()

    started = time.monotonic()
    await asyncio.gather(*[client() for _ in range(clients)])
    tally.elapsed = time.monotonic() - started
    return tally


async def open_loop(url: str, headers: dict[str, str], rate: float, seconds: float,
                    next_body: NextBody, classify: Classify,
                    timeout_s: float = 10.0, max_connections: int = 2048,
                    preopen: int = 0) -> "Tally":
    """Sends `rate` requests per second on schedule, whatever the answers.

    Unlike a closed loop, a slow or shedding server does not slow the offered
    load down: a request that finds no idle connection opens another (up to
    `max_connections`; beyond that it counts as "not sent"). Latency is measured
    from the request's scheduled time, so a late generator cannot hide a slow
    server (no coordinated omission). `preopen` connections are opened before
    the schedule starts, like a load balancer's pool of upstream connections.
    """
    tally = Tally()
    # Oldest idle first: round-robin over all connections, so that every worker
    # process of the server gets its share (reusing the newest would pile the load
    # onto the few connections one worker happened to accept).
    idle: collections.deque[Connection] = collections.deque()
    in_flight: set[asyncio.Task] = set()
    for _ in range(preopen):
        connection = Connection(url, headers)
        await connection.connect()
        idle.append(connection)
    opened = preopen

    async def send(connection: Connection, body: bytes, scheduled: float) -> None:
        await tally.exchange(connection, body, scheduled, classify, timeout_s)
        idle.append(connection)

    started = time.perf_counter()
    for index in range(int(rate * seconds)):
        scheduled = started + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tally.sent += 1
        if idle:
            connection = idle.popleft()
        elif opened < max_connections:
            opened += 1
            connection = Connection(url, headers)
        else:
            tally.outcomes["not sent (generator at its connection limit)"] += 1
            continue
        task = asyncio.create_task(send(connection, encode(next_body()), scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    tally.elapsed = time.perf_counter() - started
    if in_flight:
        await asyncio.wait(in_flight)
    for connection in idle:
        connection.close()
    tally.connections = opened
    return tally


class Tally:
    def __init__(self):
        from collections import Counter
        self.latencies: list[float] = []
        self.outcomes: Counter = Counter()
        self.sent = 0
        self.elapsed = 0.0
        self.connections = 0

    async def exchange(self, connection: Connection, body: bytes, started: float,
                       classify: Classify, timeout_s: float) -> bool:
        """Sends one request and records its outcome; False if the connection failed."""
        try:
            async with asyncio.timeout(timeout_s):
                status, payload = await connection.post(body)
        except TimeoutError:
            self.outcomes[f"client timeout ({timeout_s:g} s)"] += 1
            connection.close()
            return False
        except (OSError, asyncio.IncompleteReadError) as error:
            self.outcomes[f"connection error {type(error).__name__}"] += 1
            connection.close()
            return False
        outcome = classify(status, payload)
        self.outcomes[outcome] += 1
        if outcome == "accepted":
            self.latencies.append(time.perf_counter() - started)
        return True

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        seconds = max(self.elapsed, 1e-9)

        def pct(p: float):
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None

        return {
            "offered_rps": round(self.sent / seconds, 1),
            "accepted_rps": round(self.outcomes["accepted"] / seconds, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "outcomes": dict(self.outcomes),
        }


def run(coroutine):
    """Runs on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
