"""A synchronous endpoint answers within its time budget: a lasting upstream
timeout is a 503 with Retry-After, after no more tries than fit in the budget."""

import pytest

from walmart import conf

pytestmark = pytest.mark.django_db


def test_a_lasting_edr_timeout_answers_503_within_the_budget(api_client, rl_user, rl, monkeypatch):
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 1.5)
    rl.options["edr_latency_ms"] = 4000  # every edrReport outlasts the budget
    api_client.force_authenticate(rl_user)
    reply = api_client.get("/api/walmart/edr/606100")
    assert reply.status_code == 503
    assert reply["Retry-After"] == str(conf.RETRY_AFTER_SECONDS)
    assert reply.json()["success"] is False and reply.json()["error"] == "upstream_unavailable"
    # One try: a retry would not have finished within the budget (without it, 4 tries of 30 s).
    assert rl.state()["edr_attempts"] == 1


def test_within_the_budget_a_slow_edr_still_arrives(api_client, rl_user, rl, monkeypatch):
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 5)
    rl.options["edr_latency_ms"] = 300
    api_client.force_authenticate(rl_user)
    reply = api_client.get("/api/walmart/edr/606100")
    assert reply.status_code == 200 and reply.json()["event_id"] == "606100"


# --- the browser login steps -----------------------------------------------------------------
# A login page (or login API) that hangs far longer than the budget: only the budget can end the wait.
# 20 s: Chromium starting on a busy test machine must still reach the hanging step within it.
HANG_MS = 60_000


@pytest.fixture
def long_browser_steps(monkeypatch):
    """Each browser step's own timeout longer than the budget: only the budget can end the wait."""
    from walmart.client import login

    monkeypatch.setattr(conf, "LOGIN_STEP_TIMEOUT", 90)
    monkeypatch.setattr(login, "NAVIGATION_TIMEOUT", 90)
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 20)


def login_fault(rl, path):
    from portal.sandbox import Fault

    fault = Fault(latency_ms=HANG_MS, path=path, exact=True)
    rl.add_fault(fault)
    return fault


def assert_out_of_budget(reply):
    assert reply.status_code == 503, reply.content
    assert reply["Retry-After"] == str(conf.RETRY_AFTER_SECONDS)
    body = reply.json()
    assert body["success"] is False and body["error"] == "upstream_unavailable"
    assert "did not finish within its 20 s time budget" in body["message"]


@pytest.mark.browser
def test_a_hanging_login_page_answers_request_mfa_with_503_within_the_budget(api_client, admin_user, rl,
                                                                              long_browser_steps):
    from walmart.models import RetailLinkAccount

    page = login_fault(rl, "/login/login")
    api_client.force_authenticate(admin_user)
    assert_out_of_budget(api_client.post("/api/walmart/auth/request-mfa"))
    assert page.used == 1  # the browser did reach the hanging page
    assert rl.state()["sms_sent"] == 0
    assert RetailLinkAccount.objects.get().claimed_until is None  # the next request is not kept waiting


@pytest.mark.browser
def test_a_hanging_code_request_inside_the_page_is_cut_at_the_budget(api_client, admin_user, rl, long_browser_steps):
    send_code = login_fault(rl, "/login/api/mfa/sendCode")  # an in-page fetch: no browser timeout of its own
    api_client.force_authenticate(admin_user)
    assert_out_of_budget(api_client.post("/api/walmart/auth/request-mfa"))
    assert send_code.used == 1


@pytest.mark.browser
def test_a_hanging_code_check_answers_authenticate_with_503_and_counts_no_wrong_code(
        api_client, admin_user, rl, monkeypatch):
    from walmart import services
    from walmart.models import RetailLinkAccount, RetailLinkSession

    services.request_mfa(admin_user)
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 20)
    monkeypatch.setattr(conf, "LOGIN_STEP_TIMEOUT", 90)  # the budget, not the step, ends the wait
    validate = login_fault(rl, "/login/api/mfa/validateCode")
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/walmart/auth/authenticate", {"mfa_code": rl.state()["last_code"]}, format="json")
    assert_out_of_budget(reply)
    assert validate.used == 1
    assert RetailLinkAccount.objects.get().wrong_codes == 0
    assert RetailLinkSession.objects.get(user=admin_user).stage == "awaiting_code"  # the code can be entered again
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 120)
    reply = api_client.post("/api/walmart/auth/authenticate", {"mfa_code": rl.state()["last_code"]}, format="json")
    assert reply.status_code == 200, reply.content


def test_a_code_request_held_by_another_user_past_the_budget_is_503(api_client, admin_user, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from walmart import services

    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 1.5)
    account = services.shared_account()
    account.claimed_until = timezone.now() + timedelta(minutes=1)  # someone's browser login is running
    account.save(update_fields=["claimed_until"])
    api_client.force_authenticate(admin_user)
    reply = api_client.post("/api/walmart/auth/request-mfa")
    assert reply.status_code == 503, reply.content
    assert reply["Retry-After"] == str(conf.RETRY_AFTER_SECONDS)
    assert reply.json()["error"] == "account_busy" and "still running" in reply.json()["message"]
