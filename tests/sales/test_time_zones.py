"""Stores' time zones: a till's clock read in its store's zone, against the sandboxes.

The JD sandbox's tills keep London (101, 102) and Amsterdam (103) clocks; London and
Amsterdam send the naive local time, Manchester (102) sends ISO 8601 with its offset.
`catalog.sale_instant(row)` is when each sale really happened.
"""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError

from portal.models import SyncRun
from sales import dashboard
from sales.models import Camera, HelixOutbox, Store, Transaction
from sales.sandbox import catalog
from sales.services import post_helix_events, sync_sales
from sales.services.clocks import read_till_clock

from .conftest import assert_one_event_per_sale, synced_sales, upstream_sales

pytestmark = pytest.mark.django_db

LONDON, AMSTERDAM = ZoneInfo("Europe/London"), ZoneInfo("Europe/Amsterdam")
#: UTC windows around both 2026 changes (London and Amsterdam change at the same instant, 01:00 UTC)
SPRING = (datetime(2026, 3, 28, 22, tzinfo=UTC), datetime(2026, 3, 29, 3, tzinfo=UTC))
AUTUMN = (datetime(2026, 10, 24, 21, tzinfo=UTC), datetime(2026, 10, 25, 3, tzinfo=UTC))


def _utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _ms(instant):
    return int(instant.timestamp() * 1000)


def _zone_of(row):
    return ZoneInfo(catalog.STORE_ZONES[catalog.CAMERA_STORES[row["camera_id"]]])


def _backfill(start, end):
    record = sync_sales(trigger="command", start=start.isoformat(), end=end.isoformat())
    assert record.status == "succeeded", record.error
    return record


@pytest.mark.parametrize("naive,zone,instant", [
    ("2026-03-29 00:30:00", LONDON, "2026-03-29 00:30:00"),  # GMT
    ("2026-03-29 02:30:00", LONDON, "2026-03-29 01:30:00"),  # BST
    ("2026-03-29 01:30:00", LONDON, "2026-03-29 01:30:00"),  # never shown: read at GMT, the offset before the change
    ("2026-03-29 02:30:00", AMSTERDAM, "2026-03-29 01:30:00"),  # never shown: read at CET
    ("2026-10-25 01:30:00", LONDON, "2026-10-25 00:30:00"),  # shown twice: the first (BST)
    ("2026-10-25 02:30:00", AMSTERDAM, "2026-10-25 00:30:00"),  # shown twice: the first (CEST)
    ("2026-10-25 02:30:00", LONDON, "2026-10-25 02:30:00"),  # GMT again
])
def test_the_dst_rule_for_a_naive_till_clock(naive, zone, instant):
    assert read_till_clock(datetime.fromisoformat(naive), zone) == _utc(instant)


def test_a_london_store_counts_its_sales_in_local_days_across_both_dst_changes(sales_settings, clock, api_client,
                                                                                 django_user_model):
    clock.set(datetime(2026, 10, 25, 6, tzinfo=UTC))
    _backfill(*SPRING)
    _backfill(*AUTUMN)
    upstream = {str(r["transaction_id"]): r for window in (SPRING, AUTUMN) for r in upstream_sales(*window)}
    stored = {t.transaction_id: t for t in Transaction.objects.select_related("store", "helix")}
    assert set(stored) == set(upstream)

    repeated = []
    for key, row in upstream.items():
        sale, truth, zone = stored[key], catalog.sale_instant(row), _zone_of(row)
        if "T" in row["transaction_date"]:
            # Manchester's till sent its offset: the instant, whichever 01:30 it was.
            assert sale.till_clock == "" and sale.transaction_date == truth, row
        elif truth.astimezone(zone).fold:
            # The second pass of the autumn's repeated hour: a naive clock cannot say which
            # 01:30 it was; read as the first, as documented (sales.services.clocks).
            repeated.append(sale)
            assert sale.transaction_date == truth - timedelta(hours=1), row
        else:
            assert sale.till_clock == row["transaction_date"] and sale.transaction_date == truth, row
        # Helix gets the instant, in epoch ms; the sale shows the till's clock in its store's zone.
        assert sale.helix.time_ms == _ms(sale.transaction_date)
        assert sale.local_time.replace(tzinfo=None) == truth.astimezone(zone).replace(tzinfo=None)
    # London's and Amsterdam's naive tills both sold in their repeated hour.
    assert {s.store.store_id for s in repeated} == {101, 103}
    # Manchester's tills told both 01:xx passes apart by their offsets.
    manchester_repeat = {r["transaction_date"][-6:] for r in upstream.values()
                         if r["transaction_date"].startswith("2026-10-25T01:")}
    assert manchester_repeat == {"+01:00", "+00:00"}
    spring_jump = next(r for r in upstream.values() if r["transaction_date"] == "2026-03-29 02:03:00")
    assert stored[str(spring_jump["transaction_id"])].transaction_date == _utc("2026-03-29 01:03:00")

    user = django_user_model.objects.create_user("analyst", password="pw-for-tests-only")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="sales", codename__startswith="view_"))
    api_client.force_authenticate(user)
    store = Store.objects.get(store_id=101)
    reply = api_client.get(f"/api/sales/stores/{store.store_id}/sales/").json()
    assert reply["time_zone"] == "Europe/London"
    cameras = set(Camera.objects.filter(pos__store=store).values_list("camera_id", flat=True))
    truth = {}
    for row in upstream.values():
        if row["camera_id"] in cameras:
            day = catalog.sale_instant(row).astimezone(LONDON).date().isoformat()
            truth[day] = truth.get(day, 0) + 1
    assert {d["day"]: d["transactions"] for d in reply["by_day"]} == truth
    # 23:00–24:00 UTC on 24 October is already the 25th in London (BST), not in UTC.
    assert truth["2026-10-25"] > truth["2026-10-24"]

    # The dashboard's chart counts the same local days (its data is what the chart shows).
    sales = dashboard.sales_per_store_per_day(date(2026, 10, 24), date(2026, 10, 25))
    assert dict(zip(sales["days"], sales["count"][store])) == {date(2026, 10, 24): truth["2026-10-24"],
                                                              date(2026, 10, 25): truth["2026-10-25"]}


def test_a_local_time_that_never_happened_is_read_at_the_offset_before_the_change(sales_settings, clock, sandbox):
    clock.set(datetime(2026, 3, 29, 6, tzinfo=UTC))
    row = next(r for r in upstream_sales(*SPRING) if r["transaction_date"].startswith("2026-03-29 02:")
               and catalog.CAMERA_STORES[r["camera_id"]] == 101)
    # A till whose clock was set by hand shows 01:30, an hour London skipped that night.
    sandbox["jdsports"].override("sales", row["transaction_id"], {"transaction_date": "2026-03-29 01:30:00"})
    _backfill(*SPRING)
    sale = Transaction.objects.get(transaction_id=str(row["transaction_id"]))
    assert sale.till_clock == "2026-03-29 01:30:00"
    assert sale.transaction_date == _utc("2026-03-29 01:30:00")  # 01:30 GMT (the clocks showed 02:30 BST)
    assert sale.helix.time_ms == _ms(_utc("2026-03-29 01:30:00"))


def test_retime_store_sales_task_after_a_zone_change_in_the_admin_moves_naive_sales_and_their_helix_events(
    sales_settings, clock, sandbox, admin_client, run_on_commit
):
    Store.objects.filter(store_id__in=(102, 103)).update(time_zone="UTC")  # not entered yet: the default
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    _backfill(start, start + timedelta(hours=1))
    assert post_helix_events(trigger="command").status == "succeeded"
    truth = {str(r["transaction_id"]): catalog.sale_instant(r) for r in upstream_sales(start, start + timedelta(hours=1))}
    amsterdam = Transaction.objects.filter(store__store_id=103)
    manchester = Transaction.objects.filter(store__store_id=102)
    assert amsterdam.exists() and manchester.exists()
    # Amsterdam's clock read as UTC: an hour late. Manchester's offsets: right whatever the zone.
    assert all(s.transaction_date == truth[s.transaction_id] + timedelta(hours=1) for s in amsterdam.all())
    assert all(s.transaction_date == truth[s.transaction_id] for s in manchester.all())

    store = Store.objects.get(store_id=103)
    form = {"store_id": 103, "name": store.name, "address": store.address, "phone": store.phone, "email": store.email,
            "time_zone": "Europe/Amsterdam"}
    with run_on_commit(execute=True):
        reply = admin_client.post(f"/admin/sales/store/{store.pk}/change/", form)
    assert reply.status_code == 302
    run = SyncRun.objects.get(app="sales", operation="retime_store_sales")
    assert run.status == "succeeded", run.error
    assert run.counters["sales_retimed"] == amsterdam.count()
    assert all(s.transaction_date == truth[s.transaction_id] for s in amsterdam.all())
    assert set(HelixOutbox.objects.filter(transaction__in=amsterdam).values_list("pending_change", flat=True)) == {"move"}

    # Manchester's tills sent offsets: a zone change re-times none of its sales.
    store = Store.objects.get(store_id=102)
    form = {"store_id": 102, "name": store.name, "address": store.address, "phone": store.phone, "email": store.email,
            "time_zone": "Europe/London"}
    with run_on_commit(execute=True):
        assert admin_client.post(f"/admin/sales/store/{store.pk}/change/", form).status_code == 302
    again = SyncRun.objects.filter(app="sales", operation="retime_store_sales").latest("pk")
    assert again.pk != run.pk and again.status == "succeeded" and again.counters.get("sales_retimed", 0) == 0

    # The posting moves Amsterdam's events to their true times: each sale once, at its instant.
    assert post_helix_events(trigger="command").status == "succeeded"
    assert_one_event_per_sale(sandbox)
    events = {e["attributes"]["transaction_id"]: e["time_ms"] for e in sandbox["verkada"].state()["events"]}
    assert events == {key: _ms(when) for key, when in truth.items()}


def test_the_charts_last_day_is_the_latest_local_day_a_store_has_reached(sales_settings, clock):
    evening = (datetime.now(UTC) - timedelta(days=5)).replace(hour=22, minute=0, second=0, microsecond=0)
    now = evening + timedelta(minutes=100)  # 23:40 UTC: 00:40 tomorrow in Amsterdam, still today in London
    clock.freeze(now)
    _backfill(evening, now)
    last = dashboard.latest_local_day()
    assert last == (evening + timedelta(days=1)).date()
    sales = dashboard.sales_per_store_per_day(last - timedelta(days=6), last)
    after_midnight = [r for r in upstream_sales(evening + timedelta(hours=1), now)
                      if catalog.CAMERA_STORES[r["camera_id"]] == 103]
    assert after_midnight
    assert sales["count"][Store.objects.get(store_id=103)][-1] == len(after_midnight)


def test_a_store_time_zone_must_be_an_iana_name(admin_client, sales_settings, clock):
    Store.objects.all().delete()  # stores JD lists that nobody has zoned yet
    synced_sales(clock)
    store = Store.objects.get(store_id=101)
    assert store.time_zone == settings.TIME_ZONE  # until someone says otherwise
    for bad in ("BST", "Mars/Olympus_Mons", "../../etc/passwd"):
        store.time_zone = bad
        with pytest.raises(ValidationError):
            store.full_clean()
    url = f"/admin/sales/store/{store.pk}/change/"
    form = {"store_id": 101, "name": store.name, "address": store.address, "phone": "", "email": "", "time_zone": "GMT+1"}
    reply = admin_client.post(url, form)
    assert reply.status_code == 200 and "is not an IANA time zone name" in reply.content.decode()
    reply = admin_client.post(url, {**form, "time_zone": "Europe/London"})
    assert reply.status_code == 302
    synced_sales(clock)  # the JD sync does not reset a zone set in the admin
    assert Store.objects.get(store_id=101).time_zone == "Europe/London"


def test_a_till_clock_at_the_calendars_edge_is_set_aside_and_the_stores_other_sales_retimed(sales_settings, clock,
                                                                                             sandbox):
    """A naive clock stored before the sync refused instants at the calendar's edge
    (0001-01-01 00:10 in London) has no instant in Amsterdam: that sale is set aside
    with its reason (the run ends partial), the rest of the store is re-timed."""
    from portal.setaside import open_records
    from sales.services import retime_store_sales

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    _backfill(start, start + timedelta(hours=1))
    london = Transaction.objects.filter(store__store_id=101).exclude(till_clock="").order_by("pk")
    edge = london.last()
    Transaction.objects.filter(pk=edge.pk).update(till_clock="0001-01-01 00:10:00",
                                                  transaction_date=datetime(1, 1, 1, 0, 11, 15, tzinfo=UTC))
    others = {s.pk: s.transaction_date for s in london.exclude(pk=edge.pk)}
    assert others
    Store.objects.filter(store_id=101).update(time_zone="Europe/Amsterdam")
    record = retime_store_sales(trigger="command", store_id=101)
    assert record.status == "partial", record.error
    assert record.counters["sales_retimed"] == len(others)
    assert all(s.transaction_date != others[s.pk] for s in london.exclude(pk=edge.pk))
    aside = open_records("sales").get(kind="sale_retime")
    assert aside.key == edge.transaction_id and "0001-01-01 00:10:00" in aside.reason
    assert Transaction.objects.get(pk=edge.pk).transaction_date == datetime(1, 1, 1, 0, 11, 15, tzinfo=UTC)
