"""The theme itself: the sidebar groups every integration, and dark mode switches."""

import pytest

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_sidebar_groups_every_integration_and_dark_mode_switches(admin_page):
    sidebar = admin_page.locator("#nav-sidebar-inner, nav").first.inner_text()
    for group in ("Walmart Retail Link", "Sales → Verkada", "Marketplace", "SMS campaigns", "Check-in", "Portal"):
        assert group in sidebar
    html = admin_page.locator("html")
    assert "dark" not in (html.get_attribute("class") or "")
    # the theme's own switch: the user menu at the foot of the sidebar, then "Dark"
    admin_page.locator("[x-on\\:click='openUserLinks = !openUserLinks']").click()
    admin_page.locator("a[x-on\\:click=\"switchTheme('dark')\"]").click()
    admin_page.wait_for_function("document.documentElement.classList.contains('dark')")
    admin_page.reload()  # the choice is kept
    screenshot(admin_page, "theme-dark")
    assert "dark" in (html.get_attribute("class") or "")
    admin_page.locator("[x-on\\:click='openUserLinks = !openUserLinks']").click()
    admin_page.locator("a[x-on\\:click=\"switchTheme('light')\"]").click()
    admin_page.wait_for_function("!document.documentElement.classList.contains('dark')")
    admin_page.reload()
    assert "dark" not in (html.get_attribute("class") or "")
