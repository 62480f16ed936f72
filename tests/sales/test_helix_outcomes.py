"""Posting runs tell the truth: refused events are set aside, claims of a run that
cannot finish them are released at once, a run taken over resumes without a second post."""

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from portal.models import SetAsideRecord, SyncRun
from portal.runs import this_worker
from portal.sandbox import Fault
from sales.models import HelixEventType, HelixOutbox, Transaction
from sales.services import common, post_helix_events

from .conftest import assert_one_event_per_sale, synced_sales

pytestmark = pytest.mark.django_db

EVENT_PATH = "/cameras/v1/video_tagging/event"


def _refuse_events(sandbox, count):
    # exact: the event type's path shares the events' prefix
    sandbox["verkada"].add_fault(Fault.from_json({"status": 400, "count": count, "path": EVENT_PATH, "exact": True,
                                                  "body": {"message": "Attribute 'amount' must be float"}}))


def test_a_posting_run_where_verkada_refuses_every_event_ends_failed(sales_settings, clock, sandbox):
    synced_sales(clock)
    sales = Transaction.objects.count()
    _refuse_events(sandbox, 10_000)
    record = post_helix_events(trigger="command")
    assert record.status == "failed", (record.status, record.counters)
    assert f"All {sales} items failed" in record.error
    aside = SetAsideRecord.objects.filter(app="sales", kind="helix_event", status="open")
    assert sorted(aside.values_list("key", flat=True)) == sorted(Transaction.objects.values_list("transaction_id", flat=True))
    one = aside.first()
    assert "Verkada refused the event" in one.reason and "must be float" in one.reason
    assert one.payload["camera_id"] and one.payload["attributes"]["transaction_id"] == one.key
    assert HelixOutbox.objects.filter(status="failed").count() == sales


def test_some_refused_events_end_the_run_partial_and_a_retry_posts_them_once(
    sales_settings, clock, sandbox, api_client, admin_user, run_on_commit
):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)  # the event type first
    _refuse_events(sandbox, 2)
    record = post_helix_events(trigger="command")
    assert record.status == "partial", (record.status, record.error)
    assert record.counters["items_ok"] == Transaction.objects.count() - 3 and record.counters["set_aside"] == 2
    refused = list(SetAsideRecord.objects.filter(kind="helix_event"))
    api_client.force_authenticate(admin_user)
    with run_on_commit(execute=True):
        reply = api_client.post("/api/portal/set-aside/retry", {"ids": [r.pk for r in refused]}, format="json")
    assert reply.status_code == 202
    assert SyncRun.objects.get(pk=reply.json()[0]["id"]).status == "succeeded"
    assert set(SetAsideRecord.objects.values_list("status", flat=True)) == {"resolved"}
    assert_one_event_per_sale(sandbox)


def test_the_posting_pool_threads_log_into_the_run(sales_settings, clock, sandbox):
    synced_sales(clock)
    record = post_helix_events(trigger="command")
    posts = [line for line in record.log.splitlines() if "POST" in line and line.endswith(f"{EVENT_PATH} -> 200")]
    assert len(posts) == Transaction.objects.count()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _claim_as(run, rows, event_type, when=None):
    HelixOutbox.objects.filter(pk__in=[r.pk for r in rows]).update(
        status="posting", claim_token=f"{run.pk}:{'0' * 32}", claimed_at=when or datetime.now(UTC),
        event_type_uid=event_type.event_type_uid, attempts=1,
    )


def _crashed_mid_post(sandbox, run):
    """Two rows claimed (just now) by `run`: one reached Verkada before the crash, one did not."""
    post_helix_events(trigger="command", limit=1)  # the event type
    event_type = HelixEventType.objects.get(active=True)
    reached, not_reached = HelixOutbox.objects.filter(status="pending").select_related("transaction")[:2]
    common.verkada_client().post_event(camera_id=reached.camera_id, event_type_uid=event_type.event_type_uid,
                                       time_ms=reached.time_ms, attributes={"transaction_id": reached.transaction.transaction_id})
    _claim_as(run, [reached, not_reached], event_type)
    return reached, not_reached


def _past_the_reconcile_delay(clock):
    """A claim's POST may still be landing at Verkada: its check waits the reconcile delay (2 min)."""
    clock.set(datetime.now(UTC) + timedelta(minutes=3))


@pytest.mark.parametrize("how_it_ended", ["closed by the reaper", "worker died while running"])
def test_a_new_posting_run_releases_the_claims_of_a_run_that_cannot_finish_them_at_once(
    sales_settings, clock, sandbox, how_it_ended
):
    synced_sales(clock)
    if how_it_ended == "closed by the reaper":
        claimer = SyncRun.objects.create(app="sales", operation="post_helix_events", trigger="beat", status="failed",
                                         error="Its worker stopped (no heartbeat).")
    else:
        claimer = SyncRun.objects.create(app="sales", operation="post_helix_events", trigger="beat", status="running",
                                         worker=f"{socket.gethostname()}:{_dead_pid()}", heartbeat=datetime.now(UTC))
    _crashed_mid_post(sandbox, claimer)
    assert post_helix_events(trigger="beat") is not None  # beat's tick sees work: the claims to recover
    record = SyncRun.objects.filter(operation="post_helix_events").latest("pk")
    assert record.counters["claims_released"] == 2 and "recovered_pending" not in record.counters
    assert HelixOutbox.objects.filter(status="posting", claim_token="").count() == 2  # waiting for their check
    _past_the_reconcile_delay(clock)
    assert post_helix_events(trigger="beat") is not None  # beat's tick sees work: the checks now due
    record = SyncRun.objects.filter(operation="post_helix_events").latest("pk")
    assert record.counters["recovered_posted"] == 1 and record.counters["recovered_pending"] == 1
    assert_one_event_per_sale(sandbox)


def test_a_live_runs_fresh_claims_are_left_alone(sales_settings, clock, sandbox):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=1)
    live = SyncRun.objects.create(app="sales", operation="post_helix_events", trigger="beat", status="running",
                                  worker=this_worker(), heartbeat=datetime.now(UTC))
    busy = HelixOutbox.objects.filter(status="pending").first()
    _claim_as(live, [busy], HelixEventType.objects.get(active=True))
    post_helix_events(trigger="command")
    busy.refresh_from_db()
    assert busy.status == "posting" and busy.claim_token.startswith(f"{live.pk}:")


def test_a_posting_run_taken_over_after_its_worker_died_rechecks_its_claims_and_posts_each_sale_once(
    sales_settings, clock, sandbox
):
    synced_sales(clock)
    orphan = SyncRun.objects.create(
        app="sales", operation="post_helix_events", trigger="beat", status="running", params={},
        worker=f"{socket.gethostname()}:{_dead_pid()}", started=datetime.now(UTC), heartbeat=datetime.now(UTC),
    )
    reached, not_reached = _crashed_mid_post(sandbox, orphan)
    record = post_helix_events(run_id=orphan.pk, trigger="beat")  # the redelivered message
    assert record.pk == orphan.pk and record.takeovers == 1 and record.status == "succeeded", record.error
    assert record.counters["claims_released"] == 2
    _past_the_reconcile_delay(clock)
    record = post_helix_events(trigger="beat")
    assert record.counters["recovered_posted"] == 1 and record.counters["recovered_pending"] == 1
    assert_one_event_per_sale(sandbox)
    assert sandbox["verkada"].state()["event_posts"] == Transaction.objects.count()


def test_beat_ticks_skip_while_only_a_live_run_holds_claims(sales_settings, clock, sandbox):
    synced_sales(clock)
    post_helix_events(trigger="command")
    assert post_helix_events(trigger="beat") is None
    live = SyncRun.objects.create(app="sales", operation="post_helix_events", trigger="beat", status="running",
                                  worker=this_worker(), heartbeat=datetime.now(UTC))
    HelixOutbox.objects.filter(pk=HelixOutbox.objects.first().pk).update(status="posting", claim_token=f"{live.pk}:x",
                                                                          claimed_at=datetime.now(UTC))
    assert post_helix_events(trigger="beat") is None
    SyncRun.objects.filter(pk=live.pk).update(status="failed", finished=datetime.now(UTC) + timedelta(seconds=1))
    assert post_helix_events(trigger="beat") is not None


@pytest.mark.parametrize("left_to_do", ["check", "change"])
def test_a_run_whose_every_check_or_change_verkada_answers_with_a_5xx_ends_failed(sales_settings, clock, sandbox, left_to_do):
    synced_sales(clock)
    assert post_helix_events(trigger="command").status == "succeeded"
    rows = HelixOutbox.objects.all()
    if left_to_do == "check":  # replies lost: a GET decides once the reconcile delay is over
        rows.update(status="posting", claim_token="", check_at=datetime.now(UTC) - timedelta(seconds=1))
    else:  # corrected after posting: a PATCH each
        rows.update(pending_change="update")
    sandbox["verkada"].add_fault(Fault.from_json({"status": 503, "count": 10_000, "path": EVENT_PATH, "exact": True}))
    record = post_helix_events(trigger="command")
    deferred = f"{left_to_do}_deferred"
    assert record.status == "failed" and record.counters[deferred] == rows.count() > 0, (record.status, record.counters)
    assert "Nothing was done" in record.error and "Verkada could not" in record.error
    sandbox["verkada"].faults.clear()
    assert post_helix_events(trigger="command").status == "succeeded"
    assert not HelixOutbox.objects.exclude(status="posted").exists()
    assert not HelixOutbox.objects.exclude(pending_change="").exists()
    assert_one_event_per_sale(sandbox)


def test_a_dead_workers_claim_older_than_the_delay_still_waits_the_delay_from_its_takeover(sales_settings, clock, sandbox):
    """Claimed 3 minutes ago (past the 2-minute delay), but the row may have waited in the
    rate limiter and been POSTed the moment its worker died, just now: Verkada may still
    be accepting it, so its check waits the delay from now, not from the claim."""
    synced_sales(clock)
    claimer = SyncRun.objects.create(app="sales", operation="post_helix_events", trigger="beat", status="running",
                                     worker=f"{socket.gethostname()}:{_dead_pid()}", heartbeat=datetime.now(UTC))
    post_helix_events(trigger="command", limit=1)  # the event type
    rows = list(HelixOutbox.objects.filter(status="pending")[:2])
    _claim_as(claimer, rows, HelixEventType.objects.get(active=True), when=datetime.now(UTC) - timedelta(minutes=3))
    record = post_helix_events(trigger="beat")
    assert record.counters["claims_released"] == 2 and "recovered_pending" not in record.counters
    for row in HelixOutbox.objects.filter(pk__in=[r.pk for r in rows]):
        assert row.status == "posting" and row.check_at > datetime.now(UTC) + timedelta(seconds=100)
    _past_the_reconcile_delay(clock)
    record = post_helix_events(trigger="beat")
    assert record.counters["recovered_pending"] == 2  # neither had reached Verkada: posted now, once
    assert_one_event_per_sale(sandbox)


def test_with_no_reconcile_delay_a_dead_workers_claim_still_waits_a_requests_lifetime(sales_settings, clock, sandbox):
    """Even set to check at once, a takeover does not ask Verkada before a POST of the dead
    worker still on its way has arrived: one request's connect + read timeouts."""
    from portal.http import request_lifetime

    sales_settings.reconcile_delay_seconds = 0
    sales_settings.save()
    synced_sales(clock)
    claimer = SyncRun.objects.create(app="sales", operation="post_helix_events", trigger="beat", status="running",
                                     worker=f"{socket.gethostname()}:{_dead_pid()}", heartbeat=datetime.now(UTC))
    post_helix_events(trigger="command", limit=1)  # the event type
    rows = list(HelixOutbox.objects.filter(status="pending")[:2])
    _claim_as(claimer, rows, HelixEventType.objects.get(active=True))
    before = datetime.now(UTC)
    record = post_helix_events(trigger="beat")
    assert record.counters["claims_released"] == 2 and "recovered_pending" not in record.counters
    for row in HelixOutbox.objects.filter(pk__in=[r.pk for r in rows]):
        assert row.status == "posting" and row.check_at >= before + request_lifetime()
