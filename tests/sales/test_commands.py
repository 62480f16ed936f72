"""The sales commands (new names and old), run-now answers, and the health figures."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.models import SetAsideRecord, SyncRun
from portal.sandbox import Fault
from sales.models import HelixOutbox, SyncCursor, Transaction
from sales.services import post_helix_events

from .conftest import assert_one_event_per_sale, synced_sales

pytestmark = pytest.mark.django_db

EVENT_PATH = "/cameras/v1/video_tagging/event"


def _hour(n):
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=n)


def test_sales_sync_and_sales_backfill_report_the_run_and_record_who_ran_them(sales_settings, clock):
    clock.freeze(_hour(0))
    out = io.StringIO()
    call_command("sales_sync", "--as", "night-shift", stdout=out)
    run = SyncRun.objects.get(operation="sync_sales")
    assert (run.status, run.trigger, run.actor) == ("succeeded", "command", "night-shift")
    assert f"run #{run.pk} sales.sync_sales succeeded" in out.getvalue() and "transactions_created=" in out.getvalue()
    start, end = _hour(30), _hour(29)
    call_command("sales_backfill", start=start.isoformat(), end=end.isoformat(), stdout=io.StringIO())
    call_command("sales_backfill", start=start.isoformat(), end=end.isoformat(), stdout=io.StringIO())
    assert Transaction.objects.filter(transaction_date__gte=start, transaction_date__lt=end).count() == 40
    assert Transaction.objects.count() == HelixOutbox.objects.count() == Transaction.objects.values("transaction_id").distinct().count()


def test_a_partial_sync_exits_non_zero_and_says_what_was_set_aside(sales_settings, clock, sandbox):
    clock.freeze(_hour(0))
    sandbox["jdsports"].override("stores", 103, {"store_id": "abc"})
    err = io.StringIO()
    with pytest.raises(CommandError, match="partial"):
        call_command("sales_sync", stdout=io.StringIO(), stderr=err)
    assert "set_aside=1" in err.getvalue()
    assert SyncCursor.objects.exists()  # the sales went through all the same


def test_sales_post_helix_events_and_sales_fetch_footage_links(sales_settings, clock, sandbox):
    synced_sales(clock)
    out = io.StringIO()
    call_command("sales_post_helix_events", "--limit", "5", stdout=out)
    assert "posted=5" in out.getvalue()
    call_command("sales_post_helix_events", stdout=io.StringIO())
    assert_one_event_per_sale(sandbox)
    call_command("sales_fetch_footage_links", "--limit", "3", stdout=io.StringIO())
    assert Transaction.objects.filter(links_fetched_at__isnull=False).count() == 3


def test_run_now_twice_answers_the_run_already_queued(sales_settings, admin_user, api_client, run_on_commit):
    api_client.force_authenticate(admin_user)
    with run_on_commit(execute=False):
        first = api_client.post("/api/sales/fetch_and_store_transactions/", {}, format="json")
        second = api_client.post("/api/sales/fetch_and_store_transactions/", {}, format="json")
        posting = api_client.post("/api/sales/post_helix_events/")
        posting_again = api_client.post("/api/sales/post_helix_events/")
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"] and second.json()["status"] == "queued"
    assert (posting.status_code, posting_again.status_code) == (202, 200)
    assert SyncRun.objects.filter(app="sales").count() == 2


def test_the_admin_says_already_queued_instead_of_queuing_again(sales_settings, admin_client, run_on_commit):
    from django.urls import reverse

    url = reverse("admin:sales_synccursor_changelist")
    with run_on_commit(execute=False):
        admin_client.post(url, {"action": "sync_sales"})
        reply = admin_client.post(url, {"action": "sync_sales"}, follow=True)
    run = SyncRun.objects.get(operation="sync_sales")
    assert "already queued as" in reply.content.decode() and f"run #{run.pk}" in reply.content.decode()


def test_health_reports_the_outbox_backlog_and_the_watermark_lag(sales_settings, clock, sandbox, client):
    synced_sales(clock)
    post_helix_events(trigger="command", limit=4)
    now = datetime.now(UTC)
    clock.freeze(now)
    figures = client.get("/health/").json()["integrations"]["sales"]["figures"]
    pending = HelixOutbox.objects.filter(status="pending").select_related("transaction")
    oldest = min(r.transaction.transaction_date for r in pending)
    assert figures["helix_outbox_pending"] == pending.count() == Transaction.objects.count() - 4
    assert figures["helix_oldest_pending_age_seconds"] == int((now - oldest).total_seconds())
    assert figures["sync_watermark_lag_seconds"] == int((now - SyncCursor.objects.get().watermark).total_seconds())


def test_the_posting_command_says_what_is_still_pending_and_goes_on_until_empty(sales_settings, clock, sandbox):
    synced_sales(clock)
    total = Transaction.objects.count()
    out = io.StringIO()
    call_command("sales_post_helix_events", "--limit", "5", stdout=out)
    assert f"{total - 5} due now, {total - 5} pending" in out.getvalue()
    out = io.StringIO()
    call_command("sales_post_helix_events", "--limit", "10", "--until-empty", stdout=out)
    runs = out.getvalue().count("sales.post_helix_events succeeded")
    assert runs == -(-(total - 5) // 10)  # one run per 10, until nothing was due
    assert "0 due now, 0 pending" in out.getvalue()
    assert_one_event_per_sale(sandbox)


def test_until_empty_goes_on_through_a_partial_run_and_waits_for_rows_not_due_yet(sales_settings, clock, sandbox):
    synced_sales(clock)
    total = Transaction.objects.count()
    # Verkada refuses one event for good (set aside: the first run is partial) ...
    sandbox["verkada"].add_fault(Fault.from_json({"status": 400, "count": 1, "path": EVENT_PATH, "exact": True}))
    # ... and three rows are backed off for two seconds.
    backed_off = HelixOutbox.objects.order_by("-time_ms").values_list("pk", flat=True)[:3]
    HelixOutbox.objects.filter(pk__in=list(backed_off)).update(next_attempt_at=datetime.now(UTC) + timedelta(seconds=2))
    out = io.StringIO()
    with pytest.raises(CommandError, match="partial"):  # one event set aside: the exit code says so
        call_command("sales_post_helix_events", "--limit", "10", "--until-empty", stdout=out, stderr=io.StringIO())
    lines = [line for line in out.getvalue().splitlines() if " sales.post_helix_events " not in line]  # its own lines
    assert "partial" in lines[0] and "succeeded" in out.getvalue()
    assert any(line.startswith("waiting ") and "0 due now, 3 pending" in line for line in lines), lines
    assert "0 due now, 0 pending, 0 waiting" in lines[-2] and lines[-1] == "nothing pending"
    assert HelixOutbox.objects.filter(status="posted").count() == total - 1
    assert SetAsideRecord.objects.filter(app="sales", kind="helix_event", status="open").count() == 1


def test_until_empty_stops_saying_what_remains_and_when_it_is_due(sales_settings, clock, sandbox):
    synced_sales(clock)
    total = Transaction.objects.count()
    later = datetime.now(UTC) + timedelta(hours=1)
    HelixOutbox.objects.filter(pk=HelixOutbox.objects.order_by("pk").first().pk).update(next_attempt_at=later)
    sale_awaiting_check = HelixOutbox.objects.order_by("pk")[1]
    HelixOutbox.objects.filter(pk=sale_awaiting_check.pk).update(status="posting", claim_token="", check_at=later + timedelta(minutes=5))
    out = io.StringIO()
    call_command("sales_post_helix_events", "--until-empty", "--max-wait", "60", stdout=out)
    last = [line for line in out.getvalue().splitlines() if " sales.post_helix_events " not in line][-1]
    assert last.startswith("stopped: 0 due now, 1 pending, 1 waiting for their check"), last
    assert f"the next is due at {later.isoformat(timespec='seconds')}" in last and "past --max-wait 60 s" in last
    assert HelixOutbox.objects.filter(status="posted").count() == total - 2


@pytest.mark.timeout(60)  # before the fix it never stopped
def test_until_empty_ends_and_says_which_rows_wait_for_a_camera_mapping(sales_settings, clock, sandbox):
    """A row with no event whose sale moved to an unmapped camera (a check found its
    event gone while the move waited) cannot be posted until someone maps the camera:
    it is not due work, so --until-empty ends and says what remains and why."""
    synced_sales(clock)
    total = Transaction.objects.count()
    row = HelixOutbox.objects.order_by("pk").first()
    Transaction.objects.filter(pk=row.transaction_id).update(camera_ref="cam-nobody-mapped")
    HelixOutbox.objects.filter(pk=row.pk).update(pending_change="move")
    out = io.StringIO()
    with pytest.raises(CommandError, match="partial"):  # the unmapped camera is set aside
        call_command("sales_post_helix_events", "--until-empty", "--max-wait", "5", stdout=out, stderr=io.StringIO())
    last = [line for line in out.getvalue().splitlines() if " sales.post_helix_events " not in line][-1]
    assert "0 due now, 0 pending" in last and "1 not postable until their JD camera is mapped" in last, last
    assert HelixOutbox.objects.filter(status="posted").count() == total - 1
    assert SetAsideRecord.objects.filter(app="sales", kind="camera", key__contains="cam-nobody-mapped").exists()


def test_a_backfill_has_its_own_lock_and_a_range_cap(sales_settings, clock, sandbox):
    from portal.runs.locks import _acquire_lock
    from sales.services import sync_sales

    now = datetime.now(UTC).replace(microsecond=0)
    too_long = sync_sales(trigger="command", start=(now - timedelta(days=40)).isoformat(), end=now.isoformat())
    assert too_long.status == "failed" and "at most 31 days" in too_long.error
    # A long backfill is running (it holds its lock): the hourly sync still runs, a second backfill skips.
    long_backfill = SyncRun.objects.create(app="sales", operation="sync_sales", trigger="command", status="running")
    assert _acquire_lock(sync_sales.operation.resolve_lock_key({"start": "a", "end": "b"}), long_backfill, 3600)
    assert sync_sales(trigger="beat").status == "succeeded"
    second = sync_sales(trigger="command", start=(now - timedelta(hours=3)).isoformat(), end=(now - timedelta(hours=2)).isoformat())
    assert second.status == "skipped"


def test_a_backfill_start_with_a_nul_is_a_clear_error_and_fetches_nothing(sales_settings, clock, sandbox):
    with pytest.raises(CommandError, match="must be an ISO 8601 date"):
        call_command("sales_backfill", start=f"{_hour(30).isoformat()}\x00", end=_hour(29).isoformat(),
                     stdout=io.StringIO())
    assert not Transaction.objects.exists()
