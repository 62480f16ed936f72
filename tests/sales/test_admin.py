import pytest
from django.urls import reverse

from portal.models import SyncRun
from sales.models import HelixEventType, HelixOutbox, SalesSettings, SyncCursor, Transaction
from sales.services import post_helix_events

from ..charts import chart_in_page
from .conftest import synced_sales

pytestmark = pytest.mark.django_db


def test_the_outbox_retry_action_makes_failed_events_due_and_posts_them(sales_settings, clock, sandbox, admin_client, run_on_commit):
    synced_sales(clock)
    refused = list(HelixOutbox.objects.all()[:3])
    HelixOutbox.objects.filter(pk__in=[r.pk for r in refused]).update(status="failed", last_error="HTTP 400")
    post_helix_events(trigger="command")
    with run_on_commit(execute=True):
        reply = admin_client.post(reverse("admin:sales_helixoutbox_changelist"),
                                  {"action": "retry", "_selected_action": [r.pk for r in refused]}, follow=True)
    assert "3 event(s) due again" in reply.content.decode()
    assert HelixOutbox.objects.filter(status="posted").count() == Transaction.objects.count()
    assert SyncRun.objects.filter(operation="post_helix_events", trigger="admin", status="succeeded").exists()


def test_the_backfill_action_asks_for_a_range_then_queues_it(sales_settings, clock, admin_client, run_on_commit):
    synced_sales(clock)
    cursor = SyncCursor.objects.get()
    url = reverse("admin:sales_synccursor_changelist")
    form = admin_client.post(url, {"action": "backfill_sales", "_selected_action": [cursor.pk]})
    assert form.status_code == 200 and "Queue the backfill" in form.content.decode()
    with run_on_commit(execute=True):
        reply = admin_client.post(url, {
            "action": "backfill_sales", "_selected_action": [cursor.pk], "apply": "1",
            "start_0": "2026-01-10", "start_1": "00:00:00", "end_0": "2026-01-10", "end_1": "02:00:00",
        }, follow=True)
    assert "queued as <a" in reply.content.decode()
    run = SyncRun.objects.get(operation="sync_sales", trigger="admin")
    assert run.status == "succeeded" and run.params["start"].startswith("2026-01-10T00:00:00")
    assert Transaction.objects.filter(transaction_date__date="2026-01-10").count() == 80
    assert SyncCursor.objects.get().watermark == cursor.watermark


def test_the_sync_now_action_runs_the_sync(sales_settings, clock, admin_client, run_on_commit):
    synced_sales(clock)
    cursor = SyncCursor.objects.get()
    with run_on_commit(execute=True):
        admin_client.post(reverse("admin:sales_synccursor_changelist"), {"action": "sync_sales", "_selected_action": [cursor.pk]})
    assert SyncRun.objects.get(operation="sync_sales", trigger="admin").status == "succeeded"


def test_the_event_type_form_rejects_a_bad_schema_or_mapping(admin_client, db):
    url = reverse("admin:sales_helixeventtype_add")
    reply = admin_client.post(url, {"name": "Checkout", "active": "on", "event_schema": '{"amount": "money"}',
                                    "attribute_mapping": '{"total": "amount"}'})
    text = reply.content.decode()
    assert reply.status_code == 200 and "money" in text and "not in the schema" in text
    assert not HelixEventType.objects.exists()
    schema, fields = '{"amount": "float", "sale": "string"}', '{"amount": "amount", "sale": "transaction_id"}'
    ok = admin_client.post(url, {"name": "Checkout", "active": "on", "is_default": "on", "event_schema": schema,
                                 "attribute_mapping": fields})
    assert ok.status_code == 302 and HelixEventType.objects.get().attribute_mapping == {"amount": "amount", "sale": "transaction_id"}
    # Several types may be active (routing rules choose); one default at most, and active.
    second = {"name": "Returns", "active": "on", "event_schema": schema, "attribute_mapping": fields}
    refused = admin_client.post(url, {**second, "is_default": "on"})
    assert refused.status_code == 200 and "&#x27;Checkout&#x27; is the default" in refused.content.decode()
    inactive_default = admin_client.post(url, {**second, "active": "", "is_default": "on", "name": "Voids"})
    assert inactive_default.status_code == 200 and "The default event type must be active" in inactive_default.content.decode()
    assert admin_client.post(url, second).status_code == 302
    assert HelixEventType.objects.filter(active=True).count() == 2


SETTINGS_FORM = {"jdsports_api_key": "", "verkada_api_key": "", "initial_lookback_hours": 1, "settle_seconds": 60,
                 "verkada_requests_per_minute": 300, "verkada_rate_headroom_percent": 10, "posting_concurrency": 4,
                 "reconcile_delay_seconds": 120, "reconcile_window_hours": 24,
                 "footage_rate_share_percent": 20, "backfill_max_days": 31, "lookback_hours": 3}


def test_the_settings_page_never_shows_a_secret_and_blank_keeps_it(sales_settings, admin_client):
    url = reverse("admin:sales_salessettings_change", args=[1])
    page = admin_client.get(url).content.decode()
    assert "jd-sandbox-key" not in page and "verkada-sandbox-key" not in page
    listing = admin_client.get(reverse("admin:sales_salessettings_changelist")).content.decode()
    assert "set" in listing and "verkada-sandbox-key" not in listing
    admin_client.post(url, {**SETTINGS_FORM, "initial_lookback_hours": 2})
    config = SalesSettings.load()
    assert config.jdsports_api_key == "jd-sandbox-key" and config.initial_lookback_hours == 2


def test_the_dashboard_charts_sales_per_store_per_day_and_the_backlog(sales_settings, clock, sandbox, admin_client):
    from django.db.models import Count, Sum

    synced_sales(clock)
    post_helix_events(trigger="command", limit=4)
    page = admin_client.get(reverse("admin:sales_dashboard")).content.decode()
    # What each store sold per day, as the database sums it (every synced sale is on the server's today or yesterday)
    expected = {}
    for row in Transaction.objects.values("store__name").annotate(total=Sum("amount"), n=Count("id")):
        expected[row["store__name"]] = (float(row["total"]), row["n"])
    amount = chart_in_page(page, "sales-amount-per-store-per-day")
    count = chart_in_page(page, "sales-count-per-store-per-day")
    assert len(amount["labels"]) == 14 and "London Oxford Street" in amount["series"]
    assert {store: (round(sum(values), 2), sum(count["series"][store])) for store, values in amount["series"].items()} == {
        store: (round(total, 2), n) for store, (total, n) in expected.items()}
    waiting = HelixOutbox.objects.filter(status="pending").count()
    assert f"Helix posting backlog: {waiting} waiting" in page
    assert sum(chart_in_page(page, "helix-backlog-by-age")["series"]["Sales not in Helix yet"]) == waiting
    statuses = chart_in_page(page, "helix-outbox-by-status")
    assert dict(zip(statuses["labels"], statuses["series"]["Events"]))["Posted"] == 4
    changelist = admin_client.get(reverse("admin:sales_transaction_changelist")).content.decode()
    assert reverse("admin:sales_transaction_open_dashboard") in changelist
    assert admin_client.get(reverse("admin:sales_transaction_open_dashboard")).url == reverse("admin:sales_dashboard")


def test_two_stores_of_one_name_are_two_series_on_the_sales_charts(sales_settings, clock, sandbox, admin_client):
    from django.db.models import Sum

    from sales.models import Store

    synced_sales(clock)
    first, second = Store.objects.filter(transactions__isnull=False).distinct().order_by("store_id")[:2]
    Store.objects.filter(pk=second.pk).update(name=first.name)
    page = admin_client.get(reverse("admin:sales_dashboard")).content.decode()
    series = chart_in_page(page, "sales-amount-per-store-per-day")["series"]
    for store in (first, second):
        total = Transaction.objects.filter(store=store).aggregate(total=Sum("amount"))["total"]
        assert round(sum(series[f"{first.name} ({store.store_id})"]), 2) == round(float(total), 2)


def test_the_dashboard_shows_the_lag_a_range_choice_and_the_oldest_event_near_helixs_limit(
    sales_settings, clock, sandbox, admin_client
):
    from datetime import UTC, datetime, timedelta

    synced_sales(clock)
    page = admin_client.get(reverse("admin:sales_dashboard"), {"days": 30}).content.decode()
    assert len(chart_in_page(page, "sales-amount-per-store-per-day")["labels"]) == 30
    assert '<option value="30" selected>' in page and "min behind" in page
    oldest = HelixOutbox.objects.order_by("time_ms").first()
    HelixOutbox.objects.filter(pk=oldest.pk).update(time_ms=int((datetime.now(UTC) - timedelta(days=27)).timestamp() * 1000))
    page = admin_client.get(reverse("admin:sales_dashboard"), {"days": "garbage"}).content.decode()
    assert len(chart_in_page(page, "sales-amount-per-store-per-day")["labels"]) == 14
    assert "3.0 days left before Helix's 30-day limit" in page and 'data-warning="near-limit"' in page
    ages = chart_in_page(page, "helix-backlog-by-age")
    assert dict(zip(ages["labels"], ages["series"]["Sales not in Helix yet"]))["> 23 d (near Helix's limit)"] == 1
    # A chosen range: those days only
    page = admin_client.get(reverse("admin:sales_dashboard"), {"start": "2026-01-01", "end": "2026-01-03"}).content.decode()
    assert chart_in_page(page, "sales-amount-per-store-per-day")["labels"] == ["2026-01-01", "2026-01-02", "2026-01-03"]


def test_the_transactions_changelist_shows_posting_status_and_footage_links(sales_settings, clock, sandbox, admin_client, run_on_commit):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=2)
    with run_on_commit(execute=True):
        admin_client.post(reverse("admin:sales_transaction_changelist"),
                          {"action": "fetch_footage_links", "_selected_action": [Transaction.objects.first().pk]})
    page = admin_client.get(reverse("admin:sales_transaction_changelist")).content.decode()
    assert "posted" in page and "pending" in page
    assert "sandbox.verkada.example/command/history" in page


def test_sync_now_and_backfill_work_before_the_first_sync(sales_settings, clock, admin_client, run_on_commit):
    assert not SyncCursor.objects.exists()
    url = reverse("admin:sales_synccursor_changelist")
    listing = admin_client.get(url).content.decode()
    assert 'name="action"' in listing and "backfill_sales" in listing
    form = admin_client.post(url, {"action": "backfill_sales"})
    assert form.status_code == 200 and "Queue the backfill" in form.content.decode()
    with run_on_commit(execute=True):
        reply = admin_client.post(url, {
            "action": "backfill_sales", "apply": "1",
            "start_0": "2026-01-10", "start_1": "00:00:00", "end_0": "2026-01-10", "end_1": "01:00:00",
        }, follow=True)
    assert "queued as <a" in reply.content.decode()
    assert Transaction.objects.filter(transaction_date__date="2026-01-10").count() == 40
    assert not SyncCursor.objects.exists()
    with run_on_commit(execute=True):
        reply = admin_client.post(url, {"action": "sync_sales"}, follow=True)
    assert "Sync JD Sports sales: queued as" in reply.content.decode()
    runs = SyncRun.objects.filter(operation="sync_sales", trigger="admin").order_by("pk")
    assert [r.status for r in runs] == ["succeeded", "succeeded"] and "start" not in runs[1].params
    assert SyncCursor.objects.get().source == "jdsports.transactions"


def test_the_fetch_footage_links_action_fetches_the_selected_sales_only_even_if_fetched(sales_settings, clock, sandbox, admin_client, run_on_commit):
    synced_sales(clock)
    first, second = Transaction.objects.all()[:2]
    Transaction.objects.filter(pk=second.pk).update(links_fetched_at=clock(), footage_url="https://old.example/f", thumbnail_url="https://old.example/t")
    with run_on_commit(execute=True):
        admin_client.post(reverse("admin:sales_transaction_changelist"),
                          {"action": "fetch_footage_links", "_selected_action": [first.pk, second.pk]})
    run = SyncRun.objects.get(operation="fetch_footage_links", trigger="admin")
    assert run.status == "succeeded" and run.counters["fetched"] == 2 and sorted(run.params["ids"]) == sorted([first.pk, second.pk])
    fetched = Transaction.objects.filter(pk__in=[first.pk, second.pk])
    assert all("sandbox.verkada.example" in t.footage_url and "sandbox.verkada.example" in t.thumbnail_url for t in fetched)
    assert not Transaction.objects.exclude(pk__in=[first.pk, second.pk]).filter(links_fetched_at__isnull=False).exists()


def test_the_dashboard_and_health_count_every_sale_not_in_helix_and_warn_as_the_oldest_nears_the_limit(
    sales_settings, clock, sandbox, admin_client
):
    """Not only rows waiting to post: refused rows a retry may still post, and sales whose
    camera waits for a mapping (no outbox row yet) are as much at risk of Helix's limit."""
    from datetime import UTC, datetime, timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sales.models import CameraMapping
    from sales.services import sync_sales

    CameraMapping.objects.filter(jd_camera_id="cam-1031").delete()
    clock.set(datetime.now(UTC))
    assert sync_sales(trigger="command").status == "partial"  # cam-1031's sales wait, set aside
    unmapped = Transaction.objects.filter(camera_ref="cam-1031", helix__isnull=True).count()
    post_helix_events(trigger="command")
    refused = HelixOutbox.objects.filter(status="posted").order_by("time_ms")[:2]
    HelixOutbox.objects.filter(pk__in=[r.pk for r in refused]).update(status="failed", last_error="HTTP 400")
    oldest = Transaction.objects.filter(camera_ref="cam-1031").order_by("transaction_date").first().transaction_date
    oldest = min(oldest, *(r.transaction.transaction_date for r in HelixOutbox.objects.filter(status="failed")))
    assert unmapped and not HelixOutbox.objects.filter(status__in=["pending", "posting"]).exists()

    page = admin_client.get(reverse("admin:sales_dashboard")).content.decode()
    assert f"Helix posting backlog: {unmapped + 2} waiting" in page
    assert f'id="not-in-helix">{unmapped + 2} (0 waiting, 0 in flight, 2 refused, {unmapped} waiting for a camera mapping)' in page
    assert "each store's local days" in page and ", UTC)" not in page
    health = admin_client.get("/health/").json()["integrations"]["sales"]
    assert (health["figures"]["helix_not_posted"], health["figures"]["helix_refused"],
            health["figures"]["helix_waiting_for_camera_mapping"]) == (unmapped + 2, 2, unmapped)
    assert not any("30-day limit" in p for p in health.get("problems", []))

    # 28.5 days on (the services' clock): the oldest of them has a day and a half left.
    clock.freeze(oldest + timedelta(days=28, hours=12))
    page = admin_client.get(reverse("admin:sales_dashboard")).content.decode()
    assert "1.5 days left before Helix's 30-day limit" in page and 'data-warning="critical"' in page
    with CaptureQueriesContext(connection) as queries:
        health = admin_client.get("/health/").json()["integrations"]["sales"]
    assert health["status"] in ("warning", "degraded")
    # The figures and the problems share one count of what is not in Helix.
    assert sum("GROUP BY" in q["sql"] and "sales_helixoutbox" in q["sql"] for q in queries.captured_queries) == 1
    assert any("1.5 days left before Helix's 30-day limit" in p and "waiting for a camera mapping" in p
               for p in health["problems"]), health.get("problems")
    assert health["figures"]["helix_oldest_not_posted_days_left"] == 1.5
    # Past the limit nothing can post them any more: no longer counted as a backlog.
    clock.freeze(datetime.now(UTC) + timedelta(days=31))
    assert admin_client.get("/health/").json()["integrations"]["sales"]["figures"]["helix_not_posted"] == 0


def test_the_transactions_list_filters_by_its_dropdowns_and_a_time_range(sales_settings, clock, sandbox, admin_client):
    from datetime import timedelta

    synced_sales(clock)
    post_helix_events(trigger="command", limit=2)
    url = reverse("admin:sales_transaction_changelist")
    posted = set(HelixOutbox.objects.filter(status="posted").values_list("transaction__transaction_id", flat=True))

    def listed(params):
        page = admin_client.get(url, params).content.decode()
        assert 'name="helix__status__exact"' in page  # the status filter is a dropdown
        return {t for t in Transaction.objects.values_list("transaction_id", flat=True) if f">{t}</a>" in page}

    assert listed({"helix__status__exact": "posted"}) == posted
    from django.utils import timezone

    # the range is entered in the portal's time zone
    first = timezone.localtime(Transaction.objects.order_by("transaction_date").first().transaction_date)
    before = first - timedelta(minutes=1)
    assert listed({"transaction_date_to_0": f"{before:%Y-%m-%d}", "transaction_date_to_1": f"{before:%H:%M:%S}"}) == set()
    around = {"transaction_date_from_0": f"{before:%Y-%m-%d}", "transaction_date_from_1": f"{before:%H:%M:%S}",
              "transaction_date_to_0": f"{first:%Y-%m-%d}", "transaction_date_to_1": f"{first:%H:%M:%S}"}
    assert listed(around) == set(Transaction.objects.filter(
        transaction_date__gte=first.replace(microsecond=0) - timedelta(minutes=1),
        transaction_date__lte=first.replace(microsecond=0)).values_list("transaction_id", flat=True)) != set()
