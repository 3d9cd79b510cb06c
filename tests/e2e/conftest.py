"""Browser tests: the participant's pages in a real headless Chromium (Playwright's sync API)
against pytest-django's live server.

The browser is the system's Chromium (``/usr/bin/chromium``, or ``E2E_CHROMIUM``); Playwright
never downloads one. If it is missing the tests fail (they never skip): ``scripts/test.sh``
installs it through ``scripts/ensure-browser.sh``. Set ``E2E_SCREENSHOTS=/some/folder`` to
keep screenshots of the pages at desktop and phone sizes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "has_touch": True,
    "is_mobile": True,
}


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per module. Playwright's sync API runs an event loop in this
    thread, which Django's async-safety check would take for async code calling the ORM:
    the check is off while the browser is up (the ORM is still only used synchronously)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run scripts/ensure-browser.sh "
            "(the browser tests never skip)",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Problems:
    """What went wrong in the page: uncaught script errors, console errors, failed
    requests and responses with an error status (the favicon's included). Not counted: the
    console's lines about failed loads (left to the response check), and a preload cut
    short by leaving the page (ERR_ABORTED)."""

    def __init__(self, page):
        self.items: list[str] = []
        page.on("pageerror", lambda error: self.items.append(f"script error: {error}"))
        page.on("console", self.console)
        page.on("requestfailed", self.request_failed)
        page.on("response", self.response)

    def console(self, message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.items.append(f"console error: {message.text}")

    def request_failed(self, request) -> None:
        if "ERR_ABORTED" not in (request.failure or ""):
            self.items.append(f"request failed: {request.url} {request.failure}")

    def response(self, response) -> None:
        if response.status >= 400:
            self.items.append(f"HTTP {response.status}: {response.url}")


@pytest.fixture
def open_page(browser, live_server):
    """``open_page(**context_options)``: a fresh browser context (own cookies) on the live
    server and its page; each page's problems are asserted absent at the end."""
    contexts = []

    def make(**options):
        context = browser.new_context(base_url=live_server.url, **{**DESKTOP, **options})
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.problems = Problems(page)
        contexts.append((context, page))
        return page

    yield make
    for context, page in contexts:
        # Requests still in flight (a lazy thumbnail, a poll) would be served while the test
        # database is flushed, and the two can deadlock: let them end first.
        try:
            page.wait_for_load_state("networkidle", timeout=10_000)
        except PlaywrightError:
            pass  # a page that never goes quiet (or is closed) is closed anyway
        problems = list(page.problems.items)
        context.close()
        assert not problems, problems


@pytest.fixture
def shoot():
    """``shoot(page, name)`` saves what the viewport shows (the whole page with
    ``full_page=True``) under ``E2E_SCREENSHOTS`` (if set)."""
    folder = os.environ.get("E2E_SCREENSHOTS")

    def take(page, name: str, *, full_page: bool = False) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)

    return take


#: The password of the researchers the browser tests make.
RESEARCHER_PASSWORD = "a-long-Passphrase-1"


def log_in(page, username: str = "ada", password: str = RESEARCHER_PASSWORD) -> None:
    """Log ``page`` in through the login form, as a researcher would."""
    from django.urls import reverse

    page.goto(reverse("login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
