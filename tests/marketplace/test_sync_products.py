"""The product (catalogue) sync against the sandboxes: every SKU of each shop's
catalogue lands in DimProduct keyed by (shop, sku), paged; a re-run adds
nothing; one bad product is set aside (run partial) and a retry stores it;
the admin action, the API, the task and the command all run the one service."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from marketplace.models import DimProduct
from marketplace.services import sync_orders, sync_products
from marketplace.tasks import sync_products_task
from portal.models import SetAsideRecord, SyncRun
from tests.conftest import retry_through_the_api


def lazada_truth(box):
    truth = {}
    for product in box.products.values():
        for sku in product["skus"]:
            truth[sku["SellerSku"]] = (
                product["attributes"]["name"], Decimal(str(sku["price"])).quantize(Decimal("0.01")),
                sku["Status"], int(sku["quantity"]), str(product.get("primary_category", "")), str(product["item_id"]))
    return truth


def shopee_truth(box):
    truth = {}
    for item in box.products.values():
        price = item["price_info"][0]["current_price"] if item.get("price_info") else None
        stock = (item.get("stock_info_v2") or {}).get("summary_info", {}).get("total_available_stock")
        truth[item["item_sku"]] = (item["item_name"], Decimal(str(price)).quantize(Decimal("0.01")) if price else None,
                                   item["item_status"].lower(), stock, str(item["category_id"]), str(item["item_id"]))
    return truth


TRUTH = {"lazada": lazada_truth, "shopee": shopee_truth}


def stored(connection):
    rows = DimProduct.objects.filter(shop__platform=connection.platform, shop__shop_id=connection.shop_id)
    return {p.sku: (p.name, p.price, p.status, p.stock, p.category, p.item_id) for p in rows}


@pytest.mark.parametrize("platform,extra", [("lazada", 60), ("shopee", 110)])  # more than one page each
def test_it_stores_the_whole_catalogue_and_a_rerun_adds_nothing(sandbox, request, platform, extra):
    connection = request.getfixturevalue(f"connected_{platform}")
    box = sandbox[platform]
    box.add_products(extra)
    record = sync_products(trigger="command", connection_id=connection.pk)
    assert record.status == "succeeded", record.error
    assert record.counters["product_pages"] == 2
    assert stored(connection) == TRUTH[platform](box)
    assert all(p.catalogue_run_id == record.pk for p in DimProduct.objects.all())
    again = sync_products(trigger="command", connection_id=connection.pk)
    assert again.status == "succeeded"
    assert DimProduct.objects.count() == len(TRUTH[platform](box))
    connection.refresh_from_db()
    assert connection.products_synced_at is not None


def test_order_lines_and_the_catalogue_share_one_product_row_per_shop_and_sku(sandbox, connected_shopee):
    assert sync_orders(trigger="command").status == "succeeded"
    assert sync_products(trigger="command").status == "succeeded"
    products = DimProduct.objects.filter(shop__shop_id=connected_shopee.shop_id)
    assert products.count() == len(sandbox["shopee"].products)  # the order lines' SKUs are catalogue SKUs
    tee = products.get(sku="LA-TEE-001")
    assert tee.lines.exists() and tee.price == Decimal("17.91") and tee.category == "100600"


@pytest.mark.parametrize("platform,fields,words", [
    ("lazada", {"skus": [{"SellerSku": "LA-TEE-001", "price": "NaN", "quantity": 1, "Status": "active"}]},
     "not a finite amount"),
    ("lazada", {"skus": [{"SellerSku": "LA-TEE-001", "price": "1.00", "quantity": "-3"}]}, "'-3' is negative"),
    ("shopee", {"price_info": [{"currency": "SGD", "current_price": "abc"}]}, "is not a number"),
    ("shopee", {"item_sku": "X" * 300}, "sku is 300 characters"),
])
def test_one_bad_product_is_set_aside_the_run_is_partial_and_a_retry_stores_it(
    sandbox, request, api_client, admin_user, django_capture_on_commit_callbacks, platform, fields, words
):
    connection = request.getfixturevalue(f"connected_{platform}")
    box = sandbox[platform]
    bad = sorted(box.products)[0]
    box.override_product(bad, fields)
    record = sync_products(trigger="beat", connection_id=connection.pk)
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get(app="marketplace")
    assert (aside.kind, aside.key, aside.status) == ("product", f"{platform}:{connection.shop_id}:{bad}", "open")
    assert words in aside.reason, aside.reason
    good = {sku: row for sku, row in TRUTH[platform](box).items() if row[5] != str(bad)}
    assert stored(connection) == good

    box.override_product(bad, None)
    [retry] = retry_through_the_api(api_client, admin_user, django_capture_on_commit_callbacks, [aside])
    assert retry.status == "succeeded", retry.error
    aside.refresh_from_db()
    assert aside.status == "resolved"
    assert stored(connection) == TRUTH[platform](box)


def test_a_product_without_a_seller_sku_cannot_be_refetched_but_the_next_sync_resolves_it(
    sandbox, connected_lazada, api_client, admin_user, django_capture_on_commit_callbacks
):
    box = sandbox["lazada"]
    bad = sorted(box.products)[0]
    box.override_product(bad, {"skus": [{"SellerSku": "", "price": "1.00"}]})
    assert sync_products(trigger="beat").status == "partial"
    aside = SetAsideRecord.objects.get(app="marketplace", kind="product")
    assert "a sku has no SellerSku" in aside.reason
    [retry] = retry_through_the_api(api_client, admin_user, django_capture_on_commit_callbacks, [aside])
    assert retry.status == "failed"
    aside.refresh_from_db()
    assert aside.status == "open" and "no SellerSku to ask for it by" in aside.reason
    box.override_product(bad, None)
    assert sync_products(trigger="beat").status == "succeeded"
    aside.refresh_from_db()
    assert aside.status == "resolved"
    assert stored(connected_lazada) == lazada_truth(box)


def test_admin_api_task_and_command_run_the_one_product_sync(
    sandbox, connected_lazada, admin_client, api_client, admin_user, django_capture_on_commit_callbacks
):
    changelist = reverse("admin:marketplace_connection_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(changelist, {"action": "sync_products", "_selected_action": [connected_lazada.pk]})
    api_client.force_authenticate(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        one = api_client.post(reverse("marketplace-connection-sync-products", args=[connected_lazada.pk]))
        every = api_client.post(reverse("marketplace-sync-products"))
    assert (one.status_code, every.status_code) == (202, 202), (one.content, every.content)
    sync_products_task.delay(trigger="beat")
    call_command("marketplace_sync_products", "--connection", str(connected_lazada.pk))
    runs = SyncRun.objects.filter(app="marketplace", operation="sync_products").order_by("pk")
    assert [r.trigger for r in runs] == ["admin", "api", "api", "beat", "command"]
    assert {r.status for r in runs} == {"succeeded"}
    assert DimProduct.objects.count() == len(lazada_truth(sandbox["lazada"]))
