"""Order-level money (FactOrder, one row per (shop, order_id)), from the order
syncs and the mock generator, next to the lines `warehouse.load_lines` writes."""

from django.db import transaction
from django.utils import timezone

from ..models import DimShop, FactOrder
from ..warehouse import AMOUNT_DIGITS, _local_date, _upsert_dates

MONEY_FIELDS = ("items_total", "shipping_fee", "voucher_total", "voucher_seller", "voucher_platform", "total_amount")
UPDATED = ["platform", "date", "ordered_at", "updated_at", "currency", *MONEY_FIELDS, "payment_method", "source",
           "upload", "run", "is_mock", "loaded_at"]


def money_problems(order):
    """What keeps one order's money out of FactOrder, in words (empty: it fits)."""
    problems = []
    for name in MONEY_FIELDS:
        amount = getattr(order, name)
        if amount is not None and (not amount.is_finite() or amount.adjusted() >= AMOUNT_DIGITS):
            problems.append(f"{name} {amount} is not an amount of at most {AMOUNT_DIGITS} digits before the point")
    if len(order.currency) > 3:
        problems.append(f"currency {order.currency!r} is longer than 3 characters")
    return problems


def load_orders(orders, *, source, is_mock=False, run_id=None, upload_id=None):
    """Upsert OrderMoney records on (shop, order_id); returns the rows written.
    Idempotent; the last record of an order in one call wins. Runs in the
    caller's transaction when there is one (the sync's page)."""
    orders = list(orders)
    if not orders:
        return 0
    with transaction.atomic():
        shops = {}
        for platform, shop_id in {(o.platform, o.shop_id) for o in orders}:
            shops[(platform, shop_id)] = DimShop.objects.get_or_create(
                platform=platform, shop_id=shop_id, defaults={"name": shop_id[:200], "is_mock": is_mock})[0].pk
        dates = _upsert_dates(orders)
        now = timezone.now()
        rows = {}
        for o in orders:
            shop = shops[(o.platform, o.shop_id)]
            rows[(shop, o.order_id)] = FactOrder(
                platform=o.platform, shop_id=shop, order_id=o.order_id, date_id=dates[_local_date(o.ordered_at)],
                ordered_at=o.ordered_at, updated_at=o.updated_at, currency=o.currency,
                **{name: getattr(o, name) for name in MONEY_FIELDS}, payment_method=o.payment_method,
                source=source, upload_id=upload_id, run_id=run_id, is_mock=is_mock, loaded_at=now)
        FactOrder.objects.bulk_create(list(rows.values()), batch_size=1000, update_conflicts=True,
                                      unique_fields=["shop", "order_id"], update_fields=UPDATED)
    return len(rows)
