"""Per-user Retail Link sessions, stored encrypted in the database.

One row per portal user (the seed kept them in one process's memory). Every
operation slides the 10-minute inactivity timeout; a row past its expiry is as
good as gone (the beat task `walmart.clear_expired_sessions` deletes it). A user
only ever reads their own row.
"""

from datetime import timedelta

from django.db import transaction

from portal.runs import OperationFailed

from . import clock, conf
from .models import RetailLinkSession

NO_SESSION = "No active Retail Link session; request an MFA code first."
NOT_AUTHENTICATED = "The Retail Link session is not authenticated yet; enter the MFA code that was sent by SMS."


class NoSession(OperationFailed):
    pass


class NotAuthenticated(OperationFailed):
    pass


def live_session(user):
    """The user's unexpired session, or None."""
    if not getattr(user, "pk", None):
        return None
    return RetailLinkSession.objects.live().filter(user=user).first()


def require_session(user):
    session = live_session(user)
    if session is None:
        raise NoSession(NO_SESSION)
    session.touch(conf.SESSION_TIMEOUT_SECONDS)
    return session


def require_authenticated(user):
    session = require_session(user)
    if not session.is_authenticated:
        raise NotAuthenticated(NOT_AUTHENTICATED)
    return session


def start_session(user, browser_state):
    now = clock.now()
    session, _ = RetailLinkSession.objects.update_or_create(
        user=user,
        defaults={
            "stage": RetailLinkSession.Stage.AWAITING_CODE,
            "browser_state": browser_state,
            "bearer": "",
            "created_at": now,
            "authenticated_at": None,
            "last_activity": now,
            "expires_at": now + timedelta(seconds=conf.SESSION_TIMEOUT_SECONDS),
        },
    )
    return session


def mark_authenticated(session, browser_state, bearer, user_agent=""):
    """`user_agent` is the browser's that logged in: the EMS checks it matches the
    bot-defence cookies, so every data call sends it."""
    session.stage = RetailLinkSession.Stage.AUTHENTICATED
    session.browser_state = browser_state
    session.bearer = bearer
    session.user_agent = user_agent
    session.authenticated_at = clock.now()
    session.save(update_fields=["stage", "browser_state", "bearer", "user_agent", "authenticated_at"])
    session.touch(conf.SESSION_TIMEOUT_SECONDS)
    return session


def end_session(user, *, bearer=None):
    """Delete the user's session. With `bearer`, only if the session still holds
    that bearer: a 401 for an old token must not end a login made since."""
    with transaction.atomic():
        rows = RetailLinkSession.objects.select_for_update().filter(user=user)
        if bearer is not None:
            session = rows.first()
            if session is None or session.bearer != bearer:
                return False
            rows = rows.filter(pk=session.pk)
        deleted, _ = rows.delete()
    return bool(deleted)


def session_info(session):
    """The seed's `session_info` fields; never a secret."""
    return {
        "user_id": str(session.user_id),
        "created_at": session.created_at.isoformat(),
        "last_activity": session.last_activity.isoformat(),
        "expires_at": session.expires_at.isoformat(),
        "time_remaining_seconds": session.time_remaining(),
        "is_authenticated": session.is_authenticated,
    }
