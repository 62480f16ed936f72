"""Pulling each shop's catalogue (Lazada /products/get, Shopee get_item_list +
get_item_base_info) into DimProduct, keyed by (shop, SKU)."""

import logging

from django.db import transaction
from django.utils import timezone

from portal.http import UpstreamAuthError
from portal.runs import OperationFailed, operation
from portal.setaside import resolve_items

from ..client import client_for
from ..client.base import MalformedProduct
from ..models import Connection, DimProduct
from ..warehouse import AMOUNT_DIGITS
from .shops import each_shop, shop_row, syncable
from .tokens import ConnectionTokens

logger = logging.getLogger(__name__)

CATALOGUE_FIELDS = ["platform", "name", "item_id", "category", "price", "currency", "status", "stock",
                    "catalogue_synced_at", "catalogue_run"]
TEXT_LIMITS = {"sku": 200, "item_id": 100, "category": 100, "currency": 3, "status": 50}


def product_key(connection, product):
    """The set-aside key of one product: "<platform>:<shop>:<item id>"."""
    return f"{connection.platform}:{connection.shop_id}:{product.item_id or 'no-id'}"


def sku_problems(sku):
    """What keeps one SKU out of DimProduct, in words (a key is never cut short)."""
    problems = [f"{name} is {len(getattr(sku, name))} characters, more than the {limit} it may have"
                for name, limit in TEXT_LIMITS.items() if len(getattr(sku, name)) > limit]
    if sku.price is not None and sku.price.adjusted() >= AMOUNT_DIGITS:
        problems.append(f"price {sku.price} has more than {AMOUNT_DIGITS} digits before the point")
    if sku.stock is not None and sku.stock > 2147483647:
        problems.append(f"stock {sku.stock} does not fit")
    return problems


def store_products(run, connection, client, products):
    """Store one page of catalogue products in one transaction: every SKU of a
    good product upserted on (shop, sku), each bad product set aside (kind
    "product"). Returns (products stored, SKUs written). Used by the sync and
    by the retry of one set-aside product."""
    context = {"connection_id": connection.pk, "platform": connection.platform, "shop_id": connection.shop_id}
    rows, stored = {}, []
    now = timezone.now()
    with transaction.atomic():
        shop = shop_row(connection)
        for product in products:
            key = product_key(connection, product)
            with run.isolate("product", key, payload=product.raw, context={**context, "item_id": product.item_id},
                             stop_on=(UpstreamAuthError,)):
                skus = client.product_skus(product)
                for sku in skus:
                    problems = sku_problems(sku)
                    if problems:
                        raise MalformedProduct(f"{connection.platform} product {product.item_id} SKU {sku.sku}: "
                                               + "; ".join(problems))
                for sku in skus:  # a SKU listed twice: the last one wins
                    rows[sku.sku] = DimProduct(
                        platform=connection.platform, shop=shop, sku=sku.sku, name=sku.name[:500],
                        item_id=sku.item_id, category=sku.category, price=sku.price, currency=sku.currency,
                        status=sku.status, stock=sku.stock, catalogue_synced_at=now, catalogue_run_id=run.record.pk)
                stored.append(key)
        DimProduct.objects.bulk_create(list(rows.values()), batch_size=1000, update_conflicts=True,
                                       unique_fields=["shop", "sku"], update_fields=CATALOGUE_FIELDS)
        resolve_items(run.record, "marketplace", "product", stored)
    return len(stored), len(rows)


def sync_catalogue(run, connection):
    """Read one shop's whole catalogue, page by page (each page one transaction)."""
    client = client_for(connection)
    keeper = ConnectionTokens(connection, client)
    written = 0
    for page in client.product_pages(keeper):
        stored, skus = store_products(run, connection, client, page)
        run.ok(stored)
        written += skus
        run.count("products", stored)
        run.count(f"{connection.platform}_skus", skus)
        run.count("product_pages")
        run.advance()
    if keeper.refreshed:
        run.count("token_refreshes", keeper.refreshed)
    Connection.objects.filter(pk=connection.pk).update(products_synced_at=timezone.now())
    logger.info("connection #%s: %s product SKUs stored", connection.pk, written)
    return written


def retry_product(run, record):
    """Retry one set-aside product: fetch it again and store it the way the sync does."""
    context = record.context or {}
    if not context.get("item_id"):
        raise OperationFailed(f"{record.key}: the marketplace sent this product without an id, so it cannot be "
                              "fetched again; the next product sync reads it once it has one.")
    connection = Connection.objects.get(pk=context["connection_id"])
    if connection.status != Connection.Status.CONNECTED:
        raise OperationFailed(f"{connection} is {connection.get_status_display()}; connect it first.")
    client = client_for(connection)
    product = client.fetch_product(ConnectionTokens(connection, client), context["item_id"], record.payload)
    stored, _ = store_products(run, connection, client, [product])
    run.count("products", stored)


@operation("marketplace", "sync_products", lock_key=lambda p: str(p.get("connection_id") or "all"),
           has_work=lambda: syncable().exists())
def sync_products(run, connection_id=None):
    """Pull the catalogue (name, category, price, currency, status, stock per
    SKU) of one connection (or every connected one) into DimProduct.
    Idempotent: SKUs are upserted on (shop, sku); a product that cannot be
    stored is set aside (kind "product") and the run ends partial. Products a
    shop no longer lists are kept (order lines refer to them)."""
    each_shop(run, connection_id, sync_catalogue, what="products")
