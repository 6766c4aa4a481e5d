"""The /dashboard page in a real headless Chromium, against `inventory serve`:
a write shows in the table, the feed and the chart; the search and the
location filter narrow the table; low stock and per-location totals follow
live; a dropped connection shows, then recovers and replays what was missed;
wrong, revoked and under-scoped keys get a clear message; 10,000 stock levels
load (waiting when the read budget runs out) without putting 10,000 rows in
the page. Screenshots are saved (their
folder is printed; INVENTORY_SCREENSHOTS chooses it)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from .support import Api, create_api_key, create_database, unique

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason="chromium/chromium-driver missing: run scripts/bootstrap as root",
)

STATUS = "document.getElementById('status').textContent"
BANNER = "document.getElementById('banner').hidden ? '' : document.getElementById('banner').textContent"
MESSAGE = "document.getElementById('auth-message').textContent"
FORM_SHOWN = "!document.getElementById('auth').hidden"
MAIN_SHOWN = "!document.getElementById('main').hidden"
ROWS = "[...document.querySelectorAll('#levels tbody tr')]"
# Records the page's long tasks (main thread busy > 50 ms) from its first script on.
LONG_TASKS = """window.__longTasks = [];
new PerformanceObserver(list => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
  .observe({type: "longtask", buffered: true});"""


def row(sku: str, code: str) -> str:
    return (f"(document.querySelector('#levels tbody tr[data-sku={json.dumps(sku)}]"
            f"[data-location={json.dumps(code)}]') || {{dataset: {{}}}})")


def feed_entries(sku: str) -> str:
    return (f"[...document.querySelectorAll('#feed li[data-sku={json.dumps(sku)}]')].map(li => "
            "[li.dataset.kind, li.querySelector('.qty').textContent, "
            "li.querySelector('.meta').dataset.actor, li.querySelector('.meta').dataset.reference])")


CHART = "document.getElementById('chart').dataset"
CHART_LAST = "(document.querySelector('#chart svg') || {dataset: {}}).dataset.last"
CHART_POINTS = "Number((document.querySelector('#chart svg') || {dataset: {}}).dataset.points || 0)"


def js(browser, expression: str):
    return browser.execute_script(f"return {expression}")


async def wait_for(browser, expression: str, expected, timeout: float = 10) -> float:
    """Polls a JS expression until it equals `expected` (or satisfies it, when
    `expected` is callable); returns the seconds taken."""
    started = time.monotonic()
    while True:
        value = js(browser, expression)
        if (expected(value) if callable(expected) else value == expected):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{expression} is {value!r}, expected {expected!r}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("INVENTORY_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"dashboard screenshots in {folder}")
    return folder


def shoot(browser, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path)), path
    assert path.stat().st_size > 10_000, f"{path} looks blank"


@pytest.fixture(scope="module")
def dashboard_server(start_api_server):
    # No credential cache: a revoked key is refused on its next request.
    with start_api_server("api-dash", INVENTORY_AUTH_CACHE_SECONDS="0") as server:
        yield server


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LONG_TASKS})
    yield driver
    driver.quit()


def open_dashboard(browser, server, key: str | None = None) -> None:
    # The key travels in the URL fragment (never sent to the server); the page
    # keeps it in sessionStorage and takes it out of the address bar.
    browser.get(f"{server.url}/dashboard#key={key or server.api_key}")


async def search(browser, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, "search")
    field.clear()
    field.send_keys(text)
    await wait_for(browser, f"{ROWS}.every(r => r.dataset.sku.toLowerCase().includes("
                            f"{json.dumps(text.lower())}))", True)


async def choose_location(browser, code: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "location-filter")).select_by_value(code)
    await wait_for(browser, f"{ROWS}.every(r => r.dataset.location === {json.dumps(code)})", True)


async def open_chart(browser, sku: str) -> None:
    """Clicks the SKU's row and waits for its chart to be replayed from the ledger."""
    browser.find_element("css selector", f'#levels tbody tr[data-sku="{sku}"]').click()
    await wait_for(browser, f"{CHART}.sku + ' ' + {CHART}.ready", f"{sku} true")


async def reserve(api: Api, sku: str, code: str, quantity: int, reference: str) -> None:
    result = await api.mutate("reserveStock", {
        "lines": [{"sku": sku, "locationCode": code, "quantity": quantity}],
        "ttlSeconds": 600, "reference": reference}, "... on Reservation { id }")
    assert result["__typename"] == "Reservation", result


async def test_a_write_shows_in_the_table_the_feed_and_the_chart(
        browser, dashboard_server, api, screenshots, stocked_level):
    sku, code = await stocked_level(10, reorder_point=3)
    open_dashboard(browser, dashboard_server)
    await wait_for(browser, STATUS, "live", 30)
    assert browser.current_url == dashboard_server.url + "/dashboard"
    # Everything came from this server (scripts, styles, data), nothing from outside.
    assert js(browser, "performance.getEntriesByType('resource').map(e => e.name)"
                       f".filter(n => !n.startsWith({json.dumps(dashboard_server.url + '/')}))") == []

    await search(browser, sku)
    await choose_location(browser, code)
    assert js(browser, f"{ROWS}.length") == 1
    assert js(browser, f"{row(sku, code)}.dataset.available") == "10"
    await open_chart(browser, sku)
    assert js(browser, CHART_LAST) == "10" and js(browser, CHART_POINTS) == 1
    assert js(browser, f"document.querySelector('.total[data-location={json.dumps(code)}]')"
                       ".dataset.available") == "10"

    # A reservation made through another API process.
    reference = unique("order")
    await reserve(api, sku, code, 2, reference)
    took = await wait_for(browser, f"{row(sku, code)}.dataset.available", "8", 10)
    await wait_for(browser, CHART_LAST, "8")
    assert js(browser, CHART_POINTS) == 2
    await wait_for(browser, f"{feed_entries(sku)}.length", 2)
    kind, quantity, actor, shown_reference = js(browser, feed_entries(sku))[0]
    assert (kind, quantity, shown_reference) == ("RESERVE", "+2 reserved", reference)
    assert actor.startswith("key:"), actor
    assert js(browser, f"{feed_entries(sku)}[1].slice(0, 2)") == ["RECEIVE", "+10 on hand"]
    assert js(browser, f"{row(sku, code)}.classList.contains('low')") is False

    # Down to its reorder point: low in the table and the low-stock panel, and
    # the location's total follows.
    await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -5})
    await wait_for(browser, f"{row(sku, code)}.dataset.available", "3")
    assert js(browser, f"{row(sku, code)}.classList.contains('low')") is True
    await wait_for(browser, "[...document.querySelectorAll('#low-stock li[data-sku]')]"
                            ".map(li => [li.dataset.sku, li.dataset.available])", [[sku, "3"]])
    assert js(browser, f"document.querySelector('.total[data-location={json.dumps(code)}]')"
                       ".dataset.available") == "3"
    await wait_for(browser, CHART_LAST, "3")
    await wait_for(browser, f"{feed_entries(sku)}[0].slice(0, 2)", ["ADJUST", "\u22125 on hand"])
    # Units set aside as damaged: their own column, the feed's wording, and
    # available (table and chart) without them.
    await api.mutate("moveStock", {"sku": sku, "locationCode": code, "from": "AVAILABLE",
                                   "to": "DAMAGED", "quantity": 1})
    await wait_for(browser, f"{row(sku, code)}.dataset.available", "2")
    assert js(browser, f"{row(sku, code)}.querySelector('td.damaged').textContent") == "1"
    assert js(browser, "document.querySelector('#levels thead th.damaged').textContent") == \
        "Damaged"
    await wait_for(browser, CHART_LAST, "2")
    await wait_for(browser, f"{feed_entries(sku)}[0].slice(0, 2)", ["MOVE", "+1 damaged"])
    shoot(browser, screenshots, "1-write-in-table-feed-chart")
    print(f"the reservation appeared in the table {took * 1000:.0f} ms after the mutation returned")


async def test_search_and_location_filter_narrow_the_table(browser, dashboard_server, api,
                                                          screenshots):
    prefix = unique("FIND")
    skus = [await api.item(f"{prefix}-{n}") for n in range(3)]
    other = await api.item()
    codes = [await api.location(), await api.location()]
    for sku in (*skus, other):
        for code in codes:
            await api.receive(sku, code, 4)
    open_dashboard(browser, dashboard_server)
    await wait_for(browser, STATUS, "live", 30)

    await search(browser, prefix.lower())  # case does not matter
    assert sorted(js(browser, f"{ROWS}.map(r => r.dataset.sku + '@' + r.dataset.location)")) == sorted(
        f"{sku}@{code}" for sku in skus for code in codes)
    assert js(browser, "document.getElementById('count').textContent").startswith("6 of ")
    await choose_location(browser, codes[1])
    assert sorted(js(browser, f"{ROWS}.map(r => r.dataset.sku)")) == sorted(skus)
    await search(browser, f"{prefix}-2")
    assert js(browser, f"{ROWS}.map(r => r.dataset.sku + '@' + r.dataset.location)") == [
        f"{prefix}-2@{codes[1]}"]
    shoot(browser, screenshots, "2-search-and-location")
    # An item created while the page is open appears in the filtered table, named.
    late = await api.item(f"{prefix}-2-late")
    await api.receive(late, codes[1], 7)
    await wait_for(browser, f"{row(late, codes[1])}.dataset.available", "7")
    await wait_for(browser, f"{row(late, codes[1])}.cells?.[1].textContent", f"Item {late}")
    await search(browser, "no such sku anywhere")
    assert js(browser, f"{ROWS}.length") == 0
    assert js(browser, "document.getElementById('empty').hidden") is False


async def test_a_dropped_connection_shows_then_recovers(browser, dashboard_server, api,
                                                       screenshots, stocked_level):
    sku, code = await stocked_level(10)
    open_dashboard(browser, dashboard_server)
    await wait_for(browser, STATUS, "live", 30)
    await search(browser, sku)
    await open_chart(browser, sku)
    assert js(browser, CHART_LAST) == "10"

    # The page's server goes away: the page says so and keeps retrying.
    dashboard_server.stop()
    await wait_for(browser, STATUS, "reconnecting", 10)
    assert "lost" in js(browser, BANNER)
    await wait_for(browser, "document.getElementById('status-detail').textContent",
                   lambda text: text.startswith("attempt "))
    shoot(browser, screenshots, "3-connection-lost")
    # A change made meanwhile (through the other process) is replayed from the
    # ledger when the page resubscribes with its last versions.
    await api.receive(sku, code, 5)
    dashboard_server.start()
    await wait_for(browser, STATUS, "live", 30)
    assert "Reconnected" in js(browser, BANNER)
    await wait_for(browser, f"{row(sku, code)}.dataset.available", "15")
    assert js(browser, f"{row(sku, code)}.dataset.version") == "2"
    await wait_for(browser, CHART_LAST, "15")
    await wait_for(browser, f"{feed_entries(sku)}.map(e => e[0] + ' ' + e[1])",
                   ["RECEIVE +5 on hand", "RECEIVE +10 on hand"])
    shoot(browser, screenshots, "4-reconnected")
    # And it is live again.
    await api.receive(sku, code, 1)
    await wait_for(browser, f"{row(sku, code)}.dataset.available", "16")


async def submit_key(browser, key: str) -> None:
    field = browser.find_element("id", "auth-key")
    field.send_keys(key)
    field.submit()


async def test_wrong_revoked_and_underscoped_keys_get_a_clear_message(
        browser, dashboard_server, database_url, api, screenshots, stocked_level):
    from sqlalchemy import create_engine

    from inventory.db import api_keys

    sku, code = await stocked_level(4)
    # A key that does not exist.
    open_dashboard(browser, dashboard_server, "inv_" + "0" * 64 + "_guess")
    await wait_for(browser, STATUS, "refused", 15)
    assert "refused this API key" in js(browser, MESSAGE)
    assert js(browser, FORM_SHOWN) and not js(browser, MAIN_SHOWN)
    assert js(browser, "sessionStorage.length") == 0
    shoot(browser, screenshots, "5-wrong-key")
    # A valid key without inventory:read, typed into the form.
    await submit_key(browser, create_api_key(database_url, ("inventory:write",), name="dash"))
    await wait_for(browser, MESSAGE, lambda m: "lacks the inventory:read scope" in m, 15)
    assert js(browser, STATUS) == "refused" and not js(browser, MAIN_SHOWN)
    # A good key, revoked while the page is open: refused at its next request.
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            from inventory.auth.keys import create_key
            from inventory.service.context import DEFAULT_TENANT_ID

            key_id, key = create_key(conn, DEFAULT_TENANT_ID, ["inventory:read"], "to revoke")
        await submit_key(browser, key)
        await wait_for(browser, STATUS, "live", 30)
        assert js(browser, MAIN_SHOWN) and not js(browser, FORM_SHOWN)
        with engine.begin() as conn:
            assert api_keys.revoke_key(conn, key_id) == 1
    finally:
        engine.dispose()
    await api.receive(sku, code, 1)  # the page reads the feed again: 401
    await wait_for(browser, STATUS, "refused", 15)
    assert "revoked" in js(browser, MESSAGE)
    assert js(browser, FORM_SHOWN) and not js(browser, MAIN_SHOWN)
    shoot(browser, screenshots, "6-revoked-key")
    # The right key: live again; forgetting it asks again.
    await submit_key(browser, dashboard_server.api_key)
    await wait_for(browser, STATUS, "live", 30)
    browser.find_element("id", "forget").click()
    await wait_for(browser, STATUS, "signed-out", 10)
    assert js(browser, FORM_SHOWN) and not js(browser, MAIN_SHOWN)


@pytest.fixture(scope="module")
def ten_thousand_levels(pg_base_url, start_api_server):
    """A server on its own database holding 2,500 items in 4 locations."""
    from sqlalchemy import create_engine

    from inventory.db import migrate
    from inventory.db.seed import seed
    from inventory.service.context import DEFAULT_TENANT_ID

    url = create_database(pg_base_url, "inventory_dashboard_10k")
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        seed(engine.connect, DEFAULT_TENANT_ID, 2500, 4, progress=lambda *args: None)
    finally:
        engine.dispose()
    # Reads are charged their calculated cost (docs/security.md): the whole load
    # costs about 28,000, more than this budget's burst, so the page usually
    # waits as the server says.
    with start_api_server("api-10k", database_url=url, INVENTORY_RATE_READ="2000",
                          INVENTORY_RATE_READ_BURST="10000") as server:
        yield server


async def test_ten_thousand_levels_are_paged(browser, ten_thousand_levels, screenshots):
    started = time.monotonic()
    open_dashboard(browser, ten_thousand_levels)
    await wait_for(browser, STATUS, "live", 120)
    loaded = time.monotonic() - started
    # How often the page waited for the read budget depends on how fast the
    # machine served the pages (the budget refills meanwhile): reported only.
    waits = int(js(browser, "document.getElementById('status').dataset.waits || 0"))
    assert js(browser, "document.getElementById('count').textContent") == "10,000 stock levels"
    assert js(browser, f"{ROWS}.length") == 50  # one page in the document, not 10,000 rows
    assert js(browser, "document.getElementById('page-info').textContent") == "1\u201350 of 10,000"
    browser.find_element("id", "next").click()
    await wait_for(browser, "document.getElementById('page-info').textContent", "51\u2013100 of 10,000")
    assert js(browser, f"{ROWS}[0].dataset.sku") == "SKU-000013"
    assert js(browser, "document.querySelectorAll('.total').length") == 4
    await search(browser, "SKU-00123")
    assert js(browser, "document.getElementById('count').textContent") == "40 of 10,000 stock levels"
    shoot(browser, screenshots, "7-ten-thousand-levels")
    long_tasks = js(browser, "window.__longTasks")
    print(f"10,000 levels: live after {loaded:.1f} s ({waits} waits for the read budget); "
          f"{len(long_tasks)} long tasks, longest "
          f"{max(long_tasks, default=0):.0f} ms (main thread busy > 50 ms)")
