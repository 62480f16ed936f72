"""The sandboxes' control endpoints, as a developer or another test drives them over HTTP."""

import pytest
import requests

from marketplace.models import Connection
from marketplace.services import sync_orders


def control(sandbox, name, action, **body):
    reply = requests.post(f"{sandbox.url}/_sandbox/{name}/{action}", json=body, timeout=5)
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.mark.django_db
@pytest.mark.parametrize("platform,lifetime", [("lazada", 2592000), ("shopee", 14400)])
def test_token_lifetimes_default_to_the_real_ones_and_can_be_shortened(sandbox, platform, lifetime):
    assert control(sandbox, platform, "tokens")["access_expires_in"] == lifetime
    assert control(sandbox, platform, "tokens", access_expires_in=60)["access_expires_in"] == 60
    assert sandbox[platform].access_lifetime == 60


@pytest.mark.django_db
def test_expire_error_and_orders_controls_shape_the_next_sync(sandbox, connected_shopee):
    created = control(sandbox, "shopee", "orders", count=3)["created"]
    assert len(created) == 3
    control(sandbox, "shopee", "expire", what="access")
    # More 500s than the client retries.
    control(sandbox, "shopee", "error", code="error_server", count=10, path="/order/get_order_detail")
    first = sync_orders(trigger="command", connection_id=connected_shopee.pk)
    assert first.status == "failed" and "error_server" in first.error
    assert Connection.objects.get(pk=connected_shopee.pk).orders_cursor is None
    state = requests.get(f"{sandbox.url}/_sandbox/shopee/state", timeout=5).json()
    assert state["refreshes"] == 1 and state["orders"] == 43
