"""Keeping access tokens fresh: the due-time tick, on-demand refresh, and one
refresh-and-retry when an upstream refuses the token mid-sync."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketplace.models import Connection, FactOrderLine
from marketplace.services import refresh_due_tokens, sync_orders
from portal.models import SyncRun


@pytest.mark.django_db
def test_the_tick_refreshes_only_the_tokens_that_are_due(sandbox, connected_lazada, connected_shopee):
    Connection.objects.filter(pk=connected_shopee.pk).update(refresh_due_at=timezone.now() - timedelta(seconds=1))
    old_refresh = connected_shopee.refresh_token
    call_command("marketplace_refresh_tokens")
    connected_shopee.refresh_from_db()
    connected_lazada.refresh_from_db()
    assert sandbox["shopee"].refreshes == 1 and sandbox["lazada"].refreshes == 0
    assert connected_shopee.refresh_token != old_refresh  # single-use: the newest one is kept
    assert connected_shopee.refresh_due_at > timezone.now()
    # Shopee's refresh token is single-use: the old one is now refused.
    assert old_refresh not in sandbox["shopee"].refresh_tokens


@pytest.mark.django_db
def test_a_beat_tick_with_nothing_due_leaves_no_run(connected_lazada):
    assert refresh_due_tokens(trigger="beat") is None
    assert not SyncRun.objects.filter(operation="refresh_due_tokens").exists()


@pytest.mark.django_db
def test_a_short_lived_token_is_due_before_it_expires(sandbox, admin_client, lazada_connection):
    from .conftest import oauth_connect

    sandbox["lazada"].access_lifetime = 600  # what POST /_sandbox/lazada/tokens sets
    oauth_connect(admin_client, lazada_connection)
    lazada_connection.refresh_from_db()
    left = lazada_connection.access_expires_at - timezone.now()
    assert timedelta(minutes=9) < left <= timedelta(minutes=10)
    assert lazada_connection.refresh_due_at - timezone.now() <= timedelta(minutes=5)


@pytest.mark.django_db
@pytest.mark.parametrize("platform", ["lazada", "shopee"])
def test_an_expired_token_mid_sync_is_refreshed_once_and_the_call_retried(sandbox, request, platform):
    connection = request.getfixturevalue(f"connected_{platform}")
    sandbox[platform].expire("access")  # the upstream now refuses the stored token
    record = sync_orders(trigger="command", connection_id=connection.pk)
    assert record.status == "succeeded", record.error
    assert record.counters["token_refreshes"] == 1
    assert sandbox[platform].refreshes == 1
    assert FactOrderLine.objects.filter(platform=platform).exists()


@pytest.mark.django_db
def test_an_expired_refresh_token_asks_for_a_reconnect(sandbox, connected_lazada):
    sandbox["lazada"].expire("both")
    with pytest.raises(CommandError, match="IllegalRefreshToken"):
        call_command("marketplace_refresh_tokens", "--connection", str(connected_lazada.pk))
    connected_lazada.refresh_from_db()
    assert connected_lazada.status == Connection.Status.EXPIRED
    assert connected_lazada.refresh_due_at is None  # the tick stops trying
    assert "IllegalRefreshToken" in connected_lazada.last_error


@pytest.mark.django_db
def test_a_refresh_that_times_out_keeps_the_connection_for_the_next_tick(sandbox, connected_shopee):
    Connection.objects.filter(pk=connected_shopee.pk).update(refresh_due_at=timezone.now() - timedelta(seconds=1))
    sandbox["shopee"].queue_error("error_server", path="/auth/access_token/get")
    record = refresh_due_tokens(trigger="beat")
    assert record.status == "failed" and "error_server" in record.error
    connected_shopee.refresh_from_db()
    assert connected_shopee.status == Connection.Status.CONNECTED
    assert connected_shopee.refresh_due_at <= timezone.now()  # still due: retried on the next tick
    assert refresh_due_tokens(trigger="beat").status == "succeeded"


@pytest.mark.django_db
@pytest.mark.parametrize("platform,path", [("lazada", "/api/rest/orders/get"),
                                           ("shopee", "/api/v2/order/get_order_list")])
def test_a_bare_http_401_also_gets_one_refresh_and_retry(sandbox, request, platform, path):
    from portal.sandbox.base import Fault

    connection = request.getfixturevalue(f"connected_{platform}")
    sandbox[platform].add_fault(Fault(status=401, path=path))
    record = sync_orders(trigger="command", connection_id=connection.pk)
    assert record.status == "succeeded", record.error
    assert record.counters["token_refreshes"] == 1


@pytest.mark.django_db
def test_a_token_refused_twice_fails_the_run_after_one_refresh(sandbox, connected_lazada):
    sandbox["lazada"].queue_error("IllegalAccessToken", count=2, path="/orders/get")
    record = sync_orders(trigger="command", connection_id=connected_lazada.pk)
    assert record.status == "failed" and "IllegalAccessToken" in record.error
    assert sandbox["lazada"].refreshes == 1  # one refresh, one retry, no loop


@pytest.mark.django_db
def test_the_beat_sync_tick_without_a_connected_shop_leaves_no_run(lazada_connection):
    assert sync_orders(trigger="beat") is None
    assert not SyncRun.objects.filter(operation="sync_orders").exists()


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_spend_the_single_use_refresh_token_once(sandbox, connected_shopee):
    import threading

    from django.db import connection as db_connection

    from marketplace.services.tokens import refresh_connection

    rejected = connected_shopee.access_token
    results, errors = [], []
    start = threading.Barrier(2)

    def worker():
        try:
            start.wait()
            results.append(refresh_connection(Connection.objects.get(pk=connected_shopee.pk),
                                              rejected_token=rejected).access_token)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sandbox["shopee"].refreshes == 1
    assert len(set(results)) == 1 and results[0] != rejected
    assert Connection.objects.get(pk=connected_shopee.pk).status == Connection.Status.CONNECTED
