"""Calls that fit CheckOut's 30 s client timeout, faster recovery of a failed
user fetch, and sandbox controls that take JSON whatever its Content-Type."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from checkin import conf, services
from checkin.models import CheckinSettings, CheckoutUser
from portal.models import SyncRun

from .conftest import INBOUND_KEY, OPTED_IN

pytestmark = pytest.mark.django_db
BASE = "/api/checkin/v1/"


@pytest.fixture
def api(api_client, inbound_key, configured):
    api_client.credentials(HTTP_X_CHECKOUT_KEY=INBOUND_KEY)
    return api_client


def seen(sandbox, name):
    return requests.get(f"{sandbox.url}/_sandbox/{name}/state").json()["_requests_seen"]


def test_a_lasting_checkout_timeout_answers_503_within_the_budget(api, sandbox, monkeypatch):
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 1.5)
    requests.post(f"{sandbox.url}/_sandbox/checkout/latency", json={"latency_ms": 4000}).raise_for_status()
    before = seen(sandbox, "checkout")
    try:
        reply = api.get(BASE + "fetch-users")
    finally:
        requests.post(f"{sandbox.url}/_sandbox/checkout/latency", json={"latency_ms": 0})
    assert reply.status_code == 503
    assert reply["Retry-After"] == str(conf.RETRY_AFTER_SECONDS)
    body = reply.json()
    assert body["success"] is False and body["message"] == "API Error" and "did not answer in time" in body["error"]
    assert set(body) == {"success", "message", "data", "error"}
    # One try of /test: a second would not have fitted in the budget (without it: 4 tries).
    assert seen(sandbox, "checkout") - before == 1
    assert CheckinSettings.load().connected is False


def test_a_refresh_whose_checkout_update_keeps_failing_answers_503(api, sandbox, checkout, page, monkeypatch):
    services.fetch_users(trigger="api")
    email = CheckoutUser.objects.filter(opted_in=True).order_by("email").first().email
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 1.5)
    requests.post(f"{sandbox.url}/_sandbox/checkout/faults", json={"count": 50, "status": 503}).raise_for_status()
    reply = api.get(BASE + f"refresh-session/{email}")
    requests.post(f"{sandbox.url}/_sandbox/checkout/reset")
    assert reply.status_code == 503, reply.content
    assert reply["Retry-After"] == str(conf.RETRY_AFTER_SECONDS) and reply.json()["success"] is False
    assert "503" in reply.json()["error"]


def test_a_failed_fetch_is_retried_after_60_seconds_and_the_first_runs_at_start(configured, sandbox, checkout):
    assert CheckinSettings.load().next_fetch_at is None
    # At start nothing is planned: the first beat tick fetches.
    first = services.fetch_users(trigger="beat")
    assert first.status == "succeeded"
    planned = CheckinSettings.load().next_fetch_at
    assert timedelta(minutes=59) < planned - timezone.now() <= timedelta(hours=1)
    assert services.fetch_users(trigger="beat") is None  # not due: the tick writes no row

    # CheckOut goes down: the fetch fails and is due again in 60 s, not in an hour.
    CheckinSettings.objects.update(next_fetch_at=timezone.now())
    requests.post(f"{sandbox.url}/_sandbox/checkout/faults", json={"count": 100, "status": 500}).raise_for_status()
    failed = services.fetch_users(trigger="beat")
    assert failed.status == "failed"
    retry_at = CheckinSettings.load().next_fetch_at
    assert timedelta(seconds=50) < retry_at - timezone.now() <= timedelta(seconds=conf.FETCH_RETRY_SECONDS)
    assert services.fetch_users(trigger="beat") is None

    # A minute later (the due time reached) CheckOut is back: the tick fetches again.
    requests.post(f"{sandbox.url}/_sandbox/checkout/reset")
    CheckinSettings.objects.update(next_fetch_at=timezone.now() - timedelta(seconds=1))
    assert services.fetch_users(trigger="beat").status == "succeeded"
    assert SyncRun.objects.filter(app="checkin", operation="fetch_users").count() == 3


def test_a_restarted_scheduler_fetches_at_its_first_tick(configured, sandbox, checkout):
    from celery.signals import beat_init

    assert services.fetch_users(trigger="beat").status == "succeeded"
    assert services.fetch_users(trigger="beat") is None  # planned an hour ahead
    beat_init.send(sender=None)  # a deploy or restart starts beat again
    assert services.fetch_users(trigger="beat").status == "succeeded"


def test_the_fetch_is_polled_every_minute_by_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="checkin.fetch_users")
    assert (task.interval.every, task.interval.period) == (1, "minutes")


@pytest.mark.parametrize("body", ['{"on": true}', "{}"])
def test_maintenance_takes_json_without_a_json_content_type(sandbox, checkout, body):
    reply = requests.post(f"{sandbox.url}/_sandbox/checkout/maintenance", data=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200 and reply.json() == {"maintenance": True}
    off = requests.post(f"{sandbox.url}/_sandbox/checkout/maintenance", data='{"on": false}')
    assert off.json() == {"maintenance": False} and checkout.state()["maintenance"] is False


def test_expire_takes_json_without_a_json_content_type_and_refuses_a_bad_body(sandbox, page):
    from .conftest import LIVE

    email = LIVE[0]
    assert page.live_cookie_of(email)
    reply = requests.post(f"{sandbox.url}/_sandbox/checkin-page/expire", data=f'{{"email": "{email}"}}')
    assert reply.status_code == 200 and page.live_cookie_of(email) is None
    for bad in ("not json", "{}", "[1]"):
        refused = requests.post(f"{sandbox.url}/_sandbox/checkin-page/expire", data=bad)
        assert refused.status_code == 400 and "email" in refused.json()["message"]


def test_a_refresh_of_everyone_while_checkout_stays_down_is_503_not_success(api, sandbox, checkout, page, monkeypatch):
    from checkin.models import CheckinSession
    from portal.models import SetAsideRecord

    services.fetch_users(trigger="api")
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 20)
    requests.post(f"{sandbox.url}/_sandbox/checkout/faults", json={"count": 500, "status": 503}).raise_for_status()
    try:
        reply = api.get(BASE + "refresh")
    finally:
        requests.post(f"{sandbox.url}/_sandbox/checkout/reset")
    assert reply.status_code == 503, reply.content
    body = reply.json()
    assert reply["Retry-After"] == str(conf.RETRY_AFTER_SECONDS)
    assert body["success"] is False and body["message"] == "API Error"
    assert "None of 5 sessions was refreshed" in body["error"] and "503" in body["error"]
    assert body["data"]["run"]["status"] == "failed"
    # Each session is set aside to retry; a cookie the page rotated is kept here all the same.
    assert SetAsideRecord.objects.filter(app="checkin", kind="session", status="open").count() == 5
    rotated = [s for s in CheckinSession.objects.all() if s.cookie != checkout.users[s.user.email]["checkintoken"]]
    assert len(rotated) == 4  # every live cookie (the expired one was not rotated)


def test_a_refresh_of_one_while_the_page_stays_down_is_503_not_success(api, sandbox, checkout, page, settings):
    services.fetch_users(trigger="api")
    email = CheckoutUser.objects.filter(opted_in=True).order_by("email").first().email
    requests.post(f"{sandbox.url}/_sandbox/checkin-page/faults",
                  json={"kind": "timeout", "timeout_s": 3, "count": 100}).raise_for_status()
    reply = api.get(BASE + f"refresh-session/{email}")
    assert reply.status_code == 503, reply.content
    assert reply["Retry-After"] == str(conf.RETRY_AFTER_SECONDS)
    assert reply.json()["success"] is False and "checkin-page did not answer in time" in reply.json()["error"]
    # CheckOut still hears of the failed attempt, as in the original.
    assert checkout.logs[-1]["state"] == "Fail"


def test_a_refresh_where_only_cookies_are_dead_is_still_a_completed_200(api, sandbox, checkout, page):
    services.fetch_users(trigger="api")
    for email in list(checkout.users):
        requests.post(f"{sandbox.url}/_sandbox/checkin-page/expire", json={"email": email})
    reply = api.get(BASE + "refresh")
    assert reply.status_code == 200 and reply.json()["success"] is True  # each user's report says Fail
    assert reply.json()["data"]["run"]["status"] == "failed"
    assert {s["checkinReport"] for s in reply.json()["data"]["sessions"]} == {"Fail"}


def test_a_refresh_of_everyone_out_of_time_hands_the_rest_to_the_next_tick(api, sandbox, checkout, page, settings,
                                                                           monkeypatch):
    from checkin.models import CheckinSession, SessionRefresh
    from portal.sandbox import Fault

    services.fetch_users(trigger="api")
    CheckinSettings.objects.update(next_cycle_at=timezone.now() + timedelta(hours=2))  # mid-cycle, nothing due
    settings.UPSTREAM_TIMEOUT = 10
    # A budget that fits one slow page load and not a second one (each needs REFRESH_RESERVE_SECONDS).
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", services.REFRESH_RESERVE_SECONDS + 4)
    page.add_fault(Fault(latency_ms=5000, path="/selfregistration"))
    reply = api.get(BASE + "refresh")
    assert reply.status_code == 503, reply.content
    assert "Out of time after 1 of 5 sessions; the other 4 are refreshed at the next refresh tick" in reply.json()["error"]
    assert SessionRefresh.objects.count() == 1
    assert CheckinSession.objects.filter(next_refresh_at__lte=timezone.now()).count() == 4

    tick = services.refresh_due_sessions(trigger="beat")  # the next minute's tick
    assert tick.counters["normal"] + tick.counters.get("fail", 0) == 4
    # every session refreshed once: none dropped, none twice
    assert sorted(SessionRefresh.objects.values_list("session__user__email", flat=True)) == OPTED_IN
