"""Connecting a Lazada shop in a real browser: the admin's Connect button, the Lazada
sandbox's authorize page, the callback, and the connection shown connected."""

import re

import pytest
from playwright.sync_api import expect

from marketplace.models import Connection
from marketplace.sandbox.lazada import DEMO_APP_KEY, DEMO_APP_SECRET
from portal.models import SyncRun

from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lazada_shop_is_connected_through_the_oauth_pages(admin_page, sandbox):
    page = admin_page
    seen = []
    page.on("request", lambda request: seen.append(request.url) if request.is_navigation_request() else None)
    page.goto(f"{page.live_url}/admin/marketplace/connection/add/")
    page.select_option("#id_platform", "lazada")
    page.fill("#id_name", "LA Lazada SG")
    page.fill("#id_app_key", DEMO_APP_KEY)
    page.fill("#id_app_secret", DEMO_APP_SECRET)
    page.fill("#id_country", "sg")
    page.click("[name=_continue]")
    page.wait_for_url(re.compile(r".*/marketplace/connection/\d+/change/$"))
    connection = Connection.objects.get(name="LA Lazada SG")
    assert connection.status == Connection.Status.NOT_CONNECTED

    page.locator("a", has_text="Connect / reconnect").first.click()
    page.wait_for_url(re.compile(rf".*/marketplace/connection/{connection.pk}/change/$"))
    # the browser went through the sandbox's authorize page and back to the callback
    assert any("/lazada/auth/oauth/authorize" in url and "client_id=" in url for url in seen), seen
    assert any("/admin/marketplace/connection/oauth/lazada/callback/" in url and "code=" in url for url in seen), seen

    connection.refresh_from_db()
    assert connection.status == Connection.Status.CONNECTED and connection.shop_name == "LA Collections"
    assert SyncRun.objects.get(operation="connect_account").status == "succeeded"
    body = page.locator("body").inner_text()
    assert f"{connection} is connected (shop {connection.shop_id})" in body
    assert connection.access_token not in page.content() and DEMO_APP_SECRET not in page.content()
    tab = page.locator(".tab-wrapper.fieldset-connection")
    expect(tab).to_be_hidden()  # the change page is in tabs: App first
    page.locator("nav a", has_text=re.compile(r"^\s*Connection\s*$")).click()
    expect(tab).to_be_visible()
    assert "valid for" in tab.inner_text()  # the token state, never the token
    screenshot(page, "marketplace-lazada-connected")

    page.goto(f"{page.live_url}/admin/marketplace/connection/")
    row = page.locator("#result_list tbody tr", has_text="LA Lazada SG")
    assert "Connected" in row.inner_text() and "Reconnect" in row.inner_text()


def test_the_sales_charts_are_drawn_from_static_chart_js_in_light_and_dark(admin_page):
    from django.urls import reverse

    from marketplace.services import generate_mock_orders

    generate_mock_orders(orders=60, days=14, seed=5, trigger="command")
    page = admin_page
    page.goto(f"{page.live_url}{reverse('admin:marketplace_reports')}?include_mock=on&days=14")
    drawn = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll("canvas.chart")].map(canvas => {
        const chart = Chart.getChart(canvas);
        return [canvas.dataset.chart, chart && {labels: chart.data.labels, series: chart.data.datasets.map(d => d.data),
                                                given: JSON.parse(canvas.dataset.value).datasets.map(d => d.data)}];
    }))""")
    assert set(drawn) == {"orders-per-day", "revenue-per-day", "top-products", "visitors-per-day", "conversion-per-day"}
    for name, chart in drawn.items():
        assert chart, f"{name} was not drawn"
        assert chart["series"] == chart["given"]  # Chart.js draws the numbers the page carries
    assert len(drawn["orders-per-day"]["labels"]) == 14
    assert sum(map(sum, drawn["orders-per-day"]["series"])) > 0 and sum(map(sum, drawn["visitors-per-day"]["series"])) > 0
    screenshot(page, "marketplace-charts-light")
    page.evaluate("localStorage.setItem('adminTheme', JSON.stringify('dark'))")
    page.reload()
    assert "dark" in (page.locator("html").get_attribute("class") or "")
    assert page.evaluate("Chart.getChart(document.querySelector('canvas[data-chart=\"orders-per-day\"]')) !== undefined")
    screenshot(page, "marketplace-charts-dark")
