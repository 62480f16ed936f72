"""Credentials and pacing for both upstreams."""

from django.db import models

from portal.fields import EncryptedTextField
from portal.models import SingletonSettings


class SalesSettings(SingletonSettings):
    """Credentials and pacing for both upstreams, edited in the admin."""

    jdsports_api_key = EncryptedTextField(blank=True, help_text="JD Sports API key (sent as X-API-Key).")
    verkada_api_key = EncryptedTextField(blank=True, help_text="Verkada API key with Helix Read/Write.")
    verkada_token = EncryptedTextField(blank=True, editable=False, help_text="Short-lived API token minted from the key.")
    verkada_token_expires = models.DateTimeField(null=True, blank=True, editable=False)
    verkada_requests_per_minute = models.PositiveIntegerField(
        default=300, help_text="The organisation's Verkada rate limit (300/min unless Verkada raised it)."
    )
    verkada_rate_headroom_percent = models.PositiveSmallIntegerField(
        default=10, help_text="Stay this far under the limit, for other callers and clock jitter."
    )
    posting_concurrency = models.PositiveSmallIntegerField(default=4, help_text="Helix posts in flight per worker.")
    footage_rate_share_percent = models.PositiveSmallIntegerField(
        default=20, help_text="At most this share of the Verkada rate limit goes to footage and thumbnail links; "
        "Helix posting may use the rest, and all of it while no links are fetched."
    )
    lookback_hours = models.PositiveIntegerField(
        default=3, help_text="Each sync reads this far behind its watermark again, for sales reported late or "
        "corrected (stored idempotently; a posted sale that changed gets its Helix event updated)."
    )
    backfill_max_days = models.PositiveIntegerField(default=31, help_text="The longest date range one backfill may ask for.")
    initial_lookback_hours = models.PositiveIntegerField(default=1, help_text="How far back the very first sync reaches.")
    settle_seconds = models.PositiveIntegerField(
        default=60, help_text="Sales newer than this are left for the next sync (a till may report late)."
    )
    reconcile_delay_seconds = models.PositiveIntegerField(
        default=120,
        help_text="After a Helix POST timed out or lost its reply, wait this long (longer than Verkada may take to "
        "accept it) before asking Verkada whether the event landed; only then is it posted again.",
    )
    reconcile_window_hours = models.PositiveIntegerField(
        default=24, help_text="The periodic reconciliation compares the events of this many hours with Verkada."
    )
    verkada_key_problem = models.TextField(
        blank=True, editable=False, help_text="What Verkada last said about the key (401/403), until a call succeeds."
    )
    verkada_key_problem_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "sales settings"
        verbose_name_plural = "sales settings"

    def __str__(self):
        return "Sales settings"

    def save(self, *args, **kwargs):
        """A changed Verkada key drops the token minted from the old one (and its problem),
        so the next call mints from the new key."""
        if self.pk:
            stored = type(self).objects.filter(pk=self.pk).first()
            if stored is not None and stored.verkada_api_key != self.verkada_api_key:
                self.verkada_token, self.verkada_token_expires = "", None
                self.verkada_key_problem, self.verkada_key_problem_at = "", None
                update_fields = kwargs.get("update_fields")
                if update_fields is not None:
                    kwargs["update_fields"] = set(update_fields) | {
                        "verkada_token", "verkada_token_expires", "verkada_key_problem", "verkada_key_problem_at"}
        super().save(*args, **kwargs)
