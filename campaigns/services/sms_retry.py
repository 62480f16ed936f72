"""A staff retry of a set-aside SMS message (portal.setaside's handler for `sms_message`)."""

import uuid

from portal.ratelimit import get_bucket
from portal.runs import OperationFailed

from ..models import Campaign, CampaignMessage, SendState
from ..twilio_client import TwilioClient
from . import quiet_hours
from .sending import (
    _attempt, _cancelled, _finish_if_done, _gate, _record, account_for, apply_stored_callbacks, status_callback_url,
)

Status = CampaignMessage.Status


def retry_message(run, record):
    """Staff retry of a set-aside message: sent once more through the send's own gate
    (opt-outs, quiet hours) and attempt; never for a cancelled campaign. Refused again:
    set aside again with the new reason. Held for quiet hours: it waits in the outbox
    (due at the window's opening, beat sends it) and the record stays open until then."""
    row = CampaignMessage.objects.filter(pk=record.context.get("message")).select_related("campaign").first()
    if row is None:
        raise OperationFailed(f"Message {record.key} no longer exists.")
    if _cancelled(row.campaign):
        run.count("campaign_cancelled")  # not sent; the record closes
        return
    if row.status == Status.PENDING and not row.sid:
        # Given up on for a while (429s, 5xx): it waits in the outbox; a retry makes it
        # due now for beat's send_due_messages, and the record stays open until it goes out.
        CampaignMessage.objects.filter(pk=row.pk, status=Status.PENDING).update(due_at=quiet_hours.now())
        run.set_aside(record.kind, record.key, "Made due now: the next send_due_messages (within a minute) sends it.",
                      context=record.context)
        return
    if row.status != Status.FAILED or row.sid:
        return  # sent meanwhile (or handed to Twilio and failed in delivery): nothing to resend
    account = account_for(row.campaign)
    token = f"{run.record.pk}:{uuid.uuid4().hex[:12]}"
    # unsent again: the campaign is sending until it goes (beat polls only sending campaigns)
    Campaign.objects.filter(pk=row.campaign_id, send_state=SendState.SENT).update(send_state=SendState.SENDING)
    if not CampaignMessage.objects.filter(pk=row.pk, status=Status.FAILED, sid="").update(
            status=Status.CLAIMED, claim_token=token, claimed_at=quiet_hours.now()):
        return
    row.refresh_from_db()
    error = None
    for ready in _gate(run, [row], account, token):
        bucket = get_bucket(f"twilio-{account.pk}", account.messages_per_second, burst=2)
        outcome, result = _attempt(TwilioClient.for_account(account), bucket, account, ready, status_callback_url())
        error = _record(run, ready, token, outcome, result)
        if outcome in ("sent", "found"):
            apply_stored_callbacks(result.sid)
    row.refresh_from_db()
    if row.status == Status.PENDING and not error:
        run.set_aside(record.kind, record.key, f"Waits for the recipient's quiet hours to end; beat sends it from "
                      f"{row.due_at:%Y-%m-%d %H:%M} UTC.", context=record.context)
    _finish_if_done(row.campaign)
    if error:
        raise error
