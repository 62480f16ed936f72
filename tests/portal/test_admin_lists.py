"""The changelists of the million-row tables (sales, order lines) count at most
once, never run date_hierarchy's DISTINCT over every date, and search by exact
indexed keys."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

pytestmark = pytest.mark.django_db


def list_queries(client, path):
    with CaptureQueriesContext(connection) as queries:
        reply = client.get(path)
    assert reply.status_code == 200, reply.content[:500]
    sql = [q["sql"].upper() for q in queries.captured_queries]
    return reply, sql


def test_the_sales_list_counts_once_and_searches_exact_transaction_ids(admin_client):
    from sales.models import Transaction

    now = timezone.now()
    Transaction.objects.bulk_create([
        Transaction(transaction_id=f"T{n:05d}", transaction_date=now - timedelta(hours=n), amount=Decimal("1.00"))
        for n in range(30)
    ])
    reply, sql = list_queries(admin_client, "/admin/sales/transaction/")
    assert sum("COUNT(" in q for q in sql) <= 1 and not any("DISTINCT" in q for q in sql)
    reply, _ = list_queries(admin_client, "/admin/sales/transaction/?q=T00007")
    assert [r.transaction_id for r in reply.context["cl"].result_list] == ["T00007"]
    reply, sql = list_queries(admin_client, "/admin/sales/transaction/?q=0000")  # a fragment: no LIKE scan
    assert list(reply.context["cl"].result_list) == [] and not any(" LIKE " in q for q in sql)


def test_the_order_lines_list_counts_once_and_finds_an_order_by_its_id(admin_client):
    from marketplace.models import FactOrderLine
    from marketplace.services.mock import mock_lines
    from marketplace.warehouse import load_lines

    load_lines(mock_lines(20, 10, seed=3), source="mock", is_mock=True)
    reply, sql = list_queries(admin_client, "/admin/marketplace/factorderline/")
    assert sum("COUNT(" in q for q in sql) <= 1 and not any("DISTINCT" in q for q in sql)
    order = FactOrderLine.objects.order_by("pk").first().order_id
    reply, sql = list_queries(admin_client, f"/admin/marketplace/factorderline/?q={order}")
    found = {line.order_id for line in reply.context["cl"].result_list}
    assert found == {order} and not any(" LIKE " in q for q in sql)


def test_the_quick_action_checkbox_is_djangos_markup(admin_client):
    """The checkbox written without the widget templates is byte for byte Django's
    (escaping included), so actions read the same selection."""
    from django.contrib import admin

    from sales.models import Transaction

    sale = Transaction.objects.create(transaction_id='T<"&>1', transaction_date=timezone.now(), amount=Decimal("2.50"))
    model_admin = admin.site._registry[Transaction]
    assert model_admin.action_checkbox(sale) == admin.ModelAdmin.action_checkbox(model_admin, sale)
    page = admin_client.get("/admin/sales/transaction/").content.decode()
    assert str(model_admin.action_checkbox(sale)) in page


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's planner statistics")
def test_a_changelist_over_stale_statistics_shows_the_rows_there_are(admin_client, settings):
    from portal.paginators import forget_estimates
    from sales.models import Transaction

    settings.ESTIMATED_COUNT_MIN_ROWS = 10
    forget_estimates()
    now = timezone.now()
    Transaction.objects.bulk_create([
        Transaction(transaction_id=f"T{n:05d}", transaction_date=now - timedelta(hours=n), amount=Decimal("1.00"))
        for n in range(120)
    ])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sales_transaction")
    Transaction.objects.filter(transaction_id__gte="T00060").delete()  # the estimate still says 120

    reply, _ = list_queries(admin_client, "/admin/sales/transaction/?p=2")
    assert reply.context["cl"].result_count == 120  # the estimate numbered the pages (counted before the page)
    assert len(reply.context["cl"].result_list) == 10  # an estimated page (a list of rows) renders as any other
    assert admin_client.get("/admin/sales/transaction/?p=3").status_code == 302  # past the rows: Django's ?e=1


def test_the_runs_list_offers_every_operation_without_a_distinct_over_the_runs(admin_client, client, django_user_model):
    """The app and operation dropdowns come from the registered operations (a DISTINCT
    operation read every run on PostgreSQL), limited to the apps the user may see."""
    from django.contrib.auth.models import Permission

    from portal import operations
    from portal.models import SyncRun

    SyncRun.objects.create(app="sales", operation="sync_sales", status="succeeded")
    reply, sql = list_queries(admin_client, "/admin/portal/syncrun/")
    assert not any("DISTINCT" in q and "PORTAL_SYNCRUN" in q for q in sql), [q for q in sql if "DISTINCT" in q]
    page = reply.content.decode()
    for op in operations.all_operations():
        assert f'value="{op.name}"' in page and f'value="{op.app}"' in page
    reply, sql = list_queries(admin_client, "/admin/portal/setasiderecord/")
    assert not any("DISTINCT" in q and ('"APP"' in q or '"OPERATION"' in q) for q in sql), sql
    # the from/to filter on created (date_hierarchy's DISTINCT is gone), read in the portal's
    # time zone with aware datetimes (a naive one is a RuntimeWarning, an error here)
    import warnings

    run = SyncRun.objects.get()
    created = timezone.localtime(run.created)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for start, runs in ((created - timedelta(minutes=1), [run]), (created + timedelta(minutes=1), [])):
            reply, _ = list_queries(admin_client, f"/admin/portal/syncrun/?created_from_0={start:%Y-%m-%d}"
                                                  f"&created_from_1={start:%H:%M:%S}")
            assert list(reply.context["cl"].result_list) == runs
        # odd input filters by the ends it can read and is never a 500
        # (the calendar's ends east and west of UTC: past year 1 or 9999 in UTC)
        for odd, zone in (("created_from_0=garbage&created_from_1=10:00", "UTC"), ("created_from_0=2026-01-01", "UTC"),
                          ("created_from_0=0001-01-01&created_from_1=00:00:00", "Asia/Singapore"),
                          ("created_to_0=9999-12-31&created_to_1=23:59:59", "America/New_York"),
                          ("created_from_0=2026-13-45&created_from_1=25:61", "UTC")):
            with timezone.override(zone):
                reply, _ = list_queries(admin_client, f"/admin/portal/syncrun/?{odd}")
            assert list(reply.context["cl"].result_list) == [run], odd
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_syncrun"),
                               Permission.objects.get(codename="view_checkinsettings"))
    client.force_login(clerk)
    page = client.get("/admin/portal/syncrun/").content.decode()
    assert 'value="checkin"' in page and 'value="walmart"' not in page
