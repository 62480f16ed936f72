"""The sandboxes hold to the contracts' limits, and the clients read their refusals."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.client import client_for
from marketplace.services import ConnectionTokens
from marketplace.services.tokens import refresh_connection
from portal.http import UpstreamPermanentError


def lazada_orders(connection, **params):
    client = client_for(connection)
    base = {"update_after": "2025-01-01T00:00:00+08:00", "offset": 0, "limit": 10, **params}
    return client.call(client.api_url, "/orders/get", base, token=connection.access_token)


@pytest.mark.django_db
def test_lazada_refuses_a_limit_over_100_and_a_bad_date_with_its_numeric_codes(connected_lazada):
    with pytest.raises(UpstreamPermanentError, match="19"):
        lazada_orders(connected_lazada, limit=101)
    with pytest.raises(UpstreamPermanentError, match=": 17:"):
        lazada_orders(connected_lazada, update_after="yesterday")
    body = lazada_orders(connected_lazada, limit=5, offset=20)
    assert body["data"]["count"] == 5 and body["data"]["countTotal"] == 60  # consistent across slices


@pytest.mark.django_db
def test_shopee_refuses_a_window_over_15_days(connected_shopee):
    client = client_for(connected_shopee)
    now = int(time.time())
    with pytest.raises(UpstreamPermanentError, match="order.order_list_invalid_time"):
        client.call("GET", "/order/get_order_list", query={
            "time_range_field": "update_time", "time_from": now - 16 * 86400, "time_to": now, "page_size": 10,
            "cursor": ""}, token=connected_shopee.access_token, shop_id=connected_shopee.shop_id)


@pytest.mark.django_db
def test_a_lazada_refresh_rotates_the_refresh_token_but_keeps_its_expiry(sandbox, connected_lazada):
    before = connected_lazada.refresh_expires_at
    old_refresh = connected_lazada.refresh_token
    row = refresh_connection(connected_lazada)
    assert row.refresh_token != old_refresh
    assert abs(row.refresh_expires_at - before) < timedelta(seconds=5)
    assert row.access_expires_at > timezone.now() + timedelta(days=29)


@pytest.mark.django_db
def test_the_old_shopee_access_token_keeps_working_for_five_minutes(sandbox, connected_shopee):
    old_access = connected_shopee.access_token
    refresh_connection(connected_shopee)
    info = sandbox["shopee"].access_tokens[old_access]
    assert 0 < info["expires"] - time.time() <= 300
    keeper = ConnectionTokens(connected_shopee, client_for(connected_shopee))
    client = client_for(connected_shopee)
    orders = client.details(keeper, [{"order_sn": sn} for sn in list(sandbox["shopee"].orders)[:2]])
    assert [o.problem for o in orders] == ["", ""]  # the request with the old token was accepted
    assert client.order_lines(orders[0], connected_shopee.shop_id)
