"""What Twilio tells the portal: status callbacks, inbound texts (STOP / START), and
the opt-out list they feed; the delivery counts they move. The webhook views
(campaigns.api.sms) check the signature first, then call these."""


from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils import timezone

from portal.charts import local_day_bounds

from ..models import Campaign, CampaignMessage, OptOut, SmsAccount, StatusCallback

Status = CampaignMessage.Status


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


def _callbacks_waiting():
    """Stored callbacks not applied although their message's row now has the sid (the callback
    came while the send's transaction naming the sid was still open)."""
    return StatusCallback.objects.filter(applied=False, sid__in=CampaignMessage.objects.exclude(sid="").values("sid"))


def has_callbacks_waiting():
    return _callbacks_waiting().exists()


def apply_waiting_callbacks():
    """Beat's sweep (send_due_messages): apply every stored callback whose row is known now."""
    sids = set(_callbacks_waiting().values_list("sid", flat=True)[:10000])
    return sum(apply_stored_callbacks(sid) for sid in sids)


DELIVERY_ERRORS = {
    30003: "Unreachable destination handset", 30004: "Message blocked", 30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier", 30007: "Message filtered by the carrier", 30008: "Unknown error",
    30036: "Validity period expired",
}

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "YES", "UNSTOP"}


def record_opt_out(phone, *, source, keyword="", user=None, note="", active=True):
    """List (or, active=False, re-subscribe) a number, stored in E.164 whatever form it came in;
    a ValidationError for what is not a phone number."""
    phone = OptOut.normalise_phone(phone)
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
    if word not in STOP_WORDS | START_WORDS | {"STOP", "START"}:
        return ""
    try:
        OptOut.normalise_phone(phone)
    except ValidationError:
        return ""  # a short code or a sender id: nothing the portal texts
    if word in STOP_WORDS or word == "STOP":
        record_opt_out(phone, source=OptOut.Source.INBOUND, keyword=body.strip()[:20], active=True)
        return "STOP"
    if word in START_WORDS or word == "START":
        record_opt_out(phone, source=OptOut.Source.INBOUND, keyword=body.strip()[:20], active=False)
        return "START"
    return ""


def account_by_sid(account_sid):
    return SmsAccount.objects.filter(account_sid=account_sid).first() if account_sid else None


def delivery_counts(campaign_id):
    counts = dict(CampaignMessage.objects.filter(campaign_id=campaign_id).values_list("status").annotate(n=Count("pk")))
    return {status: counts.get(status, 0) for status in Status.values}


#: The delivery chart's four stages, each the statuses it takes in: handed over but not
#: confirmed yet (or not sent yet) is queued; failed is undelivered. Opted-out and
#: cancelled messages never left, so no stage counts them.
DELIVERY_STAGES = {
    "queued": (Status.PENDING, Status.CLAIMED, Status.ACCEPTED, Status.QUEUED, Status.SENDING),
    "sent": (Status.SENT,),
    "delivered": (Status.DELIVERED,),
    "undelivered": (Status.UNDELIVERED, Status.FAILED),
}


def delivery_by_campaign(start, end):
    """[(campaign, {stage: n})] for the campaigns approved from `start` to `end` (local
    days, both included), oldest first: one grouped query, never a loop over messages."""
    since, until = local_day_bounds(start, end)
    counts = {stage: Count("messages", filter=Q(messages__status__in=statuses))
              for stage, statuses in DELIVERY_STAGES.items()}
    campaigns = (Campaign.objects.filter(approved_at__gte=since, approved_at__lt=until)
                 .annotate(**counts).order_by("approved_at", "pk"))
    return [(campaign, {stage: getattr(campaign, stage) for stage in DELIVERY_STAGES}) for campaign in campaigns]
