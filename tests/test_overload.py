"""Load shedding: beyond the configured concurrency and queue, /graphql answers
HTTP 503 OVERLOADED with a retry hint at once, writes nothing for shed
requests, and keeps serving the rest; health checks are never shed."""
from __future__ import annotations

import asyncio


async def test_requests_beyond_the_limit_are_shed_with_a_retry_hint(
        start_api_server, graphql, stocked_level):
    # Rate limits off: only shedding may refuse here (429 would blur 503's meaning).
    with start_api_server("overload", INVENTORY_MAX_CONCURRENT="1", INVENTORY_MAX_QUEUE="2",
                          INVENTORY_QUEUE_TIMEOUT="0.05", INVENTORY_RATE_READ="0",
                          INVENTORY_RATE_WRITE="0") as server:
        api = graphql(server)
        sku, code = await stocked_level(0, client=api)
        query = ("mutation($i: ReceiveStockInput!) { receiveStock(input: $i) "
                 "{ __typename ... on StockLevel { onHand } } }")
        responses = await asyncio.gather(*[
            api.post(query, {"i": {"sku": sku, "locationCode": code, "quantity": 1,
                                   "idempotencyKey": f"ovl-{sku}-{n}"}})
            for n in range(60)
        ], api.http("GET", "/healthz"))
        health = responses.pop()
        assert health.status_code == 200
        accepted = [r for r in responses if r.status_code == 200]
        shed = [r for r in responses if r.status_code == 503]
        assert len(accepted) + len(shed) == 60, [r.status_code for r in responses]
        assert accepted and shed, (len(accepted), len(shed))
        assert all(r.json()["data"]["receiveStock"]["__typename"] == "StockLevel"
                   for r in accepted)
        body = shed[0].json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"] == {"code": "OVERLOADED", "retryAfterMs": 200}
        assert shed[0].headers["retry-after"] == "1"
        # Shed writes did nothing; accepted ones did exactly once.
        level = await api.level(sku, code)
        assert level["onHand"] == len(accepted)


class RawConnection:
    """One keep-alive HTTP/1.1 connection, written and read by hand, so a test
    controls when each byte of a request arrives."""

    def __init__(self, reader, writer, host: str, api_key: str):
        self.reader, self.writer, self.host, self.api_key = reader, writer, host, api_key

    @classmethod
    async def open(cls, url: str, api_key: str) -> "RawConnection":
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer, f"{host}:{port}", api_key)

    def head(self, length: int) -> bytes:
        return (f"POST /graphql HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {self.api_key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {length}\r\n\r\n").encode()

    async def post(self, body: bytes) -> tuple[int, dict, bytes]:
        self.writer.write(self.head(len(body)) + body)
        return await self.answer()

    async def answer(self) -> tuple[int, dict, bytes]:
        async with asyncio.timeout(30):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
            payload = await self.reader.readexactly(int(headers["content-length"]))
        return int(lines[0].split()[1]), headers, payload

    def close(self) -> None:
        self.writer.close()


async def test_refusals_at_the_parser_keep_the_connection_serving(
        start_api_server, scrape_metrics):
    """With the one slot taken (a request whose body has not all arrived), a
    request on another keep-alive connection is refused at the HTTP parser
    (inventory_requests_shed_early_total moves) with the limiter's 503; the
    connection then serves the next request once the slot is free, and the
    held request completes."""
    import json

    with start_api_server("early-shed", INVENTORY_MAX_CONCURRENT="1", INVENTORY_MAX_QUEUE="0",
                          INVENTORY_RATE_READ="0", INVENTORY_RATE_WRITE="0") as server:
        query = json.dumps({"query": "{ __typename }"}).encode()
        before = scrape_metrics(server)
        holder = await RawConnection.open(server.url, server.api_key)
        other = await RawConnection.open(server.url, server.api_key)
        try:
            holder.writer.write(holder.head(len(query)) + query[:5])  # admitted, then waits
            await holder.writer.drain()
            refused = []
            for _ in range(50):  # until the holder's request has its slot
                status, headers, payload = await other.post(query)
                if status == 200:
                    await asyncio.sleep(0.05)
                    continue
                refused.append((status, headers, payload))
                if len(refused) == 3:  # several on one connection: it stays usable
                    break
            assert len(refused) == 3, "the held request never took the slot"
            for status, headers, payload in refused:
                assert status == 503
                assert headers["retry-after"] == "1"
                assert headers["content-type"] == "application/json"
                assert json.loads(payload) == {"data": None, "errors": [{
                    "message": "the server is overloaded; retry after the time given",
                    "extensions": {"code": "OVERLOADED", "retryAfterMs": 200}}]}
            holder.writer.write(query[5:])  # the held request completes and frees the slot
            status, _, payload = await holder.answer()
            assert (status, json.loads(payload)["data"]) == (200, {"__typename": "Query"})
            status, _, payload = await other.post(query)  # same connection, served again
            assert (status, json.loads(payload)["data"]) == (200, {"__typename": "Query"})
        finally:
            holder.close()
            other.close()
        after = scrape_metrics(server)
        # The request in flight while the holder's headers are parsed may have
        # passed the parser just before and be refused by the ASGI limiter (the
        # same 503); every one after it is refused at the parser.
        assert after.increase(before, "inventory_requests_shed_early_total") >= len(refused) - 1
        assert after.increase(before, "inventory_requests_shed_total") >= 3
