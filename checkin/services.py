"""Check-in operations: one function each, called by the admin, the API, the
Celery tasks and the management commands (or queued for them with enqueue()).

- fetch_users: CheckOut's opted-in users → CheckoutUser + CheckinSession rows.
- refresh_session(email) / refresh_sessions: load the York page with the cookie,
  verify it, keep the rotated cookie, then `update` and `log` on CheckOut.
- refresh_due_sessions (beat, every minute): plans a cycle when one is due
  (users shuffled, spread with random gaps, the next cycle 1–5 h later, like the
  original scheduler) and refreshes the sessions whose due time has come.
"""

import logging
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal.http import BudgetExhausted, UpstreamAuthError, UpstreamError, budget_left
from portal.runs import OperationFailed, OperationSkipped, RunLost, SoftTimeLimitExceeded, describe_error, hold_lock, operation
from portal.setaside import resolve_items

from . import conf
from .client import CheckinPageClient, CheckoutClient, CheckoutUserRecord
from .models import CheckinSession, CheckinSettings, CheckoutUser, SessionRefresh, cookie_fingerprint

logger = logging.getLogger(__name__)

NORMAL = CheckinSession.Result.NORMAL
FAIL = CheckinSession.Result.FAIL
CHECKIN_TITLE = "Check-In"
LOGIN_TITLE = "Please log in to continue..."
# The original service's words in CheckOut's log, so its UI reads the same.
MESSAGES = {
    "success": "Session refresh success",
    "expired": "Session refresh fail - Session expired",
    "no_cookie": "Session refresh fail - No new session token",
    "no_email": "Session refresh fail - Could not find user email",
    "mismatch": "Email mismatch - Checkout user email does not match Checkin account",
    "not_stored": "Session refresh fail - Token updated but user record not found",
}

_rng = random.SystemRandom()


def checkout_api_key():
    return CheckinSettings.load().checkout_api_key or conf.checkout_api_key_from_env()


def checkout_client():
    return CheckoutClient(checkout_api_key())


def eligible_sessions():
    """Sessions the refresh cycle looks after: opted-in users with a cookie."""
    return CheckinSession.objects.select_related("user").filter(user__opted_in=True).exclude(cookie="")


# --- fetch users ---------------------------------------------------------------------
def user_key(raw):
    """A CheckOut user's natural key: the e-mail; for a record without one, a
    fingerprint of its cookie (stable while the record stays as it is)."""
    email = raw.get("email") if isinstance(raw, dict) else None
    if isinstance(email, str) and email.strip():
        return email.strip().lower()
    token = str(raw.get("checkintoken") or "") if isinstance(raw, dict) else ""
    return f"without-e-mail:{cookie_fingerprint(token)[:16]}" if token else "without-e-mail"


def _has_email(raw):
    return isinstance(raw, dict) and isinstance(raw.get("email"), str) and bool(raw["email"].strip())


def _redacted(raw):
    """The raw user as kept on a set-aside record: never the check-in cookie."""
    if not isinstance(raw, dict):
        return raw
    return {**raw, "checkintoken": "***"} if raw.get("checkintoken") else raw


FETCH_INTERVAL = timedelta(hours=1)


def fetch_is_due(now=None):
    """Whether the beat should fetch the user list now (its due time has come, or
    none is set: the first tick after start)."""
    due = CheckinSettings.load().next_fetch_at
    return due is None or due <= (now or timezone.now())


def _plan_next_fetch(delay):
    CheckinSettings.load()
    CheckinSettings.objects.filter(pk=1).update(next_fetch_at=timezone.now() + delay)


@operation("checkin", "fetch_users", has_work=fetch_is_due)
def fetch_users(run):
    """Fetch CheckOut's opted-in users and upsert them by e-mail. Idempotent.

    Tests the connection first (as the original monitor did) and records the
    outcome for /status. All rows are written in one transaction after the whole
    list arrived, so a failed fetch changes nothing. A user that cannot be taken
    (no e-mail, a row that does not store) is set aside (kind "user") and the
    others are stored: the run ends `partial`. Users no longer listed are marked
    opted out, not deleted (their refresh history stays).
    """
    try:
        result = _fetch_users(run)
    except Exception:
        # CheckOut down (or refusing): try again in a minute, like the original
        # monitor, not at the next hourly fetch. The due time lives in the row.
        _plan_next_fetch(timedelta(seconds=conf.FETCH_RETRY_SECONDS))
        raise
    _plan_next_fetch(FETCH_INTERVAL)
    return result


def _fetch_users(run):
    client = checkout_client()
    try:
        client.test()
    except UpstreamError:
        _record_connection(False)
        raise
    _record_connection(True)
    requested_at = timezone.now()
    raw_users = client.raw_users()
    listed = {}  # e-mail -> raw; an e-mail listed twice counts once (the last wins)
    unusable = {}
    for raw in raw_users:
        (listed if _has_email(raw) else unusable)[user_key(raw)] = raw
    run.set_total(len(listed) + len(unusable))
    went_through = []
    with transaction.atomic():
        for key, raw in unusable.items():
            run.set_aside("user", key, "CheckOut sent a user without an e-mail (it cannot be matched to anyone)",
                          payload=_redacted(raw))
            run.advance()
        for email, raw in listed.items():
            with run.isolate("user", email, payload=_redacted(raw)):
                _upsert_user(run, CheckoutUserRecord.parse(raw), requested_at)
                run.ok()
                went_through.append(email)
            run.advance()
        # Everyone listed stays opted in, even a user set aside this time.
        opted_out = CheckoutUser.objects.filter(opted_in=True).exclude(email__in=list(listed)).update(opted_in=False)
        resolve_items(run.record, "checkin", "user", went_through)
    run.set_counter("opted_out", opted_out)
    logger.info("fetched %s CheckOut users (%s opted out, %s set aside)", len(listed), opted_out, run.set_aside_count)
    return {"users": len(listed), "opted_out": opted_out}


def _record_connection(connected):
    CheckinSettings.load()  # make sure the row exists
    CheckinSettings.objects.filter(pk=1).update(connected=connected, connection_checked_at=timezone.now())


def _upsert_user(run, record, requested_at):
    user, created = CheckoutUser.objects.update_or_create(
        email=record.email,
        defaults={
            "opted_in": True,
            "checkin_report": record.checkin_report,
            "checkin_report_time": record.checkin_report_time,
            "sync": record.sync,
            "last_fetched": requested_at,
        },
    )
    run.count("created" if created else "updated")
    session, _ = CheckinSession.objects.get_or_create(user=user)
    fingerprint = cookie_fingerprint(record.checkintoken)
    if fingerprint == session.upstream_fingerprint:
        return  # CheckOut holds what we know; ours may be newer (rotated, push pending)
    if session.upstream_synced_at and session.upstream_synced_at >= requested_at:
        # A refresh pushed a new cookie after this list was read: the list is stale.
        run.count("cookies_newer_here")
        return
    # CheckOut holds a cookie we did not put there: the user imported a new one.
    session.cookie = record.checkintoken
    session.upstream_fingerprint = fingerprint
    session.upstream_synced_at = requested_at
    session.save(update_fields=["cookie", "upstream_fingerprint", "upstream_synced_at"])
    run.count("cookies_imported")


# --- refresh -------------------------------------------------------------------------
def _session_lock(session, run, ttl=300):
    """One refresh of a session at a time (the page rotates the cookie: a second
    concurrent load with the old cookie would see the log-in page)."""
    return hold_lock(
        f"checkin.session:{session.pk}", run.record, ttl=ttl,
        busy_message=f"{session.user.email} is being refreshed by another run.",
    )


def _check_page(page_client, email, cookie):
    """Load the page with the cookie: (result, message, rotated cookie or None)."""
    try:
        page = page_client.load(cookie)
    except UpstreamError as exc:
        return FAIL, f"Session refresh fail - {exc}"[:500], None
    if page.title == LOGIN_TITLE:
        return FAIL, MESSAGES["expired"], None
    if page.title != CHECKIN_TITLE:
        return FAIL, f"Parser title fail - Unexpected page title: {page.title}"[:500], None
    if not page.shown_email:
        return FAIL, MESSAGES["no_email"], None
    if page.shown_email.strip().lower() != email.lower():
        # The page rotated the cookie of a different account: do not keep or push it.
        return FAIL, MESSAGES["mismatch"], None
    if not page.new_cookie:
        return FAIL, MESSAGES["no_cookie"], None
    return NORMAL, MESSAGES["success"], page.new_cookie


def _refresh_one(run, session, page_client, checkout):
    """Refresh one session and record the attempt. Returns (SessionRefresh, CheckOut error or None).

    The rotated cookie is saved before CheckOut is told: the old one is dead once
    the page answered, so losing the new one would lose the session.
    """
    email = session.user.email
    old_cookie = session.cookie
    result, message, new_cookie = _check_page(page_client, email, old_cookie)
    changed_rows = None
    checkout_error = None
    if new_cookie:
        session.cookie = new_cookie
        session.save(update_fields=["cookie"])
        try:
            changed_rows = checkout.update(email, old_cookie, new_cookie)
        except UpstreamError as exc:
            checkout_error = exc
            result, message = FAIL, f"Session refreshed, but CheckOut did not store the new cookie: {exc}"[:500]
        else:
            if changed_rows:
                session.upstream_fingerprint = cookie_fingerprint(new_cookie)
                session.upstream_synced_at = timezone.now()
                session.save(update_fields=["upstream_fingerprint", "upstream_synced_at"])
            else:
                result, message = FAIL, MESSAGES["not_stored"]
    logged = False
    if checkout_error is None:
        try:
            checkout.log(email, result, message)
            logged = True
        except UpstreamError as exc:
            checkout_error = exc
    now = timezone.now()
    with transaction.atomic():
        refresh = SessionRefresh.objects.create(
            session=session, run=run.record, created=now, result=result, message=message,
            changed_rows=changed_rows, logged_upstream=logged,
        )
        session.last_result, session.last_message, session.last_refreshed_at = result, message, now
        session.save(update_fields=["last_result", "last_message", "last_refreshed_at"])
        CheckoutUser.objects.filter(pk=session.user_id).update(checkin_report=result, checkin_report_time=now)
    run.count("normal" if result == NORMAL else "fail")
    logger.info("refreshed session %s: %s", session.pk, result)
    return refresh, checkout_error


def find_session(email):
    return eligible_sessions().filter(user__email__iexact=email.strip()).first()


def refresh_problem(refresh, checkout_error):
    """Why a refresh did not go through, in words; None when it did."""
    if refresh.result == FAIL:
        return refresh.message  # it names CheckOut's error when the update was refused
    if checkout_error is not None:
        return f"Session refreshed, but CheckOut did not take the log entry: {checkout_error}"[:500]
    return None


def _set_session_aside(run, session, reason):
    run.set_aside("session", session.user.email, reason, context={"email": session.user.email, "session_id": session.pk})


@operation("checkin", "refresh_session", lock=False, target=lambda params: str(params.get("email") or "").strip().lower())
def refresh_session(run, *, email):
    """Refresh one user's session now. Not idempotent upstream by nature (the
    cookie rotates and CheckOut gets a log row); here it adds one history row and
    updates the session in place. A Fail ends the run `failed` with its reason
    and sets the session aside; a refresh that goes through closes its open
    set-aside record."""
    session = find_session(email)
    if session is None:
        raise OperationFailed(f"No check-in session for {email} (not an opted-in user with a cookie).")
    with _session_lock(session, run):
        refresh, checkout_error = _refresh_one(run, session, CheckinPageClient(), checkout_client())
    problem = refresh_problem(refresh, checkout_error)
    if problem and not isinstance(checkout_error, UpstreamAuthError):
        _set_session_aside(run, session, problem)
    if checkout_error is not None:
        raise checkout_error
    if refresh.result == FAIL:
        raise OperationFailed(f"{email}: {refresh.message}")
    resolve_items(run.record, "checkin", "session", [session.user.email])
    return {"email": session.user.email, "result": refresh.result}


# Time one session's refresh may need (page, update, log) before a time budget ends.
REFRESH_RESERVE_SECONDS = 8


def _refresh_many(run, sessions, on_done=None):
    """Refresh each session in turn. One that fails (the page, CheckOut, or an
    error of ours) is set aside and the others go on: the run ends `partial`,
    or `failed` when none went through. CheckOut refusing our key stops it."""
    page_client, checkout = CheckinPageClient(), checkout_client()
    run.set_total(len(sessions))
    went_through = []
    try:
        for index, session in enumerate(sessions):
            left = budget_left()
            if left is not None and left < REFRESH_RESERVE_SECONDS:
                # A caller waiting on us (an endpoint CheckOut calls) is out of time: stop
                # before a page load that could rotate a cookie we would not get to keep.
                raise BudgetExhausted(f"Out of time after {index} of {len(sessions)} sessions; the rest were not "
                                      "refreshed this time.", upstream="checkin")
            if on_done:
                on_done(session)
            try:
                with _session_lock(session, run):
                    refresh, error = _refresh_one(run, session, page_client, checkout)
            except OperationSkipped:
                run.count("busy")
                run.advance()
                continue
            except (SoftTimeLimitExceeded, RunLost):
                raise
            except Exception as exc:  # no savepoint: a rotated cookie already saved must stay saved
                logger.exception("refresh of session %s failed", session.pk)
                _set_session_aside(run, session, describe_error(exc))
                run.advance()
                continue
            if isinstance(error, UpstreamAuthError):
                run.advance()
                raise error  # CheckOut refuses our key: every other user would fail the same way
            problem = refresh_problem(refresh, error)
            if problem:
                _set_session_aside(run, session, problem)
            else:
                run.ok()
                went_through.append(session.user.email)
            run.advance()
    finally:
        resolve_items(run.record, "checkin", "session", went_through)
    return {"refreshed": len(went_through), "set_aside": run.set_aside_count}


@operation("checkin", "refresh_sessions")
def refresh_sessions(run):
    """Refresh every opted-in user's session now, one after another. Each attempt
    adds a history row; users and sessions are updated in place, never duplicated.
    A session that fails is set aside (kind "session") with its reason."""
    return _refresh_many(run, list(eligible_sessions().order_by("user__email")))


# --- the periodic cycle --------------------------------------------------------------
def plan_cycle(run, settings_row, now):
    """Shuffle users and spread their due times with random gaps, so CheckOut and
    the York page never see every user at the same second; the next cycle comes
    a random 1–5 h (settings) after this one's last user."""
    sessions = list(eligible_sessions())
    _rng.shuffle(sessions)
    due = now
    for session in sessions:
        due += timedelta(minutes=_rng.uniform(0, settings_row.max_gap_minutes))
        session.next_refresh_at = due
    CheckinSession.objects.bulk_update(sessions, ["next_refresh_at"])
    low, high = sorted((settings_row.cycle_min_hours, settings_row.cycle_max_hours))
    settings_row.next_cycle_at = due + timedelta(hours=_rng.uniform(low, high))
    CheckinSettings.objects.filter(pk=1).update(next_cycle_at=settings_row.next_cycle_at)
    run.count("planned", len(sessions))
    logger.info("planned a refresh cycle of %s sessions; next cycle at %s", len(sessions), settings_row.next_cycle_at)


def refresh_is_due(now=None):
    """Cheap check the beat tick makes first, so an idle minute writes no run row."""
    now = now or timezone.now()
    next_cycle = CheckinSettings.objects.filter(pk=1).values_list("next_cycle_at", flat=True).first()
    if next_cycle is None or next_cycle <= now:
        return True
    return eligible_sessions().filter(next_refresh_at__lte=now).exists()


@operation("checkin", "refresh_due_sessions", has_work=refresh_is_due)
def refresh_due_sessions(run):
    """Beat tick: plan a cycle when one is due, then refresh the sessions whose due
    time has come. Each due time is claimed with a conditional UPDATE, so a
    session is refreshed once per cycle even if two ticks overlap."""
    now = timezone.now()
    settings_row = CheckinSettings.load()
    if settings_row.next_cycle_at is None or settings_row.next_cycle_at <= now:
        plan_cycle(run, settings_row, now)
    claimed = []
    for session in eligible_sessions().filter(next_refresh_at__lte=now).order_by("next_refresh_at"):
        if CheckinSession.objects.filter(pk=session.pk, next_refresh_at=session.next_refresh_at).update(next_refresh_at=None):
            claimed.append(session)
    if not claimed:
        return {"refreshed": 0}
    pending = {session.pk: session.next_refresh_at for session in claimed}
    try:
        return _refresh_many(run, claimed, on_done=lambda session: pending.pop(session.pk, None))
    finally:
        # A run that stops early (CheckOut refused our key, the worker hit its
        # time limit) hands the sessions it did not reach back to the next tick
        # instead of dropping them until the next cycle.
        for pk, due in pending.items():
            CheckinSession.objects.filter(pk=pk, next_refresh_at__isnull=True).update(next_refresh_at=due)
