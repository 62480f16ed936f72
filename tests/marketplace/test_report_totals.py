"""An order is one shop's: two shops that number an order alike are two orders
in every total, and the summary, the reports and the weekly e-mail count them
through the same functions."""

from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal

import pytest
from django.urls import reverse

from marketplace import reports
from marketplace.models import Source
from marketplace.warehouse import OrderLine, load_lines


def line(shop, order, line_id="1", platform="lazada", price="5.00"):
    return OrderLine(platform=platform, shop_id=shop, order_id=order, line_id=line_id,
                     ordered_at=datetime(2025, 11, 22, 10, tzinfo=dt_timezone.utc), status="delivered", sku="S",
                     product_name="N", unit_price=Decimal(price), paid_price=Decimal(price), customer_key="k")


@pytest.fixture
def same_order_id_in_two_shops(db):
    # Order 1001 in two Lazada shops (two lines in shop A), order 1002 in shop A only.
    load_lines([line("SHOP-A", "1001"), line("SHOP-A", "1001", "2"), line("SHOP-B", "1001"),
                line("SHOP-A", "1002")], source=Source.API)


@pytest.fixture
def staff_client(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    return api_client


def test_the_shop_and_day_reports_count_an_order_id_of_two_shops_as_two_orders(staff_client,
                                                                                same_order_id_in_two_shops):
    shops = staff_client.get(reverse("marketplace-report-shop-sales")).json()
    assert {r["shop_id"]: r["orders"] for r in shops["results"]} == {"SHOP-A": 2, "SHOP-B": 1}
    assert shops["totals"]["orders"] == 3
    days = staff_client.get(reverse("marketplace-report-daily-sales")).json()
    assert days["totals"]["orders"] == 3 and sum(r["orders"] for r in days["results"]) == 3


def test_the_summary_counts_an_order_id_of_two_shops_as_two_orders_per_day_and_in_total(
        staff_client, same_order_id_in_two_shops):
    body = staff_client.get(reverse("marketplace-summary")).json()
    # One day, one platform: both shops in one row.
    assert [(r["platform"], r["orders"], r["lines"]) for r in body["results"]] == [("lazada", 3, 4)]
    assert body["totals"]["orders"] == 3
    assert Decimal(body["totals"]["revenue"]) == Decimal("20.00")
    shops = staff_client.get(reverse("marketplace-report-shop-sales")).json()
    assert body["totals"] == {key: shops["totals"][key] for key in body["totals"]}


@pytest.mark.django_db
def test_the_weekly_total_counts_an_order_id_of_two_shops_as_two_orders(same_order_id_in_two_shops):
    week = reports.ReportFilter(date_from=datetime(2025, 11, 17).date(), date_to=datetime(2025, 11, 23).date())
    assert reports.totals(week)["orders"] == 3
