"""CockroachDB compatibility, without CockroachDB: every statement the service
sends is parsed with PostgreSQL's own parser (pglast) and checked against the
rules in tests/cockroach_compat.py. Statements come from three places: the
module-level statements of inventory/ compiled with the cockroachdb dialect,
every statement the app sends while it runs each operation here (captured from
SQLAlchemy's cursor events on a real PostgreSQL), and the migrations, revision by
revision. Not covered: statements only built on CockroachDB (the hash-sharded
index DDL, the changefeed), which PostgreSQL's parser does not read."""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import itertools
import pkgutil
import re
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy_cockroachdb.psycopg import CockroachDBDialect_psycopg
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

import inventory
from inventory.web.app import create_app
from inventory.config import Settings
from inventory.db import audit, dialect, ledger, live, migrate, queries
from inventory.db.driver import DriverStatement
from inventory.db.engine import create_sync_engine
from inventory.domain.quantities import NAMES
from inventory.domain.webhooks import WebhookSettings, parse_networks

from .cockroach_compat import migration_violations, violations
from .support import create_database
from .support import Api, create_api_key

ROOT = Path(__file__).resolve().parent.parent
POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")
# Sent by SQLAlchemy's PostgreSQL dialect when it connects, not by the service.
DIALECT_SETUP = re.compile(r"^\s*(select pg_catalog\.version\(\)|select current_schema\(\)"
                           r"|show standard_conforming_strings|show transaction isolation level"
                           r"|show default_transaction_isolation|;?\s*$)", re.I)
PG_DIALECT = PGDialect_psycopg()


def _revision_module(name: str):
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "migrations" / "versions" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


POSTGRESQL_ONLY_DDL = set(_revision_module("0003_ledger_transaction_ids").POSTGRESQL_STATEMENTS)
POSTGRESQL_ONLY = {str(text(sql).compile(dialect=PG_DIALECT)) for sql in dialect.POSTGRESQL_ONLY}


def compiled(stmt, for_dialect) -> str:
    sql = str(stmt.compile(dialect=for_dialect))
    return POSTCOMPILE.sub(lambda m: f"%({m.group(1)})s", sql)


def check(statements: dict[str, str]) -> list[str]:
    """'where: rule: statement' for every rule broken."""
    return [f"{where}: {rule}\n    {sql.strip()[:300]}"
            for where, sql in statements.items() for rule in violations(sql)]


@pytest.mark.parametrize("sql, rule", [
    ("WITH a AS (UPDATE t SET x = 1 RETURNING id) UPDATE t SET y = 2", "modified twice"),
    ("SELECT now() - make_interval(secs => 5)", "named-argument"),
    ("SELECT pg_notify('c', 'x')", "pg_notify"),
    ("LISTEN c", "LISTEN/NOTIFY"),
    ("NOTIFY c", "LISTEN/NOTIFY"),
    ("SELECT pg_advisory_xact_lock(1)", "advisory lock"),
    ("SELECT to_tsvector('x')", "kept list"),
    ("SELEC 1", "does not parse"),
])
def test_each_rule_names_what_it_caught(sql, rule):
    found = violations(sql)
    assert found and rule in found[0], found


def test_a_revision_mixing_ddl_and_dml_is_caught():
    assert migration_violations("x", ["ALTER TABLE t ADD COLUMN c INT",
                                      "UPDATE t SET c = 0"])
    assert not migration_violations("x", ["ALTER TABLE t ADD COLUMN c INT",
                                          "UPDATE alembic_version SET version_num = 'x'"])


def _module_statements() -> dict[str, object]:
    found: dict[str, object] = {}
    for info in pkgutil.walk_packages(inventory.__path__, "inventory."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, Executable) and isinstance(value, ClauseElement):
                found[f"{info.name}.{name}"] = value
            elif isinstance(value, DriverStatement):  # sent through psycopg directly
                found[f"{info.name}.{name}"] = value.statement
    # Every shape of the items page (built when first used, sent on the driver).
    for shape in itertools.product((False, True), (False, True), (None, False, True),
                                   (None, False, True)):
        found[f"queries._items_page_statement{shape}"] = \
            queries._items_page_statement(*shape).statement
    # Every shape of the guarded level change: which states it lowers, whether
    # it compares on hand, whether it changes the item's available; and of the
    # upsert.
    for size in range(len(NAMES) + 1):
        for lowers in itertools.combinations(NAMES, size):
            for expects, to_item in itertools.product((False, True), repeat=2):
                found[f"ledger._change_statement{(lowers, expects, to_item)}"] = \
                    ledger._change_statement(frozenset(lowers), expects, to_item)
    for to_item in (False, True):
        found[f"ledger._add_statement({to_item})"] = ledger._add_statement(to_item)
    return found


def test_module_statements_compiled_for_cockroachdb():
    crdb = CockroachDBDialect_psycopg()
    statements = {where: compiled(stmt, crdb) for where, stmt in _module_statements().items()}
    statements = {w: s for w, s in statements.items()
                  if compiled(_module_statements()[w], PG_DIALECT) not in POSTGRESQL_ONLY}
    assert len(statements) >= 20, sorted(statements)  # the walk found the service's SQL
    assert check(statements) == []


def test_cockroachdb_only_statements_that_postgresql_parses():
    """Statements sent only to CockroachDB that PostgreSQL's parser still reads:
    the changefeed reader's clock and the follower-read staleness."""
    crdb = CockroachDBDialect_psycopg()
    statements = {"dialect.CRDB_NOW": dialect.CRDB_NOW,
                  "dialect.staleness_sql(cockroachdb)": dialect.staleness_sql(crdb)}
    assert check(statements) == []


@contextlib.contextmanager
def captured() -> list[str]:
    sent: list[str] = []

    def note(conn, cursor, statement, *rest):
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(Engine, "before_cursor_execute", note)


async def _every_operation(api: Api) -> None:
    code, other = await api.location(), await api.location()
    sku = await api.item(reorder_point=2)
    await api.receive(sku, code, 20)
    await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -1})
    await api.mutate("setStock", {"sku": sku, "locationCode": code, "onHand": 18,
                                  "compareQuantity": 19})
    await api.mutate("transferStock", {"sku": sku, "fromLocationCode": code,
                                       "toLocationCode": other, "quantity": 2})
    line = {"sku": sku, "locationCode": code, "quantity": 1}
    one = await api.mutate("reserveStock", {"lines": [line]}, "... on Reservation { id }")
    keyed = await api.mutate("reserveStock", {"lines": [line, {**line, "locationCode": other}],
                                              "idempotencyKey": str(uuid.uuid4())},
                             "... on Reservation { id }")
    await api.mutate("extendReservation", {"reservationId": one["id"], "ttlSeconds": 600})
    await api.mutate("commitReservation", {"reservationId": keyed["id"],
                                           "lines": [{"lineNumber": 1, "quantity": 1}]})
    await api.mutate("commitReservation", {"reservationId": one["id"]})
    await api.mutate("releaseReservation", {"reservationId": keyed["id"]})
    await api.mutate("reserveStock", {"lines": [{**line, "quantity": 1000}]})  # refused
    channel = f"CH-{uuid.uuid4().hex[:8]}"
    await api.mutate("createChannel", {"code": channel, "name": "c", "locationCodes": [code]})
    await api.mutate("updateChannel", {"code": channel, "expectedVersion": 1, "name": "d",
                                       "locationCodes": [other, code]})
    by_sku = await api.mutate("reserveStock", {
        "lines": [{"sku": sku, "channelCode": channel, "quantity": 2}],
        "allocation": {"strategy": "MOST_AVAILABLE", "allowSplit": True}},
        "... on Reservation { id }")
    await api.mutate("releaseReservation", {"reservationId": by_sku["id"]})
    await api.gql("""query($sku: String!, $channel: String!) {
        item(sku: $sku) { availability(channelCode: $channel) { available } }
        channel(code: $channel) { version locations { code } }
        channels(first: 5) { nodes { code } } }""", {"sku": sku, "channel": channel})
    await api.gql("""query($sku: String!, $code: String!) {
        item(sku: $sku) { sku stockLevels { onHand } totalOnHand }
        stockLevel(sku: $sku, locationCode: $code) { onHand reserved available }
        items(first: 5, filter: {lowStock: false}) { edges { node { sku } } }
        locations(first: 5) { edges { node { code } } } }""", {"sku": sku, "code": code})
    # Bulk updates (one statement for every changed line).
    await api.mutate("bulkSetStock", {"lines": [{"sku": sku, "locationCode": code, "onHand": 30},
                                                {"sku": sku, "locationCode": other, "onHand": 1}]})
    await api.mutate("bulkAdjustStock", {"lines": [{"sku": sku, "locationCode": code, "delta": -1}],
                                         "idempotencyKey": str(uuid.uuid4())})
    # Catalogue edits and queries (issue 15, Build 6).
    await api.mutate("updateItem", {"sku": sku, "version": 0, "name": "Renamed"})
    await api.gql("""query($sku: String!) {
        reservations(first: 5, after: null, filter: {status: ACTIVE, reference: "r",
          expiresBefore: "2030-01-01T00:00:00Z"}) { nodes { id lines { sku } } }
        movements(sku: $sku, filter: {kinds: [RECEIVE], createdAfter: "2020-01-01T00:00:00Z",
          createdBefore: "2030-01-01T00:00:00Z"}) { nodes { kind } } }""", {"sku": sku})
    # Stock on its way (issue 15, Builds 3 and 4).
    line = {"sku": sku, "locationCode": code, "quantity": 2}
    shipment = await api.succeed("createInboundShipment", {
        "lines": [line], "expectedAt": "2030-01-01T00:00:00Z"}, "... on InboundShipment { id }")
    await api.succeed("receiveInbound", {"shipmentId": shipment["id"], "lines": [
        {**line, "quantity": 1}]})
    await api.succeed("cancelInbound", {"shipmentId": shipment["id"]})
    transfer = await api.succeed("shipTransfer", {
        "sku": sku, "fromLocationCode": code, "toLocationCode": other, "quantity": 2,
        "expectedAt": "2030-01-01T00:00:00Z"}, "... on StockTransfer { id }")
    await api.succeed("receiveTransfer", {"transferId": transfer["id"], "quantity": 1})
    await api.succeed("cancelTransfer", {"transferId": transfer["id"]})
    await api.gql("""query($sku: String!, $code: String!) {
        stockLevel(sku: $sku, locationCode: $code) { incoming nextExpectedAt }
        inboundShipments(first: 2, filter: {status: CANCELLED}) { nodes { id } }
        stockTransfers(first: 2, filter: {status: CANCELLED}) { nodes { id from { onHand } } }
        }""", {"sku": sku, "code": code})
    await api.mutate("archiveItem", {"sku": sku})
    await api.mutate("archiveLocation", {"code": other})
    await api.mutate("receiveStock", {"sku": sku, "locationCode": code, "quantity": 1})  # refused
    # Webhooks (loopback allowed by the app's settings below; nothing listens there).
    hook = await api.mutate("createWebhook", {"url": "http://127.0.0.1:9/h",
                                              "events": ["stock_level.changed"]},
                            "... on WebhookSecret { webhook { id } }")
    hook_id = hook["webhook"]["id"]
    await api.mutate("updateWebhook", {"id": hook_id, "description": "d"})
    await api.mutate("rotateWebhookSecret", {"id": hook_id})
    await api.gql("""query($id: ID!) { webhooks { id }
        webhookDeliveries(webhookId: $id, status: PENDING) { id } }""", {"id": hook_id})
    await api.mutate("deleteWebhook", {"id": hook_id})


async def test_statements_the_app_sends(database_url, sync_engine, monkeypatch):
    monkeypatch.setenv("INVENTORY_RATE_READ", "0")
    monkeypatch.setenv("INVENTORY_RATE_WRITE", "0")
    key = create_api_key(database_url)
    with captured() as sent:
        app = create_app(replace(Settings.from_env(), database_url=database_url,
                                 sweep_interval_s=0, graphiql=False,
                                 webhooks=WebhookSettings(
                                     allowed_networks=parse_networks("127.0.0.0/8"))))
        ctx = app.state.ctx
        try:
            async with app.router.lifespan_context(app):
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                             base_url="http://app", timeout=30) as client:
                    await _every_operation(Api(client, "http://app", api_key=key))
                async with ctx.db.reader.connect() as conn:  # the subscription replay
                    await live.changes_after_versions(
                        conn, uuid.UUID(int=1), {(uuid.uuid4(), uuid.uuid4()): 0},
                        {(uuid.uuid4(), uuid.uuid4()): 5})
        finally:
            await ctx.db.dispose()
        with sync_engine.connect() as conn:
            audit.audit(conn, page_size=50, overdue_grace_s=1.5)
    statements = {f"sent #{n}": sql for n, sql in enumerate(dict.fromkeys(sent))
                  if not DIALECT_SETUP.match(sql) and sql not in POSTGRESQL_ONLY}
    assert len(statements) >= 20, statements
    assert check(statements) == []


def test_migrations_revision_by_revision(pg_base_url):
    url = create_database(pg_base_url, "inventory_compat_migrations")
    script = migrate.ScriptDirectory.from_config(migrate.alembic_config(url))
    problems: list[str] = []
    for revision in reversed(list(script.walk_revisions())):
        with captured() as sent:
            migrate.upgrade(url, revision.revision)
        # Alembic's own look-ups through SQLAlchemy's catalog queries are the
        # dialect's (the cockroachdb dialect has its own); PostgreSQL-only DDL is
        # guarded by dialect in the revision.
        mine = [s for s in sent if not DIALECT_SETUP.match(s) and "pg_catalog." not in s
                and s not in POSTGRESQL_ONLY_DDL]
        problems += check({f"revision {revision.revision} #{n}": s
                           for n, s in enumerate(mine)})
        problems += migration_violations(
            revision.revision, [s for s in mine if "alembic_version" not in s])
    assert problems == []


def test_no_notification_or_advisory_lock_outside_the_postgresql_feed():
    """Source text too, for statements no test sends: LISTEN/NOTIFY and
    pg_notify only in the PostgreSQL-only feed module (none today), no advisory
    locks anywhere."""
    allowed = {ROOT / "inventory/db/changes.py", ROOT / "inventory/db/dialect.py"}
    pattern = re.compile(r"pg_notify|\bLISTEN\s|\bNOTIFY\s|pg_(try_)?advisory")
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                 for path in sorted((ROOT / "inventory").rglob("*.py")) if path not in allowed
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
