"""Order sync from both sandboxes into the star schema, through the command."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from marketplace.models import Connection, DimStatus, FactOrderLine
from marketplace.services import sync_orders
from portal.models import SyncRun
from portal.sandbox.base import json_response


def expected_lazada_lines(box, since, until):
    return sum(len(box.items[o["order_id"]]) for o in box.orders.values() if since <= o["updated"] < until)


@pytest.mark.django_db
def test_it_pulls_lazada_orders_with_their_items_and_a_rerun_duplicates_nothing(sandbox, connected_lazada):
    box = sandbox["lazada"]
    call_command("marketplace_sync_orders")
    total_items = sum(len(items) for items in box.items.values())
    assert FactOrderLine.objects.filter(platform="lazada").count() == total_items
    connected_lazada.refresh_from_db()
    assert connected_lazada.orders_cursor is not None

    call_command("marketplace_sync_orders", "--connection", str(connected_lazada.pk))
    assert FactOrderLine.objects.filter(platform="lazada").count() == total_items
    line = FactOrderLine.objects.filter(platform="lazada").select_related("shop", "customer", "product").first()
    assert line.shop.shop_id == connected_lazada.shop_id
    assert line.customer.city and line.product.sku.startswith("LA-")
    assert len(line.customer.customer_key) == 64  # hashed, no phone stored


@pytest.mark.django_db
def test_it_pages_past_one_hundred_lazada_orders(sandbox, connected_lazada):
    box = sandbox["lazada"]
    now = datetime.now(dt_timezone.utc)
    box.add_orders(190, start=now - timedelta(days=3), end=now - timedelta(minutes=3))
    record = sync_orders(trigger="command")
    assert record.status == "succeeded", record.error
    assert record.counters["pages"] >= 3  # 250 orders at 100 a page
    assert FactOrderLine.objects.filter(platform="lazada").values("order_id").distinct().count() == 250
    # Keyset paging: each page starts at the last update time of the one before.
    queries = [p for path, p in box.calls if path == "/orders/get"]
    assert {int(p["offset"]) for p in queries} == {0}
    afters = [datetime.fromisoformat(p["update_after"]) for p in queries]
    assert afters == sorted(afters) and len(set(afters)) == len(afters)


@pytest.mark.django_db
def test_it_picks_up_updated_orders_incrementally(sandbox, connected_lazada):
    box = sandbox["lazada"]
    sync_orders(trigger="command")
    # As if the last run was ten minutes ago, and an order changed since.
    Connection.objects.filter(pk=connected_lazada.pk).update(orders_cursor=F("orders_cursor") - timedelta(minutes=10))
    cursor_before = Connection.objects.get(pk=connected_lazada.pk).orders_cursor
    order_id = next(iter(box.orders))
    box.touch([order_id], status="returned")
    box.orders[order_id]["updated"] = cursor_before + timedelta(minutes=1)
    box.calls.clear()
    record = sync_orders(trigger="command")
    assert record.status == "succeeded", record.error
    first_query = next(p for path, p in box.calls if path == "/orders/get")
    # From one second before the cursor: the contract does not say whether update_after takes in its own second.
    assert datetime.fromisoformat(first_query["update_after"]) == cursor_before - timedelta(seconds=1)
    status = FactOrderLine.objects.filter(order_id=str(order_id)).values_list("status__code", "status__group")
    assert set(status) == {("returned", DimStatus.Group.RETURNED)}
    assert FactOrderLine.objects.filter(platform="lazada").count() == sum(len(i) for i in box.items.values())


@pytest.mark.django_db
def test_it_walks_shopee_history_in_fifteen_day_windows(sandbox, connected_shopee):
    box = sandbox["shopee"]
    call_command("marketplace_sync_orders")
    windows = [p for path, p in box.calls if path == "/order/get_order_list"]
    assert len(windows) == 2  # 30 days back, in windows of at most 15 days
    assert all(int(p["time_to"]) - int(p["time_from"]) <= 15 * 86400 for p in windows)
    expected = sum(len(o["item_list"]) for o in box.orders.values())
    assert FactOrderLine.objects.filter(platform="shopee").count() == expected
    call_command("marketplace_sync_orders")
    assert FactOrderLine.objects.filter(platform="shopee").count() == expected


@pytest.mark.django_db
def test_it_follows_shopee_cursors_across_pages(sandbox, connected_shopee):
    box = sandbox["shopee"]
    now = datetime.now(dt_timezone.utc)
    box.add_orders(130, start=now - timedelta(days=3), end=now - timedelta(minutes=5))
    record = sync_orders(trigger="command", connection_id=connected_shopee.pk)
    assert record.status == "succeeded", record.error
    cursors = [p["cursor"] for path, p in box.calls if path == "/order/get_order_list"]
    assert len([c for c in cursors if c]) >= 1  # the opaque next_cursor sent back as given
    assert FactOrderLine.objects.filter(platform="shopee").values("order_id").distinct().count() == 170


@pytest.mark.django_db
def test_a_server_error_mid_sync_keeps_the_stored_pages_and_the_rerun_completes(sandbox, connected_lazada):
    box = sandbox["lazada"]
    now = datetime.now(dt_timezone.utc)
    box.add_orders(190, start=now - timedelta(days=3), end=now - timedelta(minutes=3))
    # Page 1 and its items succeed; page 2 answers 500 however often it is retried.
    original = box.orders_get
    pages = {"served": 0}

    def second_page_fails(request):
        pages["served"] += 1
        return original(request) if pages["served"] == 1 else json_response({"message": "boom"}, 500)

    box.orders_get = second_page_fails  # the server looks the handler up on the instance
    try:
        with pytest.raises(CommandError, match="failed"):
            call_command("marketplace_sync_orders")
    finally:
        del box.orders_get
    connected_lazada.refresh_from_db()
    stored = FactOrderLine.objects.filter(platform="lazada").values("order_id").distinct().count()
    assert stored == 100  # the first page only
    assert connected_lazada.orders_cursor < now  # moved with page 1, not to the end
    assert "HTTP 500" in connected_lazada.last_error

    call_command("marketplace_sync_orders")
    assert FactOrderLine.objects.filter(platform="lazada").values("order_id").distinct().count() == 250
    assert FactOrderLine.objects.filter(platform="lazada").count() == sum(len(i) for i in box.items.values())


@pytest.mark.django_db
def test_it_refuses_to_sync_without_a_connected_shop(lazada_connection):
    with pytest.raises(CommandError, match="No connected marketplace shop"):
        call_command("marketplace_sync_orders")


@pytest.mark.django_db
def test_a_shop_being_synced_by_another_run_is_skipped_not_synced_twice(connected_lazada):
    from portal.runs import hold_lock

    other = SyncRun.objects.create(app="marketplace", operation="sync_orders", trigger="beat", status="running")
    with hold_lock(f"marketplace.orders_of_shop:{connected_lazada.pk}", other):
        record = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert record.status == "skipped" and f"run #{other.pk}" in record.error
    assert not FactOrderLine.objects.exists()
