"""A staff retry of a set-aside SMS message (portal.setaside's handler for `sms_message`)."""

import logging

from django.db import transaction

from portal.operations import QueueUnavailable, enqueue
from portal.runs import OperationFailed
from portal.setaside import HANDED_ON, keep_open

from ..models import Campaign, CampaignMessage, SendState
from . import quiet_hours
from .approval import account_for

logger = logging.getLogger(__name__)
Status = CampaignMessage.Status


def retry_message(run, record):
    """Staff retry of a set-aside message: made due again in the outbox and sent by the
    campaign's send run (queued here), never POSTed here. Only the run holding the
    campaign's lock claims and POSTs: a claim of the retry's own would look dead to a send
    run starting meanwhile, which would look it up and send it again while the retry's
    POST still waited for its turn. The send's gate applies (opt-outs, quiet hours: due
    at the window's opening, beat sends it then). The record stays open until the message
    goes out (the send run closes it) or is refused again (the send sets it aside again
    with the new reason). Never for a cancelled campaign."""
    row = CampaignMessage.objects.filter(pk=record.context.get("message")).first()
    if row is None:
        raise OperationFailed(f"Message {record.key} no longer exists.")
    with transaction.atomic():
        # The campaign's row locked: a cancel, or a send finishing the campaign (_finish_if_done),
        # sees this retry whole or not at all (never the message due in a campaign marked sent).
        campaign = Campaign.objects.select_for_update().get(pk=row.campaign_id)
        if campaign.send_state == SendState.CANCELLED:
            run.count("campaign_cancelled")  # not sent; the record closes
            return
        row.refresh_from_db()
        if row.sid or row.status not in (Status.FAILED, *CampaignMessage.UNSENT):
            return  # sent meanwhile (or handed to Twilio and failed in delivery): nothing to resend
        if row.status == Status.CLAIMED:
            keep_open(record, "A send run is sending it now.")
            return HANDED_ON
        now = quiet_hours.now()
        account = account_for(campaign)
        due = max(now, quiet_hours.next_opening(row.phone, now, account.quiet_start, account.quiet_end))
        # a staff retry gets the send's full round of attempts again
        if not CampaignMessage.objects.filter(pk=row.pk, status=row.status, sid="").update(
                status=Status.PENDING, due_at=due, attempts=0):
            # a send run claimed it a moment ago (claims do not take the campaign's lock)
            keep_open(record, "A send run is sending it now.")
            return HANDED_ON
        # unsent again: the campaign is sending until it goes (beat polls only sending campaigns)
        Campaign.objects.filter(pk=campaign.pk, send_state=SendState.SENT).update(send_state=SendState.SENDING)
        # Before the send can take it: a send closing the record must find it open, not have it reopened after.
        keep_open(record, (
            f"Waits for the recipient's quiet hours to end; beat sends it from {due:%Y-%m-%d %H:%M} UTC."
            if due > now else "Due again: the campaign's send run sends it (beat's, within a minute, at the latest)."))
    run.count("made_due_again")
    if due > now:
        return HANDED_ON  # to beat's send_due_messages, at the window's opening
    try:
        send = enqueue("campaigns", "send_campaign", trigger=run.record.trigger, user=run.record.triggered_by,
                       campaign=campaign.pk)
        logger.info("message %s is sent by send run #%s", record.key, send.pk)
    except QueueUnavailable:
        logger.warning("campaign #%s: the send could not be queued; beat's send_due_messages sends it", campaign.pk)
    return HANDED_ON
