"""Order-level money (FactOrder, natural key (shop, order_id)) from the order
syncs against the sandboxes and from the mock generator: the figures equal
what the platform sent, a re-run adds no row, a bad amount sets its order
aside, and two shops' orders with one id stay apart."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from django.db.models import Sum

from marketplace.client.base import OrderMoney
from marketplace.models import FactOrder, FactOrderLine
from marketplace.sandbox.lazada import order_money as lazada_money
from marketplace.services import generate_mock_orders, sync_orders
from marketplace.services.order_money import load_orders
from portal.models import SetAsideRecord

CENT = Decimal("0.01")


def amount(value):
    return None if value is None else Decimal(str(value)).quantize(CENT)


def lazada_truth(box):
    truth = {}
    for order_id in box.orders:
        money = lazada_money(order_id)
        items = sum(Decimal(i["item_price"]) for i in box.items[order_id])
        shipping, voucher = amount(money["shipping_fee"]), amount(money["voucher"])
        truth[str(order_id)] = (items, shipping, voucher, amount(money.get("voucher_seller")),
                                amount(money.get("voucher_platform")), items + shipping - voucher, "SGD")
    return truth


def stored(platform):
    return {o.order_id: (o.items_total, o.shipping_fee, o.voucher_total, o.voucher_seller, o.voucher_platform,
                         o.total_amount, o.currency) for o in FactOrder.objects.filter(platform=platform)}


def test_a_lazada_sync_stores_each_orders_shipping_fee_and_vouchers_once(sandbox, connected_lazada):
    for _ in range(2):  # a re-run adds nothing
        assert sync_orders(trigger="command").status == "succeeded"
        assert stored("lazada") == lazada_truth(sandbox["lazada"])
    order = FactOrder.objects.select_related("shop").first()
    assert order.source == "api" and order.run_id and order.shop.shop_id == connected_lazada.shop_id
    assert order.payment_method == "COD"


def test_a_shopee_sync_stores_the_total_amount_and_leaves_what_shopee_does_not_give_empty(
        sandbox, connected_shopee):
    for _ in range(2):
        assert sync_orders(trigger="command").status == "succeeded"
        truth = {sn: (None, None, None, None, None, amount(o["total_amount"]), "SGD")
                 for sn, o in sandbox["shopee"].orders.items()}
        assert stored("shopee") == truth


def test_an_order_whose_shipping_fee_is_not_an_amount_is_set_aside_lines_and_all(sandbox, connected_lazada):
    box = sandbox["lazada"]
    bad = sorted(box.orders)[0]
    box.override(bad, {"shipping_fee": "NaN"}, None)
    record = sync_orders(trigger="command")
    assert record.status == "partial"
    aside = SetAsideRecord.objects.get(kind="order")
    assert "shipping_fee" in aside.reason and str(bad) in aside.key
    assert not FactOrder.objects.filter(order_id=str(bad)).exists()
    assert not FactOrderLine.objects.filter(order_id=str(bad)).exists()
    assert FactOrder.objects.count() == len(box.orders) - 1


def test_mock_orders_carry_their_money_and_a_rerun_or_purge_keeps_it_consistent(db):
    for _ in range(2):
        assert generate_mock_orders(trigger="command", orders=30, seed=5).status == "succeeded"
    orders = FactOrder.objects.filter(is_mock=True)
    assert orders.count() == 30
    for order in orders:
        paid = FactOrderLine.objects.filter(shop=order.shop, order_id=order.order_id).aggregate(s=Sum("paid_price"))
        assert order.items_total == paid["s"]
        assert order.total_amount == order.items_total + order.shipping_fee - order.voucher_total
    assert generate_mock_orders(trigger="command", purge=True).status == "succeeded"
    assert not FactOrder.objects.exists()


@pytest.mark.django_db
def test_two_shops_orders_with_one_id_are_two_rows():
    at = datetime(2025, 11, 22, 2, tzinfo=timezone.utc)
    orders = [OrderMoney(platform="shopee", shop_id=shop, order_id="2511SAME", ordered_at=at,
                         total_amount=Decimal(total)) for shop, total in (("880011", "10.00"), ("880012", "20.00"))]
    assert load_orders(orders, source="api") == 2
    assert load_orders(orders, source="api") == 2
    assert dict(FactOrder.objects.values_list("shop__shop_id", "total_amount")) == {
        "880011": Decimal("10.00"), "880012": Decimal("20.00")}
