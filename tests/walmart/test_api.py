"""/api/walmart/ through APIClient: the seed's fields, envelopes, isolation."""

import io
import zipfile

import pytest
import requests
from django.contrib.auth.models import Permission

from portal.models import SyncRun
from walmart.models import EdrReport, RetailLinkSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    """A user with only the Retail Link permissions."""

    def make(name):
        user = django_user_model.objects.create_user(name, password="x")
        user.user_permissions.add(*Permission.objects.filter(codename__in=["use_retaillink", "view_edrreport"]))
        return user

    return make


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_the_api_needs_a_login_and_the_permission(api_client, django_user_model):
    assert api_client.get("/api/walmart/auth/session-status").status_code in (401, 403)
    as_user(api_client, django_user_model.objects.create_user("nobody"))
    reply = api_client.post("/api/walmart/auth/request-mfa")
    assert reply.status_code == 403 and reply.json()["success"] is False


def test_health_needs_no_login(api_client, rl_user, monkeypatch):
    assert api_client.get("/api/walmart/health").json() == {"status": "healthy", "walmart_configured": True, "active_sessions": 1,
                                                          "browser_available": True, "browser_problem": None,
                                                          "mfa_code_tries_left": 2}
    monkeypatch.delenv("WALMART_EDR_PASSWORD")
    assert api_client.get("/api/walmart/health").json()["walmart_configured"] is False


def test_session_status_reports_the_seed_fields(api_client, rl_user):
    body = as_user(api_client, rl_user).get("/api/walmart/auth/session-status").json()
    assert body["has_session"] is True
    info = body["session_info"]
    assert set(info) == {"user_id", "created_at", "last_activity", "expires_at", "time_remaining_seconds", "is_authenticated"}
    assert info["is_authenticated"] is True and 590 <= info["time_remaining_seconds"] <= 600
    assert "bearer" not in str(body) and RetailLinkSession.objects.get().bearer not in str(body)


def test_bad_input_gets_an_envelope_that_says_what_to_do(api_client, rl_user):
    as_user(api_client, rl_user)
    missing = api_client.post("/api/walmart/auth/authenticate", {}, format="json")
    assert missing.status_code == 400
    assert missing.json()["success"] is False and "Enter the MFA code" in missing.json()["error"]
    bad_date = api_client.post("/api/walmart/edr/batch-download", {"date": "10/06/2025"}, format="json")
    assert bad_date.status_code == 400 and "use YYYY-MM-DD" in bad_date.json()["error"]
    empty = api_client.post("/api/walmart/edr/batch-download", {"event_ids": []}, format="json")
    assert empty.status_code == 400 and "list of event ids is empty" in empty.json()["error"]
    neither = api_client.post("/api/walmart/edr/batch-download", {}, format="json")
    assert neither.status_code == 400 and "either a date (YYYY-MM-DD)" in neither.json()["error"]


def test_no_session_and_unauthenticated_session_are_401(api_client, staff):
    user = staff("ann")
    as_user(api_client, user)
    no_session = api_client.get("/api/walmart/edr/606100")
    assert no_session.status_code == 401
    assert no_session.json()["message"] == "No active Retail Link session; request an MFA code first."
    from walmart import sessions

    sessions.start_session(user, "{}")
    pending = api_client.post("/api/walmart/edr/batch-download", {"date": "2025-10-06"}, format="json")
    assert pending.status_code == 401 and "enter the MFA code" in pending.json()["message"]


def test_it_returns_one_edr_and_404_for_an_unknown_event(api_client, rl_user):
    as_user(api_client, rl_user)
    body = api_client.get("/api/walmart/edr/606101").json()
    assert body["success"] is True and body["event_id"] == "606101"
    assert body["edr_data"]["demoId"] == "606101" and body["edr_data"]["itemDetails"]
    missing = api_client.get("/api/walmart/edr/999")
    assert missing.status_code == 404 and missing.json()["message"] == "EDR data not found"


def test_an_upstream_401_ends_the_session_with_log_in_again(api_client, rl_user, sandbox):
    requests.post(f"{sandbox.url}/_sandbox/retaillink/expire_tokens")
    reply = as_user(api_client, rl_user).get("/api/walmart/edr/606100")
    assert reply.status_code == 401 and "log in again" in reply.json()["message"]
    assert not RetailLinkSession.objects.exists()


def test_one_user_never_uses_another_users_session(api_client, rl_user, staff, authenticate_user):
    bob = staff("bob")
    as_user(api_client, bob)
    assert api_client.get("/api/walmart/auth/session-status").json() == {"has_session": False, "session_info": None}
    assert api_client.get("/api/walmart/edr/606100").status_code == 401
    assert api_client.post("/api/walmart/edr/batch-download", {"date": "2025-10-06"}, format="json").status_code == 401
    api_client.post("/api/walmart/auth/logout")
    assert RetailLinkSession.objects.filter(user=rl_user).exists()  # bob's logout is bob's
    authenticate_user(bob)
    bobs, roots = (RetailLinkSession.objects.get(user=u) for u in (bob, rl_user))
    assert bobs.bearer != roots.bearer
    as_user(api_client, rl_user)
    run_id = api_client.post("/api/walmart/edr/batch-download", {"event_ids": ["606100"], "wait": 0},
                             format="json").json()["run"]["id"]
    as_user(api_client, bob)
    assert api_client.get(f"/api/walmart/edr/batches/{run_id}").status_code == 404
    assert api_client.get(f"/api/walmart/edr/batches/{run_id}/zip").status_code == 404


def test_a_batch_is_queued_and_reports_progress_results_and_files(api_client, rl_user, rl, django_capture_on_commit_callbacks):
    as_user(api_client, rl_user)
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post("/api/walmart/edr/batch-download", {"event_ids": ["606100", "999", 606102], "wait": 0},
                                format="json")
    assert reply.status_code == 202
    body = reply.json()
    # eager Celery in unit tests: the run has finished by the time we poll
    status = api_client.get(f"/api/walmart/edr/batches/{body['run']['id']}").json()
    assert status["run"]["status"] == "partial"  # 999 has no EDR: set aside
    assert (status["run"]["progress_done"], status["run"]["progress_total"]) == (3, 3)
    assert (status["total"], status["successful"], status["failed"]) == (3, 2, 1)
    assert {"event_id": "999", "success": False, "error": "EDR data not found for event 999"} in status["results"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(api_client.get(status["zip_url"]).streaming_content)))
    assert sorted(archive.namelist()) == ["EDR_606100_Unassigned.pdf", "EDR_606102_Unassigned.pdf"]
    reports = api_client.get("/api/walmart/edr/reports/").json()
    assert reports["count"] == 2
    pdf = api_client.get(reports["results"][0]["pdf_url"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")


def test_a_batch_by_date_takes_the_approved_events(api_client, rl_user, rl, django_capture_on_commit_callbacks):
    as_user(api_client, rl_user)
    with django_capture_on_commit_callbacks(execute=True):
        reply = api_client.post("/api/walmart/edr/batch-download", {"date": "2025-10-08", "wait": 0}, format="json")
    assert reply.json()["run"]["status"] == "queued" and reply.json()["run"]["params"]["date"] == "2025-10-08"
    run_id = reply.json()["run"]["id"]
    status = api_client.get(f"/api/walmart/edr/batches/{run_id}").json()
    approved = sorted(str(e.event_id) for e in rl.events.values() if e.event_date.isoformat() == "2025-10-08" and e.status == "APPROVED")
    assert sorted(r["event_id"] for r in status["results"]) == approved
    assert EdrReport.objects.count() == len(approved)


def test_auth_endpoints_are_rate_limited(api_client, rl_user):
    as_user(api_client, rl_user)
    statuses = [api_client.post("/api/walmart/auth/authenticate", {}, format="json").status_code for _ in range(11)]
    assert statuses[:10] == [400] * 10
    assert statuses[10] == 429
    assert api_client.get("/api/walmart/auth/session-status").status_code == 200  # status is not throttled


def test_the_same_batch_asked_for_twice_is_queued_once(api_client, rl_user):
    as_user(api_client, rl_user)
    # In the test's transaction nothing is sent before commit: the first batch is still queued.
    first = api_client.post("/api/walmart/edr/batch-download", {"event_ids": ["606100"], "wait": 0}, format="json")
    second = api_client.post("/api/walmart/edr/batch-download", {"event_ids": ["606100"], "wait": 0}, format="json")
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["run"]["id"] == first.json()["run"]["id"]
    assert "already queued as run" in second.json()["message"]
    assert SyncRun.objects.filter(app="walmart", operation="edr_batch").count() == 1


@pytest.mark.django_db
def test_a_pdf_missing_from_the_storage_is_a_404_saying_so(api_client, admin_user):
    from django.utils import timezone

    from walmart.models import EdrReport

    report = EdrReport.objects.create(event_id="909090", pdf="walmart/edr/undated/gone.pdf", fetched_at=timezone.now())
    api_client.force_authenticate(admin_user)
    reply = api_client.get(f"/api/walmart/edr/reports/{report.pk}/pdf")
    assert reply.status_code == 404 and "missing from the file storage" in reply.json()["error"]
