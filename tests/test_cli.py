"""The command line as users run it: help, seed with progress, and the one-command
embedded start (database, migrations, demo data, GraphiQL URL)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from sqlalchemy import create_engine, text

from .support import ROOT, assert_invariants, create_database, free_port, run_cli


def test_help_lists_commands_and_environment():
    result = run_cli("--help")
    assert result.returncode == 0
    for word in ("serve", "migrate", "seed", "INVENTORY_DATABASE_URL", "INVENTORY_DATA_DIR"):
        assert word in result.stdout
    serve_help = run_cli("serve", "--help").stdout
    for option in ("--host", "--port", "--workers", "--data-dir"):
        assert option in serve_help


def test_seed_shows_progress_and_keeps_invariants(pg_base_url):
    url = create_database(pg_base_url, "inventory_seed")
    result = run_cli("seed", "--items", "2500", "--locations", "3",
                     env={"INVENTORY_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "2500/2500" in result.stderr and "Seeded 2500 items x 3 locations" in result.stdout
    again = run_cli("seed", "--items", "2500", "--locations", "3",
                    env={"INVENTORY_DATABASE_URL": url})
    assert "(0 new stock levels)" in again.stdout  # re-running adds nothing
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM stock_levels")).scalar() == 7500
            # The bulk load refreshed the planner's statistics itself.
            analyzed = dict(conn.execute(text(
                "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname IN ('items', 'locations', 'stock_levels', 'movements')")).all())
            assert analyzed == dict.fromkeys(
                ("items", "locations", "stock_levels", "movements"), True), analyzed
        assert_invariants(engine)
    finally:
        engine.dispose()


def test_bad_setting_says_what_to_fix():
    result = run_cli("migrate", env={"INVENTORY_POOL_SIZE": "lots",
                                     "INVENTORY_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert result.returncode != 0
    assert "INVENTORY_POOL_SIZE='lots' is not a number" in result.stderr


def test_serve_with_no_url_starts_embedded_database_with_demo_data(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "INVENTORY_DATABASE_URL"}
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "inventory.cli", "serve", "--port", str(port),
             "--data-dir", str(tmp_path / "data")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(log.read_text())
        assert f"GraphiQL at http://127.0.0.1:{port}/graphql" in log.read_text()
        # Authentication is on: the first run prints a demo key and how to send it.
        printed = log.read_text()
        assert "Authorization: Bearer" in printed
        key = next(w for w in printed.split() if w.startswith("inv_"))
        assert (tmp_path / "data" / "demo-api-key").read_text().strip() == key
        query = {"query": "{ items(first: 100) { nodes { sku totalOnHand } } "
                          "locations { nodes { code } } }"}
        url = f"http://127.0.0.1:{port}/graphql"
        assert httpx.post(url, json=query).status_code == 401
        data = httpx.post(url, json=query,
                          headers={"Authorization": f"Bearer {key}"}).json()["data"]
        assert len(data["items"]["nodes"]) == 50
        assert len(data["locations"]["nodes"]) == 4
        assert (tmp_path / "data" / "pgdata" / "PG_VERSION").exists()
    finally:
        process.terminate()
        process.wait(20)
