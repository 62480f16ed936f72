"""Lazada orders that share one update second are never lost: not when more of
them than a page holds are stepped through by offset while some change
upstream, and not when `update_after` turns out to leave out its own second
(the contract does not say which it does)."""

import time
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import requests

from marketplace.models import Connection, FactOrderLine
from marketplace.services import sync_orders


def truth(box):
    return {(str(order_id), str(item["order_item_id"]), box.orders[order_id]["status"])
            for order_id, items in box.items.items() for item in items}


def warehouse():
    return set(FactOrderLine.objects.filter(platform="lazada").values_list("order_id", "line_id", "status__code"))


def only_orders(box, groups):
    """Replace the sandbox's orders by `count` orders updated at each whole second given."""
    with box.lock:
        box.orders.clear()
        box.items.clear()
    for moment, count in groups:
        box.add_orders(count, start=moment, end=moment)


def set_update_after(sandbox, semantics):
    reply = requests.post(f"{sandbox.url}/_sandbox/lazada/orders", json={"update_after": semantics}, timeout=5)
    assert reply.status_code == 200, reply.text


@pytest.fixture
def no_lag(monkeypatch):
    monkeypatch.setenv("MARKETPLACE_SYNC_LAG_SECONDS", "0")


@pytest.mark.django_db
@pytest.mark.parametrize("update_after", ["inclusive", "exclusive"])
# Page 1 moves the keyset onto the tied second; page 2 finds nothing past it; pages
# 3 and 4 step through that second by offset (a touch after 2 lands before that).
@pytest.mark.parametrize("touch_after_page", [2, 3, 4])
def test_orders_of_one_second_updated_while_stepped_through_are_all_stored(
        sandbox, connected_lazada, no_lag, update_after, touch_after_page):
    box = sandbox["lazada"]
    set_update_after(sandbox, update_after)
    tied_at = (datetime.now(dt_timezone.utc) - timedelta(minutes=5)).replace(microsecond=0)
    only_orders(box, [(tied_at, 250)])
    # Five of the tied orders change upstream between two pages of the same second:
    # every later offset of that second shifts by five.
    box.touch_while_paging(after_pages=touch_after_page, count=5)

    first = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert first.status == "succeeded", first.error
    touched = {str(t) for t in box.touched_while_paging}
    assert len(touched) == 5
    # This run already holds every order still at that second; the touched ones come next run.
    assert {row for row in truth(box) if row[0] not in touched} <= warehouse()

    time.sleep(1.1)  # the touched orders' update second must be in the past for the next run's window
    second = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert second.status == "succeeded", second.error
    assert warehouse() == truth(box)

    third = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert third.status == "succeeded", third.error
    assert FactOrderLine.objects.filter(platform="lazada").count() == len(truth(box))  # nothing twice


@pytest.mark.django_db
@pytest.mark.parametrize("update_after", ["inclusive", "exclusive"])
def test_ties_across_a_page_edge_are_stored_whichever_way_update_after_counts_its_second(
        sandbox, connected_lazada, no_lag, update_after):
    box = sandbox["lazada"]
    set_update_after(sandbox, update_after)
    start = (datetime.now(dt_timezone.utc) - timedelta(minutes=5)).replace(microsecond=0)
    # 60 orders a second: every page of 100 ends inside a second whose other orders
    # come on the next page, asked for with that second as update_after.
    only_orders(box, [(start + timedelta(seconds=n), 60) for n in range(4)])

    run = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert run.status == "succeeded", run.error
    assert warehouse() == truth(box)


@pytest.mark.django_db
def test_an_order_updated_at_the_cursors_second_is_read_when_update_after_leaves_that_second_out(
        sandbox, connected_lazada, no_lag):
    box = sandbox["lazada"]
    set_update_after(sandbox, "exclusive")
    first = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert first.status == "succeeded", first.error
    cursor = Connection.objects.get(pk=connected_lazada.pk).orders_cursor
    # An order updated in the very second the last run stopped before: the next
    # run's window starts there.
    box.add_orders(3, start=cursor, end=cursor)
    time.sleep(1.1)

    second = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert second.status == "succeeded", second.error
    assert warehouse() == truth(box)


@pytest.mark.django_db
def test_orders_of_one_second_are_all_stored_when_the_list_sends_no_count_total(sandbox, connected_lazada, no_lag):
    box = sandbox["lazada"]
    reply = requests.post(f"{sandbox.url}/_sandbox/lazada/orders", json={"count_total": False}, timeout=5)
    assert reply.status_code == 200, reply.text
    tied_at = (datetime.now(dt_timezone.utc) - timedelta(minutes=5)).replace(microsecond=0)
    only_orders(box, [(tied_at, 250)])
    # Without countTotal a pass of that second counts as whole when it lists the
    # same orders as the pass before; a touch during the first pass changes them.
    box.touch_while_paging(after_pages=3, count=5)

    first = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert first.status == "succeeded", first.error
    touched = {str(t) for t in box.touched_while_paging}
    assert {row for row in truth(box) if row[0] not in touched} <= warehouse()
    time.sleep(1.1)
    second = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert second.status == "succeeded", second.error
    assert warehouse() == truth(box)
