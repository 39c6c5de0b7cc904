"""The Dagster UI in headless Chromium: Playwright for Python drives Debian's Chromium
(/usr/bin/chromium; Playwright's own browser download cannot work offline) against the
deployment's real stack (PostgreSQL, code server, dagster-webserver, dagster-daemon) on an offline
mirror. Each test leaves a screenshot in build/ui/."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from lake_assets_tests.conftest import REPO
from lake_assets_tests.stack import Stack, running_stack
from lake_dev import generator

# 2021-05 and 2021-06 stay untouched until the whole graph is backfilled over them.
MONTHS = ["2021-01", "2021-02", "2021-03", "2021-04", "2021-05", "2021-06"]
ROWS = {"yellow": 1000, "green": 400, "fhv": 600}
# The test's mirror serves this month of green with its header only: the lake's blocking check
# month_not_empty fails on it.
EMPTY = ("green", "2021-04")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As the machine's notes require: without the background-networking flags Chromium keeps
# reaching for Google's hosts, which this closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = REPO / "build" / "ui"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="package")
def ui_stack(tmp_path_factory) -> Iterator[Stack]:
    for stack in running_stack(tmp_path_factory.mktemp("ui"), MONTHS, ROWS):
        service, month = EMPTY
        path = stack.mirror / service / f"{service}_tripdata_{month}.csv.gz"
        header = generator.gzip_text(path).splitlines()[0] + "\n"
        path.write_bytes(generator.gzip_bytes(header))
        yield stack


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install 'lake_assets[ui]'; make install)")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        _unavailable(
            f"no Chromium at {CHROMIUM}: install Debian's package chromium "
            "(apt-get install chromium; .ci/run does)"
        )
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
        except Error as e:
            pytest.fail(
                f"Chromium ({CHROMIUM}, Debian's package chromium) did not start under "
                f"Playwright: {e}",
                pytrace=False,
            )
        yield chromium
        chromium.close()


def _unavailable(reason: str):
    # Never a skip: a stage that cannot start its browser has tested nothing.
    pytest.fail(reason, pytrace=False)


@pytest.fixture
def page(browser, ui_stack, request):
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, base_url=ui_stack.deployment.url
    )
    # The community sign-up dialog opens over every first visit; a user dismisses it once.
    context.add_init_script("window.localStorage.setItem('communityNux', JSON.stringify('1'))")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        context.close()


def shown(locator, what: str, timeout_ms: int = TIMEOUT_MS):
    """locator, once visible; otherwise a failure that names what the page lacks (the UI may
    have changed between Dagster minors) instead of a bare time-out."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        locator.first.wait_for(state="visible", timeout=timeout_ms)
    except PlaywrightTimeout:
        raise AssertionError(
            f"the page {locator.page.url} shows no {what} within {timeout_ms / 1000:.0f} s "
            f"(Dagster {dg.__version__}; see build/ui/ for the screenshot)"
        ) from None
    return locator.first
