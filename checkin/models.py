"""CheckOut users, their York check-in sessions and the history of refreshes.

The original AutoCheckin kept all of this in process memory; here it is rows, so
`/state`, the admin and a restart all see the same thing.
"""

import hashlib

from django.db import models
from django.utils import timezone

from portal.fields import EncryptedTextField
from portal.models import SingletonSettings, SyncRun


class CheckinSettings(SingletonSettings):
    """The CheckOut key we send and the shape of the periodic refresh cycle."""

    checkout_api_key = EncryptedTextField(
        blank=True,
        help_text="CheckOut api_token of an autosysop user (sent as x-checkout-key). "
        "Falls back to the CHECKOUT_API_KEY environment variable.",
    )
    cycle_min_hours = models.FloatField(default=1.0, help_text="Shortest pause between two refresh cycles.")
    cycle_max_hours = models.FloatField(default=5.0, help_text="Longest pause between two refresh cycles.")
    max_gap_minutes = models.FloatField(default=10.0, help_text="Longest gap between two users within a cycle.")
    next_cycle_at = models.DateTimeField(
        null=True, blank=True, help_text="When the next cycle is planned; empty plans one at the next beat tick."
    )
    connected = models.BooleanField(default=False, help_text="Whether CheckOut answered the last connection test.")
    next_fetch_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the beat fetches the user list next: an hour after a fetch, 60 s after a failed one; "
        "empty (at start) means now.",
    )
    connection_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "check-in settings"
        verbose_name_plural = "check-in settings"

    def __str__(self):
        return "Check-in settings"


class CheckoutUser(models.Model):
    """A CheckOut user who opted in to AutoCheckin (`checkinstate=1` upstream)."""

    class Report(models.TextChoices):
        NORMAL = "Normal"
        FAIL = "Fail"
        CHECKIN = "Checkin"
        ENABLED = "Enabled"
        DISABLED = "Disabled"
        WAITLIST = "Waitlist"

    email = models.EmailField(max_length=254, unique=True)
    opted_in = models.BooleanField(
        default=True, help_text="In CheckOut's latest user list; users who left it are kept for their history."
    )
    checkin_report = models.CharField(max_length=20, blank=True, choices=Report.choices)
    checkin_report_time = models.DateTimeField(null=True, blank=True)
    sync = models.JSONField(null=True, blank=True, help_text="CheckOut's attendance sync data, as it sent it.")
    first_seen = models.DateTimeField(default=timezone.now)
    last_fetched = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["email"]
        verbose_name = "CheckOut user"

    def __str__(self):
        return self.email


def cookie_fingerprint(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest() if cookie else ""


class CheckinSession(models.Model):
    """A user's York `prestostudent_session` cookie and when to refresh it next."""

    class Result(models.TextChoices):
        NORMAL = "Normal"
        FAIL = "Fail"

    user = models.OneToOneField(CheckoutUser, on_delete=models.CASCADE, related_name="session")
    cookie = EncryptedTextField(blank=True)
    # Fingerprint of the cookie CheckOut holds as far as we know. When a fetch brings
    # a different one the user re-imported it, and CheckOut's wins; when it is the
    # same, our (possibly newer, rotated but not yet pushed) cookie is kept.
    upstream_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    # When that fingerprint was last set (an import or our push): a user list read
    # before it is older than what we know and must not bring a dead cookie back.
    upstream_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_result = models.CharField(max_length=10, blank=True, choices=Result.choices)
    last_message = models.CharField(max_length=500, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    next_refresh_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="Due time in the current cycle; the beat refreshes it then."
    )

    class Meta:
        ordering = ["user__email"]
        verbose_name = "check-in session"

    def __str__(self):
        return f"session of {self.user.email}"

    @property
    def has_cookie(self):
        return bool(self.cookie)


class SessionRefresh(models.Model):
    """One refresh attempt: what the page said and what we told CheckOut."""

    session = models.ForeignKey(CheckinSession, on_delete=models.CASCADE, related_name="refreshes")
    run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    result = models.CharField(max_length=10, choices=CheckinSession.Result.choices)
    message = models.CharField(max_length=500)
    changed_rows = models.IntegerField(null=True, blank=True, help_text="CheckOut's changedRows for the update.")
    logged_upstream = models.BooleanField(default=False, help_text="Whether CheckOut accepted the log entry.")

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["session", "-created"])]

    def __str__(self):
        return f"{self.result} at {self.created:%Y-%m-%d %H:%M:%S}"
