"""Approving a campaign's send (its outbox written, the send run queued) and cancelling it."""

import logging

from django.db import transaction

from portal.operations import enqueue
from portal.runs import OperationFailed

from ..models import Campaign, CampaignMessage, SendState, SmsAccount
from . import quiet_hours
from .messages import compose
from .retention import PURGED_KEY

logger = logging.getLogger(__name__)
Status = CampaignMessage.Status


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


def cancel_campaign(campaign_id, *, user):
    """Stop a send: every message not yet handed to Twilio is marked cancelled (the
    running send stops at its next batch). Returns how many were cancelled.

    A campaign already fully sent (or never approved) keeps its state: nothing is
    relabelled cancelled. A row whose earlier attempt may have reached Twilio
    (`uncertain`: a timeout, a 5xx) is looked up first (cancel_unsent)."""
    if not (user and user.is_active and user.has_perm("campaigns.send_campaign")):
        raise NotAllowed("Cancelling a send needs the “Can approve, send and cancel a campaign's SMS” permission.")
    if not Campaign.objects.filter(pk=campaign_id, send_state=SendState.SENDING).update(send_state=SendState.CANCELLED):
        return 0
    cancelled = cancel_unsent(Campaign.objects.get(pk=campaign_id))
    logger.info("campaign #%s cancelled: %s messages not sent", campaign_id, cancelled)
    return cancelled


def cancel_unsent(campaign):
    """Mark the cancelled campaign's unsent rows cancelled; returns how many.

    An `uncertain` row may have been sent: its message is looked for the send's own
    way (find_sent: the account's messages to that number since the first claim).
    Found: the row takes it (it was sent, never shown cancelled). Not found: cancelled.
    Cannot tell now (Twilio unreachable, another row to the number in flight): left
    pending and uncertain for the next look (a later cancel or send run)."""
    from portal.http import UpstreamError

    from ..twilio_client import TwilioClient
    from .reconcile import Undecided, find_sent

    doubtful = list(CampaignMessage.objects.filter(campaign=campaign, status=Status.PENDING, uncertain=True))
    cancelled = 0
    if doubtful:
        client = TwilioClient.for_account(account_for(campaign))
        for row in doubtful:
            try:
                found = find_sent(client, row)
            except (Undecided, UpstreamError):
                continue  # cannot tell now: left pending and uncertain
            now = quiet_hours.now()
            if found is None:
                cancelled += CampaignMessage.objects.filter(pk=row.pk, status=Status.PENDING).update(
                    status=Status.CANCELLED, claim_token="", uncertain=False)
            else:
                status = found.status if found.status in CampaignMessage.RANK else Status.QUEUED
                CampaignMessage.objects.filter(pk=row.pk, status=Status.PENDING).update(
                    status=status, sid=found.sid, uncertain=False, claim_token="", submitted_at=now,
                    status_updated_at=now, error_code=None, error_message="")
    return cancelled + CampaignMessage.objects.filter(campaign=campaign, status=Status.PENDING, uncertain=False).update(
        status=Status.CANCELLED, claim_token="")
