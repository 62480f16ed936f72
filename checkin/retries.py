"""How a set-aside check-in record is retried (registered in CheckinConfig.ready):
the same service path as the sync took for that one item."""

import logging

from django.utils import timezone

from portal.http import UpstreamAuthError

from .client import CheckinPageClient, CheckoutUserRecord
from .services import (
    _refresh_one,
    _session_lock,
    _set_session_aside,
    _upsert_user,
    checkout_client,
    find_session,
    refresh_problem,
    user_key,
)

logger = logging.getLogger(__name__)


def retry_user(run, record):
    """Retry one set-aside user: read CheckOut's list again and store that user
    through the same upsert as fetch_users. A user no longer listed is done with
    (the next fetch marks them opted out)."""
    requested_at = timezone.now()
    for raw in checkout_client().raw_users():
        if user_key(raw) == record.key:
            _upsert_user(run, CheckoutUserRecord.parse(raw), requested_at)
            run.count("users_stored")
            return
    logger.info("set-aside user %s is no longer in CheckOut's list", record.key)
    run.count("users_no_longer_listed")


def retry_session(run, record):
    """Retry one set-aside session: the same refresh as the cycle's, under the
    same per-session lock. A session that still fails is set aside again (not
    raised: the retry runs in a transaction, and the rotated cookie the page
    handed out must be kept even when CheckOut then refuses it)."""
    session = find_session(record.key)
    if session is None:
        logger.info("set-aside session of %s is gone (opted out, or no cookie)", record.key)
        run.count("sessions_gone")
        return
    with _session_lock(session, run):
        refresh, checkout_error = _refresh_one(run, session, CheckinPageClient(), checkout_client())
    if isinstance(checkout_error, UpstreamAuthError):
        raise checkout_error
    problem = refresh_problem(refresh, checkout_error)
    if problem:
        _set_session_aside(run, session, problem)
    else:
        run.count("sessions_refreshed")
