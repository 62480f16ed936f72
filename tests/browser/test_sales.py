"""The sales dashboard in a real browser: its charts show each store's sales per local day."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sales.models import Store, Transaction

from ..charts import chart_series
from .conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# (store, instant in UTC, amount): around the night London and Amsterdam move to summer time
SALES = [
    ("London", datetime(2026, 3, 28, 23, 30, tzinfo=UTC), "10.00"),  # 23:30 GMT on the 28th
    ("London", datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "20.00"),  # 00:30 GMT on the 29th
    ("London", datetime(2026, 3, 29, 22, 59, tzinfo=UTC), "5.50"),  # 23:59 BST on the 29th
    ("London", datetime(2026, 3, 29, 23, 30, tzinfo=UTC), "99.00"),  # 00:30 BST on the 30th: after the range
    ("Amsterdam", datetime(2026, 3, 27, 22, 59, tzinfo=UTC), "3.00"),  # 23:59 CET on the 27th
    ("Amsterdam", datetime(2026, 3, 28, 23, 30, tzinfo=UTC), "7.25"),  # 00:30 CET on the 29th
]


def test_the_dashboard_charts_each_stores_sales_per_local_day(admin_page):
    # the demo's seed may have made the stores already: these names and zones
    stores = {name: Store.objects.update_or_create(store_id=store_id, defaults={"name": name, "time_zone": zone})[0]
              for name, store_id, zone in (("London", 101, "Europe/London"), ("Amsterdam", 103, "Europe/Amsterdam"))}
    Transaction.objects.bulk_create([
        Transaction(transaction_id=f"t{n}", transaction_date=when, amount=Decimal(amount), store=stores[store])
        for n, (store, when, amount) in enumerate(SALES)])

    page = admin_page
    page.goto(f"{page.live_url}/admin/sales/transaction/dashboard/")
    page.fill(".date-range input[name=start]", "2026-03-27")
    page.fill(".date-range input[name=end]", "2026-03-29")
    page.click(".date-range [type=submit]")
    page.wait_for_url("**start=2026-03-27**")
    amount_canvas = page.locator('canvas[data-chart="sales-amount-per-store-per-day"]')
    count_canvas = page.locator('canvas[data-chart="sales-count-per-store-per-day"]')
    amount_canvas.scroll_into_view_if_needed()
    screenshot(page, "sales-dashboard")

    expected_amount = {"labels": ["2026-03-27", "2026-03-28", "2026-03-29"],
                       "series": {"London": [0, 10, 25.5], "Amsterdam": [3, 0, 7.25]}}
    assert chart_series(json.loads(amount_canvas.get_attribute("data-value"))) == expected_amount
    assert chart_series(json.loads(count_canvas.get_attribute("data-value")))["series"] == {
        "London": [0, 1, 2], "Amsterdam": [1, 0, 1]}
    # What Chart.js drew is the same data (the canvas is a chart, not just an attribute).
    drawn = page.evaluate("""name => {
        const chart = Chart.getChart(document.querySelector(`canvas[data-chart="${name}"]`));
        return {labels: chart.data.labels, datasets: chart.data.datasets.map(d => ({label: d.label, data: d.data}))};
    }""", "sales-amount-per-store-per-day")
    assert chart_series(drawn) == expected_amount
    page.evaluate("localStorage.setItem('adminTheme', JSON.stringify('dark'))")
    page.reload()
    screenshot(page, "sales-dashboard-dark")
