"""The SMS side: the Twilio account, each campaign's outbox of messages, the
status callbacks received, and the opt-out list. Imported by models.py.

A CampaignMessage is the outbox row *and* the delivery record: one per phone
number per campaign (or per phone and subject), unique, so approving or
sending twice can never text anyone twice.
"""

import re
from datetime import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from portal.fields import EncryptedTextField

ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
#: Alphanumeric sender ids do not work to these calling codes (US and Canada).
NO_ALPHANUMERIC_CALLING_CODES = ("+1",)


class SmsAccount(models.Model):
    """A Twilio account and how the portal sends through it."""

    name = models.CharField(max_length=100, unique=True)
    account_sid = models.CharField(max_length=34, help_text="AC followed by 32 hex digits.")
    auth_token = EncryptedTextField(help_text="Also signs the status and inbound callbacks.")
    messaging_service_sid = models.CharField(
        max_length=34, blank=True, help_text="MG…: Twilio picks the sender per recipient. Leave the sender blank then.")
    sender = models.CharField(
        max_length=16, blank=True, help_text="A Twilio number (E.164) or an alphanumeric sender id (max 11 characters).")
    us_ca_sender = models.CharField(
        max_length=16, blank=True,
        help_text="A number used for US and Canadian recipients when the sender is alphanumeric (not allowed there). "
                  "Blank: those recipients are skipped.")
    messages_per_second = models.FloatField(default=1.0, help_text="Throughput of the sender (a US long code: about 1/s).")
    price_per_segment = models.DecimalField(max_digits=8, decimal_places=5, default="0.00790", help_text="For cost estimates (USD).")
    validity_period = models.PositiveIntegerField(default=3600, help_text="Seconds a message may wait in Twilio's queue (1-36000).")
    quiet_start = models.TimeField(default=time(8, 0), help_text="No message leaves before this local time of the recipient.")
    quiet_end = models.TimeField(default=time(21, 0), help_text="…nor after this one. The same time as the start: no quiet hours.")
    test_phone = models.CharField(max_length=16, blank=True, help_text="Your phone (E.164) for “Send a test message”.")
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name = "SMS account"

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        if not re.fullmatch(r"AC[0-9a-fA-F]{32}", self.account_sid or ""):
            errors["account_sid"] = "An account SID is AC followed by 32 hex digits."
        if self.messaging_service_sid and not re.fullmatch(r"MG[0-9a-fA-F]{32}", self.messaging_service_sid):
            errors["messaging_service_sid"] = "A Messaging Service SID is MG followed by 32 hex digits."
        if bool(self.messaging_service_sid) == bool(self.sender):
            errors["sender"] = "Give either a Messaging Service SID or a sender, not both."
        if self.sender and not (E164.match(self.sender) or ALPHANUMERIC_SENDER.match(self.sender)):
            errors["sender"] = "A sender is an E.164 number (+12015550100) or 1-11 letters and digits with a letter."
        if self.us_ca_sender and not E164.match(self.us_ca_sender):
            errors["us_ca_sender"] = "A number in E.164 form."
        if self.test_phone and not E164.match(self.test_phone):
            errors["test_phone"] = "A number in E.164 form."
        if not 0 < (self.messages_per_second or 0) <= 1000:
            errors["messages_per_second"] = "Between 0 and 1000 messages per second."
        if not 1 <= (self.validity_period or 0) <= 36000:
            errors["validity_period"] = "Twilio allows 1 to 36000 seconds."
        if errors:
            raise ValidationError(errors)

    @property
    def alphanumeric(self):
        return bool(self.sender) and not self.sender.startswith("+")

    def sender_for(self, phone):
        """{'From': …} or {'MessagingServiceSid': …} for this recipient, or None when
        no sender may text it (an alphanumeric id to a US or Canadian number)."""
        if self.messaging_service_sid:
            return {"MessagingServiceSid": self.messaging_service_sid}
        if self.alphanumeric and phone.startswith(NO_ALPHANUMERIC_CALLING_CODES):
            return {"From": self.us_ca_sender} if self.us_ca_sender else None
        return {"From": self.sender}

    @classmethod
    def default(cls):
        return cls.objects.filter(enabled=True).order_by("pk").first()


class CampaignMessage(models.Model):
    """One text of a campaign to one number: the outbox row and its delivery record."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CLAIMED = "claimed", "Sending now"
        ACCEPTED = "accepted", "Accepted"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        UNDELIVERED = "undelivered", "Undelivered"
        FAILED = "failed", "Failed"
        OPTED_OUT = "opted_out", "Opted out"
        CANCELLED = "cancelled", "Cancelled"

    #: Twilio's lifecycle order: a callback never moves a message back down it.
    RANK = {"accepted": 1, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "undelivered": 4, "failed": 4}
    #: Not yet handed to Twilio.
    UNSENT = (Status.PENDING, Status.CLAIMED)

    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="messages")
    key = models.CharField(max_length=120, help_text="The phone number, or phone number and subject (one message per subject).")
    phone = models.CharField(max_length=20)
    body = models.TextField()
    subjects = models.JSONField(default=list, help_text="The uuids of the subjects this message is about.")
    encoding = models.CharField(max_length=6, default="GSM-7")
    segments = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    due_at = models.DateTimeField(help_text="Not sent before this (quiet hours, backoff); beat polls it.")
    claim_token = models.CharField(max_length=64, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    first_claimed_at = models.DateTimeField(null=True, blank=True, help_text="When the first attempt began: the reconcile looks from here.")
    uncertain = models.BooleanField(default=False, help_text="An attempt may have reached Twilio (timeout, 5xx): look before sending again.")
    look_up_after = models.DateTimeField(
        null=True, blank=True,
        help_text="The last attempt got no answer we can trust (timeout, 5xx): Twilio may still create its message "
                  "until then, so it is not looked for (nor sent again, nor called cancelled) before.")
    attempts = models.PositiveSmallIntegerField(default=0)
    sid = models.CharField(max_length=34, blank=True, db_index=True)
    error_code = models.PositiveIntegerField(null=True, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    price = models.CharField(max_length=20, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    status_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "pk"]
        constraints = [models.UniqueConstraint(fields=["campaign", "key"], name="campaigns_message_once_per_key")]
        indexes = [models.Index(fields=["status", "due_at"], name="campaigns_msg_due")]

    def __str__(self):
        return f"{self.campaign_id}:{self.phone}"


class StatusCallback(models.Model):
    """A verified status callback as received (kept so a callback that beats our
    own record of the message's sid is applied once the sid is stored)."""

    sid = models.CharField(max_length=34, db_index=True)
    status = models.CharField(max_length=20)
    error_code = models.PositiveIntegerField(null=True, blank=True)
    # Each outbox row gets a StatusCallback URL of its own (?outbox=<pk>, covered by
    # the signature): a callback then names the row its message belongs to, even when
    # the POST's reply, and with it the sid, was lost.
    outbox = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    received_at = models.DateTimeField(auto_now_add=True)
    applied = models.BooleanField(default=False)

    class Meta:
        ordering = ["received_at", "pk"]


class OptOut(models.Model):
    """A number that asked not to be texted (or a staff entry). `active` False: re-subscribed."""

    class Source(models.TextChoices):
        INBOUND = "inbound", "Inbound keyword"
        TWILIO = "twilio", "Twilio refused (21610)"
        STAFF = "staff", "Staff"
        IMPORT = "import", "CSV import"

    phone = models.CharField(max_length=20, unique=True)
    active = models.BooleanField(default=True, help_text="Off once the number texted START.")
    source = models.CharField(max_length=10, choices=Source.choices)
    keyword = models.CharField(max_length=20, blank=True)
    note = models.CharField(max_length=200, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["phone"]
        verbose_name = "opt-out"

    def __str__(self):
        return self.phone

    # Every way in (admin form, API, CSV import, inbound STOP, Twilio's 21610) stores the
    # number in E.164, the form the send compares: "(201) 555-0601" typed by staff must
    # block +12015550601.
    @staticmethod
    def default_calling_code():
        """The portals' default calling code (the most common one), for numbers typed without one."""
        from django.db.models import Count

        from .models import Portal

        row = Portal.objects.values("default_country_code").annotate(n=Count("pk")).order_by("-n", "default_country_code").first()
        return row["default_country_code"] if row else "1"

    @classmethod
    def normalise_phone(cls, raw, default_code=None):
        """E.164, or a ValidationError on `phone` for what is not a phone number."""
        from .phones import to_e164

        if not default_code:
            default_code = "1" if str(raw or "").strip().startswith(("+", "00")) else cls.default_calling_code()
        phone = to_e164(raw, default_code=default_code)
        if not phone:
            raise ValidationError({"phone": "Not a phone number; give it in E.164 (+12015550101) or as dialled locally."})
        return phone

    def clean(self):
        super().clean()
        if self.phone:  # blank: the field's own "required" error says it
            self.phone = self.normalise_phone(self.phone)

    def save(self, *args, **kwargs):
        self.phone = self.normalise_phone(self.phone)
        super().save(*args, **kwargs)

    @classmethod
    def blocked_numbers(cls, phones=None):
        """The active opt-outs among `phones` (all when None), as given: a number is
        compared in its E.164 form, the form every opt-out is stored in."""
        from .phones import to_e164

        rows = cls.objects.filter(active=True)
        if phones is None:
            return set(rows.values_list("phone", flat=True))
        given = {phone: to_e164(phone) or phone for phone in phones}
        listed = set(rows.filter(phone__in=set(given.values())).values_list("phone", flat=True))
        return {phone for phone, e164 in given.items() if e164 in listed}
