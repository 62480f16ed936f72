"""One malformed Lazada or Shopee order is set aside; every other order is stored.

The sandboxes serve the broken order in the contract's own shape (their
`override` control); after it is fixed, a retry through
/api/portal/set-aside/retry fetches it again through the order-detail call,
stores it and resolves the record.
"""

import pytest
import requests

from marketplace.models import Connection, FactOrderLine
from marketplace.services import sync_orders
from portal.models import SetAsideRecord, SyncRun
from tests.conftest import retry_through_the_api

pytestmark = pytest.mark.django_db


def truth(box, platform):
    """{order id: number of lines} as the sandbox holds them."""
    if platform == "lazada":
        return {str(order_id): len(items) for order_id, items in box.items.items()}
    return {sn: len(order["item_list"]) for sn, order in box.orders.items()}


def stored(platform):
    lines = FactOrderLine.objects.filter(platform=platform)
    counts = {}
    for order_id in lines.values_list("order_id", flat=True):
        counts[order_id] = counts.get(order_id, 0) + 1
    return counts


def pick(box, platform):
    return list(box.items if platform == "lazada" else box.orders)[7]




MALFORMED = [
    # platform, order fields served instead, item fields served instead, words the reason has
    ("lazada", None, {"paid_price": "NaN"}, "paid_price 'NaN' is not a finite amount"),
    ("lazada", None, {"item_price": "12,90 SGD"}, "item_price '12,90 SGD' is not a number"),
    ("lazada", {"created_at": "yesterday teatime"}, None, "created_at 'yesterday teatime' is not a date"),
    ("lazada", None, {"order_item_id": None}, "an item has no order_item_id"),
    ("lazada", None, {"sku": "X" * 300}, "sku is 300 characters, more than the 200"),
    ("shopee", None, {"model_discounted_price": float("nan")}, "model_discounted_price nan is not a finite amount"),
    ("shopee", {"update_time": "last week"}, None, "update_time 'last week' is not a unix time"),
    ("shopee", {"order_sn": None}, None, "its detail has order_sn None"),
    ("shopee", None, {"item_id": None}, "an item has no item_id"),
]


@pytest.mark.parametrize("platform,fields,item_fields,words", MALFORMED)
def test_a_malformed_order_is_set_aside_the_rest_stored_and_a_retry_stores_it(
    sandbox, request, api_client, admin_user, django_capture_on_commit_callbacks, platform, fields, item_fields, words
):
    connection = request.getfixturevalue(f"connected_{platform}")
    box = sandbox[platform]
    bad = pick(box, platform)
    box.override(bad, fields, item_fields)
    record = sync_orders(trigger="beat", connection_id=connection.pk)
    assert record.status == "partial", record.error
    aside = SetAsideRecord.objects.get(app="marketplace")
    assert (aside.kind, aside.key, aside.status, aside.run_id) == (
        "order", f"{platform}:{connection.shop_id}:{bad}", "open", record.pk)
    assert words in aside.reason, aside.reason
    assert aside.context["connection_id"] == connection.pk and aside.context["order_id"] == str(bad)
    assert aside.payload  # the order as it was sent
    expected = {k: v for k, v in truth(box, platform).items() if k != str(bad)}
    assert stored(platform) == expected
    assert record.counters["items_ok"] == len(expected) and record.counters["set_aside"] == 1
    # The cursor moved past the bad order only because its record was stored with it.
    connection.refresh_from_db()
    assert connection.orders_cursor is not None and connection.orders_synced_at is not None

    # Read it all again: no duplicate row, the same open record seen twice.
    Connection.objects.filter(pk=connection.pk).update(orders_cursor=None)
    again = sync_orders(trigger="beat", connection_id=connection.pk)
    assert again.status == "partial"
    aside.refresh_from_db()
    assert SetAsideRecord.objects.count() == 1 and aside.attempts == 2 and aside.run_id == again.pk
    assert stored(platform) == expected

    box.fix_orders()
    [retry] = retry_through_the_api(api_client, admin_user, django_capture_on_commit_callbacks, [aside])
    assert (retry.app, retry.operation, retry.status) == ("marketplace", "retry_set_aside", "succeeded"), retry.error
    aside.refresh_from_db()
    assert aside.status == "resolved" and aside.resolved_by_id == retry.pk
    assert stored(platform) == truth(box, platform)
    detail_call = "/order/get" if platform == "lazada" else "/order/get_order_detail"
    path, params = [c for c in box.calls if c[0] == detail_call][-1]
    assert str(bad) in (params.get("order_id"), params.get("order_sn_list"))  # just that one order, refetched


def test_a_retry_while_the_order_is_still_bad_keeps_it_open(
    sandbox, connected_lazada, api_client, admin_user, django_capture_on_commit_callbacks
):
    box = sandbox["lazada"]
    bad = pick(box, "lazada")
    box.override(bad, None, {"paid_price": "NaN"})
    sync_orders(trigger="beat")
    aside = SetAsideRecord.objects.get()
    [retry] = retry_through_the_api(api_client, admin_user, django_capture_on_commit_callbacks, [aside])
    assert retry.status == "failed"
    aside.refresh_from_db()
    assert aside.status == "open" and aside.attempts == 2 and "'NaN'" in aside.reason and aside.run_id == retry.pk
    assert str(bad) not in stored("lazada")


def test_a_normal_sync_that_stores_the_fixed_order_resolves_its_record(sandbox, connected_shopee):
    box = sandbox["shopee"]
    bad = pick(box, "shopee")
    box.override(bad, {"create_time": "soon"}, None)
    assert sync_orders(trigger="beat").status == "partial"
    box.fix_orders()
    Connection.objects.filter(pk=connected_shopee.pk).update(orders_cursor=None)
    record = sync_orders(trigger="beat")
    assert record.status == "succeeded", record.error
    assert SetAsideRecord.objects.get().resolved_by_id == record.pk
    assert stored("shopee") == truth(box, "shopee")


def test_an_order_whose_items_never_come_is_set_aside_not_lost(sandbox, connected_lazada):
    box = sandbox["lazada"]
    bad = pick(box, "lazada")
    # The order list names it, but its id is not one the items call can take.
    box.override(bad, {"order_id": "three hundred"}, None)
    record = sync_orders(trigger="beat")
    assert record.status == "partial"
    aside = SetAsideRecord.objects.get()
    assert aside.key.startswith(f"lazada:{connected_lazada.shop_id}:no-id-") and "'three hundred'" in aside.reason
    assert len(stored("lazada")) == len(box.items) - 1
    Connection.objects.filter(pk=connected_lazada.pk).update(orders_cursor=None)
    sync_orders(trigger="beat")
    assert SetAsideRecord.objects.count() == 1  # the same stand-in key


def test_a_token_failure_still_stops_the_run_and_sets_nothing_aside(sandbox, connected_lazada):
    sandbox["lazada"].override(pick(sandbox["lazada"], "lazada"), None, {"paid_price": "NaN"})
    sandbox["lazada"].expire("both")
    record = sync_orders(trigger="beat", connection_id=connected_lazada.pk)
    assert record.status == "failed" and "IllegalRefreshToken" in record.error
    assert not SetAsideRecord.objects.exists() and not FactOrderLine.objects.exists()


def test_the_override_control_speaks_http(sandbox, connected_lazada):
    bad = pick(sandbox["lazada"], "lazada")
    reply = requests.post(f"{sandbox.url}/_sandbox/lazada/override",
                          json={"order": bad, "item_fields": {"paid_price": "abc"}}, timeout=5)
    assert reply.status_code == 200, reply.text
    state = requests.get(f"{sandbox.url}/_sandbox/lazada/state", timeout=5).json()
    assert state["overrides"] == [{"order": str(bad), "fields": {}, "item_fields": {"paid_price": "abc"}}]
    assert sync_orders(trigger="beat").status == "partial"
    requests.post(f"{sandbox.url}/_sandbox/lazada/fix_orders", timeout=5)
    assert requests.get(f"{sandbox.url}/_sandbox/lazada/state", timeout=5).json()["overrides"] == []


def test_the_cursor_is_never_past_an_order_that_is_neither_stored_nor_set_aside(sandbox, connected_lazada):
    from datetime import datetime, timedelta
    from datetime import timezone as dt_timezone

    from portal.sandbox.base import json_response

    box = sandbox["lazada"]
    now = datetime.now(dt_timezone.utc)
    box.add_orders(190, start=now - timedelta(days=3), end=now - timedelta(minutes=3))
    bad = sorted(box.orders.values(), key=lambda o: (o["updated"], o["order_id"]))[10]["order_id"]
    box.override(bad, None, {"paid_price": "NaN"})
    original, served = box.orders_get, {"pages": 0}

    def second_page_fails(request):  # page 1 goes through; page 2 answers 500 however often it is retried
        served["pages"] += 1
        return original(request) if served["pages"] == 1 else json_response({"message": "boom"}, 500)

    box.orders_get = second_page_fails
    try:
        record = sync_orders(trigger="beat", connection_id=connected_lazada.pk)
    finally:
        del box.orders_get
    assert record.status == "failed"
    cursor = Connection.objects.get(pk=connected_lazada.pk).orders_cursor
    behind = {str(o["order_id"]) for o in box.orders.values() if o["updated"] < cursor}
    open_keys = SetAsideRecord.objects.filter(status="open").values_list("key", flat=True)
    aside = {key.rsplit(":", 1)[1] for key in open_keys}
    assert aside == {str(bad)}
    assert behind - set(stored("lazada")) == aside


def test_the_command_records_who_ran_it_and_exits_non_zero_on_a_partial_sync(sandbox, connected_shopee):
    from django.core.management import CommandError, call_command

    sandbox["shopee"].override(pick(sandbox["shopee"], "shopee"), None, {"model_original_price": "twelve"})
    with pytest.raises(CommandError, match=r"sync_orders \[all\] partial: .*set_aside=1"):
        call_command("marketplace_sync_orders", "--as", "ops-jane")
    run = SyncRun.objects.get(operation="sync_orders")
    assert (run.trigger, run.actor, run.status) == ("command", "ops-jane", "partial")
