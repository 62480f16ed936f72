"""Session refreshes: one, all, and the periodic cycle."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal.http import BudgetExhausted, UpstreamAuthError, UpstreamError, UpstreamTransientError, budget_left
from portal.runs import OperationFailed, OperationSkipped, RunLost, SoftTimeLimitExceeded, describe_error, hold_lock, operation
from portal.setaside import resolve_items

from ..client import CheckinPageClient
from ..models import CheckinSession, CheckinSettings, CheckoutUser, SessionRefresh, cookie_fingerprint
from .common import CHECKIN_TITLE, FAIL, LOGIN_TITLE, MESSAGES, NORMAL, _rng, checkout_client, eligible_sessions

logger = logging.getLogger(__name__)

# --- refresh -------------------------------------------------------------------------
def _session_lock(session, run, ttl=300):
    """One refresh of a session at a time (the page rotates the cookie: a second
    concurrent load with the old cookie would see the log-in page)."""
    return hold_lock(
        f"checkin.session:{session.pk}", run.record, ttl=ttl,
        busy_message=f"{session.user.email} is being refreshed by another run.",
    )


def _check_page(page_client, email, cookie):
    """Load the page with the cookie: (result, message, rotated cookie or None,
    the page's upstream error or None)."""
    try:
        page = page_client.load(cookie)
    except UpstreamError as exc:
        return FAIL, f"Session refresh fail - {exc}"[:500], None, exc
    if page.title == LOGIN_TITLE:
        return FAIL, MESSAGES["expired"], None, None
    if page.title != CHECKIN_TITLE:
        return FAIL, f"Parser title fail - Unexpected page title: {page.title}"[:500], None, None
    if not page.shown_email:
        return FAIL, MESSAGES["no_email"], None, None
    if page.shown_email.strip().lower() != email.lower():
        # The page rotated the cookie of a different account: do not keep or push it.
        return FAIL, MESSAGES["mismatch"], None, None
    if not page.new_cookie:
        return FAIL, MESSAGES["no_cookie"], None, None
    return NORMAL, MESSAGES["success"], page.new_cookie, None


def _refresh_one(run, session, page_client, checkout):
    """Refresh one session and record the attempt. Returns (SessionRefresh, CheckOut error or None).

    The rotated cookie is saved before CheckOut is told: the old one is dead once
    the page answered, so losing the new one would lose the session.
    """
    email = session.user.email
    old_cookie = session.cookie
    result, message, new_cookie, page_error = _check_page(page_client, email, old_cookie)
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
    refresh.page_error = page_error  # not stored: tells a refresh not done (page down) from a Fail
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


def upstream_failure(refresh, checkout_error):
    """The transient upstream failure (the page or CheckOut did not answer, 5xx,
    429, out of time) that kept this refresh from going through; None when it
    went through or ended Fail for a reason of its own (an expired cookie...)."""
    for cause in (checkout_error, getattr(refresh, "page_error", None)):
        if isinstance(cause, UpstreamTransientError):
            return cause
    return None


def _not_refreshed(message, cause):
    """The transient error a run ends with when an upstream kept the refresh from happening."""
    return UpstreamTransientError(message, upstream=cause.upstream, status=cause.status,
                                  retry_after=getattr(cause, "retry_after", None))


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
    down = upstream_failure(refresh, checkout_error)
    if down is not None:
        # Not refreshed at all (the page is down): a caller waiting on it hears so (503), not "Fail".
        raise _not_refreshed(f"{email}: {refresh.message}", down) from down
    if refresh.result == FAIL:
        raise OperationFailed(f"{email}: {refresh.message}")
    resolve_items(run.record, "checkin", "session", [session.user.email])
    return {"email": session.user.email, "result": refresh.result}


# Time one session's refresh may need (page, update, log) before a time budget ends.
REFRESH_RESERVE_SECONDS = 8


def _refresh_many(run, sessions, on_done=None):
    """Refresh each session in turn. One that fails (the page, CheckOut, or an
    error of ours) is set aside and the others go on: the run ends `partial`,
    or `failed` when none went through. CheckOut refusing our key stops it.
    When none went through and every failure was an upstream that is down
    (timeouts, 5xx, 429), that error ends the run: its caller answers 503."""
    page_client, checkout = CheckinPageClient(), checkout_client()
    run.set_total(len(sessions))
    went_through = []
    failures, down = 0, []
    try:
        for index, session in enumerate(sessions):
            left = budget_left()
            if left is not None and left < REFRESH_RESERVE_SECONDS:
                # A caller waiting on us (an endpoint CheckOut calls) is out of time: stop
                # before a page load that could rotate a cookie we would not get to keep,
                # and hand the rest to the beat's next tick (every minute): none is dropped.
                unreached = [s.pk for s in sessions[index:]]
                CheckinSession.objects.filter(pk__in=unreached).update(next_refresh_at=timezone.now())
                raise BudgetExhausted(f"Out of time after {index} of {len(sessions)} sessions; the other "
                                      f"{len(unreached)} are refreshed at the next refresh tick (within a minute).",
                                      upstream="checkin")
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
                failures += 1
                run.advance()
                continue
            if isinstance(error, UpstreamAuthError):
                run.advance()
                raise error  # CheckOut refuses our key: every other user would fail the same way
            problem = refresh_problem(refresh, error)
            if problem:
                _set_session_aside(run, session, problem)
                failures += 1
                cause = upstream_failure(refresh, error)
                if cause is not None:
                    down.append(cause)
            else:
                run.ok()
                went_through.append(session.user.email)
            run.advance()
        if failures and not went_through and len(down) == failures:
            raise _not_refreshed(f"None of {failures} sessions was refreshed: an upstream is not answering "
                                 f"(the last: {down[-1]}).", down[-1]) from down[-1]
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
