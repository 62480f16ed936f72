"""Connection admin actions, run by POSTing to the changelist."""

import re

import pytest
from django.urls import reverse

from marketplace.models import FactOrderLine
from portal.models import SyncRun


@pytest.mark.django_db
def test_sync_orders_action_queues_a_run_per_connected_shop(admin_client, connected_lazada, shopee_connection,
                                                            django_capture_on_commit_callbacks):
    url = reverse("admin:marketplace_connection_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(url, {"action": "sync_orders",
                                       "_selected_action": [connected_lazada.pk, shopee_connection.pk]}, follow=True)
    run = SyncRun.objects.get(operation="sync_orders")
    assert f"Sync orders of {connected_lazada}: queued as".encode() in page.content
    assert f"run #{run.pk}".encode() in page.content
    assert b"not connected and were left out" in page.content
    assert run.trigger == "admin" and run.status == "succeeded", run.log
    assert run.target == str(connected_lazada.pk)
    assert FactOrderLine.objects.filter(platform="lazada").exists()


@pytest.mark.django_db
def test_sync_orders_action_twice_says_the_run_is_already_queued(admin_client, connected_lazada):
    url = reverse("admin:marketplace_connection_changelist")
    admin_client.post(url, {"action": "sync_orders", "_selected_action": [connected_lazada.pk]})
    page = admin_client.post(url, {"action": "sync_orders", "_selected_action": [connected_lazada.pk]}, follow=True)
    # The first is still queued (nothing is sent before the test's transaction commits).
    run = SyncRun.objects.get(operation="sync_orders")
    assert f"already queued as <a href=\"/admin/portal/syncrun/{run.pk}/change/\">run #{run.pk}</a>".encode() \
        in page.content


@pytest.mark.django_db
def test_refresh_token_action_rotates_the_tokens(admin_client, sandbox, connected_lazada,
                                                 django_capture_on_commit_callbacks):
    old = connected_lazada.access_token
    url = reverse("admin:marketplace_connection_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"action": "refresh_token", "_selected_action": [connected_lazada.pk]})
    connected_lazada.refresh_from_db()
    assert connected_lazada.access_token != old
    assert sandbox["lazada"].refreshes == 1


@pytest.mark.django_db
def test_the_warehouse_pages_render(admin_client, connected_lazada):
    from django.core.management import call_command

    call_command("marketplace_sync_orders")
    for name in ("factorderline", "dimshop", "dimproduct", "dimcustomer", "dimstatus", "dimdate", "csvupload",
                 "connection"):
        assert admin_client.get(reverse(f"admin:marketplace_{name}_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:marketplace_csvupload_add")).status_code == 200


@pytest.mark.django_db
def test_saving_the_form_keeps_the_secret_and_tokens_rotated_meanwhile(admin_client, connected_shopee):
    from marketplace.models import Connection

    url = reverse("admin:marketplace_connection_change", args=[connected_shopee.pk])
    page = admin_client.get(url)
    assert connected_shopee.app_secret not in page.content.decode()
    # A refresh rotates the tokens while the page is open.
    Connection.objects.filter(pk=connected_shopee.pk).update(refresh_token="rotated-meanwhile")
    connected_shopee.refresh_from_db()
    admin_client.post(url, {"platform": "shopee", "name": "Renamed", "app_key": connected_shopee.app_key,
                            "app_secret": "", "country": "", "sync_enabled": "on"})
    after = Connection.objects.get(pk=connected_shopee.pk)
    assert after.name == "Renamed"
    assert after.refresh_token == "rotated-meanwhile"
    assert after.app_secret == connected_shopee.app_secret  # blank keeps the stored secret


@pytest.mark.django_db
def test_the_order_lines_filter_by_platform_shop_and_a_date_range(admin_client):
    from datetime import datetime, timedelta
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from marketplace.models import DimShop
    from marketplace.warehouse import OrderLine, load_lines

    day = datetime(2026, 3, 10, 12, tzinfo=ZoneInfo("UTC"))
    load_lines([OrderLine(platform=platform, shop_id=shop, shop_name=shop, order_id=order, line_id="1",
                          ordered_at=day + timedelta(days=offset), status="delivered", sku="S", product_name="P",
                          quantity=1, unit_price=Decimal("1"), paid_price=Decimal("1"), currency="SGD",
                          customer_key="c")
                for platform, shop, order, offset in [("lazada", "LZ-1", "A-in", 0), ("lazada", "LZ-1", "A-late", 5),
                                                      ("lazada", "LZ-2", "B-in", 0), ("shopee", "SP-1", "C-in", 0)]],
               source="api")
    shop = DimShop.objects.get(shop_id="LZ-1")
    page = admin_client.get(reverse("admin:marketplace_factorderline_changelist"), {
        "platform__exact": "lazada", "shop__id__exact": shop.pk,
        "date__date_from": "2026-03-09", "date__date_to": "2026-03-10"})  # both days included
    assert page.status_code == 200
    html = page.content.decode()
    assert "A-in" in html and not {"A-late", "B-in", "C-in"} & set(re.findall(r"[ABC]-(?:in|late)", html))
    assert 'name="shop__id__exact"' in html and "<select" in html  # the filters are dropdowns
