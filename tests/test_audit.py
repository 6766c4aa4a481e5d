"""The ledger audit: `inventory verify` and the `ledgerAudit` query find every
kind of broken invariant, page through the items, and pass on a sound ledger."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from inventory.db.audit import audit

from .support import create_database, run_cli, unique


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


def test_verify_says_what_to_do_when_the_database_is_unreachable(tmp_path):
    url = f"postgresql+psycopg://nobody@/nowhere?host={tmp_path}"
    result = run_cli("verify", env={"INVENTORY_DATABASE_URL": url})
    assert result.returncode == 2
    assert "audit could not run" in result.stderr and "inventory migrate" in result.stderr


async def test_ledger_audit_query(api):
    sku, code = unique("AUD"), unique("LOC")
    await api.location(code)
    await api.item(sku)
    await api.receive(sku, code, 5)
    data = await api.gql("""{ ledgerAudit(pageSize: 3) {
        ok items levels ledgerRows pages overdueActiveReservations discrepancyCount
        discrepancies { check sku detail } } }""")
    result = data["ledgerAudit"]
    assert result["ok"] is True and result["discrepancyCount"] == 0, result
    assert result["items"] >= 1 and result["levels"] >= 1 and result["ledgerRows"] >= 1
    assert result["pages"] >= result["items"] / 3
    bad = await api.raw("{ ledgerAudit(pageSize: 0) { ok } }")
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
