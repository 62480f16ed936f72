"""Benchmark: loading order lines into the star schema, bulk vs row by row,
and a full Lazada sync from the sandbox.

    .venv/bin/python bench/marketplace_warehouse.py [--orders 5000]

Sets itself up (temporary PORTAL_VAR_DIR and SQLite, the sandbox in a thread),
then times:
  1. `generate_mock_orders` for N orders (bulk upserts of facts and dimensions);
  2. the same seed again (every row is an update: an idempotent re-run);
  3. the seed's way, one get-or-create/update per row, for the same lines;
  4. `sync_orders` of N Lazada orders from the sandbox (signed calls, pages of
     100, items in chunks of 50), and a re-run that finds nothing new.
Target: bulk at least 10x faster than row by row; no duplicates anywhere.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchsetup import setup_django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def row_by_row(lines):
    """What the seed did: one round trip per dimension and fact row."""
    from marketplace.models import (
        DimCustomer,
        DimDate,
        DimProduct,
        DimShop,
        DimStatus,
        FactOrderLine,
    )
    from marketplace.warehouse import STATUS_GROUPS, _local_date

    for l in lines:
        shop, _ = DimShop.objects.get_or_create(platform=l.platform, shop_id=l.shop_id + "-slow")
        day = _local_date(l.ordered_at)
        date, _ = DimDate.objects.get_or_create(date=day, defaults=dict(
            date_key=int(day.strftime("%Y%m%d")), year=day.year, quarter=(day.month - 1) // 3 + 1, month=day.month,
            day=day.day, weekday=day.isoweekday(), iso_week=day.isocalendar()[1]))
        product, _ = DimProduct.objects.get_or_create(shop=shop, sku=l.sku, defaults={
            "platform": l.platform, "name": l.product_name})
        customer, _ = DimCustomer.objects.get_or_create(platform=l.platform, customer_key=l.customer_key)
        status, _ = DimStatus.objects.get_or_create(platform=l.platform, code=l.status.lower(),
                                                    defaults={"group": STATUS_GROUPS.get(l.status.lower(), "other")})
        FactOrderLine.objects.update_or_create(
            platform=l.platform, order_id="SLOW-" + l.order_id, line_id=l.line_id,
            defaults=dict(shop=shop, date=date, product=product, customer=customer, status=status,
                          quantity=l.quantity, unit_price=l.unit_price, paid_price=l.paid_price,
                          ordered_at=l.ordered_at, source="mock", is_mock=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="marketplace-bench-") as var_dir:
        setup_django(var_dir)
        from datetime import datetime, timedelta, timezone

        import requests
        from django.conf import settings
        from django.core.management import call_command

        from marketplace import demo, services
        from marketplace.models import Connection, FactOrderLine
        from marketplace.services.mock import mock_lines
        from portal.sandbox import start_in_thread

        call_command("migrate", verbosity=0)
        sandbox = start_in_thread()
        settings.SANDBOX_URL = sandbox.url

        started = time.perf_counter()
        record = services.generate_mock_orders(trigger="command", orders=args.orders, seed=1)
        bulk = time.perf_counter() - started
        lines = record.counters["lines"]
        started = time.perf_counter()
        services.generate_mock_orders(trigger="command", orders=args.orders, seed=1)
        rerun = time.perf_counter() - started
        assert FactOrderLine.objects.count() == lines, "the re-run duplicated rows"

        sample = list(mock_lines(min(args.orders, 1000), 30, 1))
        started = time.perf_counter()
        row_by_row(sample)
        slow = (time.perf_counter() - started) * lines / len(sample)

        demo.seed()
        connection = Connection.objects.get(platform="lazada")
        box = sandbox["lazada"]
        now = datetime.now(timezone.utc)
        box.add_orders(args.orders - len(box.orders), start=now - timedelta(days=10), end=now - timedelta(minutes=5))
        connection.oauth_state = "bench"
        connection.save()
        consent = requests.get(services.authorization_url(connection, "http://bench/callback"), allow_redirects=False)
        from urllib.parse import parse_qs, urlsplit

        connection.refresh_from_db()
        connection.oauth_code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
        connection.save()
        services.connect_account(trigger="command", connection_id=connection.pk)
        started = time.perf_counter()
        synced = services.sync_orders(trigger="command", connection_id=connection.pk)
        sync_seconds = time.perf_counter() - started
        api_lines = FactOrderLine.objects.filter(platform="lazada", source="api").count()
        started = time.perf_counter()
        services.sync_orders(trigger="command", connection_id=connection.pk)
        resync_seconds = time.perf_counter() - started
        assert FactOrderLine.objects.filter(platform="lazada", source="api").count() == api_lines
        sandbox.stop()

    print(f"mock load, bulk ({args.orders} orders, {lines} lines): {bulk:.2f} s ({lines / bulk:.0f} lines/s)")
    print(f"same seed again (all updates, no duplicates): {rerun:.2f} s")
    print(f"row by row (the seed's way), extrapolated from {len(sample)} lines: {slow:.1f} s "
          f"-> bulk is {slow / bulk:.0f}x faster (target >= 10x)")
    print(f"Lazada sync from the sandbox ({len(box.orders)} orders, {api_lines} lines, "
          f"{synced.counters.get('pages')} pages): {sync_seconds:.2f} s "
          f"(paced by the client's 10 calls/s limit); re-run: {resync_seconds:.2f} s")


if __name__ == "__main__":
    main()
