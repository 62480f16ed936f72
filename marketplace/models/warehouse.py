"""The star schema: one fact row per order line, five dimensions.

Every table has a natural key under a unique constraint, so loads are bulk
upserts and a re-run never duplicates a row. Rows that came from the mock
generator carry `is_mock` (facts and shops) so reports can leave them out.
"""

from django.db import models

from .connections import Platform
from .csv_merge import Published


class Source(models.TextChoices):
    API = "api"
    CSV = "csv"
    MOCK = "mock"


class DimDate(models.Model):
    date_key = models.PositiveIntegerField(unique=True, help_text="YYYYMMDD")
    date = models.DateField(unique=True)
    year = models.PositiveSmallIntegerField()
    quarter = models.PositiveSmallIntegerField()
    month = models.PositiveSmallIntegerField()
    day = models.PositiveSmallIntegerField()
    weekday = models.PositiveSmallIntegerField(help_text="1 = Monday")
    iso_week = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["date"]
        verbose_name = "date"

    def __str__(self):
        return self.date.isoformat()


class DimShop(models.Model):
    """The shop/platform dimension (Lazada=lazada, Shopee=shopee)."""

    platform = models.CharField(max_length=20, choices=Platform.choices)
    shop_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    is_mock = models.BooleanField(default=False)

    class Meta:
        ordering = ["platform", "shop_id"]
        verbose_name = "shop"
        constraints = [models.UniqueConstraint(fields=["platform", "shop_id"], name="marketplace_dimshop_natural_key")]

    def __str__(self):
        return f"{self.platform}:{self.name or self.shop_id}"


class DimProduct(models.Model):
    """A seller SKU of one shop. Natural key: (shop, sku): two shops selling the
    same SKU are two products (their names, prices and stock differ)."""

    platform = models.CharField(max_length=20, choices=Platform.choices)
    shop = models.ForeignKey(DimShop, on_delete=models.PROTECT, related_name="products")
    sku = models.CharField(max_length=200)
    name = models.CharField(max_length=500, blank=True)
    variation = models.CharField(max_length=300, blank=True)
    # What the product sync reads from the catalogue (Lazada /products/get,
    # Shopee get_item_list + get_item_base_info); empty for a product known
    # only from order lines or a CSV. A database default: the set-based order
    # load inserts products without these columns.
    item_id = models.CharField(max_length=100, blank=True, db_default="",
                               help_text="The platform's product (item) id.")
    category = models.CharField(max_length=100, blank=True, db_default="", help_text="The platform's category id.")
    price = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, db_default="")
    status = models.CharField(max_length=50, blank=True, db_default="",
                              help_text="The platform's listing status, lower case.")
    stock = models.PositiveIntegerField(null=True, blank=True)
    catalogue_synced_at = models.DateTimeField(null=True, blank=True,
                                               help_text="When the product sync last read it.")
    catalogue_run = models.ForeignKey("portal.SyncRun", null=True, blank=True, on_delete=models.DO_NOTHING,
                                      db_constraint=False, related_name="+", db_index=False,
                                      help_text="The product sync run that last wrote it.")

    class Meta:
        ordering = ["platform", "shop", "sku"]
        verbose_name = "product"
        constraints = [models.UniqueConstraint(fields=["shop", "sku"], name="marketplace_dimproduct_shop_sku")]

    def __str__(self):
        return f"{self.sku} {self.name}".strip()


class DimCustomer(models.Model):
    """Customer and region. `customer_key` is a hash of what identifies the buyer
    (name + phone), so no phone number is stored."""

    platform = models.CharField(max_length=20, choices=Platform.choices)
    customer_key = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=200, blank=True)
    region = models.CharField(max_length=200, blank=True)
    country = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["platform", "name"]
        verbose_name = "customer"
        constraints = [
            models.UniqueConstraint(fields=["platform", "customer_key"], name="marketplace_dimcustomer_natural_key")
        ]

    def __str__(self):
        return f"{self.name or self.customer_key[:8]} ({self.region or self.city})"


class DimStatus(models.Model):
    class Group(models.TextChoices):
        PENDING = "pending"
        SHIPPING = "shipping"
        DELIVERED = "delivered"
        CANCELLED = "cancelled"
        RETURNED = "returned"
        OTHER = "other"

    platform = models.CharField(max_length=20, choices=Platform.choices)
    code = models.CharField(max_length=50, help_text="The marketplace's own status, lower case.")
    group = models.CharField(max_length=20, choices=Group.choices, default=Group.OTHER)

    class Meta:
        ordering = ["platform", "code"]
        verbose_name = "status"
        verbose_name_plural = "statuses"
        constraints = [models.UniqueConstraint(fields=["platform", "code"], name="marketplace_dimstatus_natural_key")]

    def __str__(self):
        return f"{self.platform}:{self.code}"


class FactOrderLine(models.Model):
    """One line of one order. Natural key: (shop, order_id, line_id): the shops
    of one main-account grant may number their orders alike."""

    objects = Published.as_manager()

    platform = models.CharField(max_length=20, choices=Platform.choices)
    order_id = models.CharField(max_length=100)
    line_id = models.CharField(max_length=100)
    # No database constraint on the dimension keys: a deferred FK check costs a
    # trigger query per line at commit; the load resolves the ids in its own
    # transaction instead (see marketplace/warehouse/postgres.py), and
    # PROTECT still guards deletes made through Django.
    # Every index is paid for on each line a load writes (at 1M lines an index on
    # a random-order key costs about as much as the bare COPY of the rows), so only
    # `date` has one of its own: the reports and the weekly e-mail read a date
    # range. A shop's lines are found by the natural key's index (shop first).
    # Statuses are a handful (a filter on one reads most rows anyway), a product or
    # customer filter is an API lookup that a scan answers, and no product or
    # customer row is ever deleted (a PROTECT check would read the facts by key).
    shop = models.ForeignKey(DimShop, on_delete=models.PROTECT, related_name="lines", db_constraint=False,
                             db_index=False)
    date = models.ForeignKey(DimDate, on_delete=models.PROTECT, related_name="lines", help_text="Order date.",
                             db_constraint=False)
    product = models.ForeignKey(DimProduct, on_delete=models.PROTECT, related_name="lines", db_constraint=False,
                                db_index=False)
    customer = models.ForeignKey(DimCustomer, on_delete=models.PROTECT, related_name="lines", db_constraint=False,
                                 db_index=False)
    status = models.ForeignKey(DimStatus, on_delete=models.PROTECT, related_name="lines", db_constraint=False,
                               db_index=False)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=14, decimal_places=2)
    paid_price = models.DecimalField(max_digits=14, decimal_places=2, help_text="What the buyer paid for the line.")
    currency = models.CharField(max_length=3, blank=True)
    ordered_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True, blank=True, help_text="The marketplace's update time.")
    source = models.CharField(max_length=10, choices=Source.choices)
    # Who wrote the row: the upload (CSV) and the run (every source). No database
    # constraint: an upload's rows are deleted by undoing it, not by cascade.
    # Indexed only where set (partial indexes in Meta): the rows of the API pay nothing.
    upload = models.ForeignKey("marketplace.CsvUpload", null=True, blank=True, on_delete=models.DO_NOTHING,
                               db_constraint=False, related_name="+", db_index=False)
    run = models.ForeignKey("portal.SyncRun", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False, related_name="+", db_index=False)
    is_mock = models.BooleanField(default=False)
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-ordered_at", "order_id", "line_id"]
        verbose_name = "order line"
        constraints = [
            # Order id first: the admin's exact search and the API's order_id filter find a line through
            # this index (ON CONFLICT infers it from the column set, whatever the order), and a shop's
            # lines are found by the ordered_at and date indexes with the shop as a filter.
            models.UniqueConstraint(fields=["order_id", "line_id", "shop"], name="marketplace_fact_order_line_shop")
        ]
        indexes = [
            # The admin's and the API's list order (-ordered_at, order_id, line_id) and their date filters: a
            # first page is a backward scan of this index plus an incremental sort of the ties, not a sort of
            # every row; an 8-byte key costs the load far less than the three-column text one it replaced.
            models.Index(fields=["ordered_at"], name="marketplace_fact_ordered_at"),
            models.Index(fields=["upload"], condition=models.Q(upload__isnull=False), name="marketplace_fact_upload"),
            models.Index(fields=["is_mock"], condition=models.Q(is_mock=True), name="marketplace_fact_mock"),
        ]

    def __str__(self):
        return f"{self.platform} {self.order_id}/{self.line_id}"


class FactOrder(models.Model):
    """Order-level money, one row per order (the lines' grain cannot hold it: a
    shipping fee or a voucher belongs to the order, not to a line). Natural key:
    (shop, order_id). Amounts a platform does not give are empty (null), not 0:
    Lazada's order gives its items' price, shipping fee and vouchers (split by
    who funds them when `voucher_seller`/`voucher_platform` come); Shopee's
    order detail gives only the total amount."""

    objects = Published.as_manager()

    platform = models.CharField(max_length=20, choices=Platform.choices)
    shop = models.ForeignKey(DimShop, on_delete=models.PROTECT, related_name="orders")
    order_id = models.CharField(max_length=100)
    date = models.ForeignKey(DimDate, on_delete=models.PROTECT, related_name="orders", help_text="Order date.")
    ordered_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    items_total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                      help_text="The items' price (Lazada `price`).")
    shipping_fee = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    voucher_total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                        help_text="Every voucher on the order (Lazada `voucher`).")
    voucher_seller = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                         help_text="Vouchers the seller funds, where the platform splits them.")
    voucher_platform = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                           help_text="Vouchers the marketplace funds.")
    total_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True,
                                       help_text="What the buyer pays (Shopee `total_amount`; Lazada: items + "
                                                 "shipping - vouchers).")
    payment_method = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    upload = models.ForeignKey("marketplace.CsvUpload", null=True, blank=True, on_delete=models.DO_NOTHING,
                               db_constraint=False, related_name="+")
    run = models.ForeignKey("portal.SyncRun", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False, related_name="+", db_index=False)
    is_mock = models.BooleanField(default=False)
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-ordered_at", "order_id"]
        verbose_name = "order"
        constraints = [models.UniqueConstraint(fields=["shop", "order_id"], name="marketplace_order_shop_order")]

    def __str__(self):
        return f"{self.platform} {self.order_id}"


class CsvStagingLine(models.Model):
    """One checked row of an upload being read: the file streams in here in
    chunks, duplicates and conflicts with API rows are found by SQL, then the
    lines are merged into the facts. Emptied when the upload's run ends."""

    upload_id = models.PositiveIntegerField()
    line_no = models.PositiveIntegerField(help_text="Physical line in the file (the header is line 1).")
    platform = models.CharField(max_length=20)
    shop_id = models.CharField(max_length=200)
    order_id = models.CharField(max_length=100)
    line_id = models.CharField(max_length=100)
    ordered_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True)
    status = models.CharField(max_length=50)
    sku = models.CharField(max_length=200)
    product_name = models.CharField(max_length=500)
    variation = models.CharField(max_length=300)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=14, decimal_places=2)
    paid_price = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    customer_key = models.CharField(max_length=64)
    customer_name = models.CharField(max_length=200)
    city = models.CharField(max_length=200)
    region = models.CharField(max_length=200)
    country = models.CharField(max_length=100)
    # The order-level money the line repeats (None where the file has no such
    # column): staged with the line, checked for agreement across an order's
    # lines and merged into FactOrder by SQL, never held per order in memory.
    shipping_fee = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    voucher_total = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    voucher_seller = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    voucher_platform = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    total_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True)
    payment_method = models.CharField(max_length=100, default="")

    class Meta:
        indexes = [models.Index(fields=["upload_id", "platform", "shop_id", "order_id", "line_id"]),
                   models.Index(fields=["upload_id", "line_no"])]


class FactTraffic(models.Model):
    """Visits per shop, day and product. Natural key: (shop, date, product); a
    product is counted in the shop it was seen in. Conversion = orders / visitors
    (computed in the reports, never stored)."""

    shop = models.ForeignKey(DimShop, on_delete=models.PROTECT, related_name="traffic")
    date = models.ForeignKey(DimDate, on_delete=models.PROTECT, related_name="traffic")
    product = models.ForeignKey(DimProduct, on_delete=models.PROTECT, related_name="traffic")
    visitors = models.PositiveIntegerField(default=0)
    page_views = models.PositiveIntegerField(default=0)
    add_to_cart = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=10, choices=Source.choices)
    # The upload (CSV) and the run that wrote the row; see FactOrderLine.
    upload = models.ForeignKey("marketplace.CsvUpload", null=True, blank=True, on_delete=models.DO_NOTHING,
                               db_constraint=False, related_name="+")
    run = models.ForeignKey("portal.SyncRun", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False, related_name="+", db_index=False)
    is_mock = models.BooleanField(default=False)
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date__date", "shop", "product"]
        verbose_name = "traffic row"
        constraints = [models.UniqueConstraint(fields=["shop", "date", "product"], name="marketplace_traffic_natural_key")]

    def __str__(self):
        return f"{self.shop} {self.date} {self.product}"


class FactActivity(models.Model):
    """Engagement events per shop and day (follows, wishlist adds, chats, reviews,
    shares). Natural key: (shop, date, event)."""

    class Event(models.TextChoices):
        FOLLOW = "follow"
        WISHLIST = "wishlist"
        CHAT = "chat"
        REVIEW = "review"
        SHARE = "share"

    shop = models.ForeignKey(DimShop, on_delete=models.PROTECT, related_name="activity")
    date = models.ForeignKey(DimDate, on_delete=models.PROTECT, related_name="activity")
    event = models.CharField(max_length=20, choices=Event.choices)
    count = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=10, choices=Source.choices)
    # The upload (CSV) and the run that wrote the row; see FactOrderLine.
    upload = models.ForeignKey("marketplace.CsvUpload", null=True, blank=True, on_delete=models.DO_NOTHING,
                               db_constraint=False, related_name="+")
    run = models.ForeignKey("portal.SyncRun", null=True, blank=True, on_delete=models.DO_NOTHING,
                            db_constraint=False, related_name="+", db_index=False)
    is_mock = models.BooleanField(default=False)
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date__date", "shop", "event"]
        verbose_name = "activity row"
        verbose_name_plural = "activity"
        constraints = [models.UniqueConstraint(fields=["shop", "date", "event"], name="marketplace_activity_natural_key")]

    def __str__(self):
        return f"{self.shop} {self.date} {self.event}: {self.count}"
