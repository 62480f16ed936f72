"""A seller's authorisation of our app on one marketplace, and CSV uploads."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.fields import EncryptedTextField


class Platform(models.TextChoices):
    LAZADA = "lazada", "Lazada"
    SHOPEE = "shopee", "Shopee"


class Connection(models.Model):
    """One shop (Shopee) or seller account (Lazada) connected through OAuth.

    Tokens are encrypted and never shown; `refresh_due_at` is the due-time column
    the beat's refresh tick polls (no long Celery countdowns). `orders_cursor` is
    the update-time high-water mark of the orders already in the warehouse; it
    only moves in the same transaction as the rows it covers.
    """

    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected", "not connected"
        CONNECTED = "connected"
        EXPIRED = "expired", "expired: reconnect"
        ERROR = "error"

    platform = models.CharField(max_length=20, choices=Platform.choices)
    name = models.CharField(max_length=200, help_text="A label for staff, e.g. 'LA Collections SG'.")
    app_key = models.CharField(
        max_length=100, help_text="Lazada app key, or Shopee partner id."
    )
    app_secret = EncryptedTextField(blank=True, help_text="Lazada app secret, or Shopee partner key.")
    country = models.CharField(max_length=4, blank=True, help_text="Lazada venture (sg, my, th, vn, ph, id).")
    shop_id = models.CharField(
        max_length=64, blank=True, help_text="Lazada seller id or Shopee shop id; set by the OAuth callback."
    )
    shop_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NOT_CONNECTED)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_due_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When the beat's tick refreshes the access token."
    )
    token_refreshed_at = models.DateTimeField(null=True, blank=True)
    oauth_state = models.CharField(max_length=64, blank=True, help_text="CSRF state of the pending authorisation.")
    # The callback parks the single-use code here (encrypted) for connect_account,
    # so it never lands in a run's params or log.
    oauth_code = EncryptedTextField(blank=True)
    oauth_shop_id = models.CharField(max_length=64, blank=True)
    oauth_main_account_id = models.CharField(max_length=64, blank=True)
    main_account_id = models.CharField(
        max_length=64, blank=True, help_text="Shopee main account whose grant connected this shop, if any."
    )
    # A refresh claims the connection with this lease (a conditional UPDATE), then
    # calls the marketplace with no database transaction open; a second worker
    # waits for the lease instead of spending the same single-use refresh token.
    refresh_lease_until = models.DateTimeField(null=True, blank=True)
    refresh_lease_owner = models.CharField(max_length=100, blank=True)
    connect_failed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last Connect / Reconnect attempt failed (the shop kept its tokens)."
    )
    connect_error = models.TextField(blank=True, help_text="Why the last Connect / Reconnect attempt failed.")
    orders_cursor = models.DateTimeField(
        null=True, blank=True, help_text="Orders updated up to here are in the warehouse."
    )
    orders_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When an order sync of this shop last finished (some orders may be set aside)."
    )
    products_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="When a product sync of this shop last finished (some may be set aside)."
    )
    last_error = models.TextField(blank=True)
    sync_enabled = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["platform", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "shop_id"], condition=~Q(shop_id=""), name="marketplace_connection_one_per_shop"
            )
        ]

    def __str__(self):
        return f"{self.get_platform_display()}: {self.name}"

    # --- token state (what staff may see instead of the tokens) ---------------
    @property
    def has_tokens(self):
        return bool(self.access_token and self.refresh_token)

    def access_valid(self, now=None):
        now = now or timezone.now()
        return bool(self.access_token and self.access_expires_at and self.access_expires_at > now)

    def refresh_valid(self, now=None):
        now = now or timezone.now()
        return bool(self.refresh_token and self.refresh_expires_at and self.refresh_expires_at > now)

    def token_status(self, now=None):
        now = now or timezone.now()
        if not self.has_tokens:
            return "not connected"
        if self.access_valid(now):
            left = self.access_expires_at - now
            return f"valid for {_human(left)}"
        if self.refresh_valid(now):
            return "access token expired (refreshable)"
        return "expired: reconnect"

    def new_oauth_state(self):
        self.oauth_state = secrets.token_urlsafe(24)
        self.save(update_fields=["oauth_state", "updated"])
        return self.oauth_state


def _human(delta: timedelta):
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400}d {seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 60}m {seconds % 60}s"


class CsvUpload(models.Model):
    """An uploaded order export. The file lives in the storage API (never in a
    column); a background run validates it and, in load mode, loads it all or
    nothing. The run's progress is the upload's progress."""

    class Kind(models.TextChoices):
        ORDERS = "orders", "order export"
        TRAFFIC = "traffic", "traffic report (per day and product)"
        ACTIVITY = "activity", "activity report (per day)"

    class Mode(models.TextChoices):
        LOAD = "load", "validate and load"
        VALIDATE = "validate", "validate only"

    class Status(models.TextChoices):
        PENDING = "pending", "pending (queued)"
        CHECKING = "checking", "checking rows"
        LOADING = "loading"
        VALID = "valid", "valid (validate only; nothing loaded)"
        LOADED = "loaded"
        REJECTED = "rejected", "rejected (nothing loaded)"
        FAILED = "failed", "failed (nothing loaded; see its run)"
        UNDONE = "undone", "undone (its rows were deleted)"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ORDERS,
                            help_text="Which Seller Center export the file is.")
    platform = models.CharField(max_length=20, choices=Platform.choices)
    shop = models.CharField(max_length=200, default="csv", help_text="Shop label the rows belong to.")
    filename = models.CharField(max_length=255, blank=True)
    file = models.FileField(upload_to="marketplace/uploads/%Y/%m/", max_length=500, blank=True)
    size = models.PositiveBigIntegerField(default=0, help_text="Bytes.")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.LOAD)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    rows_checked = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0, help_text="Rows loaded (order lines, traffic or activity rows).")
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first row problems, each with its file line.")
    run = models.ForeignKey("portal.SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                            help_text="The run that read it last.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self):
        return f"{self.filename or 'upload'} #{self.pk} ({self.status})"
