"""Webhooks end to end: a real HTTP receiver on loopback (allowed explicitly by
INVENTORY_WEBHOOK_ALLOWED_NETWORKS), signatures checked with the standardwebhooks
package's verifier, order per endpoint and level, delivery after the receiver
comes back, after the API process is SIGKILLed between commit and send, retries
ending in FAILED and a disabled endpoint, secret rotation."""
from __future__ import annotations

import asyncio
import inspect
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from inventory.db import migrate

from .support import create_database

# Loopback allowed (the tests' receiver); quick takeover of a dead worker's lease.
WEBHOOK_ENV = {"INVENTORY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
               "INVENTORY_WEBHOOK_LEASE_SECONDS": "1.5",
               "INVENTORY_WEBHOOK_BACKOFF_SECONDS": "0.2",
               "INVENTORY_WEBHOOK_TIMEOUT": "3"}
ALL_EVENTS = ["stock_level.changed", "stock_level.low", "stock_level.out_of_stock",
              "stock_level.back_in_stock", "reservation.expired"]
WEBHOOK = "... on WebhookSecret { secret webhook { id url events enabled } }"
DELIVERIES = """query($id: ID!, $status: WebhookDeliveryStatus) {
  webhookDeliveries(webhookId: $id, status: $status, first: 500) {
    id event status attempts lastStatusCode lastError sequence } }"""


class Receiver:
    """An HTTP server on a loopback port that records every request. `mode`:
    "ok" (204), "fail" (503) or "hang" (holds the request until released).
    `stop()` closes the port, `start()` opens the same port again."""

    def __init__(self):
        self.requests: list[tuple[dict[str, str], str]] = []
        self.mode = "ok"
        self.release = threading.Event()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.mode == "hang":
                    receiver.release.wait(30)
                    return  # the connection closes without an answer
                self.send_response(204 if receiver.mode == "ok" else 503)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def events(self, secret: str) -> list[dict]:
        """Each distinct delivery (by webhook-id) in order of first arrival,
        verified with the standardwebhooks verifier (raises if one does not verify)."""
        seen, out = set(), []
        for headers, body in list(self.requests):
            payload = Webhook(secret).verify(body, headers)
            if headers["webhook-id"] not in seen:
                seen.add(headers["webhook-id"])
                out.append(payload)
        return out


async def eventually(check, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def webhook_db(pg_base_url) -> str:
    """Its own database: the shared one's worker does not allow loopback."""
    url = create_database(pg_base_url, "inventory_webhooks")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def webhook_server(start_api_server, webhook_db):
    with start_api_server("webhooks", database_url=webhook_db, **WEBHOOK_ENV) as server:
        yield server


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.release.set()
    r.stop()


async def create(api, url: str, events=ALL_EVENTS) -> tuple[str, str]:
    result = await api.succeed("createWebhook", {"url": url, "events": events}, WEBHOOK)
    return result["webhook"]["id"], result["secret"]


def changes(events: list[dict], sku: str) -> list[tuple[str, int]]:
    return [(e["type"], e["data"]["version"]) for e in events
            if e["type"].startswith("stock_level.") and e["data"]["sku"] == sku]


async def test_signed_events_in_order_per_level(graphql, webhook_server, receiver):
    api = graphql(webhook_server)
    webhook_id, secret = await create(api, receiver.url)
    assert secret.startswith("whsec_")
    sku = await api.item(reorder_point=2)
    code = await api.location()
    await api.receive(sku, code, 5)                                        # v1: 5
    await api.succeed("adjustStock", {"sku": sku, "locationCode": code, "delta": -4})  # v2: 1, low
    await api.succeed("adjustStock", {"sku": sku, "locationCode": code, "delta": -1})  # v3: 0
    await api.receive(sku, code, 3)                                        # v4: back in stock
    # back_in_stock: available from 0 to above 0, the first receipt included.
    expected = [("stock_level.changed", 1), ("stock_level.back_in_stock", 1),
                ("stock_level.changed", 2), ("stock_level.low", 2),
                ("stock_level.changed", 3), ("stock_level.out_of_stock", 3),
                ("stock_level.changed", 4), ("stock_level.back_in_stock", 4)]
    got = await eventually(lambda: len(changes(receiver.events(secret), sku)) >= 8
                           and receiver.events(secret), what="8 events")
    assert changes(got, sku) == expected
    last = [e for e in got if e["data"].get("sku") == sku][-1]
    assert last["data"] | {"onHand": 3, "available": 3, "locationCode": code} == last["data"]
    headers, body = receiver.requests[0]
    assert headers["webhook-id"].startswith("msg_") and headers["webhook-signature"].startswith("v1,")
    with pytest.raises(WebhookVerificationError):  # another secret does not verify
        Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)
    # The secret is shown once: the list has no field for it.
    listed = (await api.gql("{ webhooks { id url events enabled } }"))["webhooks"]
    assert {"id": webhook_id, "url": receiver.url, "events": ALL_EVENTS,
            "enabled": True} in listed
    delivered = (await api.gql(DELIVERIES, {"id": webhook_id}))["webhookDeliveries"]
    assert {d["status"] for d in delivered} == {"DELIVERED"}
    await api.succeed("deleteWebhook", {"id": webhook_id}, "... on DeletedWebhook { id }")


async def test_reservation_expired(graphql, webhook_server, receiver, stocked_level):
    api = graphql(webhook_server)
    _, secret = await create(api, receiver.url, ["reservation.expired"])
    sku, a, b = await stocked_level(5, locations=2, client=api)
    reserved = await api.succeed("reserveStock", {
        "lines": [{"sku": sku, "locationCode": a, "quantity": 2},
                  {"sku": sku, "locationCode": b, "quantity": 1}], "ttlSeconds": 1},
        "... on Reservation { id }")
    got = await eventually(lambda: receiver.events(secret), what="the expiry event")
    assert [e["type"] for e in got] == ["reservation.expired"]
    assert got[0]["data"]["reservationId"] == reserved["id"]
    assert sorted((l["locationCode"], l["quantity"]) for l in got[0]["data"]["lines"]) == \
        sorted([(a, 2), (b, 1)])


async def test_delivered_once_the_receiver_is_back(graphql, webhook_server, receiver):
    api = graphql(webhook_server)
    webhook_id, secret = await create(api, receiver.url, ["stock_level.changed"])
    receiver.stop()  # the port refuses connections
    sku = await api.item()
    code = await api.location()
    await api.receive(sku, code, 1)
    await api.receive(sku, code, 2)

    async def failing():
        found = (await api.gql(DELIVERIES, {"id": webhook_id}))["webhookDeliveries"]
        return [d for d in found if d["attempts"] >= 2 and d["lastError"]]

    await eventually(failing, what="failed attempts")
    pending = (await api.gql(DELIVERIES, {"id": webhook_id, "status": "PENDING"}))
    assert len(pending["webhookDeliveries"]) == 2
    receiver.start()
    got = await eventually(lambda: len(changes(receiver.events(secret), sku)) == 2
                           and receiver.events(secret), what="deliveries after the outage")
    assert changes(got, sku) == [("stock_level.changed", 1), ("stock_level.changed", 2)]


async def test_sigkill_between_commit_and_send(graphql, start_api_server, webhook_db, receiver):
    """The first event is in flight (the receiver holds it) and the second is
    committed behind it when the API process is SIGKILLed; a new process takes
    the lease over and sends both, in order (the first again, same webhook-id)."""
    with start_api_server("webhooks-kill", database_url=webhook_db, **WEBHOOK_ENV) as first:
        api = graphql(first)
        webhook_id, secret = await create(api, receiver.url, ["stock_level.changed"])
        sku = await api.item()
        code = await api.location()
        receiver.mode = "hang"
        await api.receive(sku, code, 1)
        await eventually(lambda: receiver.requests, what="the first event in flight")
        await api.receive(sku, code, 2)
        first.kill()
        receiver.mode = "ok"
        receiver.release.set()
        killed_at = len(receiver.requests)
        first.start()  # a new process on the same database and port
        got = await eventually(lambda: len(changes(receiver.events(secret), sku)) == 2
                               and receiver.events(secret), what="both events after the kill")
        assert changes(got, sku) == [("stock_level.changed", 1), ("stock_level.changed", 2)]
        assert len(receiver.requests) > killed_at
        # The one in flight at the kill went again under the same webhook-id
        # (it may have gone more than once before the kill: a busy machine can
        # hold the hanging attempt past the sender's timeout, which retries it).
        ids = [h["webhook-id"] for h, _ in receiver.requests]
        assert ids[0] in ids[killed_at:], ids
        await api.succeed("deleteWebhook", {"id": webhook_id}, "... on DeletedWebhook { id }")


async def test_rotated_secret_signs_alongside_the_old_one(graphql, webhook_server, receiver):
    api = graphql(webhook_server)
    webhook_id, old = await create(api, receiver.url, ["stock_level.changed"])
    rotated = await api.succeed("rotateWebhookSecret", {"id": webhook_id}, WEBHOOK)
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    sku = await api.item()
    await api.receive(sku, await api.location(), 1)
    await eventually(lambda: receiver.requests, what="a delivery")
    assert receiver.events(new) == receiver.events(old)  # both verify during the grace period
    assert len(receiver.requests[0][0]["webhook-signature"].split(" ")) == 2


async def test_retries_end_failed_and_disable_the_endpoint(graphql, start_api_server,
                                                            pg_base_url, receiver):
    url = create_database(pg_base_url, "inventory_webhooks_failing")
    migrate.upgrade(url)
    env = {**WEBHOOK_ENV, "INVENTORY_WEBHOOK_RETRY_SECONDS": "1",
           "INVENTORY_WEBHOOK_DISABLE_AFTER": "2"}
    with start_api_server("webhooks-fail", database_url=url, **env) as server:
        api = graphql(server)
        webhook_id, secret = await create(api, receiver.url, ["stock_level.changed"])
        receiver.mode = "fail"
        sku = await api.item()
        code = await api.location()
        await api.receive(sku, code, 1)
        await api.receive(sku, code, 2)
        failed = await eventually(lambda: _with_status(api, webhook_id, "FAILED", 2),
                                  what="two failed deliveries")
        # The first was retried until its deadline; the second, queued behind it,
        # was past its own when its turn came: one attempt, then FAILED.
        first, second = sorted(failed, key=lambda d: d["sequence"])
        assert first["attempts"] >= 2 and second["attempts"] >= 1
        assert first["lastStatusCode"] == second["lastStatusCode"] == 503
        listed = (await api.gql("{ webhooks { id enabled failureStreak } }"))["webhooks"]
        assert {"id": webhook_id, "enabled": False, "failureStreak": 2} in listed
        # Redelivered and re-enabled: the failed ones go out, oldest first.
        receiver.mode = "ok"
        for d in sorted(failed, key=lambda d: d["sequence"]):
            again = await api.succeed("redeliverWebhook", {"deliveryId": d["id"]},
                                      "... on WebhookDelivery { status attempts }")
            assert again == {"__typename": "WebhookDelivery", "status": "PENDING",
                             "attempts": 0}
        await api.succeed("updateWebhook", {"id": webhook_id, "enabled": True},
                          "... on Webhook { enabled }")
        await eventually(lambda: _with_status(api, webhook_id, "DELIVERED", 2),
                         what="redelivered")
        assert changes(receiver.events(secret), sku)[-2:] == [
            ("stock_level.changed", 1), ("stock_level.changed", 2)]


async def _with_status(api, webhook_id: str, status: str, count: int):
    found = (await api.gql(DELIVERIES, {"id": webhook_id, "status": status}))
    found = found["webhookDeliveries"]
    return found if len(found) == count else None
