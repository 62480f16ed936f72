from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core.management import call_command

from sales.models import Camera, HelixOutbox, Item, PointOfSale, Store, SyncCursor, Transaction
from sales.sandbox import catalog
from sales.services import SOURCE, sync_sales

from .conftest import upstream_sales

pytestmark = pytest.mark.django_db


def _hour(n):
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return base - timedelta(hours=n)


def test_it_upserts_the_estate_and_the_sales_of_the_last_hour(sales_settings, clock):
    clock.freeze(_hour(1))
    record = sync_sales(trigger="command")
    assert record.status == "succeeded", record.error
    assert Store.objects.count() == len(catalog.STORES)
    assert PointOfSale.objects.count() == len(catalog.POINTS_OF_SALE)
    assert Camera.objects.count() == len(catalog.CAMERAS)
    assert Item.objects.count() == len(catalog.ITEMS)
    window_end = _hour(1) - timedelta(seconds=sales_settings.settle_seconds)
    expected = upstream_sales(_hour(2), window_end)
    assert sorted(Transaction.objects.values_list("transaction_id", flat=True)) == sorted(str(s["transaction_id"]) for s in expected)
    assert HelixOutbox.objects.count() == len(expected)
    sale = Transaction.objects.select_related("store", "camera__pos").first()
    assert sale.store == sale.camera.pos.store
    assert SyncCursor.objects.get(source=SOURCE).watermark == window_end


def test_it_pulls_each_window_once_with_no_gap_no_overlap_and_no_duplicates(sales_settings, clock, sandbox):
    for hours_ago in (5, 3, 3, 0):
        clock.freeze(_hour(hours_ago) + timedelta(minutes=7))
        assert sync_sales(trigger="beat").status == "succeeded"
    windows = sandbox["jdsports"].windows_served
    for (_, previous_end), (start, _) in zip(windows, windows[1:]):
        assert start == previous_end  # every window starts where the last one ended
    first_start = windows[0][0]
    expected = upstream_sales(first_start, windows[-1][1])
    assert Transaction.objects.count() == len(expected) == HelixOutbox.objects.count()
    assert Transaction.objects.values("transaction_id").distinct().count() == len(expected)


@pytest.mark.parametrize("fault", [
    {"status": 500, "count": 10},
    {"kind": "malformed"},
    {"kind": "html", "status": 502, "count": 10},
    {"status": 401, "body": {"message": "invalid API key"}},
    {"kind": "reset", "count": 10},
])
def test_it_keeps_the_watermark_on_a_failed_run_and_catches_up_after(sales_settings, clock, sandbox, fault):
    clock.freeze(_hour(3))
    assert sync_sales(trigger="beat").status == "succeeded"
    watermark = SyncCursor.objects.get(source=SOURCE).watermark
    before = Transaction.objects.count()
    clock.freeze(_hour(0))
    sandbox["jdsports"].add_fault(__import__("portal.sandbox", fromlist=["Fault"]).Fault.from_json({**fault, "path": "/sales/"}))
    failed = sync_sales(trigger="beat")
    assert failed.status == "failed"
    assert SyncCursor.objects.get(source=SOURCE).watermark == watermark
    assert Transaction.objects.count() == before
    sandbox["jdsports"].faults.clear()
    assert sync_sales(trigger="beat").status == "succeeded"
    expected = upstream_sales(_hour(4), _hour(0) - timedelta(seconds=sales_settings.settle_seconds))
    assert sorted(Transaction.objects.values_list("transaction_id", flat=True)) == sorted(str(s["transaction_id"]) for s in expected)
    assert HelixOutbox.objects.count() == len(expected)


def test_it_backfills_a_date_range_without_moving_the_watermark(sales_settings, clock):
    clock.freeze(_hour(0))
    call_command("sync_sales")
    watermark = SyncCursor.objects.get(source=SOURCE).watermark
    start, end = _hour(30), _hour(27)
    call_command("backfill_sales", start=start.isoformat(), end=end.isoformat())
    call_command("backfill_sales", start=start.isoformat(), end=end.isoformat())  # again: nothing duplicated
    backfilled = Transaction.objects.filter(transaction_date__gte=start, transaction_date__lt=end)
    assert backfilled.count() == len(upstream_sales(start, end)) > 0
    assert HelixOutbox.objects.filter(transaction__in=backfilled).count() == backfilled.count()
    assert SyncCursor.objects.get(source=SOURCE).watermark == watermark


def test_it_marks_sales_older_than_helix_accepts_as_expired(sales_settings, clock):
    start = _hour(24 * 40)
    record = sync_sales(trigger="command", start=start.isoformat(), end=(start + timedelta(hours=1)).isoformat())
    assert record.status == "succeeded"
    assert record.counters["outbox_expired"] == HelixOutbox.objects.count() > 0
    assert set(HelixOutbox.objects.values_list("status", flat=True)) == {"expired"}


def test_a_backfill_command_with_an_inverted_range_fails_with_a_message(sales_settings):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="start before its end"):
        call_command("backfill_sales", start="2026-01-02", end="2026-01-01")


def test_it_follows_every_page_of_a_window(sales_settings, clock, sandbox):
    # JD serves pages of 7, whatever size the client asks for.
    assert requests.post(f"{sandbox.url}/_sandbox/jdsports/max_page_size", json={"size": 7}, timeout=5).status_code == 200
    clock.freeze(_hour(0))
    assert sync_sales(trigger="command").status == "succeeded"
    expected = upstream_sales(_hour(1), _hour(0) - timedelta(seconds=sales_settings.settle_seconds))
    assert len(expected) > 7 * 3
    assert sorted(Transaction.objects.values_list("transaction_id", flat=True)) == sorted(str(s["transaction_id"]) for s in expected)


def test_after_faults_on_both_sides_and_reruns_verkada_holds_one_event_per_upstream_sale(sales_settings, clock, sandbox):
    from portal.sandbox import Fault
    from sales.services import post_helix_events

    from .conftest import assert_one_event_per_sale

    clock.freeze(_hour(2))
    sync_sales(trigger="beat")
    sandbox["jdsports"].add_fault(Fault.from_json({"status": 503, "count": 10, "path": "/sales/"}))
    sandbox["verkada"].add_fault(Fault.from_json({"status": 500, "count": 5, "path": "/cameras/v1/video_tagging/event"}))
    sandbox["verkada"].lose_replies(3)
    clock.freeze(_hour(0))
    assert sync_sales(trigger="beat").status == "failed"
    post_helix_events(trigger="beat")
    sandbox["jdsports"].faults.clear()
    sync_sales(trigger="beat")
    for _ in range(3):
        clock.freeze(clock() + timedelta(minutes=30))
        post_helix_events(trigger="beat")
    upstream = upstream_sales(_hour(3), _hour(0) - timedelta(seconds=sales_settings.settle_seconds))
    received = sandbox["verkada"].state()["events"]
    assert sorted(e["attributes"]["transaction_id"] for e in received) == sorted(str(s["transaction_id"]) for s in upstream)
    assert_one_event_per_sale(sandbox)


def test_without_keys_the_sync_fails_with_a_message_for_staff(db):
    from django.apps import apps

    record = sync_sales(trigger="command")
    assert record.status == "failed" and "No JD Sports API key" in record.error
    assert not apps.get_app_config("sales").is_configured()
    assert not SyncCursor.objects.exists()


@pytest.mark.parametrize("fault", [
    {"kind": "timeout", "timeout_s": 2.5, "count": 1},
    {"status": 429, "retry_after": 1, "count": 1},
])
def test_a_jdsports_timeout_or_429_is_retried_within_the_run(sales_settings, clock, sandbox, fault):
    from portal.sandbox import Fault

    clock.freeze(_hour(0))
    sandbox["jdsports"].add_fault(Fault.from_json({**fault, "path": "/sales/"}))
    record = sync_sales(trigger="beat")
    assert record.status == "succeeded", record.error
    assert sandbox["jdsports"].faults == []  # the fault was met, and retried
    end = _hour(0) - timedelta(seconds=sales_settings.settle_seconds)
    assert SyncCursor.objects.get(source=SOURCE).watermark == end
    expected = upstream_sales(_hour(1), end)
    assert sorted(Transaction.objects.values_list("transaction_id", flat=True)) == sorted(str(s["transaction_id"]) for s in expected)
    assert HelixOutbox.objects.count() == len(expected)


@pytest.mark.parametrize("fault", [
    {"kind": "timeout", "timeout_s": 2.5, "count": 10},
    {"status": 429, "retry_after": 1, "count": 10},
])
def test_a_jdsports_timeout_or_429_that_outlasts_the_retries_fails_and_keeps_the_watermark(sales_settings, clock, sandbox, fault):
    from portal.sandbox import Fault

    clock.freeze(_hour(2))
    assert sync_sales(trigger="beat").status == "succeeded"
    watermark = SyncCursor.objects.get(source=SOURCE).watermark
    before = Transaction.objects.count()
    clock.freeze(_hour(0))
    sandbox["jdsports"].add_fault(Fault.from_json({**fault, "path": "/sales/"}))
    failed = sync_sales(trigger="beat")
    assert failed.status == "failed"
    assert ("429" in failed.error) if fault.get("status") == 429 else ("did not answer in time" in failed.error)
    assert SyncCursor.objects.get(source=SOURCE).watermark == watermark and Transaction.objects.count() == before
    sandbox["jdsports"].faults.clear()
    assert sync_sales(trigger="beat").status == "succeeded"
    expected = upstream_sales(_hour(3), _hour(0) - timedelta(seconds=sales_settings.settle_seconds))
    assert sorted(Transaction.objects.values_list("transaction_id", flat=True)) == sorted(str(s["transaction_id"]) for s in expected)
    assert HelixOutbox.objects.count() == len(expected)


def test_a_failure_on_slice_2_of_3_keeps_slice_1_and_the_rerun_leaves_no_gap_or_overlap(sales_settings, clock, sandbox):
    from portal.sandbox import Fault

    clock.freeze(_hour(3))
    assert sync_sales(trigger="beat").status == "succeeded"
    watermark = SyncCursor.objects.get(source=SOURCE).watermark
    clock.freeze(_hour(0))  # three hourly slices behind
    sandbox["jdsports"].fault_after_windows(1, Fault.from_json({"status": 500, "count": 10, "path": "/sales/"}))
    failed = sync_sales(trigger="beat")
    assert failed.status == "failed" and (failed.progress_total, failed.progress_done) == (3, 1)
    after_slice_1 = watermark + timedelta(hours=1)
    assert SyncCursor.objects.get(source=SOURCE).watermark == after_slice_1
    first = upstream_sales(_hour(4), after_slice_1)
    assert sorted(Transaction.objects.values_list("transaction_id", flat=True)) == sorted(str(s["transaction_id"]) for s in first)
    sandbox["jdsports"].faults.clear()
    assert sync_sales(trigger="beat").status == "succeeded"
    windows = sandbox["jdsports"].windows_served
    assert windows[1] == (watermark, after_slice_1) and windows[2][0] == after_slice_1
    for (_, previous_end), (start, _) in zip(windows, windows[1:]):
        assert start == previous_end
    end = _hour(0) - timedelta(seconds=sales_settings.settle_seconds)
    assert windows[-1][1] == end == SyncCursor.objects.get(source=SOURCE).watermark
    expected = upstream_sales(_hour(4), end)
    assert sorted(Transaction.objects.values_list("transaction_id", flat=True)) == sorted(str(s["transaction_id"]) for s in expected)
    assert HelixOutbox.objects.count() == len(expected) == HelixOutbox.objects.values("transaction").distinct().count()


def test_a_sale_moved_upstream_moves_its_pending_event_and_reposts_a_posted_one(sales_settings, clock, sandbox):
    from sales.services import post_helix_events

    clock.freeze(_hour(0))
    assert sync_sales(trigger="command").status == "succeeded"
    waiting, posted = HelixOutbox.objects.select_related("transaction")[:2]
    # Neither sale's own camera, or the two edits below would collide on (camera, time).
    other = next(c.camera_id for c in Camera.objects.exclude(camera_id__in=[waiting.camera_id, posted.camera_id]))
    # What we stored before JD Sports corrected the sale: another camera, 7 s earlier.
    before = waiting.transaction.transaction_date - timedelta(seconds=7)
    Transaction.objects.filter(pk=waiting.transaction_id).update(camera_ref=other, transaction_date=before)
    HelixOutbox.objects.filter(pk=waiting.pk).update(camera_id=other, time_ms=int(before.timestamp() * 1000))
    Transaction.objects.filter(pk=posted.transaction_id).update(transaction_date=before)
    HelixOutbox.objects.filter(pk=posted.pk).update(status="posted", time_ms=int(before.timestamp() * 1000))
    end = _hour(0) - timedelta(seconds=sales_settings.settle_seconds)
    record = sync_sales(trigger="command", start=_hour(1).isoformat(), end=end.isoformat())
    assert record.counters["transactions_updated"] == 2
    assert record.counters["outbox_moved"] == 1 and record.counters["outbox_to_update"] == 1
    moved = HelixOutbox.objects.select_related("transaction").get(pk=waiting.pk)
    assert (moved.camera_id, moved.time_ms) == (moved.transaction.camera_ref, moved.transaction.time_ms) != (other, int(before.timestamp() * 1000))
    # The posted one keeps its event until the posting deletes it and posts it at the new time.
    assert HelixOutbox.objects.get(pk=posted.pk).pending_change == "move"
    assert post_helix_events(trigger="command").counters["updated"] == 1
    received = {e["attributes"]["transaction_id"]: e for e in sandbox["verkada"].state()["events"]}
    for sale in (moved.transaction, posted.transaction):
        sale.refresh_from_db()
        event = received[sale.transaction_id]
        assert (event["camera_id"], event["time_ms"]) == (sale.camera_ref, sale.time_ms)
    assert sandbox["verkada"].state()["duplicates"] == {}


def test_a_sync_taken_over_after_its_worker_died_resumes_from_the_watermark_with_no_duplicate(sales_settings, clock, sandbox):
    import socket
    import subprocess
    import sys

    from portal.models import RunLock, SyncRun

    clock.freeze(_hour(3))
    assert sync_sales(trigger="beat").status == "succeeded"
    # The dead worker's run had committed slice 1 of 3 (its sales and the watermark) when it died.
    watermark = SyncCursor.objects.get(source=SOURCE).watermark
    clock.freeze(_hour(0))
    sync_sales(trigger="command", start=watermark.isoformat(), end=(watermark + timedelta(hours=1)).isoformat())
    SyncCursor.objects.filter(source=SOURCE).update(watermark=watermark + timedelta(hours=1))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = SyncRun.objects.create(
        app="sales", operation="sync_sales", trigger="beat", status="running", params={}, progress_done=1, progress_total=3,
        worker=f"{socket.gethostname()}:{dead.pid}", started=datetime.now(UTC), heartbeat=datetime.now(UTC),
    )
    RunLock.objects.create(key="sales.sync_sales:incremental", run=orphan, expires=datetime.now(UTC) + timedelta(minutes=30))
    record = sync_sales(run_id=orphan.pk, trigger="beat")  # the redelivered message takes it over
    assert record.pk == orphan.pk and record.takeovers == 1 and record.status == "succeeded", record.error
    assert (record.progress_done, record.progress_total) == (2, 2)  # this pass's slices, not the dead one's too
    end = _hour(0) - timedelta(seconds=sales_settings.settle_seconds)
    assert SyncCursor.objects.get(source=SOURCE).watermark == end
    expected = upstream_sales(_hour(4), end)
    assert sorted(Transaction.objects.values_list("transaction_id", flat=True)) == sorted(str(s["transaction_id"]) for s in expected)
    assert HelixOutbox.objects.count() == len(expected)
    assert not RunLock.objects.filter(key="sales.sync_sales:incremental").exists()
