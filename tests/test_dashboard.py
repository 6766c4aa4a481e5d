"""The /dashboard page in a real headless Chromium: live updates, low-stock
highlighting, connection state and reconnecting with its last versions."""
from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from .support import ApiServer

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
    browser.get(dashboard_server.url + "/dashboard")
    await wait_for(browser, "document.getElementById('status').textContent", "live", 10)
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
