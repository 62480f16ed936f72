import pytest

from portal import operations
from portal.models import SyncRun
from sales.models import HelixOutbox, SalesSettings, Transaction
from sales.tasks import fetch_footage_links_task, post_helix_events_task, sync_sales_task
from tests.conftest import wait_for_run

from .conftest import JD_KEY, VERKADA_KEY, assert_one_event_per_sale, map_cameras_as_the_sandbox_does, synced_sales


@pytest.mark.django_db
def test_the_beat_tasks_run_sync_post_and_footage_in_turn(sales_settings, sandbox):
    sync_sales_task.delay()
    post_helix_events_task.delay()
    fetch_footage_links_task.delay()
    runs = {r.operation: r for r in SyncRun.objects.filter(app="sales", trigger="beat")}
    assert {op: r.status for op, r in runs.items()} == {
        "sync_sales": "succeeded", "post_helix_events": "succeeded", "fetch_footage_links": "succeeded"
    }
    assert Transaction.objects.filter(links_fetched_at__isnull=False).count() == Transaction.objects.count() > 0
    assert_one_event_per_sale(sandbox)


@pytest.mark.django_db
def test_the_hourly_sync_and_the_posting_are_scheduled_in_beat():
    from django_celery_beat.models import PeriodicTask

    tasks = {t.task: t for t in PeriodicTask.objects.filter(task__startswith="sales.")}
    assert tasks["sales.sync_sales"].crontab.minute == "5" and tasks["sales.sync_sales"].crontab.hour == "*"
    assert tasks["sales.post_helix_events"].interval.every == 1
    assert "sales.fetch_footage_links" in tasks


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_posting_at_the_real_limit_get_no_429_and_post_nothing_twice(worker, sandbox, clock):
    """Verkada allows 300 requests a minute (25 in any 5 s): two worker processes
    posting at once stay under it only because they share one rate limiter."""
    config = SalesSettings.load()
    config.jdsports_api_key, config.verkada_api_key = JD_KEY, VERKADA_KEY
    config.save()  # the real limit: 300/min on both sides
    map_cameras_as_the_sandbox_does()
    assert sandbox["verkada"].state()["per_minute"] == 300
    synced_sales(clock)
    assert HelixOutbox.objects.filter(status="pending").count() >= 35  # more than 25 in 5 s if unpaced
    # Different parameters (limits above the backlog): the same ones would get the run already queued.
    first = operations.enqueue("sales", "post_helix_events", trigger="api", limit=1000)
    second = operations.enqueue("sales", "post_helix_events", trigger="api", limit=1001)
    assert first.pk != second.pk
    runs = [wait_for_run(first.pk, timeout=120), wait_for_run(second.pk, timeout=120)]
    assert [r.status for r in runs] == ["succeeded", "succeeded"], [r.error for r in runs]
    assert all(r.counters.get("posted", 0) > 0 for r in runs), [r.counters for r in runs]  # both really posted
    state = sandbox["verkada"].state()
    assert state["rate_limited"] == 0
    assert sum(r.counters["posted"] for r in runs) == Transaction.objects.count()
    assert_one_event_per_sale(sandbox)


@pytest.mark.django_db
def test_idle_beat_ticks_of_posting_and_footage_leave_no_run_row(sales_settings, sandbox, clock):
    from sales.services import fetch_footage_links, post_helix_events

    assert post_helix_events(trigger="beat") is None
    assert fetch_footage_links(trigger="beat") is None
    post_helix_events_task.delay()
    fetch_footage_links_task.delay()
    assert not SyncRun.objects.filter(app="sales", operation__in=["post_helix_events", "fetch_footage_links"]).exists()
    synced_sales(clock)
    post_helix_events_task.delay()
    fetch_footage_links_task.delay()
    assert SyncRun.objects.filter(app="sales", operation="post_helix_events", status="succeeded").count() == 1
    assert SyncRun.objects.filter(app="sales", operation="fetch_footage_links", status="succeeded").count() == 1
    post_helix_events_task.delay()  # everything posted, every link fetched: idle again
    fetch_footage_links_task.delay()
    assert SyncRun.objects.filter(app="sales", operation__in=["post_helix_events", "fetch_footage_links"]).count() == 2
    assert sandbox["verkada"].state()["tokens_minted"] == 1
