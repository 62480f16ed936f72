"""Exactly one Helix event per sale under every timing: a late accept, and repairs by reconciliation."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from sales.models import HelixEventType, HelixOutbox, SalesSettings
from sales.services import post_helix_events, reconcile_helix_events
from sales.tasks import reconcile_helix_events_task

from .conftest import assert_one_event_per_sale, synced_sales

pytestmark = pytest.mark.django_db


def _wait_for(predicate, timeout=10):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_post_verkada_accepts_after_our_timeout_ends_as_exactly_one_event(sales_settings, clock, sandbox):
    """The slow-accept race: the POST times out (2 s in tests), Verkada stores the event
    later (3 s). No run posts it again before the reconcile delay; the check after it finds it."""
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)  # the event type
    sandbox["verkada"].slow_accept(1, accept_after_s=3.0, reply_after_s=2.5)
    first = post_helix_events(trigger="command", limit=1)
    assert first.counters == {"awaiting_check": 1, "deferred": 1} and first.status == "failed"
    waiting = HelixOutbox.objects.get(status="posting")
    assert waiting.claim_token == "" and waiting.check_at > datetime.now(UTC) + timedelta(seconds=100)
    # Beat's next tick, a minute on: still inside the delay, so the row is neither checked nor posted.
    clock.set(datetime.now(UTC) + timedelta(minutes=1))
    second = post_helix_events(trigger="beat")
    assert second.counters["posted"] > 0 and "recovered_pending" not in second.counters
    waiting.refresh_from_db()
    assert waiting.status == "posting"
    _wait_for(lambda: sandbox["verkada"].state()["late_accepts_landed"] == 1)
    clock.set(datetime.now(UTC) + timedelta(minutes=3))
    third = post_helix_events(trigger="beat")
    assert third.counters == {"recovered_posted": 1, "items_ok": 1}
    assert_one_event_per_sale(sandbox)
    assert sandbox["verkada"].state()["event_posts"] == HelixOutbox.objects.count()


def test_the_reconcile_delay_is_a_setting(sales_settings, clock, sandbox):
    config = SalesSettings.load()
    config.reconcile_delay_seconds = 600
    config.save()
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    sandbox["verkada"].lose_replies(1)
    post_helix_events(trigger="command", limit=1)
    row = HelixOutbox.objects.get(status="posting")
    assert timedelta(seconds=590) < row.check_at - datetime.now(UTC) <= timedelta(seconds=600)
    clock.set(datetime.now(UTC) + timedelta(minutes=5))
    assert post_helix_events(trigger="beat").counters.get("recovered_posted") is None
    clock.set(datetime.now(UTC) + timedelta(minutes=11))
    assert post_helix_events(trigger="beat").counters["recovered_posted"] == 1
    assert_one_event_per_sale(sandbox)


def _double_one_and_lose_one(sandbox):
    """A second event of one sale (e.g. a late accept at a nudged time) and an event gone from Verkada."""
    uid = HelixEventType.objects.get(active=True).event_type_uid
    doubled, lost = HelixOutbox.objects.select_related("transaction")[:2]
    sandbox["verkada"].inject_event({"camera_id": doubled.camera_id, "event_type_uid": uid, "time_ms": doubled.time_ms + 1,
                                     "attributes": {"transaction_id": doubled.transaction.transaction_id}})
    assert sandbox["verkada"].drop_event(lost.camera_id, uid, lost.time_ms)
    return doubled, lost


def test_reconciliation_deletes_a_second_event_and_reposts_a_missing_one(sales_settings, clock, sandbox):
    synced_sales(clock)
    assert post_helix_events(trigger="command").status == "succeeded"
    doubled, lost = _double_one_and_lose_one(sandbox)
    record = reconcile_helix_events(trigger="command")
    assert record.status == "succeeded", record.error
    assert record.counters["duplicates_deleted"] == 1 and record.counters["missing_reposted"] == 1
    lost.refresh_from_db()
    assert lost.status == "pending"
    assert post_helix_events(trigger="command").counters["posted"] == 1
    events = sandbox["verkada"].state()["events"]
    assert (doubled.camera_id, doubled.time_ms + 1) not in {(e["camera_id"], e["time_ms"]) for e in events}
    received = {(e["camera_id"], e["time_ms"]) for e in events}
    assert received == {(r.camera_id, r.time_ms) for r in HelixOutbox.objects.all()}
    again = reconcile_helix_events(trigger="command")
    assert "duplicates_deleted" not in again.counters and "missing_reposted" not in again.counters
    assert again.counters["checked"] == HelixOutbox.objects.count()


def test_reconciliation_leaves_the_event_of_a_row_waiting_for_its_check_alone(sales_settings, clock, sandbox):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    sandbox["verkada"].lose_replies(1)
    post_helix_events(trigger="command", limit=1)
    post_helix_events(trigger="command")
    record = reconcile_helix_events(trigger="command")
    assert record.counters.get("unknown_events") == 1 and "duplicates_deleted" not in record.counters
    clock.set(datetime.now(UTC) + timedelta(minutes=3))
    post_helix_events(trigger="beat")
    assert_one_event_per_sale(sandbox)


def test_reconcile_helix_events_task_and_command(sales_settings, clock, sandbox):
    synced_sales(clock)
    post_helix_events(trigger="command")
    reconcile_helix_events_task.delay()
    call_command("sales_reconcile_helix_events", hours=2)
    from portal.models import SyncRun

    runs = SyncRun.objects.filter(operation="reconcile_helix_events").order_by("pk")
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    assert [r.trigger for r in runs] == ["beat", "command"]


def test_reconciliation_is_scheduled_in_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="sales.reconcile_helix_events")
    assert task.enabled and task.interval.every == 15 and task.interval.period == "minutes"


def test_reconciliation_deletes_a_sales_second_event_under_another_type_that_names_the_sale_its_own_way(
    sales_settings, clock, sandbox
):
    from sales.services import common
    from sales.services.helix import ensure_upstream

    synced_sales(clock)
    assert post_helix_events(trigger="command").status == "succeeded"
    returns = ensure_upstream(common.verkada_client(), HelixEventType.objects.create(
        name="JD Sports return", event_schema={"ref": "string", "refund": "float"},
        attribute_mapping={"ref": "transaction_id", "refund": "amount"}))
    doubled = HelixOutbox.objects.select_related("transaction").first()
    # The same sale at the same camera and time, also as the return type (its id in "ref").
    sandbox["verkada"].inject_event({"camera_id": doubled.camera_id, "event_type_uid": returns.event_type_uid,
                                     "time_ms": doubled.time_ms, "attributes": {"ref": doubled.transaction.transaction_id}})
    record = reconcile_helix_events(trigger="command")
    assert record.counters["duplicates_deleted"] == 1, record.counters
    assert not [e for e in sandbox["verkada"].state()["events"] if e["event_type_uid"] == returns.event_type_uid]
    assert_one_event_per_sale(sandbox)


def test_reconciliation_judges_sales_posted_late_with_old_event_times(sales_settings, clock, sandbox):
    """The window is by posting time: a sale from 30 hours ago posted now is compared too."""
    synced_sales(clock, hours_ago=30)
    clock.set(datetime.now(UTC))
    assert post_helix_events(trigger="command").status == "succeeded"
    day_ago_ms = int((datetime.now(UTC) - timedelta(hours=24)).timestamp() * 1000)
    assert HelixOutbox.objects.count() > 2 and not HelixOutbox.objects.filter(time_ms__gte=day_ago_ms).exists()
    doubled, lost = _double_one_and_lose_one(sandbox)
    record = reconcile_helix_events(trigger="command")
    assert record.counters["checked"] == HelixOutbox.objects.count()
    assert record.counters["duplicates_deleted"] == 1 and record.counters["missing_reposted"] == 1
    assert post_helix_events(trigger="command").counters["posted"] == 1
    received = {(e["camera_id"], e["time_ms"]) for e in sandbox["verkada"].state()["events"]}
    assert received == {(r.camera_id, r.time_ms) for r in HelixOutbox.objects.all()}


@pytest.mark.django_db(transaction=True)  # the posting runs in the sandbox's thread: it must see committed rows
def test_a_row_moved_between_the_listing_and_the_search_keeps_its_new_event(sales_settings, clock, sandbox):
    from django.db import connection

    from sales.models import Transaction
    from sales.services import sync_sales

    now = datetime.now(UTC)
    config = SalesSettings.load()
    config.lookback_hours = 2  # the next syncs read the last two hours again
    config.save()
    synced_sales(clock)
    sync_sales(trigger="beat")  # the look-back's hour too
    assert post_helix_events(trigger="command").status == "succeeded"
    moved = Transaction.objects.order_by("-transaction_date")[2]
    listed_at = (moved.helix.camera_id, moved.helix.event_type_uid, moved.helix.time_ms)
    # Another till of the same store (same zone: the sale keeps its instant).
    other_camera = Transaction.objects.filter(store=moved.store).exclude(camera_ref=moved.camera_ref).first().camera_ref
    # JD Sports moves the sale to another camera; the next sync (its look-back) marks the row to move.
    sandbox["jdsports"].override("sales", moved.transaction_id, {"camera_id": other_camera})
    clock.set(now + timedelta(seconds=30))
    moving = sync_sales(trigger="beat")
    assert moving.counters["outbox_to_update"] == 1, moving.counters

    def posting_runs_meanwhile():
        # After the reconciliation listed the row (posted at its old camera), before Verkada answers its search.
        try:
            assert post_helix_events(trigger="command").counters["posted"] >= 1  # the moved sale (and any new one)
        finally:
            connection.close()

    sandbox["verkada"].on_next_search(posting_runs_meanwhile)
    record = reconcile_helix_events(trigger="command")
    assert record.status == "succeeded", record.error
    assert not sandbox["verkada"].search_hooks  # the posting did run in between
    # The new event is the sale's only one, not a duplicate; the old one's absence is not a loss.
    assert "duplicates_deleted" not in record.counters and "missing_reposted" not in record.counters
    assert record.counters["changed_meanwhile"] == 1
    row = HelixOutbox.objects.get(transaction=moved)
    assert row.status == "posted" and row.camera_id == other_camera
    events = {(e["camera_id"], e["event_type_uid"], e["time_ms"]) for e in sandbox["verkada"].state()["events"]}
    assert (row.camera_id, row.event_type_uid, row.time_ms) in events and listed_at not in events
    assert_one_event_per_sale(sandbox)
