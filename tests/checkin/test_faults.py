"""Every sandbox fault against the checkin client through the shared HTTP session:
a clear error on the run record, no partial or duplicated rows, and a re-run
after the fault succeeds."""

import pytest
import requests

from checkin.models import CheckinSession, CheckoutUser
from checkin.services import fetch_users

pytestmark = pytest.mark.django_db

USERS = "/api/autocheckin/users"


def inject(sandbox, **fault):
    reply = requests.post(f"{sandbox.url}/_sandbox/checkout/faults", json=fault)
    assert reply.ok, reply.text


def assert_failed_cleanly(record, *needles):
    assert record.status == "failed", (record.status, record.error)
    for needle in needles:
        assert needle in record.error
    assert not CheckoutUser.objects.exists() and not CheckinSession.objects.exists()


def assert_rerun_succeeds():
    again = fetch_users(trigger="command")
    assert again.status == "succeeded", again.error
    assert CheckoutUser.objects.count() == 5 and CheckinSession.objects.count() == 5


def test_a_500_that_outlasts_the_retries_fails_the_run(configured, sandbox, checkout, settings):
    settings.UPSTREAM_RETRIES = 2
    inject(sandbox, status=500, count=3, path=USERS)
    record = fetch_users(trigger="command")
    assert_failed_cleanly(record, "checkout answered HTTP 500")
    assert checkout.faults == []  # all three attempts were made
    assert_rerun_succeeds()


def test_a_passing_500_is_retried_inside_the_run(configured, sandbox, checkout):
    inject(sandbox, status=502, count=1, path=USERS)
    record = fetch_users(trigger="command")
    assert record.status == "succeeded", record.error
    assert CheckoutUser.objects.count() == 5


def test_a_429_is_retried_after_retry_after_and_a_lasting_one_fails(configured, sandbox, checkout, settings):
    inject(sandbox, status=429, retry_after=1, count=1, path=USERS,
           body={"success": False, "ratelimit": True, "msg": "Too many requests", "limit": 100, "current": 101, "total": 101})
    record = fetch_users(trigger="command")
    assert record.status == "succeeded", record.error
    assert CheckoutUser.objects.count() == 5

    CheckoutUser.objects.all().delete()
    settings.UPSTREAM_RETRIES = 1
    inject(sandbox, status=429, retry_after=1, count=2, path=USERS,
           body={"success": False, "ratelimit": True, "msg": "Too many requests", "limit": 100, "current": 101, "total": 101})
    lasting = fetch_users(trigger="command")
    assert lasting.status == "failed"
    assert "HTTP 429" in lasting.error and "Too many requests" in lasting.error
    assert not CheckoutUser.objects.exists()
    assert fetch_users(trigger="command").status == "succeeded"


def test_a_timeout_fails_the_run_with_did_not_answer(configured, sandbox, checkout, settings):
    settings.UPSTREAM_RETRIES = 0
    inject(sandbox, kind="timeout", timeout_s=3, count=1, path=USERS)
    record = fetch_users(trigger="command")
    assert_failed_cleanly(record, "checkout did not answer in time")
    assert_rerun_succeeds()


def test_a_connection_reset_fails_the_run_with_could_not_be_reached(configured, sandbox, checkout, settings):
    settings.UPSTREAM_RETRIES = 1
    inject(sandbox, kind="reset", count=2, path=USERS)
    record = fetch_users(trigger="command")
    assert_failed_cleanly(record)
    assert "checkout could not be reached" in record.error or "did not answer" in record.error
    assert_rerun_succeeds()


def test_malformed_json_fails_the_run(configured, sandbox, checkout):
    inject(sandbox, kind="malformed", count=1, path=USERS)
    record = fetch_users(trigger="command")
    assert_failed_cleanly(record, "malformed JSON")
    assert_rerun_succeeds()


def test_the_html_maintenance_page_fails_the_run(configured, sandbox, checkout):
    requests.post(f"{sandbox.url}/_sandbox/checkout/maintenance", json={"on": True})
    record = fetch_users(trigger="command")
    assert_failed_cleanly(record, "an HTML page where JSON was expected")
    requests.post(f"{sandbox.url}/_sandbox/checkout/maintenance", json={"on": False})
    assert_rerun_succeeds()


def test_an_injected_html_page_mid_fetch_fails_the_run(configured, sandbox, checkout):
    inject(sandbox, kind="html", count=1, path=USERS)
    assert_failed_cleanly(fetch_users(trigger="command"), "an HTML page")
    assert_rerun_succeeds()


def test_a_403_from_checkout_fails_the_run_with_its_message(configured, sandbox, checkout):
    checkout.api_tokens.clear()
    record = fetch_users(trigger="command")
    assert_failed_cleanly(record, "HTTP 403", "You do not have permission")
    checkout.full_reset()
    assert_rerun_succeeds()


def test_http_200_with_success_false_fails_the_run(configured, sandbox, checkout):
    inject(sandbox, status=200, count=1, path=USERS, body={"success": False, "msg": "database unavailable"})
    assert_failed_cleanly(fetch_users(trigger="command"), "database unavailable")
    assert_rerun_succeeds()


def test_a_reply_without_a_user_list_fails_the_run(configured, sandbox, checkout):
    inject(sandbox, status=200, count=1, path=USERS, body={"success": True})
    assert_failed_cleanly(fetch_users(trigger="command"), "no autoCheckinUsers")
    assert_rerun_succeeds()
