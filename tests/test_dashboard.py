"""The /dashboard page in a real headless Chromium: live updates, low-stock
highlighting, connection state and reconnecting with its last versions."""
from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from .support import ApiServer, create_api_key

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason="chromium/chromium-driver missing: run scripts/bootstrap as root",
)


@pytest.fixture(scope="module")
def dashboard_server(database_url, tmp_path_factory):
    server = ApiServer(database_url, tmp_path_factory.mktemp("api-dash") / "api.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


async def wait_for(browser, script: str, expected, timeout: float) -> float:
    """Polls a JS expression until it equals `expected`; returns seconds taken."""
    started = time.monotonic()
    while True:
        value = browser.execute_script(f"return {script}")
        if value == expected:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{script} is {value!r}, expected {expected!r}")
        await asyncio.sleep(0.02)


def cell(sku: str, code: str, attribute: str) -> str:
    from urllib.parse import quote

    return (f"(document.getElementById('cell-{quote(sku, safe='')}--{quote(code, safe='')}')"
            f" || {{dataset: {{}}}}).dataset.{attribute}")


async def test_dashboard_updates_live_and_reconnects(browser, dashboard_server, api):
    sku, code = await api.item(reorder_point=3), await api.location()
    await api.receive(sku, code, 10)
    # The key travels in the URL fragment (never sent to the server); the page
    # keeps it in sessionStorage and takes it out of the address bar.
    browser.get(f"{dashboard_server.url}/dashboard#key={dashboard_server.api_key}")
    await wait_for(browser, "document.getElementById('status').textContent", "live", 10)
    assert browser.current_url == dashboard_server.url + "/dashboard"
    assert browser.execute_script(f"return {cell(sku, code, 'available')}") == "10"

    # Written through another API process; shown within a second.
    await api.mutate("adjustStock", {"sku": sku, "locationCode": code, "delta": -8})
    took = await wait_for(browser, cell(sku, code, "available"), "2", 1.0)
    assert browser.execute_script(
        f"return document.getElementById('cell-' + encodeURIComponent({sku!r}) + '--' "
        f"+ encodeURIComponent({code!r})).classList.contains('low')")

    # The page's server goes away: the page says so. A change made meanwhile
    # (through the other process) is replayed from the ledger when the page
    # resubscribes with its last versions.
    dashboard_server.stop()
    await wait_for(browser, "document.getElementById('status').textContent", "reconnecting", 5)
    await api.receive(sku, code, 5)
    dashboard_server.start()
    await wait_for(browser, "document.getElementById('status').textContent", "live", 15)
    await wait_for(browser, cell(sku, code, "available"), "7", 5)
    assert browser.execute_script(f"return {cell(sku, code, 'version')}") == "3"
    assert not browser.execute_script(
        f"return document.getElementById('cell-' + encodeURIComponent({sku!r}) + '--' "
        f"+ encodeURIComponent({code!r})).classList.contains('low')")
    print(f"change appeared on the page {took * 1000:.0f} ms after the mutation returned")


STATUS = "document.getElementById('status').textContent"
MESSAGE = "document.getElementById('auth-message').textContent"
FORM_SHOWN = "!document.getElementById('auth').hidden"


async def submit_key(browser, key: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, "auth-key")
    field.send_keys(key)
    field.submit()


async def test_dashboard_asks_for_a_key_and_says_when_it_is_refused(
        browser, dashboard_server, database_url, api):
    sku, code = await api.item(), await api.location()
    await api.receive(sku, code, 4)
    # An unknown key (from a link; the tab may hold an earlier good one).
    browser.get(dashboard_server.url + "/dashboard#key=inv_" + "0" * 64 + "_guess")
    await wait_for(browser, STATUS, "refused", 10)
    assert "401" in browser.execute_script(f"return {MESSAGE}")
    assert browser.execute_script(f"return {FORM_SHOWN}")
    assert browser.execute_script("return sessionStorage.length") == 0
    # A valid key without inventory:read, typed into the form.
    await submit_key(browser, create_api_key(database_url, ("inventory:write",), name="dash"))
    await wait_for(browser, MESSAGE, "This API key lacks the inventory:read scope.", 10)
    assert browser.execute_script(f"return {STATUS}") == "refused"
    assert browser.execute_script(f"return {cell(sku, code, 'available')}") is None
    # The right key: live, with the data.
    await submit_key(browser, dashboard_server.api_key)
    await wait_for(browser, STATUS, "live", 10)
    assert browser.execute_script(f"return {cell(sku, code, 'available')}") == "4"
    assert not browser.execute_script(f"return {FORM_SHOWN}")
    # Forgetting the key empties the page and asks again.
    browser.find_element("id", "forget").click()
    await wait_for(browser, STATUS, "signed-out", 10)
    assert browser.execute_script(f"return {cell(sku, code, 'available')}") is None
