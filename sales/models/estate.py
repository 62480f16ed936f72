"""JD Sports estate and its sales, and where the sync got to."""

from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


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
        help_text="IANA time zone of the store (Europe/London): its tills' local clock times are read in it, and its "
        "sales counted in its local days. Changing it re-times the sales its tills reported without an offset "
        "(and moves their Helix events).",
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
    transaction_date = models.DateTimeField(db_index=True, help_text="The instant of the sale (UTC).")
    till_clock = models.CharField(
        max_length=32, blank=True, editable=False,
        help_text="The till's local clock as JD Sports reported it, without an offset (read in the store's zone, "
        "and again if the zone changes); empty when JD gave an offset.",
    )
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
