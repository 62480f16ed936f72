"""A worker SIGKILLed mid-run: the run is taken over within 90 s, its lock is
free, and the work converges with nothing done twice and nothing lost."""

import time

import pytest

from portal.models import RunLock, SyncRun
from portal.operations import enqueue
from portal.tasks import reap_runs
from tests.conftest import wait_for_run

pytestmark = pytest.mark.worker


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {timeout}s")


def recover_within(run, seconds=90):
    """Beat runs the reaper every 30 s; here it runs every 5 s until the run is
    over, and the time from the kill to the end of the run is what counts."""
    killed_at = time.monotonic()
    while time.monotonic() - killed_at < seconds:
        reap_runs(trigger="command")
        run.refresh_from_db()
        if run.is_finished:
            return time.monotonic() - killed_at
        time.sleep(5)
    raise AssertionError(f"run #{run.pk} still {run.status} {seconds}s after the kill")


def test_a_killed_helix_posting_run_is_taken_over_and_posts_each_sale_once(spare_workers, sandbox):
    from sales.models import HelixOutbox, SalesSettings, Transaction
    from tests.sales.conftest import (
        FAST_LIMIT, JD_KEY, VERKADA_KEY, assert_one_event_per_sale, map_cameras_as_the_sandbox_does,
        zone_stores_as_the_sandbox_does,
    )
    from sales.services import sync_sales

    sandbox["verkada"].set_limit(FAST_LIMIT)
    config = SalesSettings.load()
    config.jdsports_api_key, config.verkada_api_key = JD_KEY, VERKADA_KEY
    config.verkada_requests_per_minute = FAST_LIMIT
    # no reconcile delay: Verkada accepts within the request here, so the killed run's claims are
    # checked once its POSTs still on their way have arrived (a request's lifetime after the takeover)
    config.reconcile_delay_seconds = 0
    config.lookback_hours = 0
    config.save()
    map_cameras_as_the_sandbox_does()
    zone_stores_as_the_sandbox_does()
    assert sync_sales(trigger="command").status == "succeeded"
    total = Transaction.objects.count()
    assert total >= 20
    sandbox["verkada"].latency_ms = 400  # slow enough to be killed mid-run
    run = enqueue("sales", "post_helix_events", trigger="api")
    wait_until(lambda: len(sandbox["verkada"].state()["events"]) >= 3, 60, "the first events posted")
    run.refresh_from_db()
    assert run.status == "running"
    spare_workers.kill(run)
    posted_before_kill = len(sandbox["verkada"].state()["events"])
    assert posted_before_kill < total
    sandbox["verkada"].latency_ms = 0
    took = recover_within(run)
    assert run.takeovers == 1, spare_workers.logs()
    assert run.status in ("succeeded", "partial"), (run.status, run.error)
    assert took < 90
    assert not RunLock.objects.filter(run=run).exists()
    # whatever the takeover left for the next tick, the next run posts it: the dead run's
    # claims are checked once a POST of it still on its way has arrived (a request's lifetime)
    from django.utils import timezone

    wait_until(lambda: not HelixOutbox.objects.filter(status="posting", check_at__gt=timezone.now()).exists(), 60,
               "the released claims' checks due")
    again = enqueue("sales", "post_helix_events", trigger="api")
    wait_for_run(again.pk, timeout=60)
    assert not HelixOutbox.objects.exclude(status="posted").exists()
    assert_one_event_per_sale(sandbox)


def test_a_killed_campaign_sync_is_taken_over_and_stores_the_sandboxs_subjects_once(spare_workers, sandbox):
    from campaigns.models import Subject
    from tests.campaigns.conftest import make_portal

    netlife = sandbox["netlife"]
    netlife.per_second = 0
    portal = make_portal()
    netlife.latency_ms = 150
    run = enqueue("campaigns", "sync_portal", trigger="api", portal=portal.key)
    wait_until(lambda: Subject.objects.exists(), 90, "the first subjects stored")
    run.refresh_from_db()
    assert run.status == "running"
    spare_workers.kill(run)
    netlife.latency_ms = 0
    took = recover_within(run)
    assert run.takeovers == 1, spare_workers.logs()
    assert run.status == "succeeded", (run.status, run.error, run.log[-2000:])
    assert took < 90
    assert not RunLock.objects.filter(run=run).exists()
    in_webshop = netlife.in_webshop_jobs(portal.key)
    truth = {s["uuid"] for job in netlife.portals[portal.key]["jobs"].values() if job["uuid"] in in_webshop for s in job["subjects"]}
    assert set(Subject.objects.values_list("uuid", flat=True)) == truth and Subject.objects.count() == len(truth)
    rerun = enqueue("campaigns", "sync_portal", trigger="api", portal=portal.key)
    assert wait_for_run(rerun.pk, timeout=90).status == "succeeded"
    assert Subject.objects.count() == len(truth)  # the re-run found nothing missing and made no duplicate
    assert SyncRun.objects.filter(operation="sync_portal", status="running").count() == 0
