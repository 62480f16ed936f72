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
  that no other row holds), and adopted instead; a dead execution's claims are
  looked up only once its last POSTs cannot still reach Twilio (claim_settle);
- rows to one number are never in flight at once, so what that listing shows
  is never a POST still on its way;
- 429/20429 is certain not to have sent: retried with backoff, no listing needed.

Waits (backoff, quiet hours) are the row's `due_at`, polled by beat's
`send_due_messages`, never a broker countdown. Personal data stays out of logs.
"""

import logging
import random
import time
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
from portal.setaside import reword_open

from .. import sms_conf
from ..models import Campaign, CampaignMessage, OptOut, SendState
from ..twilio_client import TwilioClient, TwilioRefused
from . import quiet_hours
from .approval import (  # noqa: F401
    UNDECIDED_WAIT, NotAllowed, account_for, approve_campaign, being_checked, cancel_campaign, close_settled_records,
    count_cancelled_as_done, settle_cancelled,
)
from .reconcile import IN_FLIGHT_AT_MOST, DeadClaims, Undecided, claim_settle, find_sent, in_flight
# The webhooks' side (callbacks, inbound texts, opt-outs) lives in sms_events; its
# names stay importable from here, the one module the views and commands use.
from .sms_events import (  # noqa: F401
    account_by_sid,
    apply_status,
    apply_stored_callbacks,
    apply_waiting_callbacks,
    has_callbacks_waiting,
    DELIVERY_STAGES,
    delivery_by_campaign,
    delivery_counts,
    record_inbound,
    record_opt_out,
)
from .sms_test_message import send_test_sms, refusal_for_test_phone  # noqa: F401

logger = logging.getLogger(__name__)
Status = CampaignMessage.Status

MAX_ATTEMPTS = 8
#: after MAX_ATTEMPTS retryable failures the row waits this long (in the outbox, polled by beat)
GIVE_UP_FOR = timedelta(hours=1)
#: a row due this soon is waited for inside the run; later ones are left to beat
WAIT_IN_RUN_S = 10
OPT_OUT_CODE = 21610
#: statuses of a failed POST that Twilio itself did not answer (None: no reply at all)
ANSWERLESS = (None, 502, 504)


def status_callback_url():
    return f"{sms_conf.public_url()}/api/campaigns/twilio/status/"


def callback_for(base, row):
    """The row's own StatusCallback URL: its callbacks name the row (see StatusCallback.outbox)."""
    return f"{base}?outbox={row.pk}" if base else ""


# --- the send run -------------------------------------------------------------------

def _backoff(attempts, retry_after=None):
    if retry_after:
        return timedelta(seconds=float(retry_after))
    return timedelta(seconds=min(300.0, 2 ** min(attempts, 8)) * (0.5 + random.random() / 2))


def _claim(campaign, token, size):
    """Claim up to `size` due rows, at most one per number, none to a number in flight."""
    now = quiet_hours.now()
    with transaction.atomic():
        busy = set(in_flight(CampaignMessage.objects.all(), now).values_list("phone", flat=True))
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


def _mark(row, token, **fields):
    """Only the claim's holder marks the row (a takeover's new token wins)."""
    return CampaignMessage.objects.filter(pk=row.pk, claim_token=token, status=Status.CLAIMED).update(**fields)


def _attempt(client, bucket, account, row, callback):
    """In a pool thread: HTTP only. Returns (outcome, message or error)."""
    try:
        if row.uncertain:
            found = find_sent(client, row)
            if found is not None:
                return "found", found
        sender = account.sender_for(row.phone)
        if sender is None:
            return "no_sender", None
        # Twilio's throughput is in segments, not messages: a 3-segment text takes three turns.
        for _ in range(max(1, row.segments)):
            bucket.acquire()
        return "sent", client.create_message(to=row.phone, body=row.body, sender=sender,
                                             status_callback=callback_for(callback, row),
                                             validity_period=account.validity_period)
    except Undecided as undecided:
        return "undecided", undecided
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
        run.count("submitted" if outcome == "sent" else "reconciled_without_resending")
        return None
    if outcome == "undecided":
        _mark(row, token, status=Status.PENDING, claim_token="", due_at=result.due(now, UNDECIDED_WAIT))
        run.count("reconcile_waited")
        return None
    if outcome == "no_sender":
        _mark(row, token, status=Status.FAILED, error_message="No sender may text this country.", claim_token="")
        # A retried message's record (it said "due again") says why it stays unsent.
        reword_open("campaigns", "sms_message", _set_aside_key(row),
                    "No sender may text this country: add one to the SMS account, then retry.")
        run.count("no_sender_for_country")
        run.advance()
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
    # No answer from Twilio itself (a timeout, a dropped connection, a gateway's 502/504): it
    # may still be creating the message ("accepted late"), so it is not looked for (find_sent)
    # until a request's lifetime from now, as a dead execution's claims are (claim_settle):
    # not by this send, a staff retry or a cancel's settling run either. Twilio's own 5xx
    # answer comes after it has done what it does: its message, if any, is there to find.
    settles = {"look_up_after": now + claim_settle()} if maybe_sent and error.status in ANSWERLESS else {}
    if attempts >= MAX_ATTEMPTS:
        # Not failed: the row waits in the outbox with its due time and beat's
        # send_due_messages tries again then. Set aside meanwhile, so the run ends
        # partial and says what is still unsent (resolved once it goes out).
        due = now + GIVE_UP_FOR
        if _mark(row, token, status=Status.PENDING, attempts=attempts, uncertain=row.uncertain or maybe_sent,
                 claim_token="", due_at=due, error_code=_twilio_code(error),
                 error_message=f"Gave up until {due:%Y-%m-%d %H:%M} UTC: {error}"[:500], **settles):
            run.set_aside("sms_message", _set_aside_key(row),
                          f"Twilio kept answering {error.status or 'without a reply'}; the message waits in the outbox "
                          f"and is tried again from {due:%Y-%m-%d %H:%M} UTC.",
                          context={"message": row.pk, "campaign": row.campaign_id})
        run.count("gave_up_for_an_hour")
        return None
    due = max([now + _backoff(attempts, getattr(error, "retry_after", None)), *settles.values()])
    _mark(row, token, status=Status.PENDING, claim_token="", attempts=attempts, uncertain=row.uncertain or maybe_sent,
          due_at=due, error_message=str(error)[:500], **settles)
    run.count("rate_limited" if error.status == 429 else "retry_later")
    return None


def _set_aside_key(row):
    return f"{row.campaign_id}/{row.pk}"


def _twilio_code(error):
    """20429 (Twilio's "too many requests") for a 429; a 5xx or a lost reply has no code."""
    return 20429 if getattr(error, "status", None) == 429 else None


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


def _gate(run, rows, account, token):
    """What every claimed row passes before its POST: an opted-out number is skipped and
    recorded, a recipient outside quiet hours waits in the outbox for the window's opening
    (beat polls its due time)."""
    return _hold_for_quiet_hours(run, _skip_opted_out(run, rows, token), account, token)


def _skip_opted_out(run, rows, token):
    blocked = OptOut.blocked_numbers(r.phone for r in rows)
    for row in rows:
        if row.phone in blocked:
            _mark(row, token, status=Status.OPTED_OUT, claim_token="", error_message="On the opt-out list.")
            run.count("opted_out")
            run.advance()
    return [r for r in rows if r.phone not in blocked]


def _concurrency(account):
    # enough requests in flight to keep the sender's pace through the API's latency
    return max(1, min(16, int(account.messages_per_second // 4) + 1))


@operation("campaigns", "send_campaign", lock_key=lambda params: str(params.get("campaign", "")))
def send_campaign(run, campaign, max_seconds=3000):
    """Send the campaign's due outbox rows through Twilio (campaign by id).

    Idempotent: exactly one message per row whatever retries, kills or re-runs
    (see the module docstring). Rows due later (quiet hours, backoff) are left
    for beat's send_due_messages. On a cancelled campaign it sends nothing and
    settles the rows cancel could not decide on (settle_cancelled): queued by the
    cancel and by beat while any is left. Side effects: POSTs to Twilio.
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
    dead = DeadClaims(row, token)
    if dead.count:
        run.count("claims_recovered", dead.count)
        logger.info("%s message(s) of a stopped send are looked up at Twilio in %.0f s (a request of the "
                    "stopped send could still arrive until then)", dead.count, dead.seconds_left())
    run.set_total(CampaignMessage.objects.filter(campaign=row, status=Status.PENDING).count() + dead.count)
    concurrency = _concurrency(account)
    deadline = timezone.now() + timedelta(seconds=max_seconds)
    auth_error = None
    in_flight = {}
    with run.executor(concurrency) as pool:
        while True:
            run.check()
            dead.release_if_settled()
            stop = auth_error or timezone.now() > deadline or _cancelled(row)
            if not stop and len(in_flight) < concurrency * 2:
                batch = _claim(row, token, concurrency * 2 - len(in_flight))
                batch = _gate(run, batch, account, token)
                for message in batch:
                    in_flight[pool.submit(_attempt, client, bucket, account, message, callback)] = message
            if not in_flight:
                if stop or not _wait_for_due(row, dead):
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
            # After the commit: a callback that came while the batch's transaction was
            # open found no row with its sid and was only stored. Applied now.
            for future in done:
                outcome, result = future.result()
                if outcome in ("sent", "found"):
                    apply_stored_callbacks(result.sid)
    # A dead execution's claims still settling when the loop ended (a cancel, an auth error,
    # the deadline): pending and uncertain once they have, for whichever run sends next.
    dead.release_if_settled(wait=True)
    if _cancelled(row):
        if not auth_error:
            # This run holds the campaign's lock: every claim left was a dead execution's (settled
            # and released just above). Rows that may have gone out are looked up, never
            # labelled cancelled blindly.
            auth_error = settle_cancelled(run, row)
        count_cancelled_as_done(run, row)
    _finish_if_done(row)
    close_settled_records(run.record, row)
    if auth_error:
        raise OperationFailed(f"Twilio refused the account's credentials: {auth_error}")
    return dict(run.record.counters)


def _cancelled(campaign):
    return Campaign.objects.filter(pk=campaign.pk, send_state=SendState.CANCELLED).exists()


def _wait_for_due(campaign, dead=None):
    """Sleep until the next row comes due if that is soon, or until a dead execution's
    claims settle (DeadClaims); False when nothing is due soon."""
    if dead is not None and dead.waiting:
        time.sleep(max(0.05, min(dead.seconds_left(), 1.0)))
        return True
    nearest = CampaignMessage.objects.filter(campaign=campaign, status=Status.PENDING).aggregate(m=Min("due_at"))["m"]
    if nearest is None:
        return False
    wait_s = (nearest - quiet_hours.now()).total_seconds()
    if wait_s > WAIT_IN_RUN_S:
        return False
    time.sleep(max(0.05, min(wait_s, 1.0)))
    return True


def _finish_if_done(campaign):
    with transaction.atomic():  # the campaign's row locked: a staff retry making a message due (sms_retry) is seen
        list(Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("pk", flat=True))
        if not CampaignMessage.objects.filter(campaign=campaign, status__in=CampaignMessage.UNSENT).exists():
            Campaign.objects.filter(pk=campaign.pk, send_state=SendState.SENDING).update(send_state=SendState.SENT)


def _needing_a_run():
    """Rows a send run has to take now: due ones of a sending campaign, rows of a cancelled one
    still to be looked up (due again after a failed look), and claims left by a dead execution."""
    now = quiet_hours.now()
    return CampaignMessage.objects.filter(
        Q(status=Status.PENDING, due_at__lte=now) | Q(status=Status.CLAIMED, claimed_at__lt=now - IN_FLIGHT_AT_MOST),
        campaign__send_state__in=[SendState.SENDING, SendState.CANCELLED])


def has_due_messages():
    return _needing_a_run().exists() or has_callbacks_waiting()


@operation("campaigns", "send_due_messages", lock=False, has_work=has_due_messages)
def send_due_messages(run):
    """Beat's every-minute poll: queue a send run for each campaign with messages now due
    (quiet hours over, backoff elapsed; a cancelled campaign's rows still to be looked
    up), and apply status callbacks stored before their row's sid was committed.
    Idempotent: a campaign whose send is queued or running gets no second run; a
    callback is applied once."""
    applied = apply_waiting_callbacks()
    if applied:
        run.count("callbacks_applied_late", applied)
    ids = _needing_a_run().values_list("campaign_id", flat=True).distinct()
    for campaign_id in sorted(set(ids)):
        record = enqueue("campaigns", "send_campaign", trigger="beat", campaign=campaign_id)
        run.count("already_running" if getattr(record, "already_active", False) else "queued")
    return dict(run.record.counters)


__all__ = ["being_checked", "approve_campaign", "cancel_campaign", "send_campaign", "send_due_messages", "send_test_sms", "apply_status",
           "record_inbound", "record_opt_out", "delivery_counts", "delivery_by_campaign", "NotAllowed"]
