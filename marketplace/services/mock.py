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
from django.utils import timezone

from portal.runs import OperationFailed, operation

from ..models import DimShop, FactOrderLine, Source
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
            # Lock the shops first: a load holding one (FOR KEY SHARE) commits before
            # the check below reads its lines (the facts have no FK constraint).
            list(DimShop.objects.select_for_update().filter(is_mock=True).values_list("pk", flat=True))
            DimShop.objects.filter(is_mock=True, lines__isnull=True).delete()
        run.count("deleted", deleted)
        return deleted
    orders, days = int(orders), int(days)
    if not 1 <= orders <= MAX_ORDERS or days < 1:
        raise OperationFailed(f"orders must be 1..{MAX_ORDERS} and days at least 1.")
    seed = int(seed) if seed not in (None, "") else random.SystemRandom().randint(1, 10**9)
    written = load_lines(mock_lines(orders, days, seed), source=Source.MOCK, is_mock=True, run_id=run.record.pk)
    run.count("orders", orders)
    run.count("lines", written)
    run.set_cursor({"seed": seed})
    logger.info("mock data: %s orders, %s lines, seed %s", orders, written, seed)
    return written
