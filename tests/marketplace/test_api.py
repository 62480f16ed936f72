"""The marketplace API: connections without tokens, order lines, the summary,
run-now endpoints."""

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse

from marketplace.models import FactOrderLine
from portal.models import SyncRun


@pytest.fixture
def staff_api(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    return api_client


@pytest.mark.django_db
def test_connections_are_listed_without_tokens_or_secrets(staff_api, connected_lazada):
    reply = staff_api.get(reverse("marketplace-connection-list"))
    assert reply.status_code == 200
    text = reply.content.decode()
    assert connected_lazada.access_token not in text and connected_lazada.refresh_token not in text
    assert connected_lazada.app_secret not in text
    row = reply.json()["results"][0]
    assert row["status"] == "connected" and row["token_status"].startswith("valid for")
    assert row["app_secret_set"] is True
    assert "access_token" not in row and "refresh_token" not in row


@pytest.mark.django_db
def test_run_now_endpoints_answer_202_with_the_run(staff_api, connected_lazada, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reply = staff_api.post(reverse("marketplace-connection-sync", args=[connected_lazada.pk]))
    assert reply.status_code == 202
    run = SyncRun.objects.get(pk=reply.json()["id"])
    assert run.operation == "sync_orders" and run.params == {"connection_id": connected_lazada.pk}
    assert run.status == "succeeded"  # eager in unit tests; a worker in production
    assert FactOrderLine.objects.filter(platform="lazada").exists()

    with django_capture_on_commit_callbacks(execute=True):
        reply = staff_api.post(reverse("marketplace-connection-refresh-token", args=[connected_lazada.pk]))
    assert reply.status_code == 202 and reply.json()["operation"] == "refresh_token"
    assert SyncRun.objects.get(pk=reply.json()["id"]).status == "succeeded"

    reply = staff_api.post(reverse("marketplace-sync"))
    assert reply.status_code == 202 and reply.json()["params"] == {}

    reply = staff_api.post(reverse("marketplace-mock-data"), {"orders": 10, "seed": 3}, format="json")
    assert reply.status_code == 202 and reply.json()["params"] == {"orders": 10, "days": 30, "seed": 3}


@pytest.mark.django_db
def test_an_unconnected_shop_cannot_be_synced(staff_api, lazada_connection):
    reply = staff_api.post(reverse("marketplace-connection-sync", args=[lazada_connection.pk]))
    assert reply.status_code == 409
    assert reply.json()["success"] is False and "connect it first" in reply.json()["error"]


@pytest.mark.django_db
def test_order_lines_filter_by_platform_status_and_mock(staff_api, connected_shopee):
    call_command("marketplace_sync_orders")
    call_command("marketplace_generate_mock", "--orders", "5", "--seed", "1")
    url = reverse("marketplace-order-line-list")
    real = staff_api.get(url, {"platform": "shopee", "is_mock": "false", "page_size": 500}).json()
    assert real["count"] == FactOrderLine.objects.filter(platform="shopee", is_mock=False).count()
    assert all(r["platform"] == "shopee" and not r["is_mock"] for r in real["results"])
    completed = staff_api.get(url, {"status": "COMPLETED", "is_mock": "false"}).json()
    assert completed["count"] == FactOrderLine.objects.filter(status__code="completed", is_mock=False).count()
    assert {"sku", "region", "status_group", "paid_price"} <= set(real["results"][0])


@pytest.mark.django_db
def test_the_summary_gives_sales_by_day_and_platform_without_mock_rows(staff_api, connected_lazada):
    call_command("marketplace_sync_orders")
    call_command("marketplace_generate_mock", "--orders", "30", "--seed", "2")
    body = staff_api.get(reverse("marketplace-summary")).json()
    real = FactOrderLine.objects.filter(is_mock=False).exclude(status__group__in=["cancelled", "returned"])
    assert {r["platform"] for r in body["results"]} == {"lazada"}
    assert sum(float(r["revenue"]) for r in body["results"]) == pytest.approx(
        float(sum(l.paid_price for l in real)))
    assert sum(r["lines"] for r in body["results"]) == real.count()
    with_mock = staff_api.get(reverse("marketplace-summary"), {"include_mock": "true"}).json()
    assert sum(r["lines"] for r in with_mock["results"]) > real.count()


@pytest.mark.django_db
def test_a_user_needs_the_apps_permissions(api_client, django_user_model, connected_lazada):
    user = django_user_model.objects.create_user("viewer", password="x")
    user.user_permissions.add(Permission.objects.get(codename="view_connection"))
    api_client.force_authenticate(user)
    assert api_client.get(reverse("marketplace-connection-list")).status_code == 200
    reply = api_client.post(reverse("marketplace-connection-sync", args=[connected_lazada.pk]))
    assert reply.status_code == 403 and reply.json()["success"] is False
    assert api_client.get(reverse("marketplace-summary")).status_code == 403
    assert not SyncRun.objects.filter(operation="sync_orders").exists()


@pytest.mark.django_db
def test_run_now_twice_answers_200_with_the_run_already_queued(staff_api, connected_lazada):
    # Nothing is sent before the test's transaction commits, so the first run stays queued.
    first = staff_api.post(reverse("marketplace-connection-sync", args=[connected_lazada.pk]))
    again = staff_api.post(reverse("marketplace-connection-sync", args=[connected_lazada.pk]))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"] and first.json()["target"] == str(connected_lazada.pk)
    assert SyncRun.objects.filter(operation="sync_orders").count() == 1
    assert staff_api.post(reverse("marketplace-sync")).status_code == 202  # all shops: another target
    assert staff_api.post(reverse("marketplace-sync")).status_code == 200


@pytest.mark.django_db
def test_the_generic_run_endpoint_takes_the_connection_as_target(staff_api, connected_shopee,
                                                                 django_capture_on_commit_callbacks):
    url = "/api/portal/operations/marketplace.sync_orders/run"
    with django_capture_on_commit_callbacks(execute=True):
        reply = staff_api.post(url, {"target": str(connected_shopee.pk)}, format="json")
    assert reply.status_code == 202, reply.content
    run = SyncRun.objects.get(pk=reply.json()["id"])
    assert run.target == str(connected_shopee.pk) and run.status == "succeeded", run.error
    assert FactOrderLine.objects.filter(platform="shopee").exists()


@pytest.mark.django_db
def test_health_reports_connections_expiring_tokens_and_the_oldest_sync(client, connected_lazada, connected_shopee):
    from django.apps import apps

    figures = apps.get_app_config("marketplace").health_figures()
    # Shopee's access tokens live four hours; Lazada's thirty days.
    assert figures["connections_active"] == 2 and figures["access_tokens_expiring_24h"] == 1
    assert figures["refresh_tokens_expiring_24h"] == 0
    from datetime import timedelta

    from django.utils import timezone

    from marketplace.models import Connection

    call_command("marketplace_sync_orders", "--connection", str(connected_lazada.pk))
    # Shopee has never synced: its age counts from when it was added, two hours ago.
    Connection.objects.filter(pk=connected_shopee.pk).update(created=timezone.now() - timedelta(hours=2))
    assert apps.get_app_config("marketplace").health_figures()["oldest_order_sync_age_seconds"] >= 7200
    call_command("marketplace_sync_orders")
    body = client.get("/health/").json()
    assert body["integrations"]["marketplace"]["figures"]["connections_active"] == 2
    assert body["integrations"]["marketplace"]["figures"]["oldest_order_sync_age_seconds"] < 60
