"""Big unfiltered lists use PostgreSQL's row estimate instead of COUNT(*); filtered
lists and pages past the estimate are counted for real."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import SyncRun
from portal.paginators import EstimatedCountPaginator, forget_estimates

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_estimates():
    forget_estimates()  # each test's table is new: no estimate of an earlier one


def make_runs(n):
    SyncRun.objects.bulk_create([SyncRun(app="portal", operation="probe", trigger="command") for _ in range(n)])


def counted(paginator):
    with CaptureQueriesContext(connection) as queries:
        count = paginator.count
    return count, any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's planner statistics")
def test_a_big_unfiltered_list_takes_the_estimate_and_a_filtered_one_is_counted(settings):
    settings.ESTIMATED_COUNT_MIN_ROWS = 10
    make_runs(40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE portal_syncrun")
    count, ran_count = counted(EstimatedCountPaginator(SyncRun.objects.order_by("pk"), 10))
    assert count == 40 and not ran_count
    count, ran_count = counted(EstimatedCountPaginator(SyncRun.objects.filter(trigger="command").order_by("pk"), 10))
    assert count == 40 and ran_count
    make_runs(15)  # the estimate now says 40 of 55
    paginator = EstimatedCountPaginator(SyncRun.objects.order_by("pk"), 10)
    assert paginator.num_pages == 4
    assert len(paginator.page(6).object_list) == 5  # past the estimate: counted for real
    assert paginator.count == 55


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's planner statistics")
def test_a_big_filtered_list_takes_the_planners_estimate_and_a_small_one_is_counted(settings):
    settings.ESTIMATED_COUNT_FILTERED_MIN_ROWS = 20
    make_runs(40)
    SyncRun.objects.bulk_create([SyncRun(app="portal", operation="probe", trigger="api") for _ in range(3)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE portal_syncrun")
    few = EstimatedCountPaginator(SyncRun.objects.filter(trigger="api").order_by("pk"), 10)
    count, ran_count = counted(few)
    assert count == 3 and ran_count and not few.estimated
    many = EstimatedCountPaginator(SyncRun.objects.filter(trigger="command").order_by("pk"), 10)
    count, ran_count = counted(many)
    assert count == 40 and not ran_count and many.estimated  # planned (EXPLAIN), nothing counted
    next_page = EstimatedCountPaginator(SyncRun.objects.filter(trigger="command").order_by("pk"), 10)
    with CaptureQueriesContext(connection) as queries:
        assert next_page.count == 40
    assert not queries.captured_queries  # the same filter again: its estimate is kept a while
    # the count may come from a leaner queryset of the same rows
    lean = EstimatedCountPaginator(SyncRun.objects.filter(trigger="api").values("triggered_by__username"), 10,
                                   count_source=SyncRun.objects.filter(trigger="api"))
    with CaptureQueriesContext(connection) as queries:
        assert lean.count == 3
    assert "auth_user" not in queries.captured_queries[-1]["sql"]


def test_small_tables_and_other_databases_are_counted_exactly(settings):
    settings.ESTIMATED_COUNT_MIN_ROWS = 100_000
    make_runs(3)
    count, ran_count = counted(EstimatedCountPaginator(SyncRun.objects.order_by("pk"), 10))
    assert count == 3 and ran_count


def test_a_list_is_counted_by_its_length():  # e.g. a portal's sync history
    paginator = EstimatedCountPaginator(list(range(23)), 10)
    assert paginator.count == 23 and len(paginator.page(3).object_list) == 3
