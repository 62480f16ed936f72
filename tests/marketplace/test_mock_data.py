"""Mock data: generated on demand, marked as mock, left out of reports, removable."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from marketplace.models import DimShop, FactOrderLine
from portal.models import SyncRun


@pytest.mark.django_db
def test_it_generates_mock_orders_marked_as_mock_and_a_same_seed_rerun_upserts():
    call_command("marketplace_generate_mock", "--orders", "50", "--seed", "7")
    mock = FactOrderLine.objects.filter(is_mock=True)
    count = mock.count()
    assert count >= 50 and mock.count() == FactOrderLine.objects.count()
    assert set(mock.values_list("source", flat=True)) == {"mock"}
    assert all(o.startswith("MOCK-") for o in mock.values_list("order_id", flat=True))
    assert set(DimShop.objects.values_list("is_mock", flat=True)) == {True}
    call_command("marketplace_generate_mock", "--orders", "50", "--seed", "7")
    assert FactOrderLine.objects.count() == count


@pytest.mark.django_db
def test_purge_removes_mock_rows_and_nothing_else(connected_lazada):
    call_command("marketplace_sync_orders")
    real = FactOrderLine.objects.count()
    call_command("marketplace_generate_mock", "--orders", "20")
    assert FactOrderLine.objects.count() > real
    call_command("marketplace_generate_mock", "--purge")
    assert FactOrderLine.objects.count() == real
    assert not FactOrderLine.objects.filter(is_mock=True).exists()
    assert not DimShop.objects.filter(is_mock=True).exists()


@pytest.mark.django_db
def test_staff_generate_mock_orders_from_the_order_lines_admin_without_selecting_any(
        admin_client, django_capture_on_commit_callbacks):
    url = reverse("admin:marketplace_factorderline_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(url, {"action": "generate_mock_orders"}, follow=True)
    assert b"Mock data generation: queued as" in page.content
    run = SyncRun.objects.get(operation="generate_mock_orders")
    assert run.status == "succeeded" and run.trigger == "admin"  # eager Celery in unit tests
    assert FactOrderLine.objects.filter(is_mock=True).values("order_id").distinct().count() == 200
