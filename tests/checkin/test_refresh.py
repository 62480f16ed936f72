import io
import time
from datetime import timedelta

import pytest
import requests
from django.core.management import CommandError, call_command
from django.utils import timezone

from checkin import services
from checkin.models import CheckinSession, CheckinSettings, CheckoutUser, SessionRefresh
from checkin.services import (
    fetch_users,
    refresh_due_sessions,
    refresh_session,
    refresh_sessions,
)
from portal.models import SetAsideRecord, SyncRun
from tests.checkin.conftest import EXPIRED, LIVE, OPTED_IN

pytestmark = pytest.mark.django_db

ADA = "ada.lovelace@york.ac.uk"


@pytest.fixture
def fetched(configured, checkout, page):
    assert fetch_users(trigger="command").status == "succeeded"


def session_of(email):
    return CheckinSession.objects.select_related("user").get(user__email=email)


def test_it_rotates_the_cookie_updates_and_logs_upstream_and_keeps_history(fetched, checkout, page):
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "succeeded", record.error
    session = session_of(ADA)
    new_cookie = page.live_cookie_of(ADA)
    assert session.cookie == new_cookie != "demo-cookie-ada-0001"
    assert checkout.users[ADA]["checkintoken"] == new_cookie
    assert checkout.logs[-1] == {**checkout.logs[-1], "email": ADA, "state": "Normal", "message": "Session refresh success"}
    assert session.last_result == "Normal" and session.last_refreshed_at
    assert session.user.checkin_report == "Normal"
    (refresh,) = session.refreshes.all()
    assert (refresh.result, refresh.changed_rows, refresh.logged_upstream, refresh.run_id) == ("Normal", 1, True, record.pk)

    # Again: the rotated cookie works, the history grows, nothing else is duplicated.
    again = refresh_session(trigger="command", email=ADA)
    assert again.status == "succeeded"
    assert session_of(ADA).refreshes.count() == 2
    assert CheckinSession.objects.count() == 5 and CheckoutUser.objects.count() == 5
    # A later fetch sees CheckOut holding our cookie and keeps it.
    fetch_users(trigger="command")
    assert session_of(ADA).cookie == page.live_cookie_of(ADA)


def test_an_expired_cookie_is_a_fail_logged_upstream_and_the_run_fails(fetched, checkout):
    record = refresh_session(trigger="command", email=EXPIRED)
    assert record.status == "failed" and "Session expired" in record.error
    session = session_of(EXPIRED)
    assert session.last_result == "Fail" and session.cookie == "demo-cookie-barbara-expired"
    assert checkout.logs[-1]["state"] == "Fail" and checkout.logs[-1]["email"] == EXPIRED
    assert checkout.updates == []  # nothing to update
    assert session.refreshes.get().message == "Session refresh fail - Session expired"


def test_an_email_mismatch_is_a_fail_and_the_other_accounts_cookie_is_not_kept(fetched, sandbox, checkout):
    requests.post(f"{sandbox.url}/_sandbox/checkin-page/mismatch", json={"email": ADA, "shown_email": "mallory@york.ac.uk"})
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "failed" and "Email mismatch" in record.error
    assert session_of(ADA).cookie == "demo-cookie-ada-0001"
    assert checkout.updates == []


def test_changed_rows_zero_is_a_fail(fetched, checkout):
    del checkout.users[ADA]  # CheckOut lost the user between fetch and refresh
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "failed" and "user record not found" in record.error
    assert session_of(ADA).refreshes.get().changed_rows == 0


def test_when_checkout_fails_the_update_the_rotated_cookie_is_kept_locally(fetched, sandbox, checkout, page, settings):
    # A 500 may have landed: the update is not repeated (a repeat would answer changedRows 0).
    requests.post(f"{sandbox.url}/_sandbox/checkout/faults", json={"status": 500, "count": 1, "path": "/api/autocheckin/update"})
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "failed" and "HTTP 500" in record.error
    session = session_of(ADA)
    assert session.cookie == page.live_cookie_of(ADA)  # the old one is dead; we kept the new one
    assert checkout.users[ADA]["checkintoken"] == "demo-cookie-ada-0001"
    assert session.refreshes.get().result == "Fail"
    # The next fetch does not put the dead cookie back, and the next refresh heals CheckOut.
    fetch_users(trigger="command")
    assert session_of(ADA).cookie == page.live_cookie_of(ADA)
    assert refresh_session(trigger="command", email=ADA).status == "succeeded"
    assert checkout.users[ADA]["checkintoken"] == page.live_cookie_of(ADA)


def test_an_unreachable_page_is_a_fail_with_the_reason(fetched, sandbox, checkout, settings):
    settings.UPSTREAM_RETRIES = 0
    requests.post(f"{sandbox.url}/_sandbox/checkin-page/faults", json={"status": 500, "count": 1})
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "failed" and "checkin-page answered HTTP 500" in record.error
    assert checkout.logs[-1]["state"] == "Fail"


def test_an_unknown_email_fails_without_calling_upstream(fetched, page):
    record = refresh_session(trigger="command", email="nobody@york.ac.uk")
    assert record.status == "failed" and "No check-in session" in record.error
    assert page.loads == []


def test_a_session_being_refreshed_elsewhere_is_skipped(fetched, page):
    from portal.models import RunLock

    RunLock.objects.create(key=f"checkin.session:{session_of(ADA).pk}", expires=timezone.now() + timedelta(minutes=5))
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "skipped" and "being refreshed" in record.error
    assert page.loads == []


def test_refresh_all_refreshes_every_opted_in_user_once(fetched, checkout, page):
    record = refresh_sessions(trigger="command")
    assert record.status == "partial", record.error  # the expired cookie is set aside
    assert record.counters == {"normal": len(LIVE), "fail": 1, "set_aside": 1, "items_ok": len(LIVE)}
    assert (record.progress_done, record.progress_total) == (5, 5)
    assert SessionRefresh.objects.count() == 5
    assert sorted(log["email"] for log in checkout.logs) == OPTED_IN
    assert "ken.thompson@york.ac.uk" not in {load["email"] for load in page.loads}


def test_refresh_all_stops_when_checkout_refuses_the_key(fetched, checkout):
    checkout.api_tokens.clear()
    record = refresh_sessions(trigger="command")
    assert record.status == "failed" and "HTTP 403" in record.error
    assert SessionRefresh.objects.count() == 1  # the first user, recorded; the rest not attempted


def test_refresh_all_reports_checkout_trouble_but_goes_on(fetched, sandbox, checkout):
    requests.post(f"{sandbox.url}/_sandbox/checkout/faults", json={"status": 500, "count": 1, "path": "/api/autocheckin/update"})
    record = refresh_sessions(trigger="command")
    assert record.status == "partial", record.error  # the user CheckOut did not take is set aside, the rest went on
    assert SessionRefresh.objects.count() == 5
    aside = {r.key: r.reason for r in SetAsideRecord.objects.filter(app="checkin", kind="session", status="open")}
    assert len(aside) == 2 and EXPIRED in aside  # the expired cookie, and the one CheckOut refused
    (refused,) = [reason for key, reason in aside.items() if key != EXPIRED]
    assert "CheckOut did not store the new cookie" in refused and "HTTP 500" in refused


def test_the_cycle_is_shuffled_and_spread_with_gaps_then_refreshes_what_is_due(fetched, page, monkeypatch):
    shuffled = []
    monkeypatch.setattr(services._rng, "shuffle", lambda items: (items.reverse(), shuffled.append(True)))
    before = timezone.now()
    record = refresh_due_sessions(trigger="beat")
    assert record.status in ("succeeded", "partial", "failed"), record.error
    assert record.counters.get("set_aside", 0) == record.counters.get("fail", 0)  # each Fail is set aside
    assert shuffled and record.counters["planned"] == 5
    settings_row = CheckinSettings.load()
    due = sorted(t for t in CheckinSession.objects.values_list("next_refresh_at", flat=True) if t)
    refreshed = record.counters.get("normal", 0) + record.counters.get("fail", 0)
    assert len(due) + refreshed == 5
    last_due = max(due) if due else before
    assert last_due <= before + timedelta(minutes=10 * 5, seconds=5)
    assert last_due + timedelta(hours=1) <= settings_row.next_cycle_at <= last_due + timedelta(hours=5, seconds=5)

    # Time passes: everything is due. One tick refreshes each session once.
    CheckinSession.objects.filter(next_refresh_at__isnull=False).update(next_refresh_at=timezone.now() - timedelta(seconds=1))
    tick = refresh_due_sessions(trigger="beat")
    assert tick.status != "errored" and tick.counters.get("set_aside", 0) == tick.counters.get("fail", 0)
    assert "planned" not in tick.counters  # the next cycle is hours away
    assert SessionRefresh.objects.count() == 5
    assert not CheckinSession.objects.filter(next_refresh_at__isnull=False).exists()
    runs_before = SyncRun.objects.count()
    assert refresh_due_sessions(trigger="beat") is None  # an idle tick: no work, no run row
    assert SessionRefresh.objects.count() == 5 and SyncRun.objects.count() == runs_before

    # The next cycle's time comes: a new plan.
    CheckinSettings.objects.update(next_cycle_at=timezone.now() - timedelta(seconds=1))
    assert refresh_due_sessions(trigger="beat").counters["planned"] == 5


def test_the_checkin_refresh_sessions_command_for_all_one_and_due(fetched):
    err = io.StringIO()
    with pytest.raises(CommandError, match="partial"):  # the expired cookie: non-zero exit
        call_command("checkin_refresh_sessions", stdout=io.StringIO(), stderr=err)
    assert "normal=4" in err.getvalue() and "fail=1" in err.getvalue() and "set_aside=1" in err.getvalue()
    call_command("checkin_refresh_sessions", "--email", ADA, stdout=io.StringIO())
    assert session_of(ADA).refreshes.count() == 2
    with pytest.raises(CommandError, match="Session expired"):
        call_command("checkin_refresh_sessions", "--email", EXPIRED, stdout=io.StringIO())
    due = io.StringIO()
    call_command("checkin_refresh_sessions", "--due", stdout=due)
    assert "planned=5" in due.getvalue()


@pytest.mark.parametrize("fault, needle", [
    ({"kind": "timeout", "timeout_s": 3}, "checkin-page did not answer in time"),
    ({"kind": "reset"}, "checkin-page"),
    ({"status": 503, "retry_after": 1}, "checkin-page answered HTTP 503"),
    ({"status": 429, "retry_after": 1}, "checkin-page answered HTTP 429"),
])
def test_page_faults_are_a_recorded_fail_and_the_next_refresh_works(fetched, sandbox, checkout, page, settings, fault, needle):
    settings.UPSTREAM_RETRIES = 0
    requests.post(f"{sandbox.url}/_sandbox/checkin-page/faults", json={**fault, "count": 1})
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "failed" and needle in record.error
    session = session_of(ADA)
    assert session.cookie == "demo-cookie-ada-0001" and session.last_result == "Fail"
    assert checkout.logs[-1]["state"] == "Fail" and needle in checkout.logs[-1]["message"]
    assert refresh_session(trigger="command", email=ADA).status == "succeeded"
    assert session_of(ADA).refreshes.count() == 2 and CheckinSession.objects.count() == 5


def test_a_tick_stopped_by_a_refused_key_hands_the_unreached_sessions_back(fetched, checkout):
    past = timezone.now() - timedelta(seconds=1)
    CheckinSettings.objects.update(next_cycle_at=timezone.now() + timedelta(hours=2))
    CheckinSession.objects.update(next_refresh_at=past)
    checkout.api_tokens.clear()
    record = refresh_due_sessions(trigger="beat")
    assert record.status == "failed" and "HTTP 403" in record.error
    assert SessionRefresh.objects.count() == 1
    # the first session was attempted; the other four are due again on the next tick
    assert CheckinSession.objects.filter(next_refresh_at=past).count() == len(OPTED_IN) - 1


def test_a_slow_page_is_loaded_once_even_with_retries_on(fetched, sandbox, checkout, page, settings):
    # The page rotates the cookie before its reply is late: a retry would send a dead cookie.
    settings.UPSTREAM_RETRIES = 3
    requests.post(f"{sandbox.url}/_sandbox/checkin-page/faults", json={"latency_ms": 3000, "count": 1})
    seen_before = sandbox["checkin-page"].requests_seen
    loads_before = len(sandbox["checkin-page"].loads)
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "failed" and "did not answer in time" in record.error
    assert sandbox["checkin-page"].requests_seen == seen_before + 1
    # The late load still rotates the cookie when its sleep ends: let it land in this
    # test, not after the next test's sandbox reset (its demo cookies are the same).
    deadline = time.monotonic() + 60
    while len(sandbox["checkin-page"].loads) == loads_before and time.monotonic() < deadline:
        time.sleep(0.1)


@pytest.mark.parametrize("status", [429, 503])
def test_an_update_checkout_did_not_take_is_retried_and_the_refresh_is_normal(fetched, sandbox, checkout, page, status):
    requests.post(f"{sandbox.url}/_sandbox/checkout/faults",
                  json={"status": status, "retry_after": 1, "count": 1, "path": "/api/autocheckin/update", "exact": True})
    record = refresh_session(trigger="command", email=ADA)
    assert record.status == "succeeded", record.error
    assert session_of(ADA).last_result == "Normal"
    assert checkout.users[ADA]["checkintoken"] == page.live_cookie_of(ADA)
