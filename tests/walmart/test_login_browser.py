"""The real login: headless Chromium against the sandbox's login page."""

import io

import pytest
import requests
from django.db import connection
from django.core.management import CommandError, call_command

from portal.http import UpstreamTransientError
from portal.runs import OperationFailed
from portal.sandbox import Fault
from walmart import services, sessions
from walmart.client import BotDefenceError, LoginRefused
from walmart.models import RetailLinkSession

pytestmark = [pytest.mark.django_db, pytest.mark.browser]


def sms_code(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/retaillink/state").json()["last_code"]


def test_it_logs_in_with_the_sms_code_and_can_fetch_an_edr(admin_user, sandbox, rl):
    pending = services.request_mfa(admin_user)
    assert pending.stage == "awaiting_code" and not pending.is_authenticated
    assert "rl_sid" in pending.browser_state and "_px3" in pending.browser_state  # the page's script ran
    assert rl.state()["pending_logins"] == 1
    session = services.authenticate(admin_user, sms_code(sandbox))
    assert session.is_authenticated and session.bearer
    stored = RetailLinkSession.objects.get(user=admin_user)
    assert stored.bearer == session.bearer
    with connection.cursor() as cursor:
        cursor.execute("SELECT bearer, browser_state FROM walmart_retaillinksession")
        raw = cursor.fetchone()
    assert session.bearer not in raw[0] and "_px3" not in raw[1]  # encrypted at rest
    assert services.fetch_edr(admin_user, "606100").event_id == "606100"


def test_a_wrong_code_can_be_followed_by_the_right_one(admin_user, sandbox):
    services.request_mfa(admin_user)
    with pytest.raises(LoginRefused, match="not accepted; check the SMS") as refused:
        services.authenticate(admin_user, "000000" if sms_code(sandbox) != "000000" else "111111")
    assert refused.value.reason == "invalid_code"
    assert RetailLinkSession.objects.get(user=admin_user).stage == "awaiting_code"
    assert services.authenticate(admin_user, sms_code(sandbox)).is_authenticated


def test_an_expired_code_asks_for_a_new_one(admin_user, sandbox):
    services.request_mfa(admin_user)
    requests.post(f"{sandbox.url}/_sandbox/retaillink/expire_codes")
    with pytest.raises(LoginRefused, match="expired; request a new code") as refused:
        services.authenticate(admin_user, sms_code(sandbox))
    assert refused.value.reason == "code_expired"


def test_repeated_wrong_codes_stop_before_the_lockout(admin_user, sandbox, rl):
    services.request_mfa(admin_user)
    wrong = "000000" if sms_code(sandbox) != "000000" else "111111"
    reasons = []
    for _ in range(3):
        with pytest.raises((OperationFailed, LoginRefused)) as refused:
            services.authenticate(admin_user, wrong)
        reasons.append(getattr(refused.value, "reason", type(refused.value).__name__))
    assert reasons == ["invalid_code", "invalid_code", "CodeTriesExhausted"]
    assert rl.state()["accounts"]["demo.user@example.com"]["locked"] is False


def test_an_account_locked_upstream_is_reported(admin_user, sandbox, rl):
    rl.accounts["demo.user@example.com"]["locked"] = True
    with pytest.raises(LoginRefused) as refused:
        services.request_mfa(admin_user)
    assert refused.value.reason == "locked"


def test_a_wrong_password_is_refused_before_any_code(admin_user, rl, monkeypatch):
    monkeypatch.setenv("WALMART_EDR_PASSWORD", "not-the-password")
    with pytest.raises(LoginRefused, match="refused the username or password"):
        services.request_mfa(admin_user)
    assert rl.state()["last_code"] is None
    assert not RetailLinkSession.objects.exists()


def test_missing_credentials_are_a_configuration_error(admin_user, monkeypatch):
    for name in ("WALMART_EDR_USERNAME", "WALMART_EDR_PASSWORD", "WALMART_EDR_MFA_CREDENTIAL_ID"):
        monkeypatch.delenv(name)
    with pytest.raises(OperationFailed, match="Configuration missing"):
        services.request_mfa(admin_user)


def test_bot_defence_refusing_the_browser_is_reported(admin_user, rl):
    rl.options["challenge_always"] = True
    with pytest.raises(BotDefenceError, match="bot defence refused the sign in step"):
        services.request_mfa(admin_user)


def test_a_login_that_issues_no_token_is_refused(admin_user, sandbox, rl):
    services.request_mfa(admin_user)
    rl.options["authenticate_without_cookie"] = True
    with pytest.raises(LoginRefused, match="issued no token") as refused:
        services.authenticate(admin_user, sms_code(sandbox))
    assert refused.value.reason == "no_token"
    assert not RetailLinkSession.objects.get(user=admin_user).is_authenticated


def test_a_login_host_outage_is_transient(admin_user, rl):
    rl.add_fault(Fault(count=5, status=503, path="/login/api/login"))
    with pytest.raises(UpstreamTransientError, match="HTTP 503 at the sign in step"):
        services.request_mfa(admin_user)


def test_logout_ends_the_session(admin_user, sandbox):
    services.request_mfa(admin_user)
    services.authenticate(admin_user, sms_code(sandbox))
    assert services.logout(admin_user) is True
    with pytest.raises(sessions.NoSession, match="request an MFA code first"):
        services.fetch_edr(admin_user, "606100")


def test_the_session_expires_after_ten_idle_minutes_and_slides_on_use(admin_user, sandbox, clock):
    services.request_mfa(admin_user)
    services.authenticate(admin_user, sms_code(sandbox))
    clock.advance(minutes=9)
    services.fetch_edr(admin_user, "606100")  # use: ten more minutes from here
    clock.advance(minutes=9)
    assert sessions.live_session(admin_user).time_remaining() == pytest.approx(60, abs=5)
    clock.advance(minutes=2)
    assert sessions.live_session(admin_user) is None
    with pytest.raises(sessions.NoSession):
        services.fetch_edr(admin_user, "606100")
    record = services.clear_expired_sessions(trigger="command")
    assert record.counters == {"deleted": 1}
    assert not RetailLinkSession.objects.exists()


class SmsReader:
    """A terminal where the person types the code the sandbox "sent"."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def readline(self):
        return sms_code(self.sandbox) + "\n"


def test_walmart_login_prompts_for_the_code(admin_user, sandbox):
    out = io.StringIO()
    call_command("walmart_login", user="root", stdin=SmsReader(sandbox), stdout=out)
    assert "Enter the MFA code:" in out.getvalue() and "Authenticated" in out.getvalue()
    assert RetailLinkSession.objects.get(user=admin_user).is_authenticated


def test_the_old_name_retaillink_login_refuses_a_short_code_without_burning_a_try(admin_user, rl):
    with pytest.raises(CommandError, match="6 digits from the SMS"):
        call_command("retaillink_login", user="root", stdin=io.StringIO("123\n"), stdout=io.StringIO())
    assert rl.state()["accounts"]["demo.user@example.com"]["failures"] == 0  # never sent to Retail Link
    assert services.code_tries_left() == 2


class FullWidthSmsReader(SmsReader):
    def readline(self):
        return sms_code(self.sandbox).translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}) + "\n"


def test_walmart_login_takes_the_code_typed_in_full_width_digits(admin_user, sandbox, rl):
    call_command("walmart_login", user="root", stdin=FullWidthSmsReader(sandbox), stdout=io.StringIO())
    assert RetailLinkSession.objects.get(user=admin_user).is_authenticated
    assert rl.state()["accounts"]["demo.user@example.com"]["failures"] == 0
