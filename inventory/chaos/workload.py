"""The workload: concurrent clients doing a random mix of stock operations
against the real HTTP API, each call with an idempotency key, each outcome
recorded as the client saw it.

Outcomes:
- ok: the mutation's success type came back (the write is acknowledged);
- failed: a typed UserError that is final (e.g. INSUFFICIENT_STOCK);
- indeterminate: timeout, dropped connection, HTTP 503, or a retryable code
  (TRANSACTION_CONFLICT, UNAVAILABLE, RESULT_UNKNOWN, OVERLOADED). The client
  retries it with the SAME key until it gets a definite answer or the run's
  grace period ends (then it stays `unresolved`: it may or may not have
  happened, and the checker only requires that it happened at most once).
"""
from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx

from ..domain.quantities import NAMES, StockState, camel

RETRYABLE_CODES = {"TRANSACTION_CONFLICT", "UNAVAILABLE", "RESULT_UNKNOWN", "OVERLOADED"}
KEY_PREFIX = "chaos-"

QUANTITY_FIELDS = (*(camel(n) for n in NAMES), "available")  # every state, as GraphQL names it
LEVEL = " ".join(QUANTITY_FIELDS) + " version"
SELECTIONS = {
    "StockLevel": f"... on StockLevel {{ sku locationCode {LEVEL} }}",
    "Transfer": f"... on Transfer {{ from {{ {LEVEL} }} to {{ {LEVEL} }} }}",
    "Reservation": "... on Reservation { id status expiresAt lines { sku locationCode quantity } }",
    "InboundShipment": "... on InboundShipment { id status lines { sku locationCode quantity "
                       "received outstanding } }",
    "InboundReceipt": f"... on InboundReceipt {{ shipment {{ id status }} lines {{ quantity "
                      f"level {{ {LEVEL} }} }} }}",
    "StockTransfer": f"... on StockTransfer {{ id status inTransit lost from {{ {LEVEL} }} "
                     f"to {{ {LEVEL} }} }}",
}
SUCCESS_TYPE = {
    "receiveStock": "StockLevel", "adjustStock": "StockLevel", "setStock": "StockLevel",
    "moveStock": "StockLevel",
    "transferStock": "Transfer", "reserveStock": "Reservation",
    "commitReservation": "Reservation", "releaseReservation": "Reservation",
    "createInboundShipment": "InboundShipment", "receiveInbound": "InboundReceipt",
    "cancelInbound": "InboundShipment", "shipTransfer": "StockTransfer",
    "receiveTransfer": "StockTransfer", "cancelTransfer": "StockTransfer",
}


def _rows_written(call: "Call") -> int:
    """Ledger rows an acknowledged call wrote, when only its answer tells: a
    cancelled shipment's lines still outstanding then; a final transfer
    receipt's loss (a transfer records a loss only when it closes)."""
    if call.op == "cancelInbound":
        return sum(1 for line in call.result["lines"] if line["outstanding"])
    return int(call.input["quantity"] > 0) + int(call.result["lost"] > 0)


ROWS_FROM_ANSWER = {"cancelInbound", "receiveTransfer"}


def auth_headers(api_key: str | None) -> dict[str, str]:
    """The Authorization header every request of the workload carries."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def mutation_document(name: str) -> str:
    kind = SUCCESS_TYPE[name]
    return (f"mutation($input: {name[0].upper() + name[1:]}Input!) {{ {name}(input: $input) "
            f"{{ __typename ... on UserError {{ code message }} {SELECTIONS[kind]} }} }}")


@dataclass
class Call:
    """One logical operation (one idempotency key), however many attempts it took."""

    op: str
    key: str
    input: dict[str, Any]
    outcome: str = "unresolved"  # ok | failed | unresolved
    code: str | None = None  # the final typed error code, for failed
    attempts: int = 0
    indeterminate_attempts: int = 0
    result: dict[str, Any] | None = None
    # Ledger rows one application of this call writes, when ok; None: known only
    # from its answer (ROWS_FROM_ANSWER), so unknown while it is unresolved.
    lines: int | None = 1
    done_at: float | None = None  # time.monotonic() of the final answer


@dataclass
class WorkloadState:
    skus: list[str]
    locations: list[str]
    reservations: list[tuple[str, int]] = field(default_factory=list)  # (id, lines), ACTIVE when seen
    shipments: list[tuple[str, list[dict]]] = field(default_factory=list)  # (id, lines), open
    transfers: list[str] = field(default_factory=list)  # ids of transfers in transit
    calls: list[Call] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    indeterminate: Counter = field(default_factory=Counter)  # by cause
    violations: list[str] = field(default_factory=list)
    observed_quantities: int = 0


def _negative_quantities(value: Any) -> list[str]:
    """Every state or available below zero anywhere in a response."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in QUANTITY_FIELDS and isinstance(v, int) and v < 0:
                found.append(f"{k}={v}")
            else:
                found += _negative_quantities(v)
    elif isinstance(value, list):
        for v in value:
            found += _negative_quantities(v)
    return found


class Workload:
    def __init__(self, state: WorkloadState, endpoints: Callable[[], list[str]],
                 expire_ttl_s: float = 1.0, request_timeout_s: float = 5.0, seed: int | None = None,
                 api_key: str | None = None):
        self.state = state
        self.headers = auth_headers(api_key)
        self.endpoints = endpoints  # the API URLs to spread requests over
        self.expire_ttl_s = expire_ttl_s
        self.timeout = request_timeout_s
        self.random = random.Random(seed)
        self._ids = itertools.count()

    # ------------------------------------------------------------- transport
    async def _post(self, client: httpx.AsyncClient, query: str, variables: dict) -> tuple[str, Any]:
        """('ok', body) or ('indeterminate', cause) or ('unexpected', detail)."""
        url = self.random.choice(self.endpoints()) + "/graphql"
        try:
            response = await client.post(url, json={"query": query, "variables": variables},
                                         timeout=self.timeout)
        except httpx.TimeoutException:
            return "indeterminate", "timeout"
        except httpx.TransportError as error:
            return "indeterminate", f"connection: {type(error).__name__}"
        if response.status_code == 503:
            return "indeterminate", "http 503"
        if response.status_code != 200:
            return "unexpected", f"HTTP {response.status_code}: {response.text[:300]}"
        body = response.json()
        negative = _negative_quantities(body.get("data"))
        if negative:
            self.state.violations.append(f"negative quantity observed: {negative} in {body}")
        self.state.observed_quantities += 1
        errors = body.get("errors")
        if errors:
            code = (errors[0].get("extensions") or {}).get("code")
            if code in RETRYABLE_CODES:
                return "indeterminate", code
            return "unexpected", f"GraphQL error {code}: {errors[0].get('message')}"
        return "ok", body["data"]

    async def _run(self, client: httpx.AsyncClient, call: Call, give_up_at: float) -> None:
        """Sends the call, retrying indeterminate attempts with the same key."""
        document = mutation_document(call.op)
        variables = {"input": {**call.input, "idempotencyKey": call.key}}
        self.state.calls.append(call)
        delay = 0.05
        while True:
            call.attempts += 1
            status, value = await self._post(client, document, variables)
            if status == "ok":
                payload = value[call.op]
                code = payload.get("code")
                if code in RETRYABLE_CODES:
                    status, value = "indeterminate", code
                elif code:
                    call.outcome, call.code, call.result = "failed", code, payload
                    break
                else:
                    call.outcome, call.result = "ok", payload
                    break
            if status == "unexpected":
                self.state.violations.append(f"{call.op} {call.key}: {value}")
                call.outcome = "unexpected"
                break
            call.indeterminate_attempts += 1
            self.state.indeterminate[value] += 1
            if time.monotonic() >= give_up_at:
                break
            await asyncio.sleep(delay * self.random.uniform(0.5, 1.5))
            delay = min(delay * 2, 1.0)
        self.state.outcomes[call.outcome] += 1
        call.done_at = time.monotonic()
        if call.outcome == "ok" and call.op in ROWS_FROM_ANSWER:
            call.lines = _rows_written(call)
        self._remember(call)

    def _remember(self, call: Call) -> None:
        """Keeps what later calls act on: open shipments, transfers in transit and
        ACTIVE reservations."""
        if call.outcome != "ok":
            return
        if call.op == "createInboundShipment":
            self.state.shipments.append((call.result["id"], call.input["lines"]))
        elif call.op == "shipTransfer":
            self.state.transfers.append(call.result["id"])
        # Short-lived reservations are left alone for the sweeper to expire.
        elif (call.op == "reserveStock"
                and call.result["status"] == "ACTIVE" and call.input["ttlSeconds"] > 1):
            self.state.reservations.append((call.result["id"], call.lines))

    # ------------------------------------------------------------ operations
    def _key(self) -> str:
        return f"{KEY_PREFIX}{uuid.uuid4().hex}"

    def _qty(self, high: int = 5) -> int:
        return self.random.randint(1, high)

    def _level(self) -> dict[str, str]:
        return {"sku": self.random.choice(self.state.skus),
                "locationCode": self.random.choice(self.state.locations)}

    async def _current_on_hand(self, client: httpx.AsyncClient, level: dict) -> int | None:
        status, data = await self._post(
            client, f"query($sku: String!, $code: String!) {{ stockLevel(sku: $sku, "
                    f"locationCode: $code) {{ {LEVEL} }} }}",
            {"sku": level["sku"], "code": level["locationCode"]})
        if status != "ok" or not data.get("stockLevel"):
            return None
        return data["stockLevel"]["onHand"]

    async def step(self, client: httpx.AsyncClient, give_up_at: float) -> None:
        r = self.random.random()
        s = self.state
        if r < 0.15:
            call = Call("receiveStock", self._key(), {**self._level(), "quantity": self._qty(8)})
        elif r < 0.25:
            delta = self.random.choice([-3, -2, -1, 1, 2, 3])
            call = Call("adjustStock", self._key(), {**self._level(), "delta": delta,
                                                     "reason": "chaos"})
            if self.random.random() < 0.3:  # on hand together with a named state
                call.input["state"] = self.random.choice(list(StockState.__members__)[1:])
        elif r < 0.30:
            source, target = self.random.sample(list(StockState.__members__), 2)
            call = Call("moveStock", self._key(), {**self._level(), "from": source, "to": target,
                                                   "quantity": self._qty(3), "reason": "chaos"})
        elif r < 0.33:
            level = self._level()
            on_hand = await self._current_on_hand(client, level)
            if on_hand is None:
                return
            target = max(0, on_hand + self.random.randint(-3, 4))
            call = Call("setStock", self._key(), {**level, "onHand": target,
                                                  "compareQuantity": on_hand, "reason": "count"})
        elif r < 0.48:
            source, dest = self.random.sample(s.locations, 2)
            call = Call("transferStock", self._key(), {
                "sku": self.random.choice(s.skus), "fromLocationCode": source,
                "toLocationCode": dest, "quantity": self._qty(4)})
            call.lines = 2
        elif r < 0.56:
            call = self._inbound_call()
        elif r < 0.64:
            call = self._transit_call()
        elif r < 0.80:
            n = self.random.randint(1, 3)
            pairs = self.random.sample(
                [(sku, loc) for sku in s.skus for loc in s.locations], n)
            expiring = self.random.random() < 0.3  # left to expire: the sweeper's job
            call = Call("reserveStock", self._key(), {
                "lines": [{"sku": sku, "locationCode": loc, "quantity": self._qty(3)}
                          for sku, loc in pairs],
                "ttlSeconds": 1 if expiring else 60,
                "reference": f"order-{next(self._ids)}"})
            call.lines = n
        else:
            if not s.reservations:
                return
            reservation_id, n = s.reservations.pop(self.random.randrange(len(s.reservations)))
            op = "commitReservation" if self.random.random() < 0.6 else "releaseReservation"
            call = Call(op, self._key(), {"reservationId": reservation_id})
            call.lines = n
        await self._run(client, call, give_up_at)

    def _inbound_call(self) -> Call:
        """Stock on its way from a supplier: a new shipment of 1-2 lines, a
        partial (sometimes over-) receipt of an open one, or its cancellation."""
        s = self.state
        r = self.random.random()
        if r < 0.4 or not s.shipments:
            n = self.random.randint(1, 2)
            pairs = self.random.sample([(sku, loc) for sku in s.skus for loc in s.locations], n)
            call = Call("createInboundShipment", self._key(), {
                "lines": [{"sku": sku, "locationCode": loc, "quantity": self._qty(6)}
                          for sku, loc in pairs],
                "reference": f"po-{next(self._ids)}", "expectedAt": "2030-01-01T00:00:00Z"})
            call.lines = n
            return call
        shipment_id, lines = self.random.choice(s.shipments)
        if r < 0.85:
            received = self.random.sample(lines, self.random.randint(1, len(lines)))
            call = Call("receiveInbound", self._key(), {
                "shipmentId": shipment_id, "allowOverReceipt": self.random.random() < 0.2,
                "lines": [{**line, "quantity": self._qty(4)} for line in received]})
            call.lines = len(received)
            return call
        s.shipments.remove((shipment_id, lines))
        call = Call("cancelInbound", self._key(), {"shipmentId": shipment_id})
        call.lines = None
        return call

    def _transit_call(self) -> Call:
        """A transfer in two steps: shipped, then received in parts (the last
        receipt may record a loss) or cancelled."""
        s = self.state
        r = self.random.random()
        if r < 0.4 or not s.transfers:
            source, dest = self.random.sample(s.locations, 2)
            call = Call("shipTransfer", self._key(), {
                "sku": self.random.choice(s.skus), "fromLocationCode": source,
                "toLocationCode": dest, "quantity": self._qty(4),
                "expectedAt": "2030-01-01T00:00:00Z"})
            call.lines = 2
            return call
        transfer_id = self.random.choice(s.transfers)
        if r < 0.85:
            final = self.random.random() < 0.3
            if final:
                s.transfers.remove(transfer_id)
            call = Call("receiveTransfer", self._key(), {
                "transferId": transfer_id, "quantity": self.random.randint(0 if final else 1, 2),
                "final": final, "reason": "chaos"})
            call.lines = None
            return call
        s.transfers.remove(transfer_id)
        call = Call("cancelTransfer", self._key(), {"transferId": transfer_id})
        call.lines = 2
        return call

    async def client_loop(self, stop_at: float, grace_s: float) -> None:
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        async with httpx.AsyncClient(limits=limits, headers=self.headers) as client:
            while time.monotonic() < stop_at:
                await self.step(client, give_up_at=stop_at + grace_s)
