"""A Lazada catalogue longer than /products/get's offset cap is read whole:
windows keyed on create_after, the offset reset in each, ties on the boundary
second read again and stored once; a product edited or created while the run
pages ends stored by that run. The sandbox's cap is lowered through its
control API so a few hundred products cross it (the default is the
contract's 10000)."""

import pytest
import requests

from marketplace.client import client_for
from marketplace.models import DimProduct
from marketplace.services import sync_products
from portal.http import UpstreamPermanentError
from tests.marketplace.test_sync_products import lazada_truth, shopee_truth, stored


def control(sandbox, **body):
    reply = requests.post(f"{sandbox.url}/_sandbox/lazada/products", json=body, timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.json()


def products_get(connection, **params):
    client = client_for(connection)
    body = client.call(client.api_url, "/products/get", {"filter": "all", "limit": 50, **params},
                       token=connection.access_token)
    return body["data"]


def list_calls(box):
    return [params for path, params in box.calls if path == "/products/get" and "sku_seller_list" not in params]


@pytest.mark.django_db
def test_the_sandbox_holds_to_the_offset_cap_and_filters_on_create_after(sandbox, connected_lazada):
    box = sandbox["lazada"]
    assert box.product_offset_cap == 10000  # the contract's, unless a test lowers it
    assert products_get(connected_lazada, offset=10000)["products"] == []
    with pytest.raises(UpstreamPermanentError, match=": 14:"):
        products_get(connected_lazada, offset=10001)
    assert control(sandbox, offset_cap=200) == {"offset_cap": 200}
    assert len(products_get(connected_lazada, offset=0)["products"]) == 5
    with pytest.raises(UpstreamPermanentError, match=": 14:"):
        products_get(connected_lazada, offset=250)
    with pytest.raises(UpstreamPermanentError, match=": 17:"):
        products_get(connected_lazada, create_after="2023-11-14 22:13:22")  # no offset: not ISO 8601 enough

    # Seeded products are created a second apart from 2023-11-14T22:13:20Z; "after or on" is inclusive.
    data = products_get(connected_lazada, create_after="2023-11-15T06:13:22+08:00")
    assert data["total_products"] == 3
    assert [p["item_id"] for p in data["products"]] == [500102, 500103, 500104]
    assert products_get(connected_lazada, create_after="2023-11-14T22:13:22+0000")["total_products"] == 3


@pytest.mark.django_db
def test_a_catalogue_past_the_offset_cap_syncs_whole_once_per_product_and_a_rerun_adds_nothing(
        sandbox, connected_lazada, connected_shopee):
    box = sandbox["lazada"]
    control(sandbox, offset_cap=200)
    # Three products per created second, so ties on create_after's second fall across window edges.
    control(sandbox, count=1000, per_second=3)
    sandbox["shopee"].add_products(30)
    box.calls.clear()

    record = sync_products(trigger="command")
    assert record.status == "succeeded", record.error
    assert stored(connected_lazada) == lazada_truth(box)  # 1005 products, 1006 SKUs
    assert stored(connected_shopee) == shopee_truth(sandbox["shopee"])
    assert record.counters["products"] == len(box.products) + len(sandbox["shopee"].products)  # each stored once

    calls = list_calls(box)
    offsets = [int(c["offset"]) for c in calls]
    windows = [c.get("create_after") for c in calls if c["offset"] == "0" and "update_after" not in c]
    assert max(offsets) == 250 and offsets.count(250) == 1  # refused once with 14: the cap is learnt
    assert len(windows) >= 4 and windows[0] is None and windows[1:] == sorted(set(windows[1:]))
    # Only the products of each window's boundary second are read again (at most 3 each).
    assert len(box.products) <= box.product_list_served <= len(box.products) + 3 * (len(windows) - 1)

    box.calls.clear()
    again = sync_products(trigger="command", connection_id=connected_lazada.pk)
    assert again.status == "succeeded", again.error
    assert again.counters["products"] == len(box.products)
    assert DimProduct.objects.filter(shop__shop_id=connected_lazada.shop_id).count() == len(lazada_truth(box))
    assert [c["offset"] for c in list_calls(box)].count("250") == 1  # each run learns a lower cap once


@pytest.mark.django_db
def test_a_product_edited_or_created_while_the_sync_pages_is_stored_by_that_run(sandbox, connected_lazada):
    box = sandbox["lazada"]
    control(sandbox, offset_cap=200)
    control(sandbox, count=600, per_second=2)
    # Right after the second page (items 50-99) is served, five of its products
    # get a new price and stock, and three products are created.
    control(sandbox, touch_while_paging={"after_pages": 2, "update": 5, "create": 3})
    before = lazada_truth(box)

    record = sync_products(trigger="command", connection_id=connected_lazada.pk)
    assert record.status == "succeeded", record.error
    truth = lazada_truth(box)
    assert len(truth) == len(before) + 3
    assert sum(truth[sku] != before[sku] for sku in before) == 5
    assert stored(connected_lazada) == truth


@pytest.mark.django_db
def test_more_products_in_one_second_than_a_window_holds_is_a_clear_run_error(sandbox, connected_lazada):
    control(sandbox, offset_cap=100)
    control(sandbox, count=400, per_second=400)
    record = sync_products(trigger="command", connection_id=connected_lazada.pk)
    assert record.status == "failed"
    assert "products were created in the second" in record.error and "create_after cannot page past" in record.error


@pytest.mark.django_db
def test_a_catalogue_past_the_cap_that_does_not_come_oldest_first_is_a_clear_run_error(sandbox, connected_lazada):
    control(sandbox, offset_cap=100)
    control(sandbox, count=300)
    control(sandbox, order="newest_first")
    record = sync_products(trigger="command", connection_id=connected_lazada.pk)
    assert record.status == "failed"
    assert "did not come oldest first" in record.error, record.error
    # Within the cap the order does not matter: everything is read.
    control(sandbox, offset_cap=10000)
    assert sync_products(trigger="command", connection_id=connected_lazada.pk).status == "succeeded"
    assert stored(connected_lazada) == lazada_truth(sandbox["lazada"])


@pytest.mark.django_db
def test_a_shop_of_10120_products_syncs_whole_at_the_contracts_cap_of_10000(sandbox, connected_lazada):
    """The contract's cap, no test-lowered one: 203 pages, no offset past 10000 asked for."""
    box = sandbox["lazada"]
    control(sandbox, count=10115, per_second=7)
    box.calls.clear()
    record = sync_products(trigger="command", connection_id=connected_lazada.pk)
    assert record.status == "succeeded", record.error
    assert stored(connected_lazada) == lazada_truth(box)
    assert record.counters["products"] == len(box.products) == 10120
    offsets = [int(c["offset"]) for c in list_calls(box)]
    assert max(offsets) == 10000
    assert sum(1 for c in list_calls(box) if "create_after" in c) >= 1
