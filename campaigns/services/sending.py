"""Sending a campaign through Twilio: approve, send (a background run), cancel.

The outbox is CampaignMessage: approval writes one row per recipient (unique
per campaign and phone, or phone and subject), the run claims due rows
(pending -> claimed under a token naming this execution) before the POST and
marks them after it. Exactly one message per recipient whatever retries,
kills or re-runs happen, because:

- a row is POSTed only by the execution holding its claim, under the campaign's lock;
- a claim left by a dead execution, a timed-out POST and a 5xx all make the row
  `uncertain`: before any second attempt the row's message is looked for (see
  `_find_sent`: a status callback to the row's own URL names it exactly; else the
  account's messages to that number since the first claim, with the row's body,
  that no other row holds), and adopted instead;
- rows to one number are never in flight at once, so what that listing shows
  is never a POST still on its way;
- 429/20429 is certain not to have sent: retried with backoff, no listing needed.

Waits (backoff, quiet hours) are the row's `due_at`, polled by beat's
`send_due_messages`, never a broker countdown. Personal data stays out of logs.
"""

import logging
import random
import uuid
from concurrent.futures import FIRST_COMPLETED, wait
from datetime import timedelta

from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from portal.http import UpstreamAuthError, UpstreamError, UpstreamTransientError
from portal.operations import enqueue
from portal.ratelimit import get_bucket
from portal.runs import OperationFailed, operation

from .. import sms_conf
from ..models import Campaign, CampaignMessage, OptOut, SendState, SmsAccount, StatusCallback
from ..twilio_client import TwilioClient, TwilioRefused
from . import quiet_hours
from .messages import compose

logger = logging.getLogger(__name__)
Status = CampaignMessage.Status

MAX_ATTEMPTS = 8
#: a row due this soon is waited for inside the run; later ones are left to beat
WAIT_IN_RUN_S = 10
#: created this long before our claim still counts as ours (Twilio's dates have whole seconds)
CLOCK_SLACK = timedelta(seconds=5)
OPT_OUT_CODE = 21610
#: a row whose message cannot be told yet looks again this much later
UNDECIDED_WAIT = timedelta(seconds=5)
#: no POST lives longer than this (connect + read timeouts, with room to spare)
IN_FLIGHT_AT_MOST = timedelta(minutes=10)


class NotAllowed(Exception):
    """The user may not do this (no `send_campaign` permission)."""


def account_for(campaign):
    account = campaign.sms_account or SmsAccount.default()
    if account is None:
        raise OperationFailed("No SMS account is configured (Campaigns › SMS accounts).")
    return account


def status_callback_url():
    return f"{sms_conf.public_url()}/api/campaigns/twilio/status/"


def callback_for(base, row):
    """The row's own StatusCallback URL: its callbacks name the row (see StatusCallback.outbox)."""
    return f"{base}?outbox={row.pk}" if base else ""


# --- approval ------------------------------------------------------------------------

def approve_campaign(campaign_id, *, user, trigger="admin", queue=True):
    """Write the campaign's outbox from what it would send now and queue the send run.

    Only a user with `campaigns.send_campaign`. Idempotent: approving again adds
    only recipients not yet in the outbox (never a second row for anyone) and
    returns the run already queued or running, if any. `queue=False` (the
    command, which then runs the send itself): nothing is queued, returns None.
    """
    if not (user and user.is_active and user.is_staff and user.has_perm("campaigns.send_campaign")):
        raise NotAllowed("Approving a send needs the “Can approve, send and cancel a campaign's SMS” permission.")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        account = account_for(campaign)
        messages, skipped = compose(campaign, account)
        if not messages:
            raise OperationFailed(f"Campaign {campaign.name!r} has nobody to text ({dict(skipped) or 'no subjects'}).")
        now = quiet_hours.now()
        CampaignMessage.objects.bulk_create(
            [CampaignMessage(campaign=campaign, key=m.key, phone=m.phone, body=m.body, subjects=m.subject_uuids,
                             encoding=m.encoding, segments=m.segments, due_at=now) for m in messages],
            ignore_conflicts=True, batch_size=1000,
        )
        campaign.send_state = SendState.SENDING
        campaign.approved_by, campaign.approved_at, campaign.skipped = user, now, dict(skipped)
        if campaign.sms_account_id is None:
            campaign.sms_account = account
        campaign.save(update_fields=["send_state", "approved_by", "approved_at", "skipped", "sms_account"])
    logger.info("campaign #%s approved: %s messages", campaign.pk, len(messages))
    if not queue:
        return None
    return enqueue("campaigns", "send_campaign", trigger=trigger, user=user, campaign=campaign.pk)


def cancel_campaign(campaign_id, *, user):
    """Stop a send: every message not yet handed to Twilio is marked cancelled (the
    running send stops at its next batch). Returns how many were cancelled."""
    if not (user and user.is_active and user.has_perm("campaigns.send_campaign")):
        raise NotAllowed("Cancelling a send needs the “Can approve, send and cancel a campaign's SMS” permission.")
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign_id).update(send_state=SendState.CANCELLED)
        cancelled = CampaignMessage.objects.filter(campaign_id=campaign_id, status=Status.PENDING).update(
            status=Status.CANCELLED, claim_token="")
    logger.info("campaign #%s cancelled: %s messages not sent", campaign_id, cancelled)
    return cancelled


# --- the send run -------------------------------------------------------------------

def _backoff(attempts, retry_after=None):
    if retry_after:
        return timedelta(seconds=float(retry_after))
    return timedelta(seconds=min(300.0, 2 ** min(attempts, 8)) * (0.5 + random.random() / 2))


def _claim(campaign, token, size):
    """Claim up to `size` due rows, at most one per number, none to a number in flight."""
    now = quiet_hours.now()
    with transaction.atomic():
        busy = set(_in_flight(CampaignMessage.objects.all(), now).values_list("phone", flat=True))
        due = CampaignMessage.objects.filter(campaign=campaign, status=Status.PENDING, due_at__lte=now).order_by("due_at", "pk")
        ids = []
        for pk, phone in due.values_list("pk", "phone")[:size * 4]:
            if phone not in busy and len(ids) < size:
                busy.add(phone)
                ids.append(pk)
        if ids:
            CampaignMessage.objects.filter(pk__in=ids, status=Status.PENDING).update(status=Status.CLAIMED, claim_token=token, claimed_at=now)
            CampaignMessage.objects.filter(pk__in=ids, first_claimed_at__isnull=True).update(first_claimed_at=now)
    return list(CampaignMessage.objects.filter(claim_token=token, status=Status.CLAIMED, pk__in=ids))


def _in_flight(rows, now):
    """Rows claimed for a POST that may still be on its way (an older claim is a dead
    execution's, released when its campaign sends again)."""
    return rows.filter(status=Status.CLAIMED, claimed_at__gte=now - IN_FLIGHT_AT_MOST)


def _mark(row, token, **fields):
    """Only the claim's holder marks the row (a takeover's new token wins)."""
    return CampaignMessage.objects.filter(pk=row.pk, claim_token=token, status=Status.CLAIMED).update(**fields)


def _release_dead_claims(campaign):
    """Claims of an earlier execution (we hold the campaign's lock, so it is dead):
    the POST may have gone out, so the row is checked upstream before any retry."""
    return CampaignMessage.objects.filter(campaign=campaign, status=Status.CLAIMED).update(
        status=Status.PENDING, claim_token="", uncertain=True)


class Undecided(Exception):
    """The row's message cannot be told yet (another row to that number is in flight)."""


def _find_sent(client, row):
    """The message an earlier attempt of this row left at Twilio, or None if it left none.

    Twilio has no idempotency key, and its Message resource does not show the
    StatusCallback it was given. Two ways, exact first:
    - a callback came to the row's own URL: it names the message (its sid);
    - else the account's messages to the number since the first claim, with the
      row's body, less every message another row holds or a callback names for
      another row. Two rows with the same text to one number can both be in doubt
      (both replies lost): each made at most one message (none is sent again
      before this check), so the free messages, oldest first, go to the rows in
      doubt in outbox order and a row left without one has none: the number gets
      exactly as many texts as it has rows. A row to that number still in flight
      elsewhere (its message may or may not be there yet) leaves it Undecided.
    """
    named = StatusCallback.objects.filter(outbox=row.pk).values_list("sid", flat=True).first()
    if named:
        return client.get_message(named)
    in_doubt = CampaignMessage.objects.filter(phone=row.phone, body=row.body, sid="").filter(
        Q(uncertain=True) | Q(status=Status.CLAIMED)).exclude(pk=row.pk)
    if _in_flight(in_doubt, quiet_hours.now()).exists():
        raise Undecided()
    doubtful = [row, *in_doubt]
    since = min(r.first_claimed_at or r.claimed_at or quiet_hours.now() for r in doubtful) - CLOCK_SLACK
    candidates = [m for m in client.messages_to(row.phone, since=since) if m.body == row.body]
    if not candidates:
        return None
    sids = [m.sid for m in candidates]
    taken = set(CampaignMessage.objects.filter(sid__in=sids).exclude(pk=row.pk).values_list("sid", flat=True))
    taken |= set(StatusCallback.objects.filter(sid__in=sids, outbox__isnull=False).exclude(outbox=row.pk)
                 .values_list("sid", flat=True))
    free = sorted((m for m in candidates if m.sid not in taken),
                  key=lambda m: (m.date_created or quiet_hours.now(), m.sid))
    # rows named by a callback have their message already (it is in `taken`)
    named_rows = set(StatusCallback.objects.filter(outbox__in=[r.pk for r in doubtful]).values_list("outbox", flat=True))
    order = sorted(r.pk for r in doubtful if r.pk not in named_rows)
    place = order.index(row.pk)
    return free[place] if place < len(free) else None


def _attempt(client, bucket, account, row, callback):
    """In a pool thread: HTTP only. Returns (outcome, message or error)."""
    try:
        if row.uncertain:
            found = _find_sent(client, row)
            if found is not None:
                return "found", found
        sender = account.sender_for(row.phone)
        if sender is None:
            return "no_sender", None
        bucket.acquire()
        return "sent", client.create_message(to=row.phone, body=row.body, sender=sender,
                                             status_callback=callback_for(callback, row),
                                             validity_period=account.validity_period)
    except Undecided:
        return "undecided", None
    except UpstreamError as exc:
        return "error", exc


def _record(run, row, token, outcome, result):
    now = quiet_hours.now()
    if outcome in ("sent", "found"):
        status = result.status if result.status in CampaignMessage.RANK else Status.QUEUED
        if _mark(row, token, status=status, sid=result.sid, submitted_at=now, status_updated_at=now, uncertain=False,
                 claim_token="", segments=result.num_segments or row.segments, error_code=None, error_message=""):
            run.ok()
            run.advance()
            apply_stored_callbacks(result.sid)
        run.count("submitted" if outcome == "sent" else "reconciled_without_resending")
        return None
    if outcome == "undecided":
        _mark(row, token, status=Status.PENDING, claim_token="", due_at=now + UNDECIDED_WAIT)
        run.count("reconcile_waited")
        return None
    if outcome == "no_sender":
        _mark(row, token, status=Status.FAILED, error_message="No sender may text this country.", claim_token="")
        run.count("no_sender_for_country")
        return None
    error = result
    if isinstance(error, TwilioRefused):
        if error.code == OPT_OUT_CODE:
            with transaction.atomic():
                _mark(row, token, status=Status.OPTED_OUT, error_code=OPT_OUT_CODE, error_message=str(error.body)[:500], claim_token="")
                record_opt_out(row.phone, source=OptOut.Source.TWILIO, keyword="21610")
            run.count("opted_out")
        else:
            with transaction.atomic():
                if _mark(row, token, status=Status.FAILED, error_code=error.code, error_message=str(error.body)[:500],
                         claim_token=""):
                    # Set aside (no personal data in it): the run ends partial, and staff can
                    # retry once the number or the sender is fixed.
                    run.set_aside("sms_message", f"{row.campaign_id}/{row.pk}",
                                  f"Twilio refused the message (code {error.code}); its text is in the delivery table.",
                                  context={"message": row.pk, "campaign": row.campaign_id})
            run.count("refused")
        run.advance()
        return None
    if isinstance(error, UpstreamAuthError):
        _mark(row, token, status=Status.PENDING, claim_token="", error_message=str(error)[:500])
        return error
    attempts = row.attempts + 1
    # 429 is certain not to have sent; a timeout or a 5xx may have: look before the next try.
    maybe_sent = not (isinstance(error, UpstreamTransientError) and error.status == 429)
    if attempts >= MAX_ATTEMPTS:
        _mark(row, token, status=Status.PENDING if maybe_sent else Status.FAILED, attempts=attempts, uncertain=maybe_sent,
              claim_token="", due_at=now + timedelta(hours=1), error_message=f"Gave up for now: {error}"[:500])
        run.count("gave_up_for_an_hour")
        return None
    _mark(row, token, status=Status.PENDING, claim_token="", attempts=attempts, uncertain=row.uncertain or maybe_sent,
          due_at=now + _backoff(attempts, getattr(error, "retry_after", None)), error_message=str(error)[:500])
    run.count("rate_limited" if error.status == 429 else "retry_later")
    return None


def _hold_for_quiet_hours(run, rows, account, token):
    """Rows whose recipient is outside the window go back with the window's opening as due time."""
    now = quiet_hours.now()
    ready = []
    for row in rows:
        opening = quiet_hours.next_opening(row.phone, now, account.quiet_start, account.quiet_end)
        if opening > now:
            _mark(row, token, status=Status.PENDING, claim_token="", due_at=opening)
            run.count("held_for_quiet_hours")
        else:
            ready.append(row)
    return ready


def _skip_opted_out(run, rows, token):
    blocked = OptOut.blocked_numbers(r.phone for r in rows)
    for row in rows:
        if row.phone in blocked:
            _mark(row, token, status=Status.OPTED_OUT, claim_token="", error_message="On the opt-out list.")
            run.count("opted_out")
    return [r for r in rows if r.phone not in blocked]


def _concurrency(account):
    # enough requests in flight to keep the sender's pace through the API's latency
    return max(1, min(16, int(account.messages_per_second // 4) + 1))


@operation("campaigns", "send_campaign", lock_key=lambda params: str(params.get("campaign", "")))
def send_campaign(run, campaign, max_seconds=3000):
    """Send the campaign's due outbox rows through Twilio (campaign by id).

    Idempotent: exactly one message per row whatever retries, kills or re-runs
    (see the module docstring). Rows due later (quiet hours, backoff) are left
    for beat's send_due_messages. Side effects: POSTs to Twilio.
    """
    row = Campaign.objects.filter(pk=campaign).first()
    if row is None:
        raise OperationFailed(f"No campaign #{campaign}.")
    if row.send_state == SendState.DRAFT:
        raise OperationFailed(f"Campaign {row.name!r} has not been approved for sending.")
    account = account_for(row)
    client = TwilioClient.for_account(account)
    # A burst of 2 absorbs the threads' wake-up jitter (with 1 every late wake-up is a
    # token lost for good) while staying within Twilio's per-second window.
    bucket = get_bucket(f"twilio-{account.pk}", account.messages_per_second, burst=2)
    callback = status_callback_url()
    token = f"{run.record.pk}:{uuid.uuid4().hex[:12]}"
    recovered = _release_dead_claims(row)
    if recovered:
        run.count("claims_recovered", recovered)
    run.set_total(CampaignMessage.objects.filter(campaign=row, status=Status.PENDING).count())
    concurrency = _concurrency(account)
    deadline = timezone.now() + timedelta(seconds=max_seconds)
    auth_error = None
    in_flight = {}
    with run.executor(concurrency) as pool:
        while True:
            run.check()
            stop = auth_error or timezone.now() > deadline or _cancelled(row)
            if not stop and len(in_flight) < concurrency * 2:
                batch = _claim(row, token, concurrency * 2 - len(in_flight))
                batch = _hold_for_quiet_hours(run, _skip_opted_out(run, batch, token), account, token)
                for message in batch:
                    in_flight[pool.submit(_attempt, client, bucket, account, message, callback)] = message
            if not in_flight:
                if stop or not _wait_for_due(row):
                    break
                continue
            done, _ = wait(list(in_flight), timeout=5, return_when=FIRST_COMPLETED)
            # One commit for every reply that came in meanwhile: at tens of messages a
            # second, a commit per row would make the database the bottleneck.
            with transaction.atomic():
                for future in done:
                    message = in_flight.pop(future)
                    outcome, result = future.result()
                    auth_error = _record(run, message, token, outcome, result) or auth_error
    if _cancelled(row):
        cancelled = CampaignMessage.objects.filter(campaign=row, status=Status.PENDING).update(status=Status.CANCELLED)
        run.count("cancelled", cancelled)
    _finish_if_done(row)
    if auth_error:
        raise OperationFailed(f"Twilio refused the account's credentials: {auth_error}")
    return dict(run.record.counters)


def retry_message(run, record):
    """Retry of a message Twilio refused (a set-aside record): sent once more, the send's own way.
    Refused again: set aside again with the new reason."""
    row = CampaignMessage.objects.filter(pk=record.context.get("message")).select_related("campaign").first()
    if row is None:
        raise OperationFailed(f"Message {record.key} no longer exists.")
    if row.status != Status.FAILED or row.sid:
        return  # sent meanwhile (or handed to Twilio and failed in delivery): nothing to resend
    account = account_for(row.campaign)
    token = f"{run.record.pk}:{uuid.uuid4().hex[:12]}"
    if not CampaignMessage.objects.filter(pk=row.pk, status=Status.FAILED, sid="").update(
            status=Status.CLAIMED, claim_token=token, claimed_at=quiet_hours.now()):
        return
    row.refresh_from_db()
    bucket = get_bucket(f"twilio-{account.pk}", account.messages_per_second, burst=2)
    outcome, result = _attempt(TwilioClient.for_account(account), bucket, account, row, status_callback_url())
    error = _record(run, row, token, outcome, result)
    if error:
        raise error


def _cancelled(campaign):
    return Campaign.objects.filter(pk=campaign.pk, send_state=SendState.CANCELLED).exists()


def _wait_for_due(campaign):
    """Sleep until the next row comes due if that is soon; False when nothing is due soon."""
    import time

    nearest = CampaignMessage.objects.filter(campaign=campaign, status=Status.PENDING).aggregate(m=Min("due_at"))["m"]
    if nearest is None:
        return False
    wait_s = (nearest - quiet_hours.now()).total_seconds()
    if wait_s > WAIT_IN_RUN_S:
        return False
    time.sleep(max(0.05, min(wait_s, 1.0)))
    return True


def _finish_if_done(campaign):
    if not CampaignMessage.objects.filter(campaign=campaign, status__in=CampaignMessage.UNSENT).exists():
        Campaign.objects.filter(pk=campaign.pk, send_state=SendState.SENDING).update(send_state=SendState.SENT)


def has_due_messages():
    return CampaignMessage.objects.filter(
        status=Status.PENDING, due_at__lte=quiet_hours.now(), campaign__send_state=SendState.SENDING).exists()


@operation("campaigns", "send_due_messages", lock=False, has_work=has_due_messages)
def send_due_messages(run):
    """Beat's every-minute poll: queue a send run for each campaign with messages now due
    (quiet hours over, backoff elapsed). Idempotent: a campaign whose send is queued
    or running gets no second run."""
    ids = (CampaignMessage.objects.filter(status=Status.PENDING, due_at__lte=quiet_hours.now(),
                                          campaign__send_state=SendState.SENDING)
           .values_list("campaign_id", flat=True).distinct())
    for campaign_id in sorted(set(ids)):
        record = enqueue("campaigns", "send_campaign", trigger="beat", campaign=campaign_id)
        run.count("already_running" if getattr(record, "already_active", False) else "queued")
    return dict(run.record.counters)


# --- callbacks, inbound, opt-outs -------------------------------------------------------

def apply_status(sid, status, error_code=None, outbox=None):
    """Store a verified status callback and apply it. Idempotent and order-proof: a
    status never replaces one later in Twilio's lifecycle. `outbox`: the row named
    by the callback's URL (kept: it tells a lost reply's message exactly)."""
    if status not in CampaignMessage.RANK:
        return 0
    StatusCallback.objects.create(sid=sid, status=status, error_code=error_code, outbox=outbox)
    return apply_stored_callbacks(sid)


def apply_stored_callbacks(sid):
    """Apply the callbacks received for `sid` (some may have arrived before our POST's reply)."""
    applied = 0
    events = list(StatusCallback.objects.filter(sid=sid, applied=False))
    if not events or not CampaignMessage.objects.filter(sid=sid).exists():
        return 0
    for event in events:
        rank = CampaignMessage.RANK[event.status]
        lower = [s for s, r in CampaignMessage.RANK.items() if r < rank]
        fields = {"status": event.status, "status_updated_at": timezone.now()}
        if event.error_code:
            fields.update(error_code=event.error_code, error_message=DELIVERY_ERRORS.get(event.error_code, "Delivery failed"))
        # A conditional UPDATE: two callbacks racing each other can only move it forward.
        applied += CampaignMessage.objects.filter(sid=sid, status__in=lower).update(**fields)
    StatusCallback.objects.filter(pk__in=[e.pk for e in events]).update(applied=True)
    return applied


DELIVERY_ERRORS = {
    30003: "Unreachable destination handset", 30004: "Message blocked", 30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier", 30007: "Message filtered by the carrier", 30008: "Unknown error",
    30036: "Validity period expired",
}

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}


def record_opt_out(phone, *, source, keyword="", user=None, note="", active=True):
    row, created = OptOut.objects.get_or_create(
        phone=phone, defaults={"source": source, "keyword": keyword, "added_by": user, "note": note, "active": active})
    if not created and (row.active != active or row.source != source):
        row.active, row.source, row.keyword = active, source, keyword or row.keyword
        row.added_by = user or row.added_by
        row.note = note or row.note
        row.save()
    return row


def record_inbound(phone, body, opt_out_type=""):
    """An inbound text: STOP-family opts the number out, START-family back in. Returns the keyword type or ""."""
    word = (opt_out_type or "").upper() or body.strip().upper()
    if word in STOP_WORDS or word == "STOP":
        record_opt_out(phone, source=OptOut.Source.INBOUND, keyword=body.strip()[:20], active=True)
        return "STOP"
    if word in START_WORDS or word == "START":
        record_opt_out(phone, source=OptOut.Source.INBOUND, keyword=body.strip()[:20], active=False)
        return "START"
    return ""


def account_by_sid(account_sid):
    return SmsAccount.objects.filter(account_sid=account_sid).first() if account_sid else None


# --- a test message ------------------------------------------------------------------------

@operation("campaigns", "send_test_sms", lock=False, target=lambda params: str(params.get("account", "")))
def send_test_sms(run, account, phone=""):
    """Send one test text from the account to `phone` (default: its test phone). Not idempotent: one text per call."""
    row = SmsAccount.objects.filter(pk=account).first()
    if row is None:
        raise OperationFailed(f"No SMS account #{account}.")
    phone = phone or row.test_phone
    if not phone:
        raise OperationFailed("Set the account's test phone first.")
    sender = row.sender_for(phone)
    if sender is None:
        raise OperationFailed("An alphanumeric sender cannot text a US or Canadian number; set the US/CA sender.")
    message = TwilioClient.for_account(row).create_message(
        to=phone, body=f"Test message from the operations portal ({row.name}).", sender=sender)
    run.count("sent")
    run.ok()
    logger.info("test message sent: %s", message.sid)
    return {"sid": message.sid, "status": message.status}


def delivery_counts(campaign_id):
    from django.db.models import Count

    counts = dict(CampaignMessage.objects.filter(campaign_id=campaign_id).values_list("status").annotate(n=Count("pk")))
    return {status: counts.get(status, 0) for status in Status.values}


__all__ = ["retry_message", "approve_campaign", "cancel_campaign", "send_campaign", "send_due_messages", "send_test_sms", "apply_status",
           "record_inbound", "record_opt_out", "delivery_counts", "NotAllowed"]
