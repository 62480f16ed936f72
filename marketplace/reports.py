"""The warehouse's report queries: one function per chart, shared by the admin
charts page, the /api/marketplace/reports/ endpoints and the weekly e-mail, so
all three show the same numbers.

Every report leaves out mock rows and cancelled/returned lines unless asked,
and always the lines of a CSV upload still loading (services/csv_merge.py).
Days are the date dimension's (order dates in MARKETPLACE_TIME_ZONE).
"""

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import CharField, Count, Sum, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from .conf import report_time_zone
from .models import DimStatus, FactActivity, FactOrderLine, FactTraffic

SHOP_FIELDS = {"platform": "platform", "shop_id": "shop__shop_id", "shop_name": "shop__name"}


@dataclass(frozen=True)
class ReportFilter:
    date_from: date | None = None
    date_to: date | None = None
    platform: str = ""
    shop_id: str = ""
    include_mock: bool = False
    include_cancelled: bool = False

    @classmethod
    def from_query(cls, data):
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None})

    def lines(self):
        lines = FactOrderLine.objects.published()  # not the lines of an upload still loading
        if not self.include_cancelled:
            lines = lines.exclude(status__group__in=[DimStatus.Group.CANCELLED, DimStatus.Group.RETURNED])
        return self.scope(lines, platform_field="platform")

    def scope(self, queryset, platform_field="shop__platform"):
        """The mock, platform, shop and date filters on any fact queryset."""
        if not self.include_mock:
            queryset = queryset.filter(is_mock=False)
        if self.platform:
            queryset = queryset.filter(**{platform_field: self.platform})
        if self.shop_id:
            queryset = queryset.filter(shop__shop_id=self.shop_id)
        if self.date_from:
            queryset = queryset.filter(date__date__gte=self.date_from)
        if self.date_to:
            queryset = queryset.filter(date__date__lte=self.date_to)
        return queryset


def _figures():
    # An order id is one shop's numbering (two shops may both have order 1001): an
    # order is (shop, order id), or a total across shops counts such orders once.
    order = Concat(Cast("shop_id", CharField()), Value(":"), "order_id", output_field=CharField())
    return {"orders": Count(order, distinct=True), "lines": Count("id"), "units": Sum("quantity"),
            "revenue": Sum("paid_price")}


def _shop(row):
    return {"platform": row.pop("platform"), "shop_id": row.pop("shop__shop_id"), "shop_name": row.pop("shop__name")}


def totals(filters):
    found = filters.lines().aggregate(**_figures())
    return {"orders": found["orders"], "lines": found["lines"], "units": found["units"] or 0,
            "revenue": found["revenue"] or Decimal("0")}


def daily_sales(filters):
    """Orders, lines, units and revenue per day, platform and shop."""
    rows = (filters.lines().values("date__date", *SHOP_FIELDS.values()).annotate(**_figures())
            .order_by("date__date", "platform", "shop__shop_id"))
    return [{"date": row.pop("date__date"), **_shop(row), **row} for row in rows]


def platform_sales(filters):
    """The same figures per day and platform (every shop of a platform together)."""
    rows = (filters.lines().values("date__date", "platform").annotate(**_figures())
            .order_by("date__date", "platform"))
    return [{"date": row.pop("date__date"), **row} for row in rows]


def shop_sales(filters):
    """The same figures per platform and shop over the whole range."""
    rows = filters.lines().values(*SHOP_FIELDS.values()).annotate(**_figures()).order_by("platform", "shop__shop_id")
    return [{**_shop(row), **row} for row in rows]


def top_products(filters, limit=10):
    """The products with the most revenue (a product is a SKU of one shop)."""
    rows = (filters.lines().values("platform", "shop__shop_id", "product__sku", "product__name")
            .annotate(**_figures()).order_by("-revenue", "platform", "shop__shop_id", "product__sku")[:limit])
    return [{"platform": row.pop("platform"), "shop_id": row.pop("shop__shop_id"), "sku": row.pop("product__sku"),
             "name": row.pop("product__name"), **row} for row in rows]


def conversion(orders, visitors):
    return (Decimal(orders) / visitors).quantize(Decimal("0.0001")) if visitors else Decimal("0")


def daily_traffic(filters):
    """Visitors, page views, add-to-cart, orders and conversion (orders per
    visitor) per day, platform and shop, from Fact_Traffic."""
    rows = (filters.scope(FactTraffic.objects.all())
            .values("date__date", "shop__platform", "shop__shop_id", "shop__name")
            .annotate(visitors=Sum("visitors"), page_views=Sum("page_views"), add_to_cart=Sum("add_to_cart"),
                      orders=Sum("orders"))
            .order_by("date__date", "shop__platform", "shop__shop_id"))
    return [{"date": row.pop("date__date"), "platform": row.pop("shop__platform"), "shop_id": row.pop("shop__shop_id"),
             "shop_name": row.pop("shop__name"), **row, "conversion": conversion(row["orders"], row["visitors"])}
            for row in rows]


def activity_totals(filters):
    """Engagement events per event over the range, from Fact_Activity."""
    rows = filters.scope(FactActivity.objects.all()).values("event").annotate(count=Sum("count")).order_by("event")
    return list(rows)


def last_full_week(today=None):
    """Monday and Sunday of the last full week before `today` (report time zone)."""
    today = today or timezone.now().astimezone(report_time_zone()).date()
    monday = today - timedelta(days=today.weekday() + 7)
    return monday, monday + timedelta(days=6)


CSV_COLUMNS = ["date", "platform", "shop_id", "shop_name", "orders", "lines", "units", "revenue"]


def daily_sales_csv(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "date": row["date"].isoformat()})
    return out.getvalue()
