"""One Retail Link account serves every portal user: code requests are
serialised (one SMS for parallel requests), code entries too (one guess upstream
with one try left), wrong codes are counted locally and
the guess that would lock the account is refused, logout is never throttled."""

import threading

import pytest
import requests

from walmart import services
from walmart.client import LoginRefused
from walmart.models import RetailLinkAccount, RetailLinkSession

pytestmark = [pytest.mark.browser]


def sandbox_state(sandbox):
    return requests.get(f"{sandbox.url}/_sandbox/retaillink/state").json()


def wrong_code(sandbox):
    return "000000" if sandbox_state(sandbox)["last_code"] != "000000" else "111111"


def in_parallel(calls):
    """Run each call in its own thread, started together; each one's exception (or None)."""
    from django.db import connection

    outcomes, barrier = [None] * len(calls), threading.Barrier(len(calls))

    def run(index, call):
        try:
            barrier.wait()
            call()
        except Exception as exc:  # noqa: BLE001 - returned to the test
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_parallel_code_requests_send_one_sms_and_both_users_get_in(sandbox, django_user_model):
    first, second = (django_user_model.objects.create_user(name) for name in ("ana", "ben"))
    assert in_parallel([lambda: services.request_mfa(first), lambda: services.request_mfa(second)]) == [None, None]
    state = sandbox_state(sandbox)
    assert state["sms_sent"] == 1 and state["pending_logins"] == 1
    # A third request within the code's life joins the pending login too.
    services.request_mfa(first)
    assert sandbox_state(sandbox)["sms_sent"] == 1

    code = state["last_code"]
    assert services.authenticate(first, code).is_authenticated
    assert services.authenticate(second, code).is_authenticated  # the same login, no second upstream try
    assert services.fetch_edr(second, "606100").event_id == "606100"
    assert sandbox_state(sandbox)["accounts"]["demo.user@example.com"]["failures"] == 0


@pytest.mark.django_db
def test_the_portal_refuses_the_wrong_code_that_would_lock_the_account(admin_user, sandbox, rl):
    services.request_mfa(admin_user)
    wrong = wrong_code(sandbox)
    with pytest.raises(LoginRefused, match="1 try left"):
        services.authenticate(admin_user, wrong)
    with pytest.raises(LoginRefused, match="No tries left"):
        services.authenticate(admin_user, wrong)
    attempts = sandbox_state(sandbox)["accounts"]["demo.user@example.com"]
    with pytest.raises(services.CodeTriesExhausted, match="would lock the shared Retail Link account"):
        services.authenticate(admin_user, wrong)
    # The third guess never reached Retail Link: the account is not locked.
    assert sandbox_state(sandbox)["accounts"]["demo.user@example.com"] == attempts == {"locked": False, "failures": 2}
    assert RetailLinkSession.objects.get(user=admin_user).stage == "awaiting_code"

    # After an administrator resets the count, the right code gets in and the count starts again.
    assert services.reset_wrong_codes() == 1
    assert services.authenticate(admin_user, sandbox_state(sandbox)["last_code"]).is_authenticated
    assert RetailLinkAccount.objects.get().wrong_codes == 0


def two_users_one_try_left(sandbox, django_user_model):
    """Two users in the same pending login, after one wrong code: (ana, ben, a wrong code)."""
    first, second = (django_user_model.objects.create_user(name) for name in ("ana", "ben"))
    services.request_mfa(first)
    services.request_mfa(second)  # joins the same login
    wrong = wrong_code(sandbox)
    with pytest.raises(LoginRefused, match="1 try left"):
        services.authenticate(first, wrong)
    return first, second, wrong


@pytest.mark.django_db(transaction=True)
def test_two_wrong_codes_at_once_with_one_try_left_send_one_guess_upstream(sandbox, django_user_model):
    first, second, wrong = two_users_one_try_left(sandbox, django_user_model)

    outcomes = in_parallel([lambda: services.authenticate(first, wrong), lambda: services.authenticate(second, wrong)])
    # One guess went to Retail Link (and was wrong); the other was refused here, never sent.
    assert sorted(type(o).__name__ for o in outcomes) == ["CodeTriesExhausted", "LoginRefused"], outcomes
    assert "No tries left" in str(next(o for o in outcomes if type(o) is LoginRefused))
    assert sandbox_state(sandbox)["accounts"]["demo.user@example.com"] == {"locked": False, "failures": 2}
    assert RetailLinkAccount.objects.get().wrong_codes == 2


@pytest.mark.django_db
def test_a_code_entry_waiting_past_its_budget_is_503_account_busy(api_client, admin_user, sandbox, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from walmart import conf

    api_client.force_authenticate(admin_user)
    assert api_client.post("/api/walmart/auth/request-mfa").status_code == 200
    # Another user's code is being checked upstream (the account's claim is held) for longer than this call may wait.
    RetailLinkAccount.objects.update(claimed_until=timezone.now() + timedelta(minutes=1))
    monkeypatch.setattr(conf, "SYNC_BUDGET_SECONDS", 2)
    reply = api_client.post("/api/walmart/auth/authenticate", {"mfa_code": sandbox_state(sandbox)["last_code"]},
                            format="json")
    assert reply.status_code == 503 and reply.json()["error"] == "account_busy"
    assert reply["Retry-After"]
    assert sandbox_state(sandbox)["accounts"]["demo.user@example.com"]["failures"] == 0  # nothing was sent
    assert RetailLinkSession.objects.get(user=admin_user).stage == "awaiting_code"  # the code can be entered again


@pytest.mark.django_db
def test_the_api_says_how_many_tries_are_left_and_refuses_the_last(api_client, admin_user, sandbox):
    api_client.force_authenticate(admin_user)
    assert api_client.post("/api/walmart/auth/request-mfa").status_code == 200
    wrong = wrong_code(sandbox)
    replies = [api_client.post("/api/walmart/auth/authenticate", {"mfa_code": wrong}, format="json") for _ in range(3)]
    assert [r.status_code for r in replies] == [401, 401, 403]
    assert "1 try left" in replies[0].json()["message"]
    assert replies[2].json()["error"] == "tries_exhausted"
    assert sandbox_state(sandbox)["accounts"]["demo.user@example.com"]["locked"] is False


@pytest.mark.django_db
def test_logout_is_never_throttled(api_client, admin_user, settings):
    api_client.force_authenticate(admin_user)
    replies = [api_client.post("/api/walmart/auth/logout").status_code for _ in range(15)]
    assert set(replies) == {200}
    # The login endpoints still are (10/min by default).
    assert 429 in [api_client.post("/api/walmart/auth/authenticate", {"mfa_code": "12"}, format="json").status_code
                   for _ in range(12)]


@pytest.mark.django_db
def test_an_administrator_resets_the_wrong_code_count_in_the_admin(admin_client):
    account = RetailLinkAccount.objects.create(account_key="x", wrong_codes=2)
    reply = admin_client.post("/admin/walmart/retaillinkaccount/", {"action": "reset_wrong_codes", "_selected_action": [account.pk]})
    assert reply.status_code == 302
    account.refresh_from_db()
    assert account.wrong_codes == 0


@pytest.mark.django_db
def test_health_says_when_the_portal_takes_no_more_codes_until_a_reset(admin_client):
    def walmart_health():
        return admin_client.get("/health/").json()["integrations"]["walmart"]

    assert walmart_health()["figures"]["retaillink_code_tries_left"] == 2
    assert admin_client.get("/api/walmart/health").json()["mfa_code_tries_left"] == 2
    account = services.shared_account()
    RetailLinkAccount.objects.filter(pk=account.pk).update(wrong_codes=2)  # two wrong codes were entered
    health = walmart_health()
    assert health["figures"]["retaillink_code_tries_left"] == 0
    assert health["status"] == "warning" and "takes no more Retail Link MFA codes" in health["problems"][0]
    seed_health = admin_client.get("/api/walmart/health").json()
    assert (seed_health["status"], seed_health["mfa_code_tries_left"]) == ("degraded", 0)
    admin_client.post("/admin/walmart/retaillinkaccount/", {"action": "reset_wrong_codes",
                                                              "_selected_action": [account.pk]})
    health = walmart_health()
    assert health["figures"]["retaillink_code_tries_left"] == 2 and "problems" not in health


def finishing_first_when_claiming(monkeypatch, other_call):
    """Hook around the real account claim: the first time a caller goes to take
    it, `other_call` (another user's whole request or entry) runs to its end in
    its own thread first, so it finishes and releases the account between this
    caller's read of the row and this caller's claim."""
    from walmart.services import login

    real_claim, hooked = login._claim, []

    def claim(account):
        if not hooked:
            hooked.append(True)
            assert in_parallel([other_call]) == [None]
        return real_claim(account)

    monkeypatch.setattr(login, "_claim", claim)
    return hooked


@pytest.mark.django_db(transaction=True)
def test_a_code_entry_whose_last_try_is_used_up_just_before_its_claim_is_not_sent(
        sandbox, django_user_model, monkeypatch):
    first, second, wrong = two_users_one_try_left(sandbox, django_user_model)
    other_outcome = []

    def first_guesses_again():
        try:
            services.authenticate(first, wrong)
        except LoginRefused as exc:
            other_outcome.append(exc)

    hooked = finishing_first_when_claiming(monkeypatch, first_guesses_again)
    with pytest.raises(services.CodeTriesExhausted):
        services.authenticate(second, wrong)
    assert hooked and "No tries left" in str(other_outcome[0])
    # One guess (ana's) went upstream with the last try; ben's was refused here: the account is not locked.
    assert sandbox_state(sandbox)["accounts"]["demo.user@example.com"] == {"locked": False, "failures": 2}
    assert RetailLinkAccount.objects.get().wrong_codes == 2


@pytest.mark.django_db(transaction=True)
def test_a_code_request_whose_sms_was_sent_just_before_its_claim_joins_it(sandbox, django_user_model, monkeypatch):
    first, second = (django_user_model.objects.create_user(name) for name in ("ana", "ben"))
    hooked = finishing_first_when_claiming(monkeypatch, lambda: services.request_mfa(first))
    services.request_mfa(second)
    state = sandbox_state(sandbox)
    assert hooked and state["sms_sent"] == 1 and state["pending_logins"] == 1
    # Both joined the one login: the one code lets both in.
    assert services.authenticate(first, state["last_code"]).is_authenticated
    assert services.authenticate(second, state["last_code"]).is_authenticated
