"""The ledger audit: `inventory verify` and the `ledgerAudit` query find every
kind of broken invariant, page through the items, and pass on a sound ledger."""
from __future__ import annotations

from uuid import uuid4

from sqlalchemy import create_engine, event, text

from inventory.db.audit import audit

from .support import create_api_key, create_database, run_cli


def test_verify_pages_passes_then_reports_each_corruption(pg_base_url):
    url = create_database(pg_base_url, "inventory_audit")
    env = {"INVENTORY_DATABASE_URL": url}
    assert run_cli("seed", "--items", "30", "--locations", "2", env=env).returncode == 0
    ok = run_cli("verify", "--page-size", "7", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "30 items, 60 stock levels, 60 ledger rows" in ok.stdout
    assert "in 5 pages of up to 7 items" in ok.stdout and "OK: no discrepancies" in ok.stdout

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            first, second, third, fourth = conn.execute(text(
                "SELECT item_id, location_id FROM stock_levels ORDER BY item_id, location_id "
                "LIMIT 4")).all()
            # A ledger row with the right delta but a wrong after-value (sums match).
            conn.execute(text("UPDATE movements SET on_hand_after = on_hand_after + 7 "
                              "WHERE item_id = :i AND location_id = :l"),
                         {"i": fourth.item_id, "l": fourth.location_id})
            # A level that drifted from its ledger.
            conn.execute(text("UPDATE stock_levels SET on_hand = on_hand + 1 "
                              "WHERE item_id = :i AND location_id = :l"),
                         {"i": first.item_id, "l": first.location_id})
            # A commit row with an impossible sign, and a reservation that holds
            # stock the level does not show as reserved.
            conn.execute(text(
                "UPDATE movements SET kind = 'COMMIT' WHERE item_id = :i AND location_id = :l"),
                {"i": third.item_id, "l": third.location_id})
            conn.execute(text("""
                WITH r AS (INSERT INTO reservations (tenant_id, status, expires_at)
                           SELECT tenant_id, 'ACTIVE', now() + interval '1 hour'
                           FROM items WHERE id = :i RETURNING tenant_id, id)
                INSERT INTO reservation_lines
                  (tenant_id, reservation_id, line_no, item_id, location_id, quantity)
                SELECT tenant_id, id, 1, :i, :l, 1 FROM r"""),
                {"i": second.item_id, "l": second.location_id})
            # Ledger rows for an item that does not exist.
            conn.execute(text("""
                INSERT INTO movements (tenant_id, item_id, location_id, kind, on_hand_delta,
                    reserved_delta, on_hand_after, reserved_after, version)
                SELECT tenant_id, gen_random_uuid(), location_id, 'RECEIVE', 1, 0, 1, 0, 1
                FROM stock_levels LIMIT 1"""))
        with engine.connect() as conn:
            report = audit(conn, page_size=4)
        checks = {d.check for d in report.discrepancies}
        assert report.pages == 8
        assert {
            "level differs from ledger sums",
            "conservation per item",
            "ledger delta has the wrong sign for its kind",
            "reserved differs from active reservation lines",
            "ledger rows for an item that does not exist",
            "ledger after-values do not follow from the previous row",
        } <= checks, checks
        chain = [d for d in report.discrepancies if d.check.startswith("ledger after-values")]
        assert [(d.item_id, d.location_id) for d in chain] == [
            (fourth.item_id, fourth.location_id)]
    finally:
        engine.dispose()
    bad = run_cli("verify", env=env)
    assert bad.returncode == 1
    assert bad.stdout.count("DISCREPANCY ") == len(report.discrepancies)
    assert "FAILED" in bad.stdout


def test_a_page_aborted_with_40001_is_read_again_and_the_audit_completes(pg_base_url):
    """CockroachDB can abort a read-only page with 40001. Here the pages run
    SERIALIZABLE, as there, and PostgreSQL aborts the first one for real: writer
    W has read level B and written level A; T then writes B and commits; the
    page takes its snapshot (reading the items), W commits, and the page reads
    A's version from before W. Page -> W -> T with T committed first is a
    dangerous structure, so PostgreSQL's serializable isolation cancels the page.
    The audit reads the page again in a new snapshot and completes. (W reads and
    T writes an item row, not a level: T's update scans the small table and
    would read level A too, making W the one cancelled.)"""
    url = create_database(pg_base_url, "inventory_audit_retry")
    seeded = run_cli("seed", "--items", "3", "--locations", "1",
                     env={"INVENTORY_DATABASE_URL": url})
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    writers = create_engine(url, isolation_level="SERIALIZABLE")
    auditor = create_engine(url)
    sqlstates: list[str | None] = []
    page_reads: list[str] = []
    try:
        with writers.connect() as conn:
            a, b = conn.execute(text(
                "SELECT item_id FROM stock_levels ORDER BY item_id LIMIT 2")).scalars()
        w = writers.connect()
        w.execute(text("SELECT name FROM items WHERE id = :i"), {"i": b})
        w.execute(text("UPDATE stock_levels SET on_hand = on_hand WHERE item_id = :i"),
                  {"i": a})
        with writers.begin() as t:
            t.execute(text("UPDATE items SET name = name WHERE id = :i"), {"i": b})

        @event.listens_for(auditor, "after_cursor_execute")
        def commit_w_after_the_page_began(conn, cursor, statement, *args):
            if statement.lstrip().startswith("SELECT id, sku, available FROM items"):
                page_reads.append(statement)
                if w.in_transaction():
                    w.commit()

        @event.listens_for(auditor, "handle_error")
        def record(context):
            sqlstates.append(getattr(context.original_exception, "sqlstate", None))

        with auditor.connect() as conn:
            report = audit(conn, page_size=10, isolation="SERIALIZABLE")
        w.close()
    finally:
        writers.dispose()
        auditor.dispose()
    assert sqlstates == ["40001"], sqlstates
    # The first page twice (aborted, then read again), then the empty page.
    assert len(page_reads) == 3, page_reads
    assert report.ok, report.discrepancies
    assert (report.items, report.levels, report.ledger_rows, report.pages) == (3, 3, 3, 1)


def test_verify_says_what_to_do_when_the_database_is_unreachable(tmp_path):
    url = f"postgresql+psycopg://nobody@/nowhere?host={tmp_path}"
    result = run_cli("verify", env={"INVENTORY_DATABASE_URL": url})
    assert result.returncode == 2
    assert "audit could not run" in result.stderr and "inventory migrate" in result.stderr


AUDIT = """query($n: Int) { ledgerAudit(pageSize: $n) {
    ok items levels ledgerRows pages overdueActiveReservations discrepancyCount
    discrepancies { check sku detail } } }"""


async def test_ledger_audit_query_passes_then_reports_a_broken_level(
        api, database_url, sync_engine, stocked_level):
    """`ledgerAudit` audits the caller's tenant (one of its own here, so every
    figure is exact): sound, then with a level moved behind the ledger's back,
    which it reports by sku. The level is put back afterwards."""
    client = api.with_key(create_api_key(database_url, tenant_id=uuid4(), name="auditor"))
    sku, a, b = await stocked_level(5, locations=2, client=client)
    other, _ = await stocked_level(3, client=client)
    sound = (await client.gql(AUDIT, {"n": 1}))["ledgerAudit"]
    assert sound == {"ok": True, "items": 2, "levels": 3, "ledgerRows": 3, "pages": 2,
                     "overdueActiveReservations": 0, "discrepancyCount": 0,
                     "discrepancies": []}
    moved = text("UPDATE stock_levels SET on_hand = on_hand + :d FROM items i, locations l "
                 "WHERE i.id = stock_levels.item_id AND l.id = stock_levels.location_id "
                 "AND i.sku = :s AND l.code = :c")
    with sync_engine.begin() as conn:
        conn.execute(moved, {"d": 1, "s": sku, "c": b})
    try:
        broken = (await client.gql(AUDIT, {"n": 1}))["ledgerAudit"]
    finally:
        with sync_engine.begin() as conn:
            conn.execute(moved, {"d": -1, "s": sku, "c": b})
    assert broken["ok"] is False and broken["discrepancyCount"] >= 1, broken
    assert {(d["check"], d["sku"]) for d in broken["discrepancies"]} >= {
        ("level differs from ledger sums", sku)}, broken
    assert {d["sku"] for d in broken["discrepancies"]} == {sku}, broken
    bad = await client.raw("{ ledgerAudit(pageSize: 0) { ok } }")
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_audit_holds_shipments_and_transfers_to_their_ledger_rows(api, sync_engine):
    """Incoming without a shipment, and a shipment row that disagrees with its
    ledger rows, are both found (issue 15, Builds 3 and 4)."""
    sku, code, other = await api.item(), await api.location(), await api.location()
    await api.receive(sku, code, 5)
    await api.succeed("createInboundShipment", {
        "lines": [{"sku": sku, "locationCode": code, "quantity": 4}]})
    await api.succeed("shipTransfer", {"sku": sku, "fromLocationCode": code,
                                       "toLocationCode": other, "quantity": 2})
    with sync_engine.connect() as conn:
        tenant, item_id = conn.execute(text("SELECT tenant_id, id FROM items WHERE sku = :s"),
                                       {"s": sku}).one()

    def found() -> set[str]:
        with sync_engine.connect() as conn:
            return {d.check for d in audit(conn, tenant_id=tenant).discrepancies
                    if d.item_id == item_id}

    def tamper(statement: str) -> None:
        with sync_engine.begin() as conn:
            conn.execute(text(statement), {"i": item_id})

    assert found() == set()
    tamper("UPDATE inbound_lines SET received = 1 WHERE item_id = :i")
    assert found() == {"shipment or transfer differs from its ledger rows",
                       "incoming differs from what shipments and transfers expect"}
    tamper("UPDATE inbound_lines SET received = 0 WHERE item_id = :i")
    tamper("UPDATE stock_transfers SET lost = 1 WHERE item_id = :i")
    assert "shipment or transfer differs from its ledger rows" in found()
    tamper("UPDATE stock_transfers SET lost = 0 WHERE item_id = :i")
    assert found() == set()
