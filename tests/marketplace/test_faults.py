"""Upstream faults end in a clear failed run, lose nothing and duplicate nothing."""

import pytest

from marketplace.models import Connection, FactOrderLine
from marketplace.services import sync_orders
from portal.sandbox.base import Fault


def lines_expected(box, platform):
    if platform == "lazada":
        return sum(len(items) for items in box.items.values())
    return sum(len(o["item_list"]) for o in box.orders.values())


@pytest.mark.django_db
@pytest.mark.parametrize("platform,path", [("lazada", "/api/rest/orders/get"),
                                           ("shopee", "/api/v2/order/get_order_list")])
def test_a_transient_500_is_retried_and_the_sync_completes(sandbox, request, platform, path):
    connection = request.getfixturevalue(f"connected_{platform}")
    sandbox[platform].add_fault(Fault(count=2, status=503, path=path))
    record = sync_orders(trigger="command", connection_id=connection.pk)
    assert record.status == "succeeded", record.error
    assert FactOrderLine.objects.filter(platform=platform).count() == lines_expected(sandbox[platform], platform)


@pytest.mark.django_db
@pytest.mark.parametrize("platform,path", [("lazada", "/api/rest/orders/get"),
                                           ("shopee", "/api/v2/order/get_order_list")])
@pytest.mark.parametrize("fault", [{"status": 500, "count": 10}, {"kind": "timeout", "timeout_s": 2.5, "count": 10},
                                   {"kind": "html"}, {"kind": "malformed"}, {"status": 429, "retry_after": 1,
                                                                              "count": 10}])
def test_a_lasting_fault_fails_the_run_without_moving_the_cursor(sandbox, request, platform, path, fault):
    connection = request.getfixturevalue(f"connected_{platform}")
    sandbox[platform].add_fault(Fault.from_json({**fault, "path": path}))
    record = sync_orders(trigger="command", connection_id=connection.pk)
    assert record.status == "failed", record.error
    assert platform in record.error
    connection.refresh_from_db()
    assert connection.orders_cursor is None
    assert connection.last_error
    sandbox[platform].faults.clear()
    assert sync_orders(trigger="command", connection_id=connection.pk).status == "succeeded"
    assert FactOrderLine.objects.filter(platform=platform).count() == lines_expected(sandbox[platform], platform)


@pytest.mark.django_db
@pytest.mark.parametrize("platform,code,path,count", [("lazada", "ApiCallLimit", "/orders/get", 2),
                                                      # More than the HTTP session's own 429 retries.
                                                      ("shopee", "error_rate_limit", "/order/get_order_detail", 5)])
def test_a_rate_limit_ban_is_waited_out_inside_the_run(sandbox, request, settings, platform, code, path, count):
    settings.UPSTREAM_RETRIES = 2
    connection = request.getfixturevalue(f"connected_{platform}")
    sandbox[platform].queue_error(code, count=count, path=path)
    record = sync_orders(trigger="command", connection_id=connection.pk)
    assert record.status == "succeeded", record.error
    assert record.counters["rate_limit_waits"] >= 1
    assert FactOrderLine.objects.filter(platform=platform).count() == lines_expected(sandbox[platform], platform)
    assert Connection.objects.get(pk=connection.pk).status == Connection.Status.CONNECTED


@pytest.mark.django_db
def test_a_rate_limit_ban_that_lasts_fails_the_run_and_keeps_the_shop(sandbox, connected_lazada):
    sandbox["lazada"].queue_error("ApiCallLimit", count=20, path="/orders/get")
    record = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert record.status == "failed" and "ApiCallLimit" in record.error
    assert Connection.objects.get(pk=connected_lazada.pk).status == Connection.Status.CONNECTED


@pytest.mark.django_db
def test_a_wrong_app_secret_reads_as_a_signature_problem(sandbox, connected_lazada):
    Connection.objects.filter(pk=connected_lazada.pk).update(app_secret="not-the-secret")
    record = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert record.status == "failed" and "IncompleteSignature" in record.error


@pytest.mark.django_db
def test_one_failing_shop_does_not_stop_the_other(sandbox, connected_lazada, connected_shopee):
    sandbox["shopee"].queue_error("error_server", count=10)
    record = sync_orders(trigger="command")
    assert record.status == "failed" and "1 of 2 shops failed" in record.error
    assert record.counters["shops_synced"] == 1
    assert FactOrderLine.objects.filter(platform="lazada").exists()
    assert not FactOrderLine.objects.filter(platform="shopee").exists()
