"""One failing user or session does not fail the others: it is set aside with its
reason, the run ends `partial`, and a retry after the upstream is fixed resolves it.

Faults: the page sandbox's /fail control (one user's cookie gets an HTTP 500
page, not rotated) and a CheckOut user row with an impossible date."""

import pytest
import requests

from checkin.models import CheckinSession, CheckoutUser, SessionRefresh
from checkin.services import fetch_users, refresh_due_sessions, refresh_session, refresh_sessions
from portal.models import SetAsideRecord, SyncRun
from tests.checkin.conftest import EXPIRED, OPTED_IN

pytestmark = pytest.mark.django_db

ADA = "ada.lovelace@york.ac.uk"
ALAN = "alan.turing@york.ac.uk"


def open_records(kind):
    return {r.key: r for r in SetAsideRecord.objects.filter(app="checkin", kind=kind, status="open")}


def page_fails_for(sandbox, email, status=500):
    requests.post(f"{sandbox.url}/_sandbox/checkin-page/fail", json={"email": email, "status": status}).raise_for_status()


@pytest.fixture
def everyone_live(configured, checkout, page):
    """Every opted-in user with a live cookie (the demo's expired one re-imported), fetched."""
    checkout.set_user(EXPIRED, checkintoken=page.issue(EXPIRED))
    assert fetch_users(trigger="command").status == "succeeded"


def test_one_failing_session_refresh_is_set_aside_and_the_others_are_refreshed(everyone_live, sandbox, checkout, page):
    page_fails_for(sandbox, ADA)
    record = refresh_sessions(trigger="command")
    assert record.status == "partial", record.error
    assert record.counters == {"normal": 4, "fail": 1, "set_aside": 1, "items_ok": 4}
    (aside,) = open_records("session").values()
    assert aside.key == ADA and "checkin-page answered HTTP 500" in aside.reason
    assert aside.context == {"email": ADA, "session_id": CheckinSession.objects.get(user__email=ADA).pk}
    others = [email for email in OPTED_IN if email != ADA]
    for email in others:  # refreshed: CheckOut holds the rotated cookie the page now accepts
        assert checkout.users[email]["checkintoken"] == page.live_cookie_of(email)
    assert CheckinSession.objects.get(user__email=ADA).cookie == "demo-cookie-ada-0001"  # not rotated, still good

    # Again with the fault still there: the same record is updated, nothing is duplicated.
    again = refresh_sessions(trigger="command")
    assert again.status == "partial"
    assert open_records("session")[ADA].attempts == 2 and SetAsideRecord.objects.count() == 1
    assert CheckinSession.objects.count() == 5 and CheckoutUser.objects.count() == 5
    assert SessionRefresh.objects.count() == 10


def test_a_retry_after_the_page_recovers_refreshes_that_session_and_resolves_it(
    everyone_live, sandbox, checkout, page, admin_user, api_client, django_capture_on_commit_callbacks
):
    page_fails_for(sandbox, ADA)
    refresh_sessions(trigger="command")
    aside = open_records("session")[ADA]
    page_fails_for(sandbox, ADA, status=None)
    loads_before = len(page.loads)

    api_client.force_authenticate(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post("/api/portal/set-aside/retry", {"ids": [aside.pk]}, format="json")
    assert reply.status_code == 202, reply.content
    retry = SyncRun.objects.get(pk=reply.json()[0]["id"])
    assert (retry.app, retry.operation, retry.status) == ("checkin", "retry_set_aside", "succeeded")
    assert retry.counters["sessions_refreshed"] == 1
    aside.refresh_from_db()
    assert aside.status == "resolved" and aside.resolved_by_id == retry.pk
    assert [load["email"] for load in page.loads[loads_before:]] == [ADA]  # only that session
    session = CheckinSession.objects.get(user__email=ADA)
    assert session.last_result == "Normal" and session.cookie == page.live_cookie_of(ADA)
    assert checkout.users[ADA]["checkintoken"] == session.cookie
    # A full refresh afterwards: everyone goes through, nothing is open.
    assert refresh_sessions(trigger="command").status == "succeeded"
    assert not open_records("session")


def test_a_retry_that_still_fails_keeps_the_session_open_and_keeps_what_the_page_rotated(everyone_live, sandbox, checkout, page):
    from portal.setaside import retry_set_aside

    page_fails_for(sandbox, ADA)
    refresh_sessions(trigger="command")
    page_fails_for(sandbox, ADA, status=None)
    # The page now rotates the cookie, but CheckOut refuses to store it.
    requests.post(f"{sandbox.url}/_sandbox/checkout/faults", json={"status": 500, "count": 1, "path": "/api/autocheckin/update"})
    (run,) = retry_set_aside(ids=[r.pk for r in open_records("session").values()], trigger="command")
    assert run.status == "failed"
    aside = open_records("session")[ADA]
    assert aside.attempts == 2 and "CheckOut did not store the new cookie" in aside.reason
    # The rotated cookie (the old one is dead now) survived the failed retry.
    assert CheckinSession.objects.get(user__email=ADA).cookie == page.live_cookie_of(ADA)
    assert SessionRefresh.objects.filter(session__user__email=ADA).count() == 2


def test_a_single_refresh_that_goes_through_closes_the_open_record(everyone_live, sandbox):
    page_fails_for(sandbox, ALAN)
    assert refresh_session(trigger="command", email=ALAN).status == "failed"
    assert ALAN in open_records("session")
    page_fails_for(sandbox, ALAN, status=None)
    assert refresh_session(trigger="command", email=ALAN).status == "succeeded"
    assert not open_records("session")


def test_a_beat_tick_sets_the_failing_session_aside_too(everyone_live, sandbox):
    from datetime import timedelta

    from django.utils import timezone

    from checkin.models import CheckinSettings

    CheckinSettings.objects.update(next_cycle_at=timezone.now() + timedelta(hours=2))
    CheckinSession.objects.update(next_refresh_at=timezone.now() - timedelta(seconds=1))
    page_fails_for(sandbox, ADA)
    record = refresh_due_sessions(trigger="beat")
    assert record.status == "partial" and list(open_records("session")) == [ADA]
    assert record.counters["items_ok"] == 4


def test_a_user_checkout_sends_broken_is_set_aside_and_the_others_are_stored(configured, checkout, admin_user):
    from portal.setaside import retry_set_aside

    checkout.set_user(ADA, checkinReportTime="2024-02-30T10:00:00Z")  # no such day
    record = fetch_users(trigger="command")
    assert record.status == "partial", record.error
    (aside,) = open_records("user").values()
    assert aside.key == ADA and "day is out of range" in aside.reason
    assert aside.payload["checkintoken"] == "***"  # the cookie is never kept on the record
    assert sorted(CheckoutUser.objects.values_list("email", flat=True)) == [e for e in OPTED_IN if e != ADA]

    again = fetch_users(trigger="command")  # a re-run: nothing duplicated, the record updated
    assert again.status == "partial" and open_records("user")[ADA].attempts == 2
    assert CheckoutUser.objects.count() == 4 and CheckinSession.objects.count() == 4

    checkout.set_user(ADA, checkinReportTime="2024-02-28T10:00:00Z")  # CheckOut fixed
    (retry,) = retry_set_aside(ids=[aside.pk], trigger="command", user=admin_user)
    assert retry.status == "succeeded" and retry.counters["users_stored"] == 1
    assert CheckinSession.objects.get(user__email=ADA).cookie == "demo-cookie-ada-0001"
    assert not open_records("user")
    assert fetch_users(trigger="command").status == "succeeded" and CheckoutUser.objects.count() == 5


def test_a_user_without_an_e_mail_is_set_aside_and_everyone_else_is_stored(configured, checkout):
    checkout.users["broken"] = {"email": "", "checkintoken": "tok-broken", "checkinstate": 1, "checkinReport": "Enabled",
                                "checkinReportTime": None, "sync": None}
    record = fetch_users(trigger="command")
    assert record.status == "partial"
    (aside,) = open_records("user").values()
    assert aside.key.startswith("without-e-mail:") and "without an e-mail" in aside.reason
    assert CheckoutUser.objects.count() == 5 and CheckoutUser.objects.filter(opted_in=True).count() == 5
    assert fetch_users(trigger="command").status == "partial" and SetAsideRecord.objects.count() == 1


def test_health_figures_count_users_due_and_failed_sessions(configured, checkout, page):
    from datetime import timedelta

    from django.apps import apps
    from django.utils import timezone

    config = apps.get_app_config("checkin")
    assert config.health_figures() == {"users": 0, "sessions_due_for_refresh": 0, "sessions_refresh_failed": 0}
    fetch_users(trigger="command")
    refresh_session(trigger="command", email=EXPIRED)  # Fail: the demo's expired cookie
    CheckinSession.objects.filter(user__email=ADA).update(next_refresh_at=timezone.now() - timedelta(minutes=1))
    assert config.health_figures() == {"users": 5, "sessions_due_for_refresh": 1, "sessions_refresh_failed": 1}
