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


EXPORT = (
    "Order ID,Order Item Id,Order Creation Date,Order Status,SKU,Product Name,Unit Price,Quantity,"
    "Buyer Paid Shipping Fee,Seller Voucher,Shopee Voucher,Grand Total\n"
    "2511CSV1,1,2025-11-22 10:15,COMPLETED,LA-TEE-001,Linen Tee,19.90,1,2.50,1.00,0.50,20.90\n"
    "2511CSV1,2,2025-11-22 10:15,COMPLETED,LA-BAG-203,Canvas Tote,24.50,1,2.50,1.00,0.50,20.90\n"
    "2511CSV2,1,2025-11-23 09:00,COMPLETED,LA-DRS-014,Wrap Dress,49.00,1,0.00,,,49.00\n"
)


@pytest.mark.django_db
def test_an_order_export_with_order_level_columns_fills_the_orders_money_and_undo_removes_it(tmp_path):
    from django.core.management import call_command

    path = tmp_path / "shopee-orders.csv"
    path.write_text(EXPORT)
    call_command("marketplace_import_csv", str(path), "--platform", "shopee", "--shop", "880011", "--new-shop")
    orders = {o.order_id: o for o in FactOrder.objects.all()}
    assert set(orders) == {"2511CSV1", "2511CSV2"}
    first = orders["2511CSV1"]
    assert (first.shipping_fee, first.voucher_seller, first.voucher_platform, first.total_amount) == (
        Decimal("2.50"), Decimal("1.00"), Decimal("0.50"), Decimal("20.90"))
    assert orders["2511CSV2"].voucher_seller is None and orders["2511CSV2"].total_amount == Decimal("49.00")
    assert first.source == "csv" and first.upload_id and first.run_id
    call_command("marketplace_undo_csv_upload", str(first.upload_id))
    assert not FactOrder.objects.exists() and not FactOrderLine.objects.exists()


@pytest.mark.django_db
def test_lines_of_one_order_that_disagree_on_its_money_reject_the_file_by_line(tmp_path):
    from django.core.management import CommandError, call_command

    from marketplace.models import CsvUpload

    bad = EXPORT.replace("24.50,1,2.50,1.00", "24.50,1,3.00,1.00").replace("49.00,1,0.00", "49.00,1,NaN")
    path = tmp_path / "bad.csv"
    path.write_text(bad)
    with pytest.raises(CommandError):
        call_command("marketplace_import_csv", str(path), "--platform", "shopee", "--shop", "880011", "--new-shop")
    upload = CsvUpload.objects.get()
    assert upload.status == "rejected"
    assert upload.errors == ["line 3: order 2511CSV1: its order-level amounts differ from line 2",
                             "line 4: order money: not a finite amount: 'NaN'"]
    assert not FactOrder.objects.exists() and not FactOrderLine.objects.exists()


def test_a_csv_never_overwrites_an_orders_money_from_the_api(tmp_path, sandbox, connected_lazada):
    from django.core.management import CommandError, call_command

    from marketplace.models import CsvUpload

    assert sync_orders(trigger="command").status == "succeeded"
    api_order = FactOrder.objects.first()
    path = tmp_path / "lazada.csv"
    path.write_text("orderNumber,orderItemId,createTime,status,sellerSku,itemName,unitPrice,shippingFee\n"
                    f"{api_order.order_id},999,22 Nov 2025 10:15,delivered,LA-TEE-001,Linen Tee,19.90,99.00\n")
    with pytest.raises(CommandError):
        call_command("marketplace_import_csv", str(path), "--platform", "lazada", "--shop", connected_lazada.shop_id)
    assert CsvUpload.objects.get().errors == [
        f"line 2: order {api_order.order_id} conflicts with an order from the api: a CSV never overwrites it"]
    assert FactOrder.objects.get(pk=api_order.pk).shipping_fee == api_order.shipping_fee


def money_export(path, orders):
    """An export of `orders` orders, two lines each, with the order-level columns real exports carry."""
    with open(path, "w") as out:
        out.write(EXPORT.splitlines()[0] + ",Payment Method\n")
        for n in range(orders):
            for line in (1, 2):
                out.write(f"25{n:08d},{line},2025-11-{n % 28 + 1:02d} 10:15,COMPLETED,SKU-{n % 300},Item,19.90,1,"
                          f"{n % 7}.50,1.00,0.50,{n % 900 + 3}.25,COD\n")
    return path


@pytest.mark.django_db
def test_an_exports_order_money_is_streamed_not_held_per_order(tmp_path):
    """The Python heap while a file loads does not grow with its orders: four times
    the orders, about the same peak (the file's money is staged and merged by SQL)."""
    import tracemalloc

    from django.core.management import call_command

    peaks = []
    for orders in (5_000, 20_000):
        path = money_export(tmp_path / f"{orders}.csv", orders)
        tracemalloc.start()
        call_command("marketplace_import_csv", str(path), "--platform", "shopee", "--shop", "880011", "--new-shop")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert FactOrder.objects.filter(order_id__startswith="25").count() == orders
    stored = FactOrder.objects.get(order_id="2500000009")
    assert (stored.shipping_fee, stored.voucher_seller, stored.voucher_platform, stored.total_amount,
            stored.payment_method, stored.source) == (
        Decimal("2.50"), Decimal("1.00"), Decimal("0.50"), Decimal("12.25"), "COD", "csv")
    assert stored.date.date.isoformat() == "2025-11-10"
    assert peaks[1] < peaks[0] * 1.5, [f"{p / 1e6:.1f} MB" for p in peaks]
