"""The admin in a real browser: headless Debian Chromium through Playwright, against
Django's live server, logged in as the demo user `make run` creates.

Each journey keeps a screenshot under $PORTAL_VAR_DIR/screenshots/ (var/test/screenshots/
for `make test`) as an artefact of the run."""

import re

import pytest
from django.conf import settings
from django.core.management import call_command


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    from walmart.client.login import BROWSER_ARGS, _executable

    # Playwright's sync API runs an event loop in this thread; the tests' ORM calls are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_executable(), headless=True, args=BROWSER_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def demo_login(transactional_db):
    """The demo superuser as `make run` makes it: (username, password)."""
    call_command("setup_demo", stdout=open("/dev/null", "w"))
    return "admin", (settings.VAR_DIR / "demo-login.txt").read_text().strip()


@pytest.fixture
def admin_page(browser, live_server, demo_login):
    """A page logged in through the admin's login form as the demo user, on the admin home."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", demo_login[0])
    page.fill("#id_password", demo_login[1])
    page.click("[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))
    page.live_url = live_server.url
    yield page
    page.close()


def screenshot(page, name):
    """Keep what the page shows now as var/.../screenshots/<name>.png (a test artefact)."""
    folder = settings.VAR_DIR / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
