"""Reports: the chart endpoints give the warehouse's numbers (mock rows out
unless asked), the admin charts page carries the same data, and the weekly
e-mail goes once per run, with the CSV, to the chosen staff."""

import csv
import io
import json
import re
from html import unescape
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
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


def page_charts(html):
    """{chart name: (its data endpoint, the Chart.js data it draws)} from the charts page."""
    found = re.findall(r'<div class="chart-source" data-endpoint="([^"]+)">.*?<canvas class="chart" '
                       r'data-chart="([^"]+)"[^>]*data-value="([^"]+)"', html, re.S)
    return {name: (unescape(endpoint), json.loads(unescape(value))) for endpoint, name, value in found}


def series(data):
    """{label: {day: value}} without the zero days a chart draws between the orders."""
    return {d["label"]: {day: v for day, v in zip(data["labels"], d["data"]) if v} for d in data["datasets"]}


@pytest.mark.django_db
def test_the_charts_page_draws_the_endpoints_data_with_chart_js_from_static(admin_client, staff_api, warehouse):
    page = admin_client.get(reverse("admin:marketplace_reports"))
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(r'<script src="/static/unfold/js/chart/chart.js', html)
    assert "cdn" not in html.lower()
    charts = page_charts(html)
    assert set(charts) == {"orders-per-day", "revenue-per-day", "top-products", "visitors-per-day",
                           "conversion-per-day"}
    expected = expected_per_shop_day()
    shop_names = {"LZ-1": "Shop LZ-1", "LZ-2": "Shop LZ-2", "SP-1": "Shop SP-1"}
    want_orders, want_revenue = defaultdict(dict), defaultdict(dict)
    for (day, platform, shop), (orders, _units, revenue) in expected.items():
        want_orders[f"{platform} · {shop_names[shop]}"][day] = orders
        want_revenue[f"{platform} · {shop_names[shop]}"][day] = float(revenue)
    endpoint, data = charts["orders-per-day"]
    assert {k: v for k, v in series(data).items() if v} == want_orders  # the default range: the last 30 days
    assert data["labels"][-1] == timezone.now().astimezone(report_time_zone()).date().isoformat()
    assert len(data["labels"]) == 30 and all(d["displayYAxis"] for d in data["datasets"])  # values on the axis
    assert {k: v for k, v in series(charts["revenue-per-day"][1]).items() if v} == want_revenue
    # each chart draws what its endpoint returns
    daily = staff_api.get(endpoint).json()
    assert {(r["date"], f"{r['platform']} · {r['shop_name']}", r["orders"]) for r in daily["results"]} == {
        (day, label, n) for label, days in series(data).items() for day, n in days.items()}
    top_endpoint, top = charts["top-products"]
    assert top["datasets"][0]["data"] == [float(r["revenue"]) for r in staff_api.get(top_endpoint).json()["results"]]

    mocked = page_charts(admin_client.get(reverse("admin:marketplace_reports"), {"include_mock": "on"}).content.decode())
    assert "include_mock=true" in mocked["orders-per-day"][0]
    assert sum(map(sum, (d["data"] for d in mocked["orders-per-day"][1]["datasets"]))) > sum(
        map(sum, (d["data"] for d in data["datasets"])))
    one_day = warehouse.isoformat()
    narrowed = page_charts(admin_client.get(reverse("admin:marketplace_reports"),
                                            {"start": one_day, "end": one_day, "platform": "lazada"}).content.decode())
    assert narrowed["orders-per-day"][1]["labels"] == [one_day]
    assert {label.split(" · ")[0] for label in series(narrowed["orders-per-day"][1])} == {"lazada"}
    wrong = admin_client.get(reverse("admin:marketplace_reports"), {"start": "2026-02-02", "end": "2026-02-01"})
    assert wrong.status_code == 200 and "starts after it ends" in wrong.content.decode()


@pytest.mark.django_db
def test_the_order_charts_count_local_days(admin_client, monkeypatch):
    """An order at 00:30 in Singapore is that day's, though it is the day before in UTC."""
    monkeypatch.setenv("MARKETPLACE_TIME_ZONE", "Asia/Singapore")
    zone = report_time_zone()
    today = timezone.now().astimezone(zone).date()
    early = datetime.combine(today - timedelta(days=1), time(0, 30), tzinfo=zone)
    assert early.astimezone(UTC).date() == today - timedelta(days=2)
    load_lines([OrderLine(platform="lazada", shop_id="LZ-9", shop_name="Night shop", order_id=f"N{n}", line_id="1",
                          ordered_at=early, status="delivered", sku="S", product_name="P", quantity=1,
                          unit_price=Decimal("5"), paid_price=Decimal("5"), currency="SGD", customer_key="c")
                for n in range(3)], source="api")
    _, data = page_charts(admin_client.get(reverse("admin:marketplace_reports"), {"days": 7}).content.decode())[
        "orders-per-day"]
    assert series(data) == {"lazada · Night shop": {(today - timedelta(days=1)).isoformat(): 3}}


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
