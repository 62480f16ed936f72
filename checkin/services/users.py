"""The user list from CheckOut: fetched, upserted by e-mail, due again by the row."""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from portal.http import UpstreamError
from portal.runs import operation
from portal.setaside import resolve_items

from .. import conf
from ..client import CheckoutUserRecord
from ..models import CheckinSession, CheckinSettings, CheckoutUser, cookie_fingerprint
from .common import checkout_client

logger = logging.getLogger(__name__)


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


def fetch_at_start(**_signal):
    """The scheduler (re)started: its first tick fetches the user list, as the
    original service fetched at start, instead of waiting for a due time planned
    before the restart. Connected to Celery's beat_init."""
    CheckinSettings.objects.filter(pk=1).update(next_fetch_at=None)


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
