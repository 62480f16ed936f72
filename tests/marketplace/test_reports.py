"""Reports: the chart endpoints give the warehouse's numbers (mock rows out
unless asked), the admin charts page carries the same data, and the weekly
e-mail goes once per run, with the CSV, to the chosen staff."""

import csv
import io
import json
import re
from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from marketplace import reports
from marketplace.conf import report_time_zone
from marketplace.models import FactOrderLine, ReportSettings
from marketplace.services import generate_mock_orders, send_weekly_report
from marketplace.tasks import send_weekly_report_task
from marketplace.warehouse import OrderLine, load_lines
from portal.models import SyncRun


@pytest.fixture
def staff_api(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    return api_client


def at(day, hour=10):
    return datetime.combine(day, time(hour), tzinfo=report_time_zone())


@pytest.fixture
def warehouse(db):
    """Real rows in three shops (the same SKU in two Lazada shops), a cancelled
    line, and mock orders over the last 30 days."""
    monday, _ = reports.last_full_week()
    lines = []
    for n in range(12):
        day = monday + timedelta(days=n % 7)
        shop, platform = [("LZ-1", "lazada"), ("LZ-2", "lazada"), ("SP-1", "shopee")][n % 3]
        for line in range(1 + n % 2):
            lines.append(OrderLine(
                platform=platform, shop_id=shop, shop_name=f"Shop {shop}", order_id=f"O{n}", line_id=str(line),
                ordered_at=at(day), status="canceled" if n == 5 else "delivered", sku=f"SKU-{line}",
                product_name=f"Product {line}", quantity=1 + line, unit_price=Decimal("10.50"),
                paid_price=Decimal("10.50") * (1 + line) + n, currency="SGD", customer_key=f"c{n}"))
    load_lines(lines, source="api")
    generate_mock_orders(orders=40, days=30, seed=11, trigger="command")
    assert FactOrderLine.objects.filter(is_mock=True).exists()
    return monday


def expected_per_shop_day(include_mock=False):
    figures = defaultdict(lambda: {"orders": set(), "units": 0, "revenue": Decimal("0")})
    for line in FactOrderLine.objects.select_related("shop", "date", "status"):
        if (line.is_mock and not include_mock) or line.status.group in ("cancelled", "returned"):
            continue
        row = figures[(line.date.date.isoformat(), line.platform, line.shop.shop_id)]
        row["orders"].add(line.order_id)
        row["units"] += line.quantity
        row["revenue"] += line.paid_price
    return {key: (len(v["orders"]), v["units"], v["revenue"]) for key, v in figures.items()}


def as_table(results):
    return {(r["date"], r["platform"], r["shop_id"]): (r["orders"], r["units"], Decimal(r["revenue"]))
            for r in results}


@pytest.mark.django_db
def test_the_daily_sales_endpoint_gives_the_warehouses_numbers_without_mock_rows(staff_api, warehouse):
    reply = staff_api.get(reverse("marketplace-report-daily-sales"))
    assert reply.status_code == 200
    body = reply.json()
    assert as_table(body["results"]) == expected_per_shop_day()
    assert {r["shop_id"] for r in body["results"]} == {"LZ-1", "LZ-2", "SP-1"}
    assert body["totals"]["orders"] == 11  # O5 is cancelled

    with_mock = staff_api.get(reverse("marketplace-report-daily-sales"), {"include_mock": "true"}).json()
    assert as_table(with_mock["results"]) == expected_per_shop_day(include_mock=True)
    assert with_mock["totals"]["orders"] > body["totals"]["orders"]

    one_day = warehouse.isoformat()
    narrowed = staff_api.get(reverse("marketplace-report-daily-sales"),
                             {"date_from": one_day, "date_to": one_day, "platform": "lazada"}).json()
    assert narrowed["results"] and {(r["date"], r["platform"]) for r in narrowed["results"]} == {(one_day, "lazada")}


@pytest.mark.django_db
def test_shop_sales_and_top_products_add_up_to_the_warehouse(staff_api, warehouse):
    expected = expected_per_shop_day()
    shops = staff_api.get(reverse("marketplace-report-shop-sales")).json()
    for row in shops["results"]:
        days = [v for (d, p, s), v in expected.items() if (p, s) == (row["platform"], row["shop_id"])]
        assert Decimal(row["revenue"]) == sum(v[2] for v in days)
        assert row["units"] == sum(v[1] for v in days)
    top = staff_api.get(reverse("marketplace-report-top-products"), {"limit": 2}).json()["results"]
    assert len(top) == 2 and Decimal(top[0]["revenue"]) >= Decimal(top[1]["revenue"])
    real = FactOrderLine.objects.filter(is_mock=False).exclude(status__group="cancelled")
    # a product is a SKU of one shop
    first = real.filter(platform=top[0]["platform"], shop__shop_id=top[0]["shop_id"], product__sku=top[0]["sku"])
    assert Decimal(top[0]["revenue"]) == sum(line.paid_price for line in first)


@pytest.mark.django_db
def test_a_bad_report_query_is_a_400(staff_api, db):
    assert staff_api.get(reverse("marketplace-report-daily-sales"), {"date_from": "2026-13-01"}).status_code == 400
    reply = staff_api.get(reverse("marketplace-report-daily-sales"), {"date_from": "2026-02-02",
                                                                      "date_to": "2026-02-01"})
    assert reply.status_code == 400
    assert staff_api.get(reverse("marketplace-report-top-products"), {"limit": 0}).status_code == 400


@pytest.mark.django_db
def test_the_reports_need_the_warehouse_view_permission(api_client, django_user_model):
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    api_client.force_authenticate(user)
    assert api_client.get(reverse("marketplace-report-daily-sales")).status_code == 403


@pytest.mark.django_db
def test_the_charts_page_carries_the_endpoints_data_and_serves_chart_js_from_static(admin_client, staff_api,
                                                                                     warehouse):
    page = admin_client.get(reverse("admin:marketplace_reports"))
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'<script src="/static/vendor/chart.js/chart.umd.min.js', html)
    assert "cdn" not in html.lower()
    for chart in ("orders-per-day", "revenue-per-day", "top-products", "conversion-per-day"):
        tag = re.search(rf'<canvas id="{chart}"[^>]*data-endpoint="([^"]+)"[^>]*data-source="([^"]+)"', html)
        assert tag, chart
        endpoint, source = tag.group(1).replace("&amp;", "&"), tag.group(2)
        embedded = json.loads(re.search(rf'<script id="{source}" type="application/json">(.*?)</script>',
                                        html, re.S).group(1))
        assert staff_api.get(endpoint).json() == embedded
    daily = json.loads(re.search(r'<script id="daily-data" type="application/json">(.*?)</script>', html,
                                 re.S).group(1))
    assert as_table(daily["results"]) == expected_per_shop_day()  # the default range covers the last 30 days

    mocked = admin_client.get(reverse("admin:marketplace_reports"), {"include_mock": "on"}).content.decode()
    endpoint = re.search(r'<canvas id="orders-per-day"[^>]*data-endpoint="([^"]+)"', mocked).group(1)
    assert "include_mock=true" in endpoint
    assert admin_client.get(reverse("admin:marketplace_reports"),
                            {"date_from": "2026-02-02", "date_to": "2026-02-01"}).status_code == 200


@pytest.fixture
def recipients(django_user_model):
    config = ReportSettings.load()
    anna = django_user_model.objects.create_user("anna", email="anna@example.com", is_staff=True)
    ben = django_user_model.objects.create_user("ben", email="ben@example.com", is_staff=True)
    django_user_model.objects.create_user("carl", email="carl@example.com", is_staff=True)  # not chosen
    config.recipients.set([anna, ben])
    return config


def week_csv(message):
    (name, content, mimetype), = message.attachments
    assert name.endswith(".csv") and mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(content)))


@pytest.mark.django_db
def test_the_weekly_report_mails_the_weeks_figures_per_shop_with_the_csv_once_per_run(warehouse, recipients,
                                                                                      mailoutbox):
    call_command("marketplace_send_weekly_report")
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert sorted(mail.to) == ["anna@example.com", "ben@example.com"]
    monday, sunday = reports.last_full_week()
    week = {k: v for k, v in expected_per_shop_day().items()
            if monday.isoformat() <= k[0] <= sunday.isoformat()}
    rows = week_csv(mail)
    assert {(r["date"], r["platform"], r["shop_id"]): (int(r["orders"]), int(r["units"]), Decimal(r["revenue"]))
            for r in rows} == week
    for shop in ("Shop LZ-1", "Shop LZ-2", "Shop SP-1"):
        revenue = sum(v[2] for k, v in week.items() if f"Shop {k[2]}" == shop)
        assert re.search(rf"{shop}\s+\d+\s+\d+\s+{revenue:.2f}", mail.body)
    assert "Mock" not in mail.body
    run = SyncRun.objects.get(operation="send_weekly_report")
    assert run.status == "succeeded" and run.counters["recipients"] == 2


@pytest.mark.django_db
def test_beat_sends_on_the_configured_day_once_per_week(warehouse, recipients, mailoutbox, monkeypatch):
    today = timezone.now().astimezone(report_time_zone()).date()
    # The schedule's clock at 08:00 today: the report goes from 07:00 on its day.
    monkeypatch.setattr("marketplace.services.reports.now", lambda: at(today, 8))
    recipients.weekday = today.isoweekday() % 7 + 1  # tomorrow
    recipients.save()
    send_weekly_report_task.delay(scheduled=True)
    assert mailoutbox == [] and not SyncRun.objects.filter(operation="send_weekly_report").exists()

    recipients.weekday = today.isoweekday()
    recipients.save()
    send_weekly_report_task.delay(scheduled=True)
    send_weekly_report_task.delay(scheduled=True)  # the next tick the same day
    assert len(mailoutbox) == 1
    assert SyncRun.objects.filter(operation="send_weekly_report", trigger="beat", status="succeeded").count() == 1
    assert ReportSettings.load().last_sent_week == reports.last_full_week()[0]


@pytest.mark.django_db
def test_the_weekly_report_runs_now_from_the_api_and_the_admin(staff_api, admin_client, warehouse, recipients,
                                                                mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reply = staff_api.post("/api/portal/operations/marketplace.send_weekly_report/run")
    assert reply.status_code in (200, 202), reply.content
    assert len(mailoutbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:marketplace_reportsettings_changelist"),
                          {"action": "send_now", "_selected_action": [recipients.pk]})
    assert len(mailoutbox) == 2
    assert SyncRun.objects.filter(operation="send_weekly_report", status="succeeded").count() == 2


@pytest.mark.django_db
def test_a_report_without_recipients_fails_the_run_and_sends_nothing(warehouse, mailoutbox):
    with pytest.raises(CommandError):
        call_command("marketplace_send_weekly_report")
    run = SyncRun.objects.get(operation="send_weekly_report")
    assert run.status == "failed" and "No recipients" in run.error
    assert mailoutbox == []


@pytest.mark.django_db
def test_a_week_start_that_is_not_a_monday_fails_the_run(recipients, mailoutbox):
    run = send_weekly_report(week_start="2026-02-03", trigger="command")
    assert run.status == "failed" and "not a Monday" in run.error and mailoutbox == []
    reports_run = send_weekly_report(week_start="2026-02-02", trigger="command")
    assert reports_run.status == "succeeded"
    assert week_csv(mailoutbox[0]) == []


@pytest.mark.django_db
def test_mock_generation_loads_traffic_and_activity_once_per_natural_key(staff_api, db):
    from marketplace.models import FactActivity, FactTraffic

    generate_mock_orders(orders=60, days=10, seed=5, trigger="command")
    traffic = {(t.shop_id, t.date_id, t.product_id): (t.visitors, t.page_views, t.add_to_cart, t.orders)
               for t in FactTraffic.objects.all()}
    activity = FactActivity.objects.count()
    assert traffic and activity and set(FactTraffic.objects.values_list("is_mock", flat=True)) == {True}
    generate_mock_orders(orders=60, days=10, seed=5, trigger="command")  # the same seed: upserts
    assert {(t.shop_id, t.date_id, t.product_id): (t.visitors, t.page_views, t.add_to_cart, t.orders)
            for t in FactTraffic.objects.all()} == traffic
    assert FactActivity.objects.count() == activity
    for row in FactTraffic.objects.all()[:20]:  # orders agree with the order lines
        assert row.orders == FactOrderLine.objects.filter(
            shop_id=row.shop_id, date_id=row.date_id, product_id=row.product_id).values("order_id").distinct().count()
        assert row.orders <= row.add_to_cart <= row.visitors <= row.page_views

    assert staff_api.get(reverse("marketplace-report-traffic")).json() == {"results": [], "activity": []}
    body = staff_api.get(reverse("marketplace-report-traffic"), {"include_mock": "true"}).json()
    for row in body["results"]:
        rows = FactTraffic.objects.filter(date__date=row["date"], shop__shop_id=row["shop_id"])
        visitors = sum(r.visitors for r in rows)
        orders = sum(r.orders for r in rows)
        assert (row["visitors"], row["orders"]) == (visitors, orders)
        assert Decimal(row["conversion"]) == (Decimal(orders) / visitors).quantize(Decimal("0.0001"))
    assert sum(r["count"] for r in body["activity"]) == sum(FactActivity.objects.values_list("count", flat=True))

    generate_mock_orders(purge=True, trigger="command")
    assert not FactTraffic.objects.exists() and not FactActivity.objects.exists()
