"""Mock order data (the seed's /generate-mock-lazada-data), clearly marked.

Mock rows go to their own shops (`MOCK-LAZADA`, `MOCK-SHOPEE`) with `is_mock`
set on the shop and every fact, and order ids starting `MOCK-`, so reports
exclude them by default and `purge` removes them without touching real data.
"""

import logging
import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from portal.runs import OperationFailed, operation

from ..models import DimProduct, DimShop, FactActivity, FactOrderLine, FactTraffic, Source
from ..warehouse import OrderLine, customer_key, load_lines

logger = logging.getLogger(__name__)

MAX_ORDERS = 50000
CATALOGUE = [
    ("MOCK-TEE-001", "Linen Tee", "White / M", "19.90"), ("MOCK-DRS-014", "Wrap Dress", "Navy / S", "49.00"),
    ("MOCK-BAG-203", "Canvas Tote", "Natural", "24.50"), ("MOCK-SCF-077", "Silk Scarf", "Red", "32.00"),
    ("MOCK-JNS-310", "Straight Jeans", "30", "59.90"), ("MOCK-SKT-450", "Pleated Skirt", "Black / L", "39.00"),
]
STATUSES = {
    "lazada": ["delivered"] * 6 + ["shipped", "pending", "canceled", "returned"],
    "shopee": ["COMPLETED"] * 6 + ["SHIPPED", "READY_TO_SHIP", "CANCELLED", "TO_RETURN"],
}
PLACES = [("Singapore", "Central", "SG"), ("Kuala Lumpur", "Federal Territory", "MY"), ("Manila", "NCR", "PH"),
          ("Bangkok", "Bangkok", "TH"), ("Jakarta", "DKI Jakarta", "ID")]
NAMES = ["Ana", "Ben", "Chen", "Dewi", "Eko", "Farah", "Gus", "Hana", "Ivan", "Jia"]


def mock_lines(orders, days, seed):
    rng = random.Random(seed)
    now = timezone.now()
    for n in range(orders):
        platform = rng.choice(("lazada", "shopee"))
        ordered_at = now - timedelta(seconds=rng.random() * days * 86400)
        city, region, country = rng.choice(PLACES)
        name = f"{rng.choice(NAMES)} {rng.choice(NAMES)}"
        status = rng.choice(STATUSES[platform])
        for line in range(rng.randint(1, 3)):
            sku, product, variation, price = rng.choice(CATALOGUE)
            quantity = rng.randint(1, 3)
            unit = Decimal(price)
            yield OrderLine(
                platform=platform, shop_id=f"MOCK-{platform.upper()}", shop_name=f"Mock {platform.title()} shop",
                order_id=f"MOCK-{seed}-{n}", line_id=str(line), ordered_at=ordered_at, updated_at=ordered_at,
                status=status, sku=sku, product_name=product, variation=variation, quantity=quantity,
                unit_price=unit, paid_price=unit * quantity, currency="SGD",
                customer_key=customer_key("mock", name, city), customer_name=name, city=city, region=region,
                country=country,
            )


@operation("marketplace", "generate_mock_orders")
def generate_mock_orders(run, orders=200, days=30, seed=None, purge=False):
    """Generate `orders` mock orders over the last `days` days (or with `purge`,
    delete every mock row). The same seed gives the same orders, so re-running
    with it upserts instead of adding; without one, each run adds new orders."""
    if purge:
        with transaction.atomic():
            deleted, _ = FactOrderLine.objects.filter(is_mock=True).delete()
            FactTraffic.objects.filter(is_mock=True).delete()
            FactActivity.objects.filter(is_mock=True).delete()
            # Lock the shops first: a load holding one (FOR KEY SHARE) commits before
            # the check below reads its lines (the facts have no FK constraint).
            list(DimShop.objects.select_for_update().filter(is_mock=True).values_list("pk", flat=True))
            DimProduct.objects.filter(shop__is_mock=True, lines__isnull=True, traffic__isnull=True).delete()
            DimShop.objects.filter(is_mock=True, lines__isnull=True, traffic__isnull=True,
                                   activity__isnull=True, products__isnull=True).delete()
        run.count("deleted", deleted)
        return deleted
    orders, days = int(orders), int(days)
    if not 1 <= orders <= MAX_ORDERS or days < 1:
        raise OperationFailed(f"orders must be 1..{MAX_ORDERS} and days at least 1.")
    seed = int(seed) if seed not in (None, "") else random.SystemRandom().randint(1, 10**9)
    written = load_lines(mock_lines(orders, days, seed), source=Source.MOCK, is_mock=True, run_id=run.record.pk)
    traffic, activity = load_mock_traffic()
    run.count("orders", orders)
    run.count("lines", written)
    run.count("traffic_rows", traffic)
    run.count("activity_rows", activity)
    run.set_cursor({"seed": seed})
    logger.info("mock data: %s orders, %s lines, seed %s", orders, written, seed)
    return written


def _rng(*key):
    return random.Random("|".join(str(k) for k in key))


def load_mock_traffic():
    """Traffic and engagement for every (mock shop, day, product) that has mock
    orders: visitors, page views and add-to-cart drawn from the key (the same
    key gives the same figures, so a re-run upserts), orders counted from the
    facts, so the conversion is consistent with the order lines."""
    keys = (FactOrderLine.objects.filter(is_mock=True).values("shop_id", "date_id", "product_id")
            .annotate(orders=Count("order_id", distinct=True)).order_by())
    traffic, days = [], set()
    for key in keys:
        rng = _rng("traffic", key["shop_id"], key["date_id"], key["product_id"])
        visitors = key["orders"] * rng.randint(8, 40)
        traffic.append(FactTraffic(
            shop_id=key["shop_id"], date_id=key["date_id"], product_id=key["product_id"], visitors=visitors,
            page_views=visitors + rng.randint(0, visitors * 2), add_to_cart=rng.randint(key["orders"], visitors),
            orders=key["orders"], source=Source.MOCK, is_mock=True))
        days.add((key["shop_id"], key["date_id"]))
    activity = []
    for shop_id, date_id in sorted(days):
        rng = _rng("activity", shop_id, date_id)
        activity += [FactActivity(shop_id=shop_id, date_id=date_id, event=event, count=rng.randint(0, 30),
                                  source=Source.MOCK, is_mock=True) for event in FactActivity.Event.values]
    with transaction.atomic():
        FactTraffic.objects.bulk_create(traffic, batch_size=2000, update_conflicts=True,
                                        unique_fields=["shop", "date", "product"],
                                        update_fields=["visitors", "page_views", "add_to_cart", "orders", "loaded_at"])
        FactActivity.objects.bulk_create(activity, batch_size=2000, update_conflicts=True,
                                         unique_fields=["shop", "date", "event"], update_fields=["count", "loaded_at"])
    return len(traffic), len(activity)
