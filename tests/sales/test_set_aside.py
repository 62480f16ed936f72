"""One bad JD Sports record is set aside; the rest of the sync goes through.

The sandbox serves the broken record (its `override` control); after it is fixed,
a retry through /api/portal/set-aside/retry stores the record and resolves it.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from portal.models import SetAsideRecord
from portal.sandbox import Fault
from sales.models import Camera, HelixOutbox, Item, PointOfSale, Store, SyncCursor, Transaction
from sales.sandbox import catalog
from sales.services import SOURCE, sync_sales
from tests.conftest import retry_through_the_api

from .conftest import upstream_sales

pytestmark = pytest.mark.django_db


def _hour(n):
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=n)


def _window(settings):
    return _hour(1), _hour(0) - timedelta(seconds=settings.settle_seconds)


def _stored_ids():
    return sorted(Transaction.objects.values_list("transaction_id", flat=True))


def _ids(sales):
    return sorted(str(s["transaction_id"]) for s in sales)




ESTATE_FAULTS = [
    # collection, catalogue id, fields served instead, set-aside kind and key, words the reason has, and the
    # cameras whose store that leaves unknown (their tills' local times cannot be read: set aside too)
    ("stores", 101, {"store_id": "abc"}, "store", "abc", "store_id 'abc'", {"cam-1011", "cam-1012"}),
    ("points_of_sale", 1011, {"store_id": "one-oh-one"}, "pos", "1011", "store_id 'one-oh-one'", {"cam-1011"}),
    ("cameras", "cam-1012", {"pos_id": "till two"}, "camera", "cam-1012", "pos_id 'till two'", {"cam-1012"}),
    ("items", 5001, {"item_price": float("nan")}, "item", "5001", "item_price", set()),
    # Readable, but no column holds it (PostgreSQL: DataError; SQLite: OverflowError): one record, not the run.
    ("items", 5001, {"item_id": 2**64}, "item", str(2**64), "item id of 18446744073709551616, out of the range", set()),
    ("items", 5002, {"item_quantity": 2**31}, "item", "5002", "item quantity of 2147483648, out of the range", set()),
    ("items", 5003, {"item_price": 1e10}, "item", "5003", "item price of 10000000000", set()),
    ("stores", 101, {"store_name": "S" * 201}, "store", "101", "store name of 201 characters, longer than the 200",
     {"cam-1011", "cam-1012"}),
    ("stores", 101, {"store_address": "A" * 301}, "store", "101", "address of 301 characters", {"cam-1011", "cam-1012"}),
    ("points_of_sale", 1011, {"pos_id": 2**63}, "pos", str(2**63), "out of the range", {"cam-1011"}),
    ("cameras", "cam-1012", {"camera_location": "L" * 201}, "camera", "cam-1012", "location of 201 characters",
     {"cam-1012"}),
]


def _from_cameras(sales, cameras, keep=True):
    return [s for s in sales if (s["camera_id"] in cameras) == keep]


@pytest.mark.parametrize("collection,record_id,fields,kind,key,words,storeless", ESTATE_FAULTS)
def test_a_bad_estate_record_is_set_aside_the_rest_is_stored_and_a_retry_resolves_it(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit, collection, record_id, fields, kind, key,
    words, storeless,
):
    Store.objects.all().delete()  # the first sync: no store known yet, none zoned
    clock.freeze(_hour(0))
    sandbox["jdsports"].override(collection, record_id, fields)
    record = sync_sales(trigger="beat")
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get(app="sales", kind=kind)
    assert (aside.kind, aside.key, aside.status, aside.run_id) == (kind, key, "open", record.pk)
    assert words in aside.reason and aside.reason.startswith(f"jdsports sent a {kind} with")
    served = next(r for r in getattr(catalog, collection.upper()) if str(r[next(iter(r))]) == str(record_id))
    assert aside.payload == {**served, **{k: ("NaN" if v != v else v) for k, v in fields.items()}}  # the raw record, kept
    # Everything else went through: the rest of the estate and every sale of the window.
    assert Store.objects.count() == len(catalog.STORES) - (kind == "store")
    assert PointOfSale.objects.count() == len(catalog.POINTS_OF_SALE) - (kind == "pos")
    assert Camera.objects.count() == len(catalog.CAMERAS) - (kind == "camera")
    assert Item.objects.count() == len(catalog.ITEMS) - (kind == "item")
    start, end = _window(sales_settings)
    # A sale whose camera's store is unknown is set aside (its local time cannot be read); the rest are stored.
    assert _stored_ids() == _ids(_from_cameras(upstream_sales(start, end), storeless, keep=False))
    orphans = SetAsideRecord.objects.filter(app="sales", kind="sale")
    assert sorted(orphans.values_list("key", flat=True)) == _ids(_from_cameras(upstream_sales(start, end), storeless))
    # Nothing retries them on its own past the look-back: the reason says what stores them.
    assert all("belongs to no known store" in r.reason and "inside the sync's look-back" in r.reason
               and "retry this record" in r.reason for r in orphans)
    assert SyncCursor.objects.get(source=SOURCE).watermark == end

    # Again (the next hourly sync): no duplicate row, one open record seen twice.
    clock.freeze(_hour(0) + timedelta(minutes=10))
    again = sync_sales(trigger="beat")
    assert again.status == "partial"
    aside.refresh_from_db()
    assert SetAsideRecord.objects.filter(app="sales", kind=kind).count() == 1
    assert aside.attempts == 2 and aside.run_id == again.pk
    assert Transaction.objects.count() == HelixOutbox.objects.count() == len(set(_stored_ids()))
    watermark = SyncCursor.objects.get(source=SOURCE).watermark
    assert _stored_ids() == _ids(_from_cameras(upstream_sales(start, watermark), storeless, keep=False))

    sandbox["jdsports"].fix_records()
    [retry] = retry_through_the_api(api_client, admin_user, run_on_commit, [aside])
    assert (retry.app, retry.operation, retry.status) == ("sales", "retry_set_aside", "succeeded"), retry.error
    aside.refresh_from_db()
    assert aside.status == "resolved" and aside.resolved_by_id == retry.pk
    # With their store known, the set-aside sales are stored by their own retries.
    if storeless:
        retries = retry_through_the_api(api_client, admin_user, run_on_commit, list(orphans.filter(status="open")))
        assert {r.status for r in retries} == {"succeeded"}
    assert not SetAsideRecord.objects.filter(app="sales", status="open").exists()
    assert _stored_ids() == _ids(upstream_sales(start, watermark))
    assert Store.objects.count() == len(catalog.STORES) and Camera.objects.count() == len(catalog.CAMERAS)
    assert Item.objects.count() == len(catalog.ITEMS) and Item.objects.get(item_id=5001).price == Decimal("125.00")
    assert PointOfSale.objects.get(pos_id=1011).store.store_id == 101
    assert Camera.objects.get(camera_id="cam-1012").pos.pos_id == 1012


def test_a_retry_while_the_record_is_still_bad_keeps_it_open_with_its_reason(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit
):
    Store.objects.all().delete()  # the first sync: no store known yet
    clock.freeze(_hour(0))
    sandbox["jdsports"].override("stores", 101, {"store_id": "abc"})
    sync_sales(trigger="beat")
    aside = SetAsideRecord.objects.get(kind="store")
    [retry] = retry_through_the_api(api_client, admin_user, run_on_commit, [aside])
    assert retry.status == "failed"
    aside.refresh_from_db()
    assert aside.status == "open" and aside.attempts == 2 and "store_id 'abc'" in aside.reason
    assert not Store.objects.filter(store_id=101).exists()


SALE_FAULTS = [
    ({"transaction_amount": float("nan")}, "transaction_amount is nan, not a finite number"),
    ({"transaction_amount": float("inf")}, "transaction_amount is inf, not a finite number"),
    ({"transaction_amount": "twelve pounds"}, "non-numeric transaction_amount 'twelve pounds'"),
    ({"transaction_date": "yesterday teatime"}, "unreadable transaction_date 'yesterday teatime'"),
    ({"transaction_amount": 1e15}, "more than a sale can hold"),
    # readable, but before year 1 (or after 9999) once read in UTC: no column holds the instant
    ({"transaction_date": "0001-01-01T00:00:00+14:00"}, "out of the range of dates the portal stores"),
    ({"transaction_date": "9999-12-31T23:59:59-14:00"}, "out of the range of dates the portal stores"),
    # in range in UTC, but its local date in some zone is not (New York: 0000-12-31): a
    # stored instant stays within years 2..9998, a date in every zone
    ({"transaction_date": "0001-01-01T01:00:00+00:00"}, "out of the range of dates the portal stores"),
    ({"transaction_date": "9999-12-31T12:00:00+00:00"}, "out of the range of dates the portal stores"),
]


@pytest.mark.parametrize("fields,reason", SALE_FAULTS)
def test_a_bad_sale_is_set_aside_with_the_watermark_and_a_retry_stores_it(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit, fields, reason
):
    clock.freeze(_hour(0))
    start, end = _window(sales_settings)
    upstream = upstream_sales(start, end)
    bad = upstream[3]
    sandbox["jdsports"].override("sales", bad["transaction_id"], fields)
    record = sync_sales(trigger="beat")
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get(app="sales", kind="sale")
    assert aside.key == str(bad["transaction_id"]) and reason in aside.reason
    assert aside.payload["transaction_id"] == bad["transaction_id"] and aside.payload["camera_id"] == bad["camera_id"]
    assert aside.context == {"start": start.isoformat(), "end": end.isoformat()}
    assert _stored_ids() == _ids(s for s in upstream if s is not bad)
    # The watermark passed the bad sale only because its record was stored with it.
    assert SyncCursor.objects.get(source=SOURCE).watermark == end

    # A backfill over the same window reads it again: no duplicate, the same open record.
    sync_sales(trigger="command", start=start.isoformat(), end=end.isoformat())
    aside.refresh_from_db()
    assert aside.attempts == 2 and SetAsideRecord.objects.count() == 1
    assert _stored_ids() == _ids(s for s in upstream if s is not bad)

    sandbox["jdsports"].fix_records()
    [retry] = retry_through_the_api(api_client, admin_user, run_on_commit, [aside])
    assert retry.status == "succeeded", retry.error
    aside.refresh_from_db()
    assert aside.status == "resolved"
    assert _stored_ids() == _ids(upstream) and HelixOutbox.objects.count() == len(upstream)
    assert Transaction.objects.get(transaction_id=str(bad["transaction_id"])).amount == Decimal(str(bad["transaction_amount"]))
    assert SyncCursor.objects.get(source=SOURCE).watermark == end


def test_the_watermark_is_never_past_a_sale_that_is_neither_stored_nor_set_aside(sales_settings, clock, sandbox):
    clock.freeze(_hour(3))
    assert sync_sales(trigger="beat").status == "succeeded"
    watermark = SyncCursor.objects.get(source=SOURCE).watermark
    # Three slices behind; a NaN sale in each of the first two; the third slice's fetch fails.
    first, second = (upstream_sales(watermark + timedelta(hours=n), watermark + timedelta(hours=n + 1))[5] for n in (0, 1))
    for sale in (first, second):
        sandbox["jdsports"].override("sales", sale["transaction_id"], {"transaction_amount": float("nan")})
    sandbox["jdsports"].fault_after_windows(2, Fault.from_json({"status": 500, "count": 10, "path": "/sales/"}))
    clock.freeze(_hour(0))
    failed = sync_sales(trigger="beat")
    assert failed.status == "failed" and failed.progress_done == 2
    moved_to = SyncCursor.objects.get(source=SOURCE).watermark
    assert moved_to == watermark + timedelta(hours=2)
    stored = set(_stored_ids())
    aside = set(SetAsideRecord.objects.filter(app="sales", kind="sale", status="open").values_list("key", flat=True))
    behind = {str(s["transaction_id"]) for s in upstream_sales(_hour(4), moved_to)}
    assert behind - stored == aside == {str(first["transaction_id"]), str(second["transaction_id"])}


def test_a_normal_sync_that_stores_the_fixed_record_resolves_it(sales_settings, clock, sandbox):
    clock.freeze(_hour(0))
    start, end = _window(sales_settings)
    bad = upstream_sales(start, end)[0]
    sandbox["jdsports"].override("stores", 102, {"store_id": None})
    sandbox["jdsports"].override("sales", bad["transaction_id"], {"transaction_amount": "n/a"})
    assert sync_sales(trigger="beat").status == "partial"
    assert set(SetAsideRecord.objects.values_list("kind", "status")) == {("store", "open"), ("sale", "open")}
    sandbox["jdsports"].fix_records()
    record = sync_sales(trigger="command", start=start.isoformat(), end=end.isoformat())
    assert record.status == "succeeded", record.error
    assert set(SetAsideRecord.objects.values_list("kind", "status")) == {("store", "resolved"), ("sale", "resolved")}
    assert set(SetAsideRecord.objects.values_list("resolved_by", flat=True)) == {record.pk}
    assert Store.objects.filter(store_id=102).exists() and Transaction.objects.filter(transaction_id=str(bad["transaction_id"])).exists()


def test_a_sale_with_no_camera_is_stored_set_aside_with_its_reason_and_never_posted(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit
):
    from sales.services import post_helix_events

    clock.freeze(_hour(0))
    start, end = _window(sales_settings)
    bad = upstream_sales(start, end)[2]
    instant = catalog.sale_instant(bad)
    # With an offset, its time needs no store: it is stored, but no Helix event can be made for it.
    sandbox["jdsports"].override("sales", bad["transaction_id"], {"camera_id": None, "transaction_date": instant.isoformat()})
    record = sync_sales(trigger="beat")
    assert record.status == "partial", (record.status, record.error)
    aside = SetAsideRecord.objects.get(app="sales", kind="helix_event", status="open")
    assert aside.key == str(bad["transaction_id"]) and "no camera" in aside.reason
    assert Transaction.objects.get(transaction_id=str(bad["transaction_id"])).transaction_date == instant
    posting = post_helix_events(trigger="command")
    assert posting.status == "succeeded", posting.error
    assert str(bad["transaction_id"]) not in {e["attributes"]["transaction_id"] for e in sandbox["verkada"].state()["events"]}
    # A retry while JD still gives it no camera fails, and the record stays open with its reason.
    [retry] = retry_through_the_api(api_client, admin_user, run_on_commit, [aside])
    assert retry.status == "failed"
    aside.refresh_from_db()
    assert aside.status == "open" and "no camera" in aside.reason
