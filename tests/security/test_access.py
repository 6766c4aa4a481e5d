"""Every operation against every way of getting in without the right to: no
credential, expired token, bad signature, `alg: none`, wrong audience or issuer,
a revoked key, a missing scope, and another tenant's identifiers. Each gets the
right error and changes nothing; a foreign id answers exactly like an unknown one."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import text

from inventory.auth import keys as key_module
from inventory.db import api_keys

from ..support import create_api_key, unique
from .support import (
    ADMIN,
    ALL,
    READ,
    WRITE,
    alg_none_token,
    stock_for,
    tenant_snapshot,
    token,
    unknown_data,
)

STOCK = "... on StockLevel { onHand reserved available version }"
ERR = "... on UserError { code message field }"


@dataclass(frozen=True)
class Op:
    name: str
    query: str
    variables: dict  # values are format strings over tenant A's data
    scope: str
    foreign: bool = True  # takes identifiers another tenant could try to reach
    success: str | None = None  # a mutation's success type

    def vars(self, data: dict[str, str]) -> dict:
        return json.loads(json.dumps(self.variables) % data) if self.variables else {}


def _s(name: str) -> str:
    return "%(" + name + ")s"


OPS = [
    Op("item", "query($sku: String!) { item(sku: $sku) { id sku totalOnHand } }",
       {"sku": _s("sku")}, READ),
    Op("items", "query($p: String!) { items(first: 10, filter: {skuPrefix: $p}) "
       "{ nodes { sku } } }", {"p": _s("sku")}, READ),
    Op("location", "query($c: String!) { location(code: $c) { id code } }",
       {"c": _s("code")}, READ),
    Op("locations", "{ locations(first: 500) { nodes { code } } }", {}, READ, foreign=False),
    Op("stockLevel", "query($s: String!, $c: String!) { stockLevel(sku: $s, locationCode: $c) "
       "{ onHand } }", {"s": _s("sku"), "c": _s("code")}, READ),
    Op("reservation", "query($id: ID!) { reservation(id: $id) { id status } }",
       {"id": _s("reservationId")}, READ),
    Op("reservations", "{ reservations(first: 5, filter: {status: ACTIVE}) { nodes { id } } }",
       {}, READ, foreign=False),
    Op("inboundShipments", "{ inboundShipments(first: 5) { nodes { id } } }", {}, READ,
       foreign=False),
    Op("inboundShipment", "query($id: ID!) { inboundShipment(id: $id) { id status } }",
       {"id": _s("shipmentId")}, READ),
    Op("stockTransfers", "{ stockTransfers(first: 5) { nodes { id } } }", {}, READ,
       foreign=False),
    Op("stockTransfer", "query($id: ID!) { stockTransfer(id: $id) { id status } }",
       {"id": _s("transferId")}, READ),
    Op("movements", "query($s: String!, $c: String!) { movements(sku: $s, locationCode: $c) "
       "{ nodes { kind onHandDelta } } }", {"s": _s("sku"), "c": _s("code")}, READ),
    Op("node(Item)", "query($id: ID!) { node(id: $id) { id } }", {"id": _s("itemId")}, READ),
    Op("node(Location)", "query($id: ID!) { node(id: $id) { id } }",
       {"id": _s("locationId")}, READ),
    Op("node(StockLevel)", "query($id: ID!) { node(id: $id) { id } }",
       {"id": _s("levelId")}, READ),
    Op("node(Reservation)", "query($id: ID!) { node(id: $id) { id } }",
       {"id": _s("reservationId")}, READ),
    Op("ledgerAudit", "{ ledgerAudit(pageSize: 10) { ok discrepancyCount } }", {}, ADMIN,
       foreign=False),
    Op("createLocation", "mutation($i: CreateLocationInput!) { createLocation(input: $i) "
       "{ __typename " + ERR + " } }", {"i": {"code": _s("code"), "name": "x"}}, ADMIN,
       foreign=False, success="Location"),
    Op("createItem", "mutation($i: CreateItemInput!) { createItem(input: $i) "
       "{ __typename " + ERR + " } }", {"i": {"sku": _s("sku"), "name": "x"}}, ADMIN,
       foreign=False, success="Item"),
    Op("receiveStock", "mutation($i: ReceiveStockInput!) { receiveStock(input: $i) "
       "{ __typename " + ERR + STOCK + " } }",
       {"i": {"sku": _s("sku"), "locationCode": _s("code"), "quantity": 5}}, WRITE,
       success="StockLevel"),
    Op("adjustStock", "mutation($i: AdjustStockInput!) { adjustStock(input: $i) "
       "{ __typename " + ERR + STOCK + " } }",
       {"i": {"sku": _s("sku"), "locationCode": _s("code"), "delta": -1}}, WRITE,
       success="StockLevel"),
    Op("setStock", "mutation($i: SetStockInput!) { setStock(input: $i) "
       "{ __typename " + ERR + STOCK + " } }",
       {"i": {"sku": _s("sku"), "locationCode": _s("code"), "onHand": 10}}, WRITE,
       success="StockLevel"),
    Op("transferStock", "mutation($i: TransferStockInput!) { transferStock(input: $i) "
       "{ __typename " + ERR + " } }",
       {"i": {"sku": _s("sku"), "fromLocationCode": _s("code"),
              "toLocationCode": _s("code2"), "quantity": 1}}, WRITE, success="Transfer"),
    Op("reserveStock", "mutation($i: ReserveStockInput!) { reserveStock(input: $i) "
       "{ __typename " + ERR + " } }",
       {"i": {"lines": [{"sku": _s("sku"), "locationCode": _s("code"), "quantity": 1}]}},
       WRITE, success="Reservation"),
    Op("commitReservation", "mutation($i: CommitReservationInput!) { commitReservation("
       "input: $i) { __typename " + ERR + " } }", {"i": {"reservationId": _s("reservationId")}},
       WRITE, success="Reservation"),
    Op("releaseReservation", "mutation($i: ReleaseReservationInput!) { releaseReservation("
       "input: $i) { __typename " + ERR + " } }",
       {"i": {"reservationId": _s("releaseId")}}, WRITE, success="Reservation"),
    Op("receiveInbound", "mutation($i: ReceiveInboundInput!) { receiveInbound(input: $i) "
       "{ __typename " + ERR + " } }",
       {"i": {"shipmentId": _s("shipmentId"),
              "lines": [{"sku": _s("sku"), "locationCode": _s("code2"), "quantity": 1}]}},
       WRITE, success="InboundReceipt"),
    Op("receiveTransfer", "mutation($i: ReceiveTransferInput!) { receiveTransfer(input: $i) "
       "{ __typename " + ERR + " } }", {"i": {"transferId": _s("transferId"), "quantity": 1}},
       WRITE, success="StockTransfer"),
]

# A key that lacks the operation's scope but holds the others.
LACKING = {READ: "write", WRITE: "read", ADMIN: "read_write"}


def _revoked_key(database_url, tenant_id) -> str:
    from sqlalchemy import create_engine

    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            key_id, key = key_module.create_key(conn, tenant_id, list(ALL), "to revoke")
            assert api_keys.revoke_key(conn, key_id) == 1
    finally:
        engine.dispose()
    return key


def _bad_credentials(tenant_id, database_url) -> dict[str, str | None]:
    other_secret = "another-secret-" + "y" * 40
    return {
        "none": None,
        "expired": token(tenant_id, exp=int(time.time()) - 3600),
        "bad signature": token(tenant_id, key=other_secret),
        "tampered": token(tenant_id)[:-4] + "AAAA",
        "alg none": alg_none_token(tenant_id),
        "wrong audience": token(tenant_id, aud="someone-else"),
        "wrong issuer": token(tenant_id, iss="https://evil.test"),
        "no tenant claim": token(tenant_id, tenant_id=None),
        "revoked key": _revoked_key(database_url, tenant_id),
        "unknown key": key_module.format_key(tenant_id, uuid.uuid4(), "guess"),
        "garbage": "not-a-token",
    }


def _whole_snapshot(sync_engine) -> dict:
    with sync_engine.connect() as conn:
        return {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("items", "locations", "stock_levels", "movements",
                              "reservations", "idempotency_keys")} | {
            "levels": conn.execute(text("SELECT sum(on_hand), sum(reserved), sum(version) "
                                        "FROM stock_levels")).one()}


async def test_every_operation_refuses_bad_credentials(secure_api, tenants, database_url,
                                                       sync_engine):
    a, _ = tenants
    credentials = _bad_credentials(a.id, database_url)
    before = _whole_snapshot(sync_engine)
    for op in OPS:
        for case, credential in credentials.items():
            response = await secure_api.post(op.query, op.vars(a.data), credential=credential)
            assert response.status_code == 401, (op.name, case, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            body = response.json()
            assert body["data"] is None, (op.name, case)
            assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
            # Nothing about why: the same message whatever was wrong.
            assert body["errors"][0]["message"] == "authentication required"
    assert _whole_snapshot(sync_engine) == before


async def test_every_operation_checks_its_scope(secure_api, tenants, sync_engine):
    a, _ = tenants
    before = tenant_snapshot(sync_engine, a.id)
    for op in OPS:
        for credential in (a.keys[LACKING[op.scope]],
                           token(a.id, [s for s in ALL if s != op.scope])):
            response = await secure_api.post(op.query, op.vars(a.data), credential=credential)
            assert response.status_code == 200, (op.name, response.text)
            body = response.json()
            assert body["data"] is None, (op.name, body)
            assert body["errors"] == [{"message": "not allowed",
                                       "extensions": {"code": "FORBIDDEN"}}], op.name
    assert tenant_snapshot(sync_engine, a.id) == before


def _normalised(body: dict, names: dict[str, str]) -> str:
    text_ = json.dumps(body, sort_keys=True)
    for key, value in sorted(names.items(), key=lambda kv: -len(kv[1])):
        text_ = text_.replace(value, f"<{key}>")
    return text_


async def test_another_tenants_ids_answer_like_unknown_ids(secure_api, tenants, sync_engine):
    a, b = tenants
    before = tenant_snapshot(sync_engine, a.id)
    foreign_ops = [op for op in OPS if op.foreign]
    for op in foreign_ops:
        for credential in (b.keys["all"], token(b.id)):
            foreign = await secure_api.post(op.query, op.vars(a.data), credential=credential)
            unknown_names = unknown_data()
            unknown = await secure_api.post(op.query, op.vars(unknown_names),
                                            credential=credential)
            assert foreign.status_code == unknown.status_code == 200, op.name
            assert (_normalised(foreign.json(), a.data)
                    == _normalised(unknown.json(), unknown_names)), (op.name, foreign.json())
            # (An unknown id cannot return data, so equality means A's data is not
            # returned either; error messages may echo the caller's own input.)
    assert tenant_snapshot(sync_engine, a.id) == before
    # B's full listings do not contain A's objects either.
    codes = await secure_api.gql("{ locations(first: 500) { nodes { code } } }",
                                 credential=b.keys["all"])
    assert a.data["code"] not in {n["code"] for n in codes["locations"]["nodes"]}


def _answered(op: Op, body: dict) -> bool:
    """Whether an operation did its work: a mutation returned its success type,
    a query found the object (or a non-empty list)."""
    if body.get("errors") or not body.get("data"):
        return False
    (value,) = body["data"].values()
    if op.success:
        return value["__typename"] == op.success
    return bool(value) and bool(value.get("nodes", True))


async def test_the_right_credential_works_and_the_ledger_records_who(
        secure_api, database_url, sync_engine):
    """The controls: every operation succeeds with a credential holding just
    its scope (so the refusals above are not an accident), and each change
    names its actor. A tenant of its own, so no other test's data moves."""
    tenant = uuid.uuid4()
    keys = {name: create_api_key(database_url, scopes, tenant, name)
            for name, scopes in (("all", ALL), ("write only", (WRITE,)), ("read", (READ,)))}
    data = await stock_for(secure_api.with_key(keys["all"]))
    for op in OPS:
        names = data if op.scope != ADMIN else {**data, "sku": unique("C-SKU"),
                                                "code": unique("C-LOC")}
        body = (await secure_api.post(op.query, op.vars(names),
                                      credential=token(tenant, [op.scope], sub="alice"))).json()
        assert _answered(op, body), (op.name, body)
    by_key = await secure_api.with_key(keys["write only"]).succeed(
        "receiveStock", {"sku": data["sku"], "locationCode": data["code"], "quantity": 1})
    assert by_key["__typename"] == "StockLevel"
    with sync_engine.connect() as conn:
        actors = dict(conn.execute(text(
            "SELECT kind, array_agg(DISTINCT actor) FROM movements WHERE tenant_id = :t "
            "GROUP BY kind"), {"t": tenant}).all())
        write_key_id = conn.execute(text(
            "SELECT id FROM api_keys WHERE tenant_id = :t AND name = 'write only'"),
            {"t": tenant}).scalar()
    assert actors["ADJUST"] == actors["SET"] == actors["COMMIT"] == ["jwt:alice"]
    assert actors["TRANSFER_OUT"] == actors["TRANSFER_IN"] == ["jwt:alice"]
    assert actors["RELEASE"] == ["jwt:alice"]
    assert f"key:{write_key_id}" in actors["RECEIVE"] and "jwt:alice" in actors["RECEIVE"]
    assert None not in actors["RECEIVE"]
    # ...and the API shows it.
    listed = await secure_api.gql(
        "query($s: String!) { movements(sku: $s, first: 1) { nodes { actor } } }",
        {"s": data["sku"]}, credential=keys["read"])
    assert listed["movements"]["nodes"] == [{"actor": f"key:{write_key_id}"}]
