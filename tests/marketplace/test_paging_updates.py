"""An order updated while a sync pages through the list is never lost: the
warehouse ends equal to the sandbox's truth, and a re-run duplicates nothing."""

import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest

from marketplace.models import FactOrderLine
from marketplace.services import sync_orders


def lazada_truth(box):
    return {(str(order_id), str(item["order_item_id"]), box.orders[order_id]["status"])
            for order_id, items in box.items.items() for item in items}


def shopee_truth(box):
    return {(sn, f"{item['item_id']}-{item['model_id']}", order["order_status"].lower())
            for sn, order in box.orders.items() for item in order["item_list"]}


def warehouse(platform):
    return set(FactOrderLine.objects.filter(platform=platform).values_list("order_id", "line_id", "status__code"))


@pytest.mark.django_db
@pytest.mark.parametrize("platform,truth,touch_after_page", [("lazada", lazada_truth, 1),
                                                             ("shopee", shopee_truth, 2)])
def test_orders_updated_while_paging_are_stored_by_this_run_or_the_next(
        sandbox, request, monkeypatch, platform, truth, touch_after_page):
    monkeypatch.setenv("MARKETPLACE_SYNC_LAG_SECONDS", "0")
    connection = request.getfixturevalue(f"connected_{platform}")
    box = sandbox[platform]
    now = datetime.now(dt_timezone.utc)
    box.add_orders(190 if platform == "lazada" else 130, start=now - timedelta(days=3), end=now - timedelta(minutes=3))
    # Right after the first page of recent orders is served, five of its orders
    # change upstream: under offset paging every later page shifts by five.
    box.touch_while_paging(after_pages=touch_after_page, count=5)

    first = sync_orders(trigger="command", connection_id=connection.pk)
    assert first.status == "succeeded", first.error
    assert len(box.touched_while_paging) == 5
    touched = {str(t) for t in box.touched_while_paging}
    # Everything but the touched orders is already as the sandbox has it.
    untouched_truth = {row for row in truth(box) if row[0] not in touched}
    assert untouched_truth <= warehouse(platform)

    time.sleep(1.1)  # the touched orders' update second must be in the past for the next run's window
    second = sync_orders(trigger="command", connection_id=connection.pk)
    assert second.status == "succeeded", second.error
    assert warehouse(platform) == truth(box)

    third = sync_orders(trigger="command", connection_id=connection.pk)
    assert third.status == "succeeded", third.error
    assert warehouse(platform) == truth(box)
    assert FactOrderLine.objects.filter(platform=platform).count() == len(truth(box))  # no duplicates
