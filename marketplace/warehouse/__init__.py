"""Loading order lines into the star schema, in bulk.

Every source (the Lazada and Shopee syncs, CSV upload, the mock generator)
turns its input into `OrderLine`s and calls `load_lines()`. On PostgreSQL
dimension ids are resolved in Python in the load's transaction, new fact rows
are COPYed straight into the fact table and existing ones updated by id (see
`postgres.py`; the CSV merge uses its set-based `merge_postgres`). On SQLite dimensions are upserted in
batches (INSERT ... ON CONFLICT), their ids read back by natural key, then the
facts are upserted the same way. Nothing is inserted one row at a time, and
loading the same lines twice changes nothing.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from .. import conf
from ..models import DimCustomer, DimDate, DimProduct, DimShop, DimStatus, FactOrderLine

BATCH = 1000

STATUS_GROUPS = {
    # Lazada
    "unpaid": "pending", "pending": "pending", "packed": "pending", "topack": "pending",
    "ready_to_ship": "shipping", "toship": "shipping", "shipping": "shipping", "shipped": "shipping",
    "delivered": "delivered", "canceled": "cancelled", "returned": "returned", "failed": "cancelled",
    "lost": "cancelled",
    # Shopee
    "invoice_pending": "pending", "processed": "pending", "retry_ship": "shipping",
    "to_confirm_receive": "shipping", "completed": "delivered", "in_cancel": "cancelled",
    "cancelled": "cancelled", "to_return": "returned",
}


def customer_key(*parts):
    """A stable key for a buyer without storing what identifies them."""
    joined = "|".join((p or "").strip().lower() for p in parts)
    return hashlib.sha256(joined.encode()).hexdigest()


def buyer_key(platform, name, phone=""):
    """The customer key of a marketplace buyer, the same whether the line came
    from the API or a Seller Center CSV export: what identifies the buyer on
    each platform, as both sources give it. Lazada: the name and the shipping
    phone (digits only: exports and the API format numbers differently).
    Shopee: the buyer's username (the API gives no phone, an export the
    recipient's, so the phone is not part of it)."""
    digits = re.sub(r"\D", "", phone or "") if platform == "lazada" else ""
    return customer_key(platform, name, digits)


@dataclass
class OrderLine:
    platform: str
    shop_id: str
    order_id: str
    line_id: str
    ordered_at: datetime
    status: str
    sku: str
    product_name: str = ""
    variation: str = ""
    quantity: int = 1
    unit_price: Decimal = Decimal("0")
    paid_price: Decimal = Decimal("0")
    currency: str = ""
    customer_key: str = ""
    customer_name: str = ""
    city: str = ""
    region: str = ""
    country: str = ""
    updated_at: datetime | None = None
    shop_name: str = ""
    extra: dict = field(default_factory=dict)


# Columns a line must fit as sent: keys are never cut short (two SKUs cut to the
# same 200 characters would become one product); descriptive text is.
KEY_LIMITS = {"platform": 20, "shop_id": 200, "order_id": 100, "line_id": 100, "sku": 200, "status": 50}
AMOUNT_DIGITS = 12  # FactOrderLine's prices: max_digits 14, 2 of them decimals


def line_problems(line: OrderLine):
    """What keeps `line` out of the warehouse, in words (empty: it can be stored)."""
    problems = []
    for name, limit in KEY_LIMITS.items():
        value = getattr(line, name)
        if not value:
            problems.append(f"{name} is empty")
        elif len(value) > limit:
            problems.append(f"{name} is {len(value)} characters, more than the {limit} it may have")
    for name in ("unit_price", "paid_price"):
        amount = getattr(line, name)
        if not isinstance(amount, Decimal) or not amount.is_finite():
            problems.append(f"{name} is {amount}, not a finite amount")
        elif amount.adjusted() >= AMOUNT_DIGITS:
            problems.append(f"{name} {amount} has more than {AMOUNT_DIGITS} digits before the point")
    if not isinstance(line.quantity, int) or line.quantity < 1:
        problems.append(f"quantity {line.quantity!r} is not a positive whole number")
    return problems


def load_lines(lines, *, source, is_mock=False, upload_id=None, run_id=None):
    """Upsert `lines` and their dimensions; returns the number of fact rows written.

    Idempotent: the natural keys decide what is new. Each row records its source,
    the upload (CSV) and the run that wrote it. Call it inside the caller's
    transaction when a cursor must move with the rows.
    """
    lines = list(lines)
    if not lines:
        return 0
    if connection.vendor == "postgresql":
        return load_lines_postgres(lines, source=source, is_mock=is_mock, upload_id=upload_id, run_id=run_id)
    with transaction.atomic():
        shops = _upsert_shops(lines, is_mock)
        dates = _upsert_dates(lines)
        products = _upsert(
            DimProduct, ("shop_id", "sku"), ("name", "variation"),
            {(shops[(l.platform, l.shop_id)], l.sku): {
                "platform": l.platform, "name": l.product_name[:500], "variation": l.variation[:300],
            } for l in lines},
        )
        customers = _upsert(
            DimCustomer, ("platform", "customer_key"), ("name", "city", "region", "country"),
            {(l.platform, l.customer_key or customer_key(l.customer_name)): {
                "name": l.customer_name[:200], "city": l.city[:200], "region": l.region[:200], "country": l.country[:100],
            } for l in lines},
        )
        statuses = _upsert(
            DimStatus, ("platform", "code"), ("group",),
            {(l.platform, l.status.lower()): {"group": STATUS_GROUPS.get(l.status.lower(), "other")} for l in lines},
        )
        facts = {}
        now = timezone.now()
        for l in lines:
            # The last occurrence wins (a later update of the same line in one batch).
            shop = shops[(l.platform, l.shop_id)]
            facts[(shop, l.order_id, l.line_id)] = FactOrderLine(
                platform=l.platform, order_id=l.order_id, line_id=l.line_id,
                shop_id=shop, date_id=dates[_local_date(l.ordered_at)],
                product_id=products[(shop, l.sku)],
                customer_id=customers[(l.platform, l.customer_key or customer_key(l.customer_name))],
                status_id=statuses[(l.platform, l.status.lower())],
                quantity=l.quantity, unit_price=l.unit_price, paid_price=l.paid_price, currency=l.currency,
                ordered_at=l.ordered_at, updated_at=l.updated_at, source=source, is_mock=is_mock,
                upload_id=upload_id, run_id=run_id, loaded_at=now,
            )
        FactOrderLine.objects.bulk_create(
            list(facts.values()), batch_size=BATCH, update_conflicts=True,
            unique_fields=["shop", "order_id", "line_id"],
            update_fields=["platform", "date", "product", "customer", "status", "quantity", "unit_price", "paid_price",
                           "currency", "ordered_at", "updated_at", "source", "is_mock", "upload", "run",
                           "loaded_at"],
        )
    return len(facts)


def _local_date(moment: datetime) -> date:
    # The business day in the shops' time zone (MARKETPLACE_TIME_ZONE), whatever
    # offset the marketplace used (Lazada +08:00, Shopee unix seconds).
    return timezone.localtime(moment, conf.report_time_zone()).date() if timezone.is_aware(moment) else moment.date()


def _upsert(model, key_fields, update_fields, rows_by_key):
    objs = [model(**dict(zip(key_fields, key)), **values) for key, values in rows_by_key.items()]
    model.objects.bulk_create(objs, batch_size=BATCH, update_conflicts=True, unique_fields=list(key_fields),
                              update_fields=list(update_fields))
    return _ids(model, key_fields, rows_by_key.keys())


def _ids(model, key_fields, keys):
    """Read back the ids by natural key (bulk_create does not return them on every backend)."""
    keys = set(keys)
    found = {}
    first_values = {k[0] for k in keys}
    second_values = [k[1] for k in keys]
    for start in range(0, len(second_values), BATCH):
        chunk = second_values[start:start + BATCH]
        query = model.objects.filter(**{f"{key_fields[0]}__in": first_values, f"{key_fields[1]}__in": chunk})
        for row in query.values("pk", *key_fields):
            key = tuple(row[f] for f in key_fields)
            if key in keys:
                found[key] = row["pk"]
    return found


def _upsert_shops(lines, is_mock):
    rows = {}
    for l in lines:
        rows[(l.platform, l.shop_id)] = {"name": (l.shop_name or l.shop_id)[:200], "is_mock": is_mock}
    return _upsert(DimShop, ("platform", "shop_id"), ("name", "is_mock"), rows)


def _upsert_dates(lines):
    days = {_local_date(l.ordered_at) for l in lines}
    objs = [
        DimDate(date_key=int(d.strftime("%Y%m%d")), date=d, year=d.year, quarter=(d.month - 1) // 3 + 1,
                month=d.month, day=d.day, weekday=d.isoweekday(), iso_week=d.isocalendar()[1])
        for d in days
    ]
    DimDate.objects.bulk_create(objs, batch_size=BATCH, ignore_conflicts=True)
    return dict(DimDate.objects.filter(date__in=days).values_list("date", "pk"))


# The PostgreSQL loaders need the names above.
from .postgres import load_lines_postgres, merge_postgres, orphan_facts  # noqa: E402, F401
