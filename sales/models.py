"""JD Sports estate, its sales, and the Helix outbox that posts each sale once."""

from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

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


def default_time_zone():
    return settings.TIME_ZONE


def validate_time_zone(value):
    """An IANA zone name the system's tz database knows ("Europe/London", not "BST")."""
    # ZoneInfo alone would also accept file paths; the list holds the IANA names only.
    if value != "UTC" and value not in available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name (for example Europe/London).")


class Store(models.Model):
    store_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    email = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(
        max_length=64, default=default_time_zone, validators=[validate_time_zone],
        help_text="IANA time zone of the store (Europe/London): its sales are counted in its local days.",
    )
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["store_id"]

    def __str__(self):
        return f"{self.name} ({self.store_id})"

    @property
    def zone(self):
        return ZoneInfo(self.time_zone)


class PointOfSale(models.Model):
    pos_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=200)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="points_of_sale")
    camera_id = models.CharField(max_length=100, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pos_id"]
        verbose_name = "point of sale"
        verbose_name_plural = "points of sale"

    def __str__(self):
        return f"{self.name} ({self.pos_id})"


class Camera(models.Model):
    camera_id = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    location = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=50, blank=True)
    model = models.CharField(max_length=100, blank=True)
    pos = models.ForeignKey(PointOfSale, null=True, blank=True, on_delete=models.SET_NULL, related_name="cameras")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["camera_id"]

    def __str__(self):
        return self.name or self.camera_id


class CameraMapping(models.Model):
    """Which Verkada camera films a JD Sports camera's till. A sale is posted to Helix
    only through this table: a JD camera without a row is set aside, never guessed."""

    class Source(models.TextChoices):
        MANUAL = "manual", "entered by hand"
        ID = "id", "prefilled: same id in Verkada"
        NAME = "name", "prefilled: same name in Verkada"

    jd_camera_id = models.CharField(max_length=100, unique=True, verbose_name="JD camera id")
    verkada_camera_id = models.CharField(max_length=100, verbose_name="Verkada camera id")
    verkada_name = models.CharField(max_length=200, blank=True, help_text="The Verkada device's name when prefilled.")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["jd_camera_id"]

    def __str__(self):
        return f"{self.jd_camera_id} → {self.verkada_camera_id}"

    @classmethod
    def lookup(cls, jd_camera_ids=None):
        """JD camera id -> Verkada camera id."""
        rows = cls.objects.all() if jd_camera_ids is None else cls.objects.filter(jd_camera_id__in=set(jd_camera_ids))
        return dict(rows.values_list("jd_camera_id", "verkada_camera_id"))


class Item(models.Model):
    item_id = models.BigIntegerField(unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.IntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item_id"]

    def __str__(self):
        return self.name


class Transaction(models.Model):
    """One sale. Raw upstream ids are kept beside the foreign keys so a sale whose
    camera or item is not (yet) known is still stored and can be linked later."""

    transaction_id = models.CharField(max_length=64, unique=True)
    transaction_date = models.DateTimeField(db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    item_ref = models.CharField(max_length=64, blank=True)
    camera_ref = models.CharField(max_length=100, blank=True)
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions")
    camera = models.ForeignKey(Camera, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions")
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="transactions")
    thumbnail_url = models.URLField(max_length=1000, blank=True)
    thumbnail_expires = models.DateTimeField(null=True, blank=True)
    footage_url = models.URLField(max_length=1000, blank=True)
    links_fetched_at = models.DateTimeField(null=True, blank=True)
    voided = models.BooleanField(default=False, help_text="JD Sports voided the sale; its Helix event is removed.")
    synced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-transaction_date"]
        indexes = [models.Index(fields=["store", "transaction_date"])]

    def __str__(self):
        return f"#{self.transaction_id}"

    @property
    def time_ms(self):
        # transaction_date is an aware instant: its epoch does not depend on any zone.
        return int(self.transaction_date.timestamp() * 1000)

    @property
    def local_time(self):
        """The sale's time where it happened (its store's zone)."""
        zone = self.store.zone if self.store else timezone.get_default_timezone()
        return self.transaction_date.astimezone(zone)


class SyncCursor(models.Model):
    """Where the incremental sync of a source got to. Moved only in the same
    database transaction as the rows it covers."""

    source = models.CharField(max_length=50, unique=True)
    watermark = models.DateTimeField(help_text="Everything before this has been synced.")
    updated = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.source} @ {self.watermark:%Y-%m-%d %H:%M:%S}"


class HelixEventType(models.Model):
    """A Helix event type and how a sale fills its attributes (the seed's
    "dynamic event types"). Several may be active: the routing rules choose one per
    sale, and the default takes the sales no rule matches."""

    name = models.CharField(max_length=200, unique=True)
    event_schema = models.JSONField(default=dict, help_text='Attribute name -> "string" | "integer" | "float" | "boolean".')
    attribute_mapping = models.JSONField(
        default=dict, help_text="Attribute name -> sale field (transaction_id, amount, item_name, store_name, …)."
    )
    active = models.BooleanField(
        default=True, help_text="New sales may be posted as this type (an inactive type's routing rules are skipped; "
        "its events already in Verkada are still updated and removed as this type)."
    )
    is_default = models.BooleanField(
        default=False, verbose_name="default",
        help_text="Sales that no routing rule matches are posted as this type (at most one; it must be active). "
        "With no default, such a sale is set aside, never posted as a guess.",
    )
    event_type_uid = models.CharField(max_length=100, blank=True, help_text="Set once Verkada has the type.")
    synced_schema = models.JSONField(null=True, blank=True, editable=False, help_text="The schema Verkada last accepted.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True),
                                               name="sales_one_default_event_type")]

    def __str__(self):
        return self.name

    def problems(self, *, schema, attribute_mapping, active, is_default):
        """Why this type, edited so (admin form or API), cannot be saved, by field
        (`attribute_mapping`, `default`); empty when it can."""
        from .mapping import schema_errors

        problems = {"attribute_mapping": schema_errors(schema, attribute_mapping), "default": []}
        if is_default and not active:
            problems["default"].append("The default event type must be active.")
        other_default = type(self).objects.filter(is_default=True).exclude(pk=self.pk).first()
        if is_default and other_default:
            problems["default"].append(f"{other_default.name!r} is the default: unmark it first (one default at most).")
        if self.pk and not active and self.routing_rules.filter(enabled=True).exists():
            names = ", ".join(self.routing_rules.filter(enabled=True).values_list("name", flat=True))
            problems["default"].append(f"Routing rules send sales to this type ({names}): disable them or point them "
                                       "elsewhere before deactivating it.")
        return {field: errors for field, errors in problems.items() if errors}

    def note_rename(self, name):
        """Verkada keeps the uid; the rename is sent with the next schema sync."""
        if self.pk and self.event_type_uid and name != self.name:
            self.synced_schema = None


class HelixRoutingRule(models.Model):
    """Which event type a sale is posted as: the enabled rules, lowest priority first;
    the first that matches chooses (a return, a void, a sale over a threshold …).
    A sale no rule matches goes to the default type; a void no rule matches gets no
    event (a void removes its sale's event)."""

    class Match(models.TextChoices):
        SALE = "sale", "a sale (amount 0 or more)"
        RETURN = "return", "a return (negative amount)"
        VOID = "void", "a void (voided by JD Sports)"

    name = models.CharField(max_length=200, unique=True)
    priority = models.PositiveIntegerField(default=100, help_text="Lower first; between equal priorities, the older rule.")
    match = models.CharField(max_length=10, choices=Match.choices, default=Match.SALE)
    amount_at_least = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)],
        help_text="Only when the amount, without its sign, is at least this (a sale over a threshold, a large "
        "return); empty: any amount.",
    )
    event_type = models.ForeignKey(HelixEventType, on_delete=models.PROTECT, related_name="routing_rules",
                                   help_text="Matching sales are posted as this type (skipped while it is inactive).")
    enabled = models.BooleanField(default=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "pk"]
        verbose_name = "Helix routing rule"

    def __str__(self):
        return self.name

    def clean(self):
        problem = self.type_problem(self.event_type if self.event_type_id else None)
        if problem:
            raise ValidationError({"event_type": problem})

    @staticmethod
    def type_problem(event_type):
        """Why a rule may not send sales to this type (admin form and API); None when it may."""
        if event_type is not None and not event_type.active:
            return f"Event type {event_type.name!r} is not active: activate it first, or choose an active type."
        return None

    def matches(self, sale):
        """Does this rule take `sale` (a Transaction)?"""
        if self.match == self.Match.VOID:
            kind_fits = sale.voided
        elif self.match == self.Match.RETURN:
            kind_fits = not sale.voided and sale.amount < 0
        else:
            kind_fits = not sale.voided and sale.amount >= 0
        return kind_fits and (self.amount_at_least is None or abs(sale.amount) >= self.amount_at_least)

    @staticmethod
    def describe(sale):
        """The sale as the rules see it, for a reason given to a person."""
        kind = "void" if sale.voided else "return" if sale.amount < 0 else "sale"
        return f"{kind} of {sale.amount}"


class HelixOutbox(models.Model):
    """One row per sale: the Helix event to post. Claimed before the call,
    marked after it; a stale claim (a crash in between) is checked upstream
    before posting again."""

    class Status(models.TextChoices):
        PENDING = "pending"
        POSTING = "posting"
        POSTED = "posted"
        EXPIRED = "expired", "too old for Helix"
        FAILED = "failed", "refused (needs a person)"
        VOIDED = "voided", "voided (no event)"

    class Change(models.TextChoices):
        NONE = "", "none"
        UPDATE = "update", "attributes to update (PATCH)"
        MOVE = "move", "camera or time changed: old event to delete, then post"
        DELETE = "delete", "sale voided: event to delete"

    transaction = models.OneToOneField(Transaction, on_delete=models.CASCADE, related_name="helix")
    camera_id = models.CharField(max_length=100)
    time_ms = models.BigIntegerField(help_text="Event time; nudged by a millisecond if the camera already has an event then.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    event_type_uid = models.CharField(
        max_length=100, blank=True, help_text="The type it is posted as: chosen by the routing rules (or re-targeted) "
        "when first claimed, and kept for its re-posts, updates and removal.")
    route = models.CharField(max_length=250, blank=True, help_text="What chose its type: a routing rule, the default, "
                             "or a re-target in the admin.")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    claim_token = models.CharField(max_length=64, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    check_at = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="A POST whose reply was lost (timeout, reset, 5xx) waits `posting` until this time; then a GET "
        "decides whether Verkada has the event (posted) or not (posted again).",
    )
    posted_at = models.DateTimeField(null=True, blank=True)
    pending_change = models.CharField(
        max_length=10, choices=Change.choices, blank=True, default="", db_index=True,
        help_text="A change of the sale after posting, applied by the next posting run.",
    )
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Helix outbox entry"
        verbose_name_plural = "Helix outbox"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["camera_id", "time_ms"], name="sales_outbox_camera_time_unique")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return f"{self.transaction_id} → {self.camera_id}@{self.time_ms} ({self.status})"

    @classmethod
    def retry_now(cls, queryset):
        """Make refused or waiting rows due at once; posted, expired and in-flight rows
        are left as they are (Helix would refuse an expired one again)."""
        return queryset.filter(status__in=[cls.Status.PENDING, cls.Status.FAILED]).exclude(camera_id="").update(
            status=cls.Status.PENDING, next_attempt_at=timezone.now(), last_error=""
        )
