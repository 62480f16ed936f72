"""Helix event types, the routing rules that choose one per sale, and the outbox that posts each sale once."""

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .estate import Transaction


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
        default=True, help_text="New sales may be posted as this type. Inactive: its routing rules are skipped and no "
        "sale is posted as it; its events already in Verkada stay, but one whose sale is corrected goes to the type "
        "the rules choose now (deleted, then posted as that type: counter `retyped`), and one whose sale is voided is "
        "removed."
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
        from ..mapping import sale_id_errors, schema_errors

        problems = {"attribute_mapping": schema_errors(schema, attribute_mapping) or sale_id_errors(attribute_mapping),
                    "default": []}
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
        RETARGET = "retarget", "re-targeted: event to delete, then post as the new type"

    transaction = models.OneToOneField(Transaction, on_delete=models.CASCADE, related_name="helix")
    camera_id = models.CharField(max_length=100)
    time_ms = models.BigIntegerField(help_text="Event time; nudged by a millisecond if the camera already has an event then.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    event_type_uid = models.CharField(
        max_length=100, blank=True, help_text="The type it is posted as: chosen by the routing rules as they are "
        "each time it is claimed for a POST (a type chosen by a re-target is kept), and kept for the check of a "
        "lost reply, its updates and its removal.")
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
    retarget_to = models.CharField(
        max_length=100, blank=True,
        help_text="A posted row re-targeted in the admin: the type its event moves to at the next posting run.",
    )
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "Helix outbox entry"
        verbose_name_plural = "Helix outbox"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["camera_id", "time_ms"], name="sales_outbox_camera_time_unique")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            # The posting run's sweep (the last hour) and the reconciliation (the last day) pick
            # posted events by when they were posted.
            models.Index(fields=["status", "posted_at"], name="sales_outbox_status_posted"),
        ]

    def __str__(self):
        return f"{self.transaction_id} → {self.camera_id}@{self.time_ms} ({self.status})"

    @classmethod
    def retry_now(cls, queryset):
        """Make refused or waiting rows due at once; posted, expired and in-flight rows
        are left as they are (Helix would refuse an expired one again)."""
        return queryset.filter(status__in=[cls.Status.PENDING, cls.Status.FAILED]).exclude(camera_id="").update(
            status=cls.Status.PENDING, next_attempt_at=timezone.now(), last_error=""
        )
