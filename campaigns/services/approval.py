"""Approving a campaign's send (its outbox written, the send run queued) and cancelling it."""

import logging

from django.db import transaction

from portal.operations import enqueue
from portal.runs import OperationFailed

from ..models import Campaign, CampaignMessage, SendState, SmsAccount
from . import quiet_hours
from .messages import compose

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
