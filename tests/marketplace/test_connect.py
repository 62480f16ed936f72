"""Connecting again, and Shopee main-account grants."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from marketplace.models import Connection, FactOrderLine
from marketplace.sandbox.shopee import DEMO_MAIN_SHOP_IDS
from marketplace.services import refresh_token, sync_orders
from portal.models import SyncRun

from .conftest import oauth_connect


@pytest.mark.django_db
def test_a_failed_reconnect_keeps_the_working_tokens_and_records_the_attempt(admin_client, sandbox, connected_shopee):
    tokens_before = (connected_shopee.access_token, connected_shopee.refresh_token)
    start = admin_client.get(reverse("admin:marketplace_connection_connect", args=[connected_shopee.pk]))
    back = urlsplit(requests.get(start["Location"], allow_redirects=False, timeout=5).headers["Location"])
    sandbox["shopee"].codes.pop(parse_qs(back.query)["code"][0])  # the code is refused
    page = admin_client.get(f"{back.path}?{back.query}", follow=True)
    assert b"Connecting failed" in page.content

    connected_shopee.refresh_from_db()
    assert connected_shopee.status == Connection.Status.CONNECTED
    assert (connected_shopee.access_token, connected_shopee.refresh_token) == tokens_before
    assert connected_shopee.connect_failed_at is not None and "invalid_code" in connected_shopee.connect_error
    assert SyncRun.objects.filter(operation="connect_account", status="failed").count() == 1
    # The shop goes on working.
    assert sync_orders(trigger="command", connection_id=connected_shopee.pk).status == "succeeded"


@pytest.mark.django_db
def test_a_main_account_grant_connects_each_shop_of_the_grant(admin_client, sandbox, shopee_connection):
    page = oauth_connect(admin_client, shopee_connection, main_account="1")
    assert b"is connected" in page.content, page.content[:2000]
    shops = Connection.objects.filter(platform="shopee").order_by("shop_id")
    assert [c.shop_id for c in shops] == [str(s) for s in DEMO_MAIN_SHOP_IDS]
    assert {c.status for c in shops} == {Connection.Status.CONNECTED}
    assert {c.main_account_id for c in shops} == {"770001"}
    assert shops.get(pk=shopee_connection.pk).shop_id == str(DEMO_MAIN_SHOP_IDS[0])

    # The grant's one pair splits into a pair per shop on each shop's first refresh.
    for connection in shops:
        assert refresh_token(trigger="command", connection_id=connection.pk).status == "succeeded"
    assert sandbox["shopee"].refreshes == 2
    tokens = {Connection.objects.get(pk=c.pk).refresh_token for c in shops}
    assert len(tokens) == 2
    for connection in shops:
        assert sync_orders(trigger="command", connection_id=connection.pk).status == "succeeded"
    assert FactOrderLine.objects.filter(platform="shopee").exists()
