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
