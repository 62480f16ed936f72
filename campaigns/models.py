"""Netlife portals, what their webshops hold, and SMS campaigns built from it.

Everything synced is keyed on Netlife's uuids under unique constraints, so a
re-run upserts in place. Phone numbers, e-mails and access keys are personal
data: the admin shows them only to users with the view permission, logs only
ever carry counts.
"""

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.functional import LazyObject

from portal.fields import EncryptedTextField
from portal.upstreams import upstream_url


# The export's columns, also the placeholders a message template may use.
CONTACT_COLUMNS = [
    "phone", "contact_name", "contact_email", "phone_source", "message", "sender_id",
    "portal", "brand", "job_uuid", "job_name", "activities", "subject_uuid", "subject_name", "first_name",
    "last_name", "external_id", "group", "buyer", "registered_user_uuid", "registered_email", "access_key",
    "gallery_url", "access_url",
]


# Placeholders only a message has (not export columns): a household's children with
# their links, their names, and one subject's link (campaigns.services.messages).
MESSAGE_ONLY_PLACEHOLDERS = ["children", "names", "link"]


def validate_message_template(value):
    placeholders = CONTACT_COLUMNS + MESSAGE_ONLY_PLACEHOLDERS
    try:
        value.format_map(dict.fromkeys(placeholders, ""))
    except KeyError as exc:
        raise ValidationError(f"Unknown placeholder {exc}; use any of: {', '.join(placeholders)}.") from exc
    except (ValueError, IndexError, AttributeError, TypeError) as exc:
        # TypeError: an index into a text value, e.g. "{buyer[x]}"
        raise ValidationError(f"Not a valid template: {exc}") from exc


class _ExportStorage(LazyObject):
    """Private storage for contact CSVs (never under MEDIA_URL): owner-only files
    locally, or the project's default storage (S3) when configured (campaigns.conf)."""

    def _setup(self):
        from . import conf

        self._wrapped = conf.export_storage()


export_storage = _ExportStorage()


def _export_storage():
    return export_storage


# --- portal settings (issue 11: validated, brand editable) -------------------

class Brand(models.TextChoices):
    GENERATIONS = "generations", "Generations"
    LEGACY = "legacy", "Legacy"
    OTHER = "other", "Other"


# The seed's client (campaign_core/config.py ALLOWED_PORTALS and its brand
# detection): which brand each known portal belongs to. nowandforeverphoto is a
# Generations shop and the academies' portals are Legacy, which no substring
# heuristic gets right.
KNOWN_BRANDS = {
    "nowandforeverphoto": Brand.GENERATIONS, "generationsphotos": Brand.GENERATIONS, "nowandgen": Brand.GENERATIONS,
    "legacyseniorphotos": Brand.LEGACY, "legacyphoto": Brand.LEGACY, "legacyphotos": Brand.LEGACY,
    "westpointportraits": Brand.LEGACY, "midshipmenportraits": Brand.LEGACY, "coastguardportraits": Brand.LEGACY,
}


def suggest_brand(key):
    """The brand a new portal probably belongs to; staff can change it."""
    key = (key or "").lower()
    if key in KNOWN_BRANDS:
        return KNOWN_BRANDS[key]
    if "gen" in key:
        return Brand.GENERATIONS
    if "legacy" in key or key.endswith("portraits"):
        return Brand.LEGACY
    return Brand.OTHER


def validate_positive_rate(value):
    if value is None or math.isnan(value) or math.isinf(value) or value <= 0:
        raise ValidationError("Must be a number of requests per second above 0.")


def validate_calling_code(value):
    import phonenumbers

    code = str(value or "").strip().lstrip("+")
    if not code.isdigit() or int(code) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        raise ValidationError(f"{value!r} is not a country calling code (e.g. 1 for US/Canada, 47 for Norway).")


def validate_basic_auth_text(value):
    # HTTP Basic carries latin-1 only (requests encodes it so): anything else
    # would be accepted here and then break every run.
    try:
        str(value).encode("latin-1")
    except UnicodeEncodeError as exc:
        # The message names the rule, never the character: the value may be a password.
        raise ValidationError("HTTP Basic carries latin-1 characters only; this value has one outside it.") from exc


def validate_basic_auth_username(value):
    validate_basic_auth_text(value)
    if ":" in str(value):
        raise ValidationError("HTTP Basic cannot carry a ':' in the username.")


class Portal(models.Model):
    """One Netlife brand webshop, e.g. nowandforeverphoto.shop."""

    Brand = Brand

    key = models.SlugField(max_length=60, unique=True, help_text="The portal's host name without .shop, e.g. nowandforeverphoto.")
    name = models.CharField(max_length=120, blank=True)
    base_url = models.URLField(
        blank=True,
        help_text="API root, e.g. https://nowandforeverphoto.shop/api/v1. Blank: the sandbox (or $NETLIFE_URL) prefix for this portal.",
    )
    shop_url = models.URLField(blank=True, help_text="Public shop for gallery links; blank: https://<key>.shop.")
    brand = models.CharField(
        max_length=20, choices=Brand.choices, blank=True,
        help_text="Generations or Legacy (exported with each contact). Blank on a new portal: suggested from its key.",
    )
    username = models.CharField(max_length=200, blank=True, validators=[validate_basic_auth_username])
    password = EncryptedTextField(blank=True, validators=[validate_basic_auth_text])
    enabled = models.BooleanField(default=True, help_text="Synced by the daily schedule.")
    max_concurrent_jobs = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Jobs fetched in parallel, 1-20 (the seed used 5–10).",
    )
    requests_per_second = models.FloatField(
        default=8.0, validators=[validate_positive_rate],
        help_text="Our pace against this portal, above 0 (Netlife's hinted limit is 8/s).",
    )
    create_missing_access_keys = models.BooleanField(
        default=False, help_text="Ask Netlife to create a gallery access key for subjects with images that have none."
    )
    default_country_code = models.CharField(max_length=4, default="1", validators=[validate_calling_code],
                                            help_text="Calling code for numbers without one (1 = US/CA).")
    last_synced_at = models.DateTimeField(null=True, blank=True, help_text="Set only by a sync in which every job succeeded.")

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return self.name or self.key

    def save(self, *args, **kwargs):
        if not self.brand:
            self.brand = suggest_brand(self.key)
        super().save(*args, **kwargs)

    HISTORY_COUNTERS = ("subjects_total", "access_keys_failed", "api_calls_total", "api_calls_failed", "set_aside")

    def sync_history(self, limit=20):
        """This portal's sync runs, newest first: its counters over time."""
        from portal.models import SyncRun

        return SyncRun.objects.filter(app="campaigns", operation="sync_portal", target=self.key).order_by("-created")[:limit]

    @property
    def api_url(self):
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"{upstream_url('netlife')}/{self.key}/api/v1"

    @property
    def public_url(self):
        return (self.shop_url or f"https://{self.key}.shop").rstrip("/")


class Job(models.Model):
    """A photo shoot / customer project."""

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="jobs")
    uuid = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    subjects_count = models.PositiveIntegerField(default=0)
    buyers_count = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)
    # The last sync's fingerprints of this job's replies (services/sync_store.py,
    # page_state): a subject page whose bytes did not change is not parsed again.
    sync_pages = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["portal", "name"]
        constraints = [models.UniqueConstraint(fields=["portal", "uuid"], name="campaigns_job_natural_key")]

    def __str__(self):
        return self.name or self.uuid


class Activity(models.Model):
    """An activity of a job, with its sales status (we sync those in the webshop)."""

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="activities")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="activities")
    uuid = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=60, blank=True)
    starting = models.DateTimeField(null=True, blank=True, help_text="When the activity entered its status.")
    ending = models.DateTimeField(null=True, blank=True)
    in_webshop = models.BooleanField(default=True, help_text="In the last sync's in-webshop list.")
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["portal", "-starting"]
        verbose_name_plural = "activities"
        constraints = [models.UniqueConstraint(fields=["portal", "uuid"], name="campaigns_activity_natural_key")]

    def __str__(self):
        return self.name or self.uuid


class RegisteredUser(models.Model):
    """A registered parent / buyer account, linked to subjects through /jobs/{job}/users."""

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="registered_users")
    uuid = models.CharField(max_length=64)
    username = models.CharField(max_length=254, blank=True)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=254, blank=True)
    phone_number = models.CharField(max_length=40, blank=True)
    details_fetched_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True, help_text="Last linked to a subject by a sync (retention).")

    class Meta:
        ordering = ["portal", "username"]
        constraints = [models.UniqueConstraint(fields=["portal", "uuid"], name="campaigns_user_natural_key")]

    def __str__(self):
        return self.username or self.uuid


class Subject(models.Model):
    """A person photographed in a job: a buyer when they have an order."""

    portal = models.ForeignKey(Portal, on_delete=models.CASCADE, related_name="subjects")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="subjects")
    uuid = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    external_id = models.CharField(max_length=120, blank=True)
    group = models.CharField(max_length=120, blank=True)
    country = models.CharField(max_length=60, blank=True)
    phone_number = models.CharField(max_length=40, blank=True)
    email = models.CharField(max_length=254, blank=True)
    delivery_contacts = models.JSONField(default=list, blank=True, help_text="delivery_1 / delivery_2: name, email_address, mobile_phone.")
    has_order = models.BooleanField(default=False, db_index=True, help_text="A buyer (has an order).")
    image_count = models.PositiveIntegerField(default=0)
    registered_user = models.ForeignKey(RegisteredUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="subjects")
    access_key = EncryptedTextField(blank=True, help_text="Gallery code; grants access to the subject's photos.")
    access_key_checked_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When Netlife last confirmed the key (or that there is none); re-checked past NETLIFE_ACCESS_KEY_MAX_AGE_HOURS.",
    )
    activities = models.ManyToManyField(Activity, through="SubjectActivity", related_name="subjects", blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["portal", "job", "last_name", "first_name"]
        constraints = [models.UniqueConstraint(fields=["portal", "uuid"], name="campaigns_subject_natural_key")]

    def __str__(self):
        return self.name or f"{self.first_name} {self.last_name}".strip() or self.uuid


class SubjectActivity(models.Model):
    """Which activities a subject's images were taken in."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE)
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subject", "activity"], name="campaigns_subject_activity_unique")]


class SendState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"


class Campaign(models.Model):
    """An SMS campaign: who to text (portals, audience, activities) and what."""

    class Audience(models.TextChoices):
        BUYERS = "buyers", "Buyers"
        NON_BUYERS = "non_buyers", "Non-buyers"
        ALL = "all", "All subjects"

    name = models.CharField(max_length=200, unique=True)
    portals = models.ManyToManyField(Portal, related_name="campaigns")
    audience = models.CharField(max_length=20, choices=Audience.choices, default=Audience.NON_BUYERS)
    activities = models.ManyToManyField(
        Activity, blank=True, related_name="campaigns",
        help_text="Only subjects photographed in these activities. None selected: every activity now in the webshop.",
    )
    message_template = models.CharField(
        max_length=480, default="Your photos are ready!", validators=[validate_message_template],
        help_text="Placeholders like {first_name} or {access_url} are filled in per contact.",
    )
    sender_id = models.CharField(max_length=11, default="Netlife", help_text="Alphanumeric SMS sender (max 11 characters).")
    created = models.DateTimeField(auto_now_add=True)
    export_file = models.FileField(storage=_export_storage, upload_to="", blank=True, editable=False)
    export_built_at = models.DateTimeField(null=True, blank=True, editable=False)
    export_contacts = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # --- sending (campaigns/services/sending.py) ---
    one_message_per_subject = models.BooleanField(
        default=False, help_text="One text per subject instead of one per phone number naming every child.")
    skip_subjects_without_key = models.BooleanField(
        default=False, help_text="Leave out subjects with no gallery access key (else their link is the gallery URL).")
    sms_account = models.ForeignKey("campaigns.SmsAccount", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="campaigns", help_text="Blank: the first enabled SMS account.")
    send_state = models.CharField(max_length=12, choices=SendState.choices, default=SendState.DRAFT, editable=False)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False)
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    skipped = models.JSONField(default=dict, blank=True, editable=False, help_text="Contacts left out at approval, by reason.")

    class Meta:
        ordering = ["-created"]
        permissions = [("send_campaign", "Can approve, send and cancel a campaign's SMS")]

    def __str__(self):
        return self.name


class ExportDownload(models.Model):
    """Who downloaded which campaign's contact CSV, when (personal data leaving the portal)."""

    class Via(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"

    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="downloads")
    campaign_name = models.CharField(max_length=200, help_text="Kept when the campaign is deleted.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    via = models.CharField(max_length=10, choices=Via.choices)
    file_name = models.CharField(max_length=255)
    contacts = models.PositiveIntegerField(null=True, blank=True)
    downloaded_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-downloaded_at"]

    def __str__(self):
        return f"{self.username} downloaded {self.campaign_name} at {self.downloaded_at:%Y-%m-%d %H:%M}"


@receiver(post_delete, sender=Campaign)
def _delete_export_file(sender, instance, **kwargs):
    # The CSV holds personal data: it goes with its campaign (also on bulk delete).
    if instance.export_file:
        instance.export_file.storage.delete(instance.export_file.name)


from .sms_models import CampaignMessage, OptOut, SmsAccount, StatusCallback  # noqa: E402,F401 (the SMS side)
