"""The Retail Link login: request the SMS code, enter it, log out.

One Retail Link account serves every portal user (RetailLinkAccount): code
requests and code entries are serialised per account (one claim on its row),
and wrong codes are counted locally so the portal refuses before Retail
Link's lockout: with one try left, only one guess can be on its way upstream.
"""

import hashlib
import time
from contextlib import contextmanager
from datetime import timedelta

from django.db.models import F, Q

from portal.http import budget_left, time_budget
from portal.runs import OperationFailed

from .. import clock, conf, sessions, validation
from ..client import LoginRefused, request_code, submit_code
from ..models import RetailLinkAccount

CONFIGURATION_MISSING = (
    "Configuration missing: set WALMART_EDR_USERNAME, WALMART_EDR_PASSWORD and WALMART_EDR_MFA_CREDENTIAL_ID "
    "or fill in the Retail Link settings in the admin."
)
# How long one code request or code entry may hold the account (a browser step takes seconds).
CLAIM_SECONDS = 60
# How long a caller waits for the account (another request's SMS, another code's check), within its time budget.
CLAIM_WAIT_SECONDS = 20
REQUEST_IN_PROGRESS = "Another code request for the shared Retail Link account is still running; try again in a minute."
CODE_BEING_CHECKED = "Another code for the shared Retail Link account is still being checked; try again in a moment."


class CodeTriesExhausted(OperationFailed):
    """The next wrong code would lock the shared account: the portal refuses it."""


class MalformedCode(OperationFailed):
    """Not 6 digits: refused before Retail Link sees it (no try burnt)."""


class AccountBusy(OperationFailed):
    """Another code request holds the shared account longer than this caller can
    wait: worth trying again shortly (503 with Retry-After for API callers)."""


def _digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def shared_account(credentials=None):
    credentials = credentials or conf.credentials()
    account, _ = RetailLinkAccount.objects.get_or_create(account_key=_digest(credentials.username or ""))
    return account


def tries_left(account):
    """Code tries the portal still allows: it keeps the one that would lock the account."""
    return max(0, conf.MFA_LOCKOUT_AFTER - 1 - account.wrong_codes)


def _claim(account):
    """Take the account's claim (a conditional UPDATE: atomic on every backend);
    its expiry, which is also the token that releases it, or None when held."""
    now = clock.now()
    until = now + timedelta(seconds=CLAIM_SECONDS)
    taken = RetailLinkAccount.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now), pk=account.pk
    ).update(claimed_until=until)
    return until if taken else None


@contextmanager
def _holding(account, busy_message, *, unless=None):
    """Hold the account's claim for the block: wait for it as long as the time
    budget allows (CLAIM_WAIT_SECONDS at most), then AccountBusy. Yields True
    once held; False, without the claim, as soon as `unless(account)` (checked
    on the fresh row while waiting, and again once the claim is won) says the
    wait is not needed any more. Inside the block `account` is the row as read
    after the claim was taken."""
    deadline = time.monotonic() + min(CLAIM_WAIT_SECONDS, max(0.0, budget_left() - 1))
    while True:
        account.refresh_from_db()
        if unless is not None and unless(account):
            yield False
            return
        until = _claim(account)
        if until is not None:
            break
        if time.monotonic() > deadline:
            raise AccountBusy(busy_message)
        time.sleep(0.2)
    try:
        # The row above was read before the claim: the previous holder may have finished in
        # between (its wrong code counted, its SMS sent). Decide on the row as it is now.
        account.refresh_from_db()
        if unless is not None and unless(account):
            yield False
            return
        yield True
    finally:
        # Only our own claim: past its expiry another caller may hold a new one.
        RetailLinkAccount.objects.filter(pk=account.pk, claimed_until=until).update(claimed_until=None)


def request_mfa(user):
    """Start a login for `user`: sign in in a browser and have the SMS sent.

    A request while the shared account's code is still pending (or being
    requested by someone else) joins that login: no second SMS. Side effects:
    at most one SMS from Retail Link; replaces the user's session row.
    Ends within the synchronous time budget (SYNC_BUDGET_SECONDS), browser
    steps and the wait for another request included; BudgetExhausted past it.
    Raises OperationFailed (configuration, busy) or an UpstreamError (refusal)."""
    with time_budget(conf.SYNC_BUDGET_SECONDS):
        return _request_mfa(user)


def _request_mfa(user):
    credentials = conf.credentials()
    if not credentials.complete:
        raise OperationFailed(CONFIGURATION_MISSING)
    account = shared_account(credentials)
    # A pending code (the other request's SMS, once sent) is joined instead of waited for.
    with _holding(account, REQUEST_IN_PROGRESS, unless=lambda fresh: fresh.code_pending()) as held:
        if not held:
            return sessions.start_session(user, account.pending_state)
        browser_state = request_code(credentials)
        now = clock.now()
        account.pending_state, account.code_sent_at = browser_state, now
        account.code_expires_at = now + timedelta(seconds=conf.MFA_CODE_TTL_SECONDS)
        account.accepted_code = account.accepted_state = account.accepted_bearer = ""
        account.save(update_fields=["pending_state", "code_sent_at", "code_expires_at", "accepted_code",
                                    "accepted_state", "accepted_bearer"])
    return sessions.start_session(user, browser_state)


def _wrong_code(account, refusal):
    RetailLinkAccount.objects.filter(pk=account.pk).update(wrong_codes=F("wrong_codes") + 1)
    account.refresh_from_db()
    left = tries_left(account)
    if left:
        message = f"{refusal} {left} {'try' if left == 1 else 'tries'} left before the portal stops taking codes."
    else:
        message = (f"{refusal} No tries left: one more wrong code would lock the shared Retail Link account, "
                   "so the portal takes no more codes until an administrator resets the count.")
    return LoginRefused("invalid_code", message, status=refusal.status)


def authenticate(user, mfa_code):
    """Finish the user's login with the SMS code; the session becomes usable.

    A wrong code leaves the half-finished login in place for another try and is
    counted; the guess that would reach Retail Link's lockout is refused here.
    Code entries are serialised per account, and the tries left are read again
    once this entry holds the account: two users guessing at the same moment
    with one try left send one guess upstream, the other is refused here.
    Ends within the synchronous time budget (SYNC_BUDGET_SECONDS); past it,
    BudgetExhausted, and the code is not counted as wrong."""
    with time_budget(conf.SYNC_BUDGET_SECONDS):
        return _authenticate(user, mfa_code)


def _authenticate(user, mfa_code):
    session = sessions.require_session(user)
    if session.is_authenticated:
        return session
    # Every path (form, API, command) ends here: a malformed code never reaches Retail Link to burn a try.
    try:
        code = validation.mfa_code(mfa_code)
    except ValueError as exc:
        raise MalformedCode(str(exc)) from exc
    account = shared_account()
    _refuse_without_tries(account)  # at once, before waiting for the account
    # While waiting, another entry's wrong code may use up the last try: refused at once then too.
    with _holding(account, CODE_BEING_CHECKED, unless=lambda fresh: not tries_left(fresh)) as held:
        if not held:
            _refuse_without_tries(account)
        return _enter_code(user, account, code)


def _refuse_without_tries(account):
    if not tries_left(account):
        raise CodeTriesExhausted(
            f"{account.wrong_codes} wrong codes in a row: one more would lock the shared Retail Link account for "
            "every user, so the portal does not send it. An administrator can reset the count "
            "(Retail Link accounts in the admin) once the right code is at hand.")


def _enter_code(user, account, code):
    """The code entry itself, read on fresh rows while this caller holds the account."""
    session = sessions.require_session(user)
    if session.is_authenticated:
        return session
    joined = account.pending_state and account.pending_state == session.browser_state
    if joined and account.accepted_code:
        # Someone else finished this login: the same code lets this user in too.
        if _digest(code) == account.accepted_code:
            return sessions.mark_authenticated(session, account.accepted_state, account.accepted_bearer,
                                               account.accepted_user_agent)
        raise LoginRefused("invalid_code", "That is not the code that was accepted for this login; check the SMS.")
    _refuse_without_tries(account)
    try:
        result = submit_code(session.browser_state, conf.credentials(), code)
    except LoginRefused as exc:
        if exc.reason == "invalid_code":
            raise _wrong_code(account, exc) from exc
        if exc.reason == "locked":
            RetailLinkAccount.objects.filter(pk=account.pk).update(wrong_codes=conf.MFA_LOCKOUT_AFTER)
        raise
    RetailLinkAccount.objects.filter(pk=account.pk).update(wrong_codes=0)
    if joined:
        account.accepted_code = _digest(code)
        account.accepted_state, account.accepted_bearer = result.storage_state, result.bearer
        account.accepted_user_agent = result.user_agent
        account.save(update_fields=["accepted_code", "accepted_state", "accepted_bearer", "accepted_user_agent"])
    return sessions.mark_authenticated(session, result.storage_state, result.bearer, result.user_agent)


def code_tries_left():
    """Code tries the portal still allows on the configured account (health);
    a read only: no account row is made for it."""
    account = RetailLinkAccount.objects.filter(account_key=_digest(conf.credentials().username or "")).first()
    return tries_left(account) if account else max(0, conf.MFA_LOCKOUT_AFTER - 1)


def codes_refused_problem():
    """In words, for health, when the portal takes no more codes (nobody can log in)."""
    if code_tries_left():
        return None
    return ("The portal takes no more Retail Link MFA codes: one more wrong code would lock the shared account. "
            "An administrator resets the wrong-code count (Retail Link accounts in the admin) once the account "
            "is known not to be locked.")


def reset_wrong_codes():
    """Let the portal take codes again (after staff checked the account is not locked)."""
    return RetailLinkAccount.objects.update(wrong_codes=0)


def logout(user):
    return sessions.end_session(user)
