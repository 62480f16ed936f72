"""The shop is part of the natural keys: a product is a SKU of one shop and an
order line is (shop, order id, line id), so two shops (of one main-account
grant, say) that number orders alike or sell the same SKU never overwrite each
other. The customer key is the same whether a line came from the API or a CSV."""

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from django.core.management import call_command

from marketplace.models import Connection, DimCustomer, DimProduct, FactOrderLine
from marketplace.services import refresh_token, sync_orders
from marketplace.warehouse import OrderLine, load_lines, orphan_facts

from .conftest import oauth_connect


def line(shop_id, **changes):
    values = dict(platform="shopee", shop_id=shop_id, order_id="2511SAME", line_id="1001-11",
                  ordered_at=datetime(2025, 11, 22, 2, 0, tzinfo=timezone.utc), status="COMPLETED",
                  sku="LA-TEE-001", product_name=f"Linen Tee ({shop_id})", quantity=1, unit_price=Decimal("19.90"),
                  paid_price=Decimal("19.90"), currency="SGD", customer_key="c" * 64, customer_name="anna.s")
    values.update(changes)
    return OrderLine(**values)


@pytest.mark.django_db
def test_two_shops_with_the_same_order_id_and_sku_keep_two_orders_and_two_products():
    lines = [line("880011"), line("880012", paid_price=Decimal("17.00"))]
    assert load_lines(lines, source="api") == 2
    assert load_lines(lines, source="api") in (0, 2)  # a re-run: nothing new (PostgreSQL writes no unchanged row)
    assert load_lines([replace(lines[1], status="TO_RETURN")], source="api") == 1
    stored = {f.shop.shop_id: f for f in FactOrderLine.objects.select_related("shop", "product", "status")}
    assert set(stored) == {"880011", "880012"} and FactOrderLine.objects.count() == 2
    assert (stored["880011"].paid_price, stored["880011"].status.code) == (Decimal("19.90"), "completed")
    assert (stored["880012"].paid_price, stored["880012"].status.code) == (Decimal("17.00"), "to_return")
    products = {p.shop.shop_id: p for p in DimProduct.objects.select_related("shop")}
    assert DimProduct.objects.count() == 2
    assert {s: (p.sku, p.name) for s, p in products.items()} == {
        "880011": ("LA-TEE-001", "Linen Tee (880011)"), "880012": ("LA-TEE-001", "Linen Tee (880012)")}
    assert stored["880011"].product == products["880011"] and stored["880012"].product == products["880012"]
    assert orphan_facts() == 0


@pytest.mark.django_db
def test_the_shops_of_a_main_account_grant_keep_their_own_orders(admin_client, sandbox, shopee_connection):
    # The Shopee sandbox's main account shows the same orders to both of its shops:
    # each shop must hold every one of them, under its own key.
    oauth_connect(admin_client, shopee_connection, main_account="1")
    shops = list(Connection.objects.filter(platform="shopee").order_by("shop_id"))
    assert len(shops) == 2
    truth = {sn: {f"{i['item_id']}-{i['model_id']}" for i in o["item_list"]}
             for sn, o in sandbox["shopee"].orders.items()}
    expected = {(sn, line_id) for sn, line_ids in truth.items() for line_id in line_ids}
    for _ in range(2):  # a re-run adds nothing
        for shop in shops:
            assert refresh_token(trigger="command", connection_id=shop.pk).status == "succeeded"
            assert sync_orders(trigger="command", connection_id=shop.pk).status == "succeeded"
        for shop in shops:
            stored = FactOrderLine.objects.filter(shop__shop_id=shop.shop_id)
            assert set(stored.values_list("order_id", "line_id")) == expected
            assert stored.count() == len(expected)
        assert FactOrderLine.objects.count() == 2 * len(expected)
    skus = set(FactOrderLine.objects.values_list("product__sku", flat=True))
    assert DimProduct.objects.count() == 2 * len(skus)


@pytest.mark.django_db
def test_the_customer_key_is_the_same_from_the_api_and_a_csv_export(tmp_path, sandbox, connected_lazada):
    assert sync_orders(trigger="command").status == "succeeded"
    api_line = FactOrderLine.objects.select_related("customer", "shop").filter(source="api").first()
    order = sandbox["lazada"].orders[int(api_line.order_id)]
    phone = order["address_shipping"]["phone"]
    spaced = f"+{phone[:2]} {phone[2:6]} {phone[6:]}"  # the export formats the number its own way
    export = tmp_path / "lazada-export.csv"
    export.write_text(
        "Order Number,Order Item Id,Create Time,Status,Seller SKU,Item Name,Unit Price,Customer Name,"
        "Shipping Phone Number\n"
        f"990001,1,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,{order['customer_first_name']},{spaced}\n")
    call_command("marketplace_import_csv", str(export), "--platform", "lazada", "--shop", api_line.shop.shop_id)
    csv_line = FactOrderLine.objects.select_related("customer").get(order_id="990001")
    assert csv_line.source == "csv"
    assert csv_line.customer_id == api_line.customer_id
    assert DimCustomer.objects.filter(customer_key=api_line.customer.customer_key).count() == 1
