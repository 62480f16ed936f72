"""Approving a campaign's send (its outbox written, the send run queued) and cancelling it."""

import logging
from datetime import timedelta

from django.db import transaction

from portal.operations import QueueUnavailable, enqueue
from portal.runs import OperationFailed
from portal.setaside import open_records, resolve_items

from ..models import Campaign, CampaignMessage, SendState, SmsAccount
from . import quiet_hours
from .messages import compose
from .retention import PURGED_KEY

logger = logging.getLogger(__name__)
Status = CampaignMessage.Status

#: a row whose message cannot be told yet (another row to its number in flight) looks again this much later
UNDECIDED_WAIT = timedelta(seconds=5)
#: ...and this much later when Twilio could not be asked (unreachable, refused the credentials)
LOOKUP_RETRY = timedelta(minutes=2)


class NotAllowed(Exception):
    """The user may not do this (no `send_campaign` permission)."""


def account_for(campaign):
    account = campaign.sms_account or SmsAccount.default()
    if account is None:
        raise OperationFailed("No SMS account is configured (Campaigns › SMS accounts).")
    return account


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
        if CampaignMessage.objects.filter(campaign=campaign, key__startswith=PURGED_KEY).exists():
            # who was texted is no longer known: approving again could text them twice
            raise OperationFailed(f"Campaign {campaign.name!r} was sent before its messages were purged; "
                                  "make a new campaign to send again.")
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


def cancel_campaign(campaign_id, *, user, trigger="admin"):
    """Stop a send; returns how many messages were cancelled now.

    Quick enough for a web request: rows certainly not handed to Twilio are
    cancelled at once. Rows that may have gone out (`uncertain`: a timeout, a 5xx;
    or claimed by a send that may have died) are looked up upstream in a run (the
    campaign's send run: it holds the campaign's lock, so a claim it finds is dead)
    queued here; until decided they show as "being checked", and beat's sweep
    queues the run again while any is left. A campaign already fully sent (or
    never approved) keeps its state: nothing is relabelled cancelled."""
    if not (user and user.is_active and user.has_perm("campaigns.send_campaign")):
        raise NotAllowed("Cancelling a send needs the “Can approve, send and cancel a campaign's SMS” permission.")
    if not Campaign.objects.filter(pk=campaign_id, send_state=SendState.SENDING).update(send_state=SendState.CANCELLED):
        return 0
    rows = CampaignMessage.objects.filter(campaign_id=campaign_id)
    cancelled = rows.filter(status=Status.PENDING, uncertain=False).update(status=Status.CANCELLED, claim_token="")
    logger.info("campaign #%s cancelled: %s messages not sent", campaign_id, cancelled)
    rows.filter(status=Status.PENDING).update(due_at=quiet_hours.now())  # looked up now, not after a backoff
    try:
        # also when nothing is left to look up: the run closes the set-aside records of settled rows
        enqueue("campaigns", "send_campaign", trigger=trigger, user=user, campaign=campaign_id)
    except QueueUnavailable:
        logger.warning("campaign #%s: the settling run could not be queued; beat's sweep queues it", campaign_id)
    return cancelled


def being_checked(campaign_id):
    """A cancelled campaign's messages not yet known sent or unsent (looked up by its run)."""
    return CampaignMessage.objects.filter(campaign_id=campaign_id, status__in=CampaignMessage.UNSENT,
                                          campaign__send_state=SendState.CANCELLED).count()


def settle_cancelled(run, campaign):
    """In the cancelled campaign's send run: settle every unsent row. Returns an auth error, if any.

    An `uncertain` row may have been sent: its message is looked for the send's own
    way (find_sent: the account's messages to that number since the first claim).
    Found: the row takes it (it was sent, never shown cancelled). Not found: cancelled.
    Cannot tell now (Twilio unreachable, another row to the number in flight): left
    pending and uncertain, due again a little later, for beat's sweep to look again."""
    from portal.http import UpstreamAuthError, UpstreamError

    from ..twilio_client import TwilioClient
    from .reconcile import Undecided, find_sent

    rows = CampaignMessage.objects.filter(campaign=campaign, status=Status.PENDING)
    doubtful = list(rows.filter(uncertain=True))
    client = TwilioClient.for_account(account_for(campaign)) if doubtful else None
    for row in doubtful:
        now = quiet_hours.now()
        try:
            found = find_sent(client, row)
        except Undecided as undecided:
            rows.filter(pk=row.pk).update(due_at=undecided.due(now, UNDECIDED_WAIT))
            run.count("being_checked")
            continue
        except UpstreamAuthError as exc:
            left = rows.filter(uncertain=True).update(due_at=now + LOOKUP_RETRY)
            run.count("being_checked", left)
            return exc
        except UpstreamError:
            rows.filter(pk=row.pk).update(due_at=now + LOOKUP_RETRY)
            run.count("being_checked")
            continue
        if found is None:
            settled = rows.filter(pk=row.pk).update(status=Status.CANCELLED, claim_token="", uncertain=False)
            run.count("cancelled", settled)
        else:
            status = found.status if found.status in CampaignMessage.RANK else Status.QUEUED
            settled = rows.filter(pk=row.pk).update(
                status=status, sid=found.sid, uncertain=False, claim_token="", submitted_at=now,
                status_updated_at=now, error_code=None, error_message="")
            run.count("found_sent_after_cancel", settled)
        run.advance(settled)
    settled = rows.filter(uncertain=False).update(status=Status.CANCELLED, claim_token="")
    run.count("cancelled", settled)
    run.advance(settled)
    return None


def count_cancelled_as_done(run, campaign):
    """A cancelled send's run ends complete: the rows of its total that the cancel took at
    once (cancel_campaign, in the web request, outside any run) are done, and counted
    cancelled. Only rows still being checked with Twilio are left to do."""
    record = run.record
    taken = (record.progress_total or 0) - record.progress_done - being_checked(campaign.pk)
    if taken > 0:
        run.count("cancelled", taken)
        run.advance(taken)


def close_settled_records(run_record, campaign):
    """Close the set-aside records of the campaign's messages that reached a final state
    (sent, opted out, cancelled; anything settled once the campaign is cancelled): they
    no longer wait in the outbox. A refused message's record stays open for a retry."""
    records = dict(open_records("campaigns").filter(kind="sms_message", key__startswith=f"{campaign.pk}/")
                   .values_list("key", "context"))
    if not records:
        return 0
    message_of = {key: context.get("message") for key, context in records.items()}
    status_of = dict(CampaignMessage.objects.filter(pk__in=message_of.values()).values_list("pk", "status"))
    waiting = (*CampaignMessage.UNSENT,) if Campaign.objects.filter(pk=campaign.pk, send_state=SendState.CANCELLED).exists() else (*CampaignMessage.UNSENT, Status.FAILED)
    done = [key for key, pk in message_of.items() if status_of.get(pk) not in waiting]
    return resolve_items(run_record, "campaigns", "sms_message", done)
