"""The Celery tasks: a real worker process for the queued path, eager for the rest."""

import pytest

from checkin.models import CheckinSession, CheckoutUser, SessionRefresh
from checkin.sandbox import DEMO_CHECKOUT_API_KEY
from checkin.tasks import (
    fetch_users_task,
    refresh_due_sessions_task,
    refresh_session_task,
    refresh_sessions_task,
)
from portal.models import SyncRun
from portal.operations import enqueue
from tests.conftest import wait_for_run


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_fetch_users_task_and_refresh_session_task(worker, checkout, page):
    from checkin.models import CheckinSettings

    row = CheckinSettings.load()
    row.checkout_api_key = DEMO_CHECKOUT_API_KEY
    row.save()
    queued = enqueue("checkin", "fetch_users", trigger=SyncRun.Trigger.API)
    assert queued.task_name == fetch_users_task.name
    done = wait_for_run(queued.pk)
    assert done.status == "succeeded", (done.error, done.log)
    assert done.task_id and done.counters["created"] == 5
    assert CheckoutUser.objects.count() == 5

    one = enqueue("checkin", "refresh_session", trigger=SyncRun.Trigger.ADMIN, email="grace.hopper@york.ac.uk")
    assert one.task_name == refresh_session_task.name
    refreshed = wait_for_run(one.pk)
    assert refreshed.status == "succeeded", refreshed.error
    assert CheckinSession.objects.get(user__email="grace.hopper@york.ac.uk").cookie == page.live_cookie_of("grace.hopper@york.ac.uk")
    assert checkout.logs[-1]["email"] == "grace.hopper@york.ac.uk"


@pytest.mark.django_db
def test_refresh_sessions_task_and_refresh_due_sessions_task_run_their_services(configured, checkout, page):
    fetch_users_task.delay(trigger="command")
    assert CheckoutUser.objects.count() == 5
    refresh_sessions_task.delay(trigger="beat")
    run = SyncRun.objects.get(operation="refresh_sessions")
    # the demo's expired cookie is set aside: the run is partial, not succeeded
    assert run.status == "partial" and run.trigger == "beat"
    assert run.counters == {"normal": 4, "fail": 1, "set_aside": 1, "items_ok": 4}
    refresh_due_sessions_task.delay()
    due_run = SyncRun.objects.get(operation="refresh_due_sessions")
    assert due_run.trigger == "beat" and due_run.counters["planned"] == 5
    # the next minute's tick, with the cycle planned and nothing due yet, leaves no run row
    refresh_due_sessions_task.delay()
    assert SyncRun.objects.filter(operation="refresh_due_sessions").count() == 1
    refresh_session_task.delay(trigger="api", email="ada.lovelace@york.ac.uk")
    assert SessionRefresh.objects.filter(session__user__email="ada.lovelace@york.ac.uk").count() == 2


@pytest.mark.django_db
def test_a_duplicate_delivery_of_a_queued_refresh_is_ignored(configured, checkout, page):
    from checkin.services import fetch_users

    fetch_users(trigger="command")
    queued = SyncRun.objects.create(app="checkin", operation="refresh_session", trigger="api",
                                    params={"email": "ada.lovelace@york.ac.uk"}, task_name="checkin.refresh_session")
    refresh_session_task.delay(run_id=queued.pk, trigger="api", email="ada.lovelace@york.ac.uk")
    refresh_session_task.delay(run_id=queued.pk, trigger="api", email="ada.lovelace@york.ac.uk")
    assert SessionRefresh.objects.count() == 1
    assert SyncRun.objects.get(pk=queued.pk).status == "succeeded"
