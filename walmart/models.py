"""Retail Link: credentials, per-user login sessions, event assignments, EDR reports."""

from datetime import timedelta

from django.conf import settings
from django.db import models

from portal.fields import EncryptedTextField
from portal.models import SingletonSettings, SyncRun

from . import clock


class RetailLinkSettings(SingletonSettings):
    """Credentials when they are not in the environment (env wins)."""

    username = EncryptedTextField(blank=True)
    password = EncryptedTextField(blank=True)
    mfa_credential_id = EncryptedTextField(blank=True, help_text="The `credid` the SMS code is sent to.")
    club_numbers = models.CharField(
        max_length=200, blank=True, help_text="Comma-separated club numbers for the daily schedule report."
    )

    class Meta:
        verbose_name = verbose_name_plural = "Retail Link settings"

    def __str__(self):
        return "Retail Link settings"


class RetailLinkSessionQuerySet(models.QuerySet):
    def live(self):
        return self.filter(expires_at__gt=clock.now())

    def expired(self):
        return self.filter(expires_at__lte=clock.now())


class RetailLinkSession(models.Model):
    """One portal user's Retail Link login: half-finished (code sent) or
    authenticated. Stored encrypted so any web process or worker can continue or
    use it; slides 10 minutes on every use."""

    class Stage(models.TextChoices):
        AWAITING_CODE = "awaiting_code", "MFA code sent"
        AUTHENTICATED = "authenticated", "Authenticated"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="retaillink_session")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.AWAITING_CODE)
    browser_state = EncryptedTextField(blank=True, help_text="Playwright storage_state (cookies) as JSON.")
    bearer = EncryptedTextField(blank=True)
    user_agent = models.CharField(max_length=500, blank=True,
                                  help_text="The logged-in browser's User-Agent; data calls send the same one.")
    created_at = models.DateTimeField(default=clock.now)
    last_activity = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField(db_index=True)
    authenticated_at = models.DateTimeField(null=True, blank=True)

    objects = RetailLinkSessionQuerySet.as_manager()

    class Meta:
        permissions = [("use_retaillink", "Can log in to Retail Link and download EDRs")]

    def __str__(self):
        return f"Retail Link session of {self.user}"

    @property
    def is_authenticated(self):
        return self.stage == self.Stage.AUTHENTICATED and bool(self.bearer)

    def time_remaining(self):
        return max(0, int((self.expires_at - clock.now()).total_seconds()))

    def touch(self, timeout_seconds):
        """Slide the inactivity timeout (every operation calls this). Returns the
        rows updated: 0 when the session has ended (logged out, or expired and
        so as good as deleted), which a long batch takes as its signal to stop."""
        now = clock.now()
        updated = type(self).objects.filter(pk=self.pk, expires_at__gt=now).update(
            last_activity=now, expires_at=now + timedelta(seconds=timeout_seconds)
        )
        if updated:
            self.last_activity = now
            self.expires_at = now + timedelta(seconds=timeout_seconds)
        return updated


class EventAssignment(models.Model):
    """Which staff member works which event (the scheduling app's answer)."""

    event_id = models.CharField(max_length=20, unique=True)
    employee_name = models.CharField(max_length=200)
    event_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["event_date", "event_id"]

    def __str__(self):
        return f"{self.event_id}: {self.employee_name}"


def edr_upload_to(report, filename):
    folder = report.event_date.strftime("%Y%m%d") if report.event_date else "undated"
    return f"walmart/edr/{folder}/{filename}"


class EdrReport(models.Model):
    """One event's EDR and its PDF (natural key: event id; a re-fetch replaces it)."""

    event_id = models.CharField(max_length=20, unique=True)
    event_name = models.CharField(max_length=300, blank=True)
    event_date = models.DateField(null=True, blank=True, db_index=True)
    event_type = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=30, blank=True)
    employee_name = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, help_text="The EDR as Retail Link returned it.")
    pdf = models.FileField(upload_to=edr_upload_to, max_length=300, blank=True)
    fetched_at = models.DateTimeField()
    fetched_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-event_date", "event_id"]
        verbose_name = "EDR report"

    def __str__(self):
        return f"EDR {self.event_id}"

    @property
    def filename(self):
        return self.pdf.name.rsplit("/", 1)[-1] if self.pdf else ""


class EdrBatchItem(models.Model):
    """One event's outcome in one batch run (natural key: run + event id)."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="walmart_edr_items")
    event_id = models.CharField(max_length=20)
    position = models.PositiveIntegerField(default=0, help_text="The event's place in the batch.")
    success = models.BooleanField(default=False)
    report = models.ForeignKey(EdrReport, null=True, blank=True, on_delete=models.SET_NULL, related_name="batch_items")
    employee_name = models.CharField(max_length=200, blank=True)
    filename = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "event_id"], name="walmart_batch_item_unique")]

    def __str__(self):
        return f"run #{self.run_id} event {self.event_id}"


class RetailLinkAccount(models.Model):
    """The shared Retail Link account's login state, one row per account (every
    portal user logs in with the same credentials, so the same phone and the
    same 3-strike lockout).

    - Code requests are serialised: `claimed_until` is taken by a conditional
      UPDATE (atomic on every backend) while one browser asks for the SMS; a
      request while a code is pending (`code_expires_at`) joins that login
      instead of sending another SMS.
    - Wrong codes are counted here (`wrong_codes`, reset by an accepted code), so
      the portal refuses a guess before Retail Link would lock the account.
    - A code accepted for the pending login is remembered (hashed) with the
      login's result, so a second user who joined the same login is let in with
      the same code without another upstream try."""

    account_key = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the username.")
    pending_state = EncryptedTextField(blank=True, help_text="Browser state of the login awaiting its code.")
    code_sent_at = models.DateTimeField(null=True, blank=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    wrong_codes = models.PositiveIntegerField(default=0)
    accepted_code = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the accepted code.")
    accepted_state = EncryptedTextField(blank=True)
    accepted_bearer = EncryptedTextField(blank=True)
    accepted_user_agent = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = "Retail Link account"

    def __str__(self):
        return "Retail Link account"

    def code_pending(self):
        return bool(self.pending_state and self.code_expires_at and self.code_expires_at > clock.now())
