import pytest

from portal.http import UpstreamTransientError
from portal.models import RunLock, SyncRun
from portal.runs import OperationFailed, operation

pytestmark = pytest.mark.django_db


@operation("portal", "demo_ok")
def demo_ok(run, *, n):
    run.set_total(n)
    for _ in range(n):
        run.count("seen")
        run.advance()
    return "done"


@operation("portal", "demo_fail")
def demo_fail(run):
    run.count("seen")
    raise OperationFailed("the upstream refused: bad key")


@operation("portal", "demo_upstream")
def demo_upstream(run):
    raise UpstreamTransientError("checkout did not answer in time")


@operation("portal", "demo_crash")
def demo_crash(run):
    raise KeyError("boom")


def test_it_records_a_successful_run_with_counts_and_progress(admin_user):
    record = demo_ok(trigger=SyncRun.Trigger.COMMAND, user=admin_user, n=3)
    record.refresh_from_db()
    assert record.status == "succeeded"
    assert record.counters == {"seen": 3}
    assert (record.progress_done, record.progress_total) == (3, 3)
    assert record.triggered_by == admin_user
    assert record.params == {"n": 3}
    assert record.started and record.finished
    assert record.result == "done"


def test_it_keeps_expected_failures_apart_from_crashes():
    failed = demo_fail(trigger="command")
    upstream = demo_upstream(trigger="command")
    crashed = demo_crash(trigger="command")
    assert (failed.status, failed.error) == ("failed", "the upstream refused: bad key")
    assert failed.counters == {"seen": 1}
    assert upstream.status == "failed" and "did not answer" in upstream.error
    assert crashed.status == "errored" and "KeyError" in crashed.error
    assert "Traceback" in SyncRun.objects.get(pk=crashed.pk).log


def test_a_held_lock_skips_the_run_and_a_finished_run_releases_it():
    other = SyncRun.objects.create(app="portal", operation="demo_ok", trigger="beat", status="running")
    from datetime import timedelta

    from django.utils import timezone

    RunLock.objects.create(key="portal.demo_ok", run=other, expires=timezone.now() + timedelta(hours=1))
    skipped = demo_ok(trigger="command", n=1)
    assert skipped.status == "skipped" and f"#{other.pk}" in skipped.error
    RunLock.objects.all().delete()
    assert demo_ok(trigger="command", n=1).status == "succeeded"
    assert not RunLock.objects.exists()


def test_an_expired_lock_of_a_crashed_worker_is_taken_over():
    from datetime import timedelta

    from django.utils import timezone

    RunLock.objects.create(key="portal.demo_ok", run=None, expires=timezone.now() - timedelta(seconds=1))
    assert demo_ok(trigger="command", n=1).status == "succeeded"


def test_a_queued_run_is_claimed_once():
    queued = SyncRun.objects.create(app="portal", operation="demo_ok", trigger="api", status="queued")
    first = demo_ok(run_id=queued.pk, trigger="api", n=2)
    assert first.status == "succeeded"
    again = demo_ok(run_id=queued.pk, trigger="api", n=2)
    assert again.pk == queued.pk and again.counters == {"seen": 2}
    assert SyncRun.objects.count() == 1


@operation("portal", "demo_partial")
def demo_partial(run):
    try:
        {}["missing"]
    except KeyError:
        import logging

        logging.getLogger("portal.tests").exception("one item failed, going on")
    run.count("done")


def test_a_logged_exception_keeps_its_traceback_in_the_run_log():
    record = demo_partial(trigger="command")
    assert record.status == "succeeded"
    log = SyncRun.objects.get(pk=record.pk).log
    assert "one item failed, going on" in log and "KeyError: 'missing'" in log
