"""The AutoCheckin API under /api/checkin/v1/: same paths, envelope and auth."""

import pytest

from checkin.models import CheckinSession, SessionRefresh
from checkin.services import fetch_users
from portal.models import SyncRun
from tests.checkin.conftest import INBOUND_KEY, OPTED_IN

pytestmark = pytest.mark.django_db

BASE = "/api/checkin/v1/"
ADA = "ada.lovelace@york.ac.uk"


@pytest.fixture
def keyed(api_client, inbound_key, configured, checkout, page):
    api_client.credentials(HTTP_X_CHECKOUT_KEY=INBOUND_KEY)
    return api_client


def assert_envelope(body, success):
    assert body["success"] is success
    assert "message" in body and "data" in body


@pytest.mark.parametrize("path", ["", "status", "state", "auth/test", "refresh", "fetch-users", f"refresh-session/{ADA}", "nope"])
def test_every_path_needs_the_key_with_the_original_messages(api_client, inbound_key, path):
    missing = api_client.get(BASE + path)
    assert missing.status_code == 401
    assert missing.json() == {"success": False, "message": "Authentication Failed", "data": None,
                              "error": "Missing x-checkout-key header"}
    wrong = api_client.get(BASE + path, HTTP_X_CHECKOUT_KEY=INBOUND_KEY + "x")
    assert wrong.status_code == 401 and wrong.json()["error"] == "Invalid API key"


def test_a_django_session_is_not_enough(admin_client, inbound_key):
    assert admin_client.get(BASE + "status").status_code == 401


def test_without_a_configured_key_the_api_refuses_everyone(api_client, monkeypatch):
    monkeypatch.delenv("CHECKIN_API_KEY", raising=False)
    reply = api_client.get(BASE + "status", HTTP_X_CHECKOUT_KEY="anything")
    assert reply.status_code == 500 and reply.json()["error"] == "CHECKIN_API_KEY not configured on server"


def test_root_lists_the_endpoints(keyed):
    body = keyed.get(BASE).json()
    assert_envelope(body, True)
    assert body["message"] == "Welcome to the AutoCheckin API"
    assert body["data"]["endpoints"]["refresh_session"] == "/api/checkin/v1/refresh-session/<email>"
    assert body["data"]["status"] == {"connected": False}


def test_auth_test_status_and_unknown_paths_and_methods(keyed):
    for method in (keyed.get, keyed.post):
        reply = method(BASE + "auth/test")
        assert reply.status_code == 200 and reply.json()["data"] == {"authenticated": True}
    assert keyed.get(BASE + "status").json() == {"success": True, "message": "API Status", "data": {"connected": False}}
    missing = keyed.get(BASE + "no/such/thing")
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "message": "API Error", "data": None, "error": "Endpoint not found"}
    not_allowed = keyed.post(BASE + "status")
    assert not_allowed.status_code == 405
    assert not_allowed.json() == {"success": False, "message": "API Error", "data": None, "error": "Method not allowed"}


def test_fetch_users_then_state_from_the_database(keyed):
    reply = keyed.get(BASE + "fetch-users")
    body = reply.json()
    assert reply.status_code == 200 and body["success"] is True and body["message"] == "User fetch completed"
    assert body["data"]["success"] is True and body["data"]["run"]["status"] == "succeeded"
    assert SyncRun.objects.get(pk=body["data"]["run"]["id"]).trigger == "api"

    state = keyed.get(BASE + "state").json()
    assert_envelope(state, True)
    assert state["message"] == "Global State" and state["data"]["connected"] is True
    stored = state["data"]["stored_data"]
    assert stored["last_users_fetch"].endswith("Z") and len(stored["last_users_fetch"]) == 24
    assert stored["last_all_session_refresh"] is None and stored["last_individual_session_refresh"] is None
    assert set(stored) >= {"next_cycle_run_time", "last_attendance_fetch_run", "autoCheckinUsers"}
    assert [u["email"] for u in stored["autoCheckinUsers"]] == OPTED_IN
    assert all("checkintoken" not in u for u in stored["autoCheckinUsers"])
    assert all(u["hasCheckintoken"] for u in stored["autoCheckinUsers"])
    assert "demo-cookie" not in reply.content.decode() + str(state)


def test_fetch_users_failing_is_still_200_with_success_false(keyed, checkout):
    checkout.api_tokens.clear()
    reply = keyed.get(BASE + "fetch-users")
    body = reply.json()
    assert reply.status_code == 200 and body["success"] is False and body["data"]["success"] is False
    assert body["message"] == "User fetch failed" and "HTTP 403" in body["error"]
    assert keyed.get(BASE + "status").json()["data"] == {"connected": False}


def test_refresh_session_refreshes_one_and_404s_for_an_unknown_email(keyed):
    fetch_users(trigger="command")
    unknown = keyed.get(BASE + "refresh-session/nobody@york.ac.uk")
    assert unknown.status_code == 404
    assert unknown.json() == {"success": False, "message": "Session not found", "data": None,
                              "error": "No checkin session found for email: nobody@york.ac.uk"}
    reply = keyed.get(BASE + f"refresh-session/{ADA}")
    body = reply.json()
    assert reply.status_code == 200 and body["message"] == "Checkin session refreshed successfully"
    session = body["data"]["session"]
    assert session["email"] == ADA and session["checkinReport"] == "Normal"
    assert session["checkinReportTime"].endswith("Z") and "checkintoken" not in session
    assert SessionRefresh.objects.filter(session__user__email=ADA).count() == 1
    state = keyed.get(BASE + "state").json()["data"]["stored_data"]
    assert state["last_individual_session_refresh"] is not None


def test_refresh_refreshes_everyone_and_reports_normal_and_fail(keyed):
    fetch_users(trigger="command")
    reply = keyed.get(BASE + "refresh")
    body = reply.json()
    assert reply.status_code == 200 and body["success"] is True
    reports = {s["email"]: s["checkinReport"] for s in body["data"]["sessions"]}
    assert sorted(reports) == OPTED_IN and list(reports.values()).count("Fail") == 1
    # the expired one is set aside on the run (partial); for CheckOut it is a completed refresh that says Fail
    assert body["data"]["run"]["status"] == "partial"
    assert body["data"]["run"]["counters"] == {"normal": 4, "fail": 1, "set_aside": 1, "items_ok": 4}
    assert CheckinSession.objects.count() == 5
    assert keyed.get(BASE + "state").json()["data"]["stored_data"]["last_all_session_refresh"]


def test_refresh_when_checkout_refuses_is_200_with_the_reason(keyed, checkout):
    fetch_users(trigger="command")
    checkout.api_tokens.clear()
    body = keyed.get(BASE + "refresh").json()
    assert body["success"] is False and "HTTP 403" in body["error"] and body["data"]["sessions"]
