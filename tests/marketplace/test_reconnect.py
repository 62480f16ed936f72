"""Connecting a shop again: each shop of a main-account grant keeps its own
connection, a failed attempt is recorded on the connection it was for, and a
connection that now stands for another shop pulls that shop's orders from the start."""

import pytest

from marketplace.models import Connection, FactOrderLine
from marketplace.sandbox.shopee import DEMO_MAIN_SHOP_IDS, DEMO_SHOP_ID
from marketplace.services import sync_orders
from portal.models import SyncRun

from .conftest import oauth_connect


def last_connect_run():
    return SyncRun.objects.filter(operation="connect_account").latest("pk")


@pytest.mark.django_db
def test_reconnecting_the_second_shop_of_a_main_account_grant_keeps_each_shop_on_its_own_connection(
        admin_client, sandbox, shopee_connection):
    oauth_connect(admin_client, shopee_connection, main_account="1")
    first_shop, second_shop = (str(s) for s in DEMO_MAIN_SHOP_IDS)
    sibling = Connection.objects.exclude(pk=shopee_connection.pk).get(platform="shopee")
    assert sibling.shop_id == second_shop
    tokens_before = sibling.refresh_token

    page = oauth_connect(admin_client, sibling, main_account="1")
    assert b"is connected" in page.content
    run = last_connect_run()
    assert run.status == "succeeded", run.error
    shops = {c.pk: c for c in Connection.objects.filter(platform="shopee")}
    assert len(shops) == 2
    assert (shops[sibling.pk].shop_id, shops[shopee_connection.pk].shop_id) == (second_shop, first_shop)
    assert shops[sibling.pk].refresh_token != tokens_before  # the new grant's
    assert {c.status for c in shops.values()} == {Connection.Status.CONNECTED}
    assert not run.counters.get("orders_cursor_reset")
    for connection in shops.values():
        assert sync_orders(trigger="command", connection_id=connection.pk).status == "succeeded"


@pytest.mark.django_db
def test_a_reconnect_to_a_shop_connected_elsewhere_is_recorded_and_the_shop_keeps_working(
        admin_client, sandbox, connected_shopee):
    other = Connection.objects.create(platform="shopee", name="LA Shopee MY", app_key=connected_shopee.app_key,
                                      app_secret=connected_shopee.app_secret)
    oauth_connect(admin_client, other, as_shop="880012")
    assert Connection.objects.get(pk=other.pk).shop_id == "880012"
    tokens_before = (connected_shopee.access_token, connected_shopee.refresh_token)

    # The seller grants the shop the other connection stands for.
    page = oauth_connect(admin_client, connected_shopee, as_shop="880012")
    assert b"Connecting failed" in page.content
    assert last_connect_run().status == "failed"
    connected_shopee.refresh_from_db()
    assert connected_shopee.shop_id == str(DEMO_SHOP_ID)
    assert connected_shopee.status == Connection.Status.CONNECTED
    assert (connected_shopee.access_token, connected_shopee.refresh_token) == tokens_before
    assert connected_shopee.connect_failed_at is not None
    assert "880012 is already connected" in connected_shopee.connect_error
    assert Connection.objects.get(pk=other.pk).connect_error == ""
    assert sync_orders(trigger="command", connection_id=connected_shopee.pk).status == "succeeded"


@pytest.mark.django_db
def test_a_connection_reconnected_to_another_shop_pulls_that_shops_orders_from_the_start(
        admin_client, sandbox, connected_shopee):
    assert sync_orders(trigger="command", connection_id=connected_shopee.pk).status == "succeeded"
    assert Connection.objects.get(pk=connected_shopee.pk).orders_cursor is not None

    oauth_connect(admin_client, connected_shopee, as_shop="880077")
    run = last_connect_run()
    assert run.status == "succeeded", run.error
    assert run.counters.get("orders_cursor_reset") == 1  # the run says the sync starts over
    connected_shopee.refresh_from_db()
    assert (connected_shopee.shop_id, connected_shopee.orders_cursor) == ("880077", None)

    assert sync_orders(trigger="command", connection_id=connected_shopee.pk).status == "succeeded"
    new_shop_orders = set(FactOrderLine.objects.filter(platform="shopee", shop__shop_id="880077")
                          .values_list("order_id", flat=True))
    assert new_shop_orders == set(sandbox["shopee"].orders)
