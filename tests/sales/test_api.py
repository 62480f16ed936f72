from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Sum

from portal.models import SyncRun
from sales.models import SalesSettings, Store, Transaction
from sales.services import post_helix_events

from .conftest import synced_sales

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(api_client, django_user_model):
    user = django_user_model.objects.create_user("analyst", password="pw-for-tests-only")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="sales", codename__startswith="view_"))
    api_client.force_authenticate(user)
    return api_client


def test_it_lists_transactions_filtered_by_store_camera_dates_and_posting(sales_settings, clock, sandbox, staff_api):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=5)
    store = Store.objects.get(store_id=101)
    reply = staff_api.get("/api/sales/transactions/", {"store": 101, "page_size": 500})
    assert reply.status_code == 200
    assert reply.json()["count"] == Transaction.objects.filter(store=store).count() > 0
    assert {row["store_id"] for row in reply.json()["results"]} == {101}
    camera = Transaction.objects.first().camera_ref
    assert {r["camera_id"] for r in staff_api.get("/api/sales/transactions/", {"camera": camera}).json()["results"]} == {camera}
    assert staff_api.get("/api/sales/transactions/", {"posted": "true"}).json()["count"] == 5
    pending = staff_api.get("/api/sales/transactions/", {"helix_status": "pending"}).json()
    assert pending["count"] == Transaction.objects.count() - 5
    middle = Transaction.objects.order_by("transaction_date")[10].transaction_date
    after = staff_api.get("/api/sales/transactions/", {"date_after": middle.isoformat()}).json()
    assert after["count"] == Transaction.objects.filter(transaction_date__gte=middle).count()
    row = after["results"][0]
    assert set(row) >= {"transaction_id", "amount", "item_name", "helix_status", "footage_url"}


def test_it_totals_a_stores_sales_and_lists_stores_with_sales(sales_settings, clock, staff_api):
    synced_sales(clock)
    Store.objects.create(store_id=999, name="Closed store")
    reply = staff_api.get("/api/sales/stores/102/sales/")
    assert reply.status_code == 200
    body = reply.json()
    expected = Transaction.objects.filter(store__store_id=102).aggregate(total=Sum("amount"))["total"]
    assert Decimal(body["total_amount"]) == expected
    assert body["transactions"] == Transaction.objects.filter(store__store_id=102).count()
    assert sum(d["transactions"] for d in body["by_day"]) == body["transactions"]
    with_sales = staff_api.get("/api/sales/stores/with-transactions/").json()
    assert {s["store_id"] for s in with_sales["results"]} == {101, 102, 103}


def test_fetch_and_store_transactions_runs_the_sync_and_returns_the_run(sales_settings, admin_user, api_client, run_on_commit):
    api_client.force_authenticate(admin_user)
    with run_on_commit(execute=True):
        reply = api_client.post("/api/sales/fetch_and_store_transactions/", {}, format="json")
    assert reply.status_code == 202 and reply.json()["status"] == "queued"
    run = SyncRun.objects.get(pk=reply.json()["id"])
    assert (run.operation, run.trigger, run.status) == ("sync_sales", "api", "succeeded")
    assert Transaction.objects.exists()
    start = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    with run_on_commit(execute=True):
        backfill = api_client.post("/api/sales/fetch_and_store_transactions/",
                                   {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}, format="json")
    assert backfill.status_code == 202 and backfill.json()["params"]["start"].startswith(start.date().isoformat())
    assert Transaction.objects.filter(transaction_date__lt=start + timedelta(hours=1)).count() == 40
    with run_on_commit(execute=True):
        post = api_client.post("/api/sales/post_helix_events/")
    assert post.status_code == 202 and SyncRun.objects.get(pk=post.json()["id"]).status == "succeeded"


def test_the_api_refuses_bad_ranges_and_users_without_permission(sales_settings, staff_api, admin_user, api_client):
    assert staff_api.post("/api/sales/fetch_and_store_transactions/", {}, format="json").status_code == 403
    api_client.force_authenticate(None)
    assert api_client.get("/api/sales/transactions/").status_code in (401, 403)
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/sales/fetch_and_store_transactions/", {"start": "2026-01-02T00:00:00Z"}, format="json")
    assert reply.status_code == 400 and reply.json()["success"] is False
    assert not SyncRun.objects.exists()


def test_the_api_never_returns_a_secret(sales_settings, clock, admin_user, api_client):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    api_client.force_authenticate(admin_user)
    text = "".join(api_client.get(url).content.decode() for url in
                   ["/api/sales/transactions/", "/api/sales/stores/", "/api/runs/?app=sales", "/api/schema/"])
    token = SalesSettings.load().verkada_token
    assert token
    for secret in ("jd-sandbox-key", "verkada-sandbox-key", token):
        assert secret not in text


def test_a_sale_stored_at_the_calendars_edge_is_left_out_of_the_days_not_a_500(sales_settings, clock, sandbox,
                                                                               staff_api):
    """0001-01-01 01:00 UTC is 0000-12-31 in New York: no date. The sync no longer stores
    such an instant; one stored before is left out of the local days, never a 500."""
    from sales.models import Store, Transaction

    synced_sales(clock)
    sale = Transaction.objects.exclude(store=None).order_by("pk").first()
    Transaction.objects.filter(pk=sale.pk).update(transaction_date=datetime(1, 1, 1, 1, 0, tzinfo=UTC), till_clock="")
    Store.objects.filter(pk=sale.store_id).update(time_zone="America/New_York")
    reply = staff_api.get(f"/api/sales/stores/{sale.store.store_id}/sales/")
    assert reply.status_code == 200, reply.content
    body = reply.json()
    assert body["transactions"] == Transaction.objects.filter(store=sale.store).count()
    assert sum(day["transactions"] for day in body["by_day"]) == body["transactions"] - 1


@pytest.mark.parametrize("url", ["/api/sales/stores/101/sales/", "/api/sales/transactions/"])
@pytest.mark.parametrize("query", [{"date_after": "garbage"}, {"date_before": "2026-13-45"}, {"store": "abc"},
                                   {"helix_status": "nonsense"}, {"posted": "perhaps"},
                                   # readable, but before year 1 in UTC: no database can compare it
                                   {"date_after": "0001-01-01T00:00:00+14:00"},
                                   {"date_before": "9999-12-31T23:59:59-14:00"},
                                   {"store": "99999999999999999999999"}])
def test_a_bad_filter_is_a_400_not_all_time_totals(sales_settings, clock, sandbox, staff_api, url, query):
    synced_sales(clock)
    reply = staff_api.get(url, query)
    assert reply.status_code == 400, reply.content
    body = reply.json()
    assert body["success"] is False and body["message"]
    assert next(iter(query)) in str(body)


@pytest.mark.parametrize("query", [{"date_afer": "2026-01-01T00:00:00Z"}, {"store_id": "101"}, {"page": "2"}])
def test_a_parameter_the_store_totals_do_not_know_is_a_400_naming_it(sales_settings, clock, sandbox, staff_api, query):
    synced_sales(clock)
    reply = staff_api.get("/api/sales/stores/101/sales/", query)
    assert reply.status_code == 400, reply.content
    name = next(iter(query))
    assert reply.json()["success"] is False and name in reply.json()["error"] and "date_after" in reply.json()["error"]
    # The parameters it knows still answer.
    assert staff_api.get("/api/sales/stores/101/sales/", {"date_after": "2026-01-01T00:00:00Z"}).status_code == 200
    assert staff_api.get("/api/sales/stores/101/sales/", {"format": "json"}).status_code == 200


def test_an_ordering_the_list_cannot_use_is_a_400_that_names_the_ones_it_can(sales_settings, staff_api):
    reply = staff_api.get("/api/sales/transactions/", {"ordering": "-amount,nonsense"})
    assert reply.status_code == 400 and "ordering" in str(reply.json())
    assert "amount, transaction_date" in reply.json()["error"]
    assert staff_api.get("/api/sales/transactions/", {"ordering": "-amount"}).status_code == 200
    assert staff_api.get("/api/sales/stores/", {"ordering": "password"}).status_code == 400


@pytest.mark.parametrize("start", ["2026-01-01T00:00:00Z\x00", "2026-01-01T00:00:00\x00junk"])
def test_a_backfill_start_with_a_nul_is_a_400_and_queues_nothing(sales_settings, admin_user, api_client, start):
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/sales/fetch_and_store_transactions/",
                            {"start": start, "end": "2026-01-05T00:00:00Z"}, format="json")
    assert reply.status_code == 400 and "NUL" in reply.json()["error"], reply.content
    assert not SyncRun.objects.exists()


def test_a_backfill_over_the_range_cap_is_a_400_and_queues_nothing(sales_settings, admin_user, api_client):
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/sales/fetch_and_store_transactions/",
                            {"start": "2026-01-01T00:00:00Z", "end": "2026-02-05T00:00:00Z"}, format="json")
    assert reply.status_code == 400 and "at most 31 days" in reply.json()["error"]
    assert not SyncRun.objects.exists()


LISTS = ["/api/sales/transactions/", "/api/sales/stores/", "/api/sales/stores/with-transactions/",
         "/api/sales/event-types/", "/api/sales/routing-rules/"]


@pytest.mark.parametrize("url", LISTS)
def test_a_parameter_a_sales_list_does_not_know_is_a_400_naming_it(sales_settings, clock, sandbox, staff_api, url):
    """`?date_afer=` (a typo) would be the whole list, looking filtered: a 400 on every sales endpoint."""
    synced_sales(clock)
    reply = staff_api.get(url, {"date_afer": "garbage", "page_size": "5"})
    assert reply.status_code == 400, reply.content
    body = reply.json()
    assert body["success"] is False and "date_afer" in body["error"] and "page_size" in body["error"]
    # What the lists do read still answers: pagination, ordering, the format, their filters.
    assert staff_api.get(url, {"page": "1", "page_size": "5", "format": "json"}).status_code == 200
    assert staff_api.get(url, {"ordering": "-pk" if "event" in url or "routing" in url else "store_id"}).status_code in (
        200, 400)  # an ordering field is checked by the ordering filter (its own 400 for one it cannot use)
    if url == "/api/sales/transactions/":
        assert staff_api.get(url, {"store": "101", "date_after": "2026-01-01T00:00:00Z", "ordering": "-amount",
                                   "posted": "false", "camera": "cam-1011", "helix_status": "pending"}).status_code == 200
        # The detail too: a bad parameter is never silently dropped.
        sale = Transaction.objects.first().transaction_id
        assert staff_api.get(f"{url}{sale}/", {"nonsense": "1"}).status_code == 400
        assert staff_api.get(f"{url}{sale}/").status_code == 200


def test_the_store_totals_refuse_another_store_in_their_parameters(sales_settings, clock, sandbox, staff_api):
    synced_sales(clock)
    reply = staff_api.get("/api/sales/stores/101/sales/", {"store": "102"})
    assert reply.status_code == 400 and "store" in reply.json()["error"] and "101" in reply.json()["error"]
    same = staff_api.get("/api/sales/stores/101/sales/", {"store": "101"})
    assert same.status_code == 200 and same.json() == staff_api.get("/api/sales/stores/101/sales/").json()
    assert same.json()["transactions"] > 0


def test_fetch_and_store_transactions_refuses_a_body_key_it_does_not_take(sales_settings, admin_user, api_client):
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/sales/fetch_and_store_transactions/",
                            {"strat": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z", "dry_run": True}, format="json")
    assert reply.status_code == 400 and "strat" in reply.json()["error"] and "dry_run" in reply.json()["error"]
    assert not SyncRun.objects.exists()


@pytest.mark.parametrize("url", ["/api/sales/transactions/%00/", "/api/sales/transactions/a%00b/",
                                 "/api/sales/stores/%00/", "/api/sales/stores/%00/sales/",
                                 "/api/sales/stores/99999999999999999999999/", "/api/sales/event-types/%00/",
                                 "/api/sales/routing-rules/%00/"])
def test_a_nul_byte_or_an_out_of_range_id_in_a_path_is_a_404_not_a_500(sales_settings, clock, sandbox, staff_api, url):
    synced_sales(clock)
    assert staff_api.get(url).status_code == 404


@pytest.mark.parametrize("query", [{"camera": "\x00"}, {"ordering": "amount\x00"}, {"date_after": "2026\x00"},
                                   # a whole date-time then a NUL: Python's ISO parser would stop at the NUL
                                   {"date_after": "2026-01-01T00:00:00\x00"}, {"date_before": "2026-01-01\x00junk"}])
def test_a_nul_byte_in_a_filter_is_a_400(sales_settings, clock, sandbox, staff_api, query):
    synced_sales(clock)
    assert staff_api.get("/api/sales/transactions/", query).status_code == 400


@pytest.mark.parametrize("schema,mapping", [
    ({"transaction_id": "string", "a\x00b": "string"}, {"transaction_id": "transaction_id"}),
    ({"transaction_id": "string", "amount\x00": "float"}, {"transaction_id": "transaction_id", "amount\x00": "amount"}),
    ({"transaction_id": "string", "": "string"}, {"transaction_id": "transaction_id"}),
])
def test_an_event_type_with_a_nul_byte_in_an_attribute_name_is_a_400(admin_user, api_client, db, schema, mapping):
    from sales.models import HelixEventType

    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/sales/event-types/", {"name": "Checkout", "event_schema": schema,
                                                        "attribute_mapping": mapping}, format="json")
    assert reply.status_code == 400 and "printable text" in reply.json()["error"], reply.content
    assert not HelixEventType.objects.filter(name="Checkout").exists()
