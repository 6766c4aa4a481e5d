"""CSV import and export: `inventory import levels` and `inventory export` as
users run them, and the streamed HTTP exports with their credential checks."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

from .support import READ, UNAUDITED, WRITE, create_api_key, database_key, run_cli


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def _import(database_url, *args):
    UNAUDITED.add(database_key(database_url))  # the ledger audit runs after the test
    return run_cli("import", "levels", *map(str, args),
                   env={"INVENTORY_DATABASE_URL": database_url})


def _movements(sync_engine, sku) -> int:
    from sqlalchemy import text
    with sync_engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM movements m JOIN items i ON "
                                 "i.id = m.item_id WHERE i.sku = :s"), {"s": sku}).scalar()


async def test_import_sets_and_adjusts_and_a_rerun_changes_nothing(
        api, database_url, sync_engine, tmp_path):
    sku = await api.item()
    a, b = await api.location(), await api.location()
    await api.receive(sku, b, 10)
    levels = _write(tmp_path, "levels.csv",
                    f"sku,locationCode,onHand,reason\n{sku},{a},7,count\n{sku},{b},4,count\n")
    done = _import(database_url, levels)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 rows applied" in done.stdout
    assert (await api.level(sku, a))["onHand"] == 7 and (await api.level(sku, b))["onHand"] == 4
    deltas = _write(tmp_path, "deltas.csv", f"sku,locationCode,delta\n{sku},{a},+3\n{sku},{b},-1\n")
    assert _import(database_url, deltas).returncode == 0
    written = _movements(sync_engine, sku)
    for path in (levels, deltas, deltas):  # the same files again: nothing changes
        again = _import(database_url, path)
        assert again.returncode == 0, again.stdout + again.stderr
    assert _movements(sync_engine, sku) == written
    assert (await api.level(sku, a))["onHand"] == 10 and (await api.level(sku, b))["onHand"] == 3


async def test_dry_run_checks_and_writes_nothing(api, database_url, sync_engine, tmp_path):
    sku, code = await api.item(), await api.location()
    path = _write(tmp_path, "dry.csv", f"sku,locationCode,onHand\n{sku},{code},5\n")
    done = _import(database_url, path, "--dry-run")
    assert done.returncode == 0 and "1 rows checked, all valid" in done.stdout, done.stdout
    assert _movements(sync_engine, sku) == 0


async def test_rows_the_stock_rules_refuse_are_reported_the_rest_apply(
        api, database_url, tmp_path):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 2)
    path = _write(tmp_path, "short.csv",
                  f"sku,locationCode,delta\n{sku},{code},-5\n{sku},{code},1\n")
    done = _import(database_url, path)
    assert done.returncode == 1
    assert "line 2: INSUFFICIENT_STOCK" in done.stdout, done.stdout
    assert (await api.level(sku, code))["onHand"] == 3


async def test_cli_export_levels_csv_and_movements_jsonl(api, database_url):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 6)
    env = {"INVENTORY_DATABASE_URL": database_url}
    levels = run_cli("export", "levels", env=env)
    assert levels.returncode == 0, levels.stderr
    rows = list(csv.DictReader(io.StringIO(levels.stdout)))
    mine = [r for r in rows if r["sku"] == sku]
    assert len(mine) == 1 and mine[0]["updatedAt"]
    # A column per quantity state (domain/quantities.py), all 0 but on hand here.
    assert {k: v for k, v in mine[0].items() if v != "0"} == {
        "sku": sku, "locationCode": code, "onHand": "6", "available": "6", "version": "1",
        "updatedAt": mine[0]["updatedAt"]}
    since = datetime.now(timezone.utc).isoformat()
    await api.receive(sku, code, 1)
    moves = run_cli("export", "movements", "--since", since, "--format", "jsonl", env=env)
    assert moves.returncode == 0, moves.stderr
    lines = [json.loads(line) for line in moves.stdout.splitlines()]
    assert [(m["sku"], m["kind"], m["onHandAfter"]) for m in lines if m["sku"] == sku] == \
        [(sku, "RECEIVE", 7)]
    assert all(m["createdAt"] >= since[:19] for m in lines)


async def test_http_exports_stream_for_the_callers_tenant(api, database_url):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 3)
    response = await api.http("GET", "/export/levels.csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    mine = [r for r in csv.DictReader(io.StringIO(response.text)) if r["sku"] == sku]
    assert [(r["locationCode"], r["onHand"], r["available"], r["version"]) for r in mine] == \
        [(code, "3", "3", "1")]
    since = "2000-01-01T00:00:00Z"
    response = await api.http("GET", "/export/movements.jsonl", params={"since": since})
    assert response.status_code == 200
    kinds = [json.loads(line)["kind"] for line in response.text.splitlines()
             if json.loads(line)["sku"] == sku]
    assert kinds == ["RECEIVE"]
    # Another tenant sees none of it.
    other = create_api_key(database_url, scopes=[READ], tenant_id=__import__("uuid").uuid4())
    response = await api.http("GET", "/export/levels.csv",
                              headers={"Authorization": f"Bearer {other}"})
    assert response.status_code == 200 and sku not in response.text


async def test_http_export_needs_a_credential_with_read(api, database_url):
    assert (await api.http("GET", "/export/levels.csv",
                           headers={"Authorization": ""})).status_code == 401
    writer = create_api_key(database_url, scopes=[WRITE])
    refused = await api.http("GET", "/export/movements.jsonl",
                             headers={"Authorization": f"Bearer {writer}"})
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    bad = await api.http("GET", "/export/movements.jsonl", params={"since": "yesterday"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["extensions"]["code"] == \
        "INVALID_INPUT"
    assert (await api.http("GET", "/export/stock.xml")).status_code == 400
