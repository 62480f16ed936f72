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


def walk(api_client, url, params):
    """Every page of an API list by its `next` links: (page answers, rows)."""
    pages, rows = [], []
    reply = api_client.get(url, params)
    while True:
        assert reply.status_code == 200, reply.content[:300]
        pages.append(reply.json())
        rows += pages[-1]["results"]
        if not pages[-1]["next"]:
            return pages, rows
        reply = api_client.get(pages[-1]["next"])


def analysed_runs(settings, n):
    """n runs the planner knows of: the statistics go stale as rows change after."""
    settings.ESTIMATED_COUNT_FILTERED_MIN_ROWS = 20
    make_runs(n)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE portal_syncrun")


@pytest.fixture
def admin_api(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    return api_client


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's planner statistics")
def test_an_overestimated_list_ends_where_its_rows_end(settings, admin_api):
    analysed_runs(settings, 60)
    SyncRun.objects.filter(pk__in=SyncRun.objects.order_by("pk").values("pk")[:35]).delete()  # statistics now stale

    pages, rows = walk(admin_api, "/api/portal/runs/", {"trigger": "command", "page_size": 10})

    assert pages[0]["count"] == 60 and pages[0]["count_is_estimate"] is True  # the planner's word, said to be one
    assert [len(page["results"]) for page in pages] == [10, 10, 5]  # no empty page behind a `next`
    assert len({row["id"] for row in rows}) == 25
    assert pages[-1]["count"] == 25 and pages[-1]["count_is_estimate"] is False  # the last page knows
    past = admin_api.get("/api/portal/runs/", {"trigger": "command", "page_size": 10, "page": 4})
    assert past.status_code == 404  # within the estimate, past the rows
    last = admin_api.get("/api/portal/runs/", {"trigger": "command", "page_size": 10, "page": "last"}).json()
    assert len(last["results"]) == 5 and last["next"] is None and last["count"] == 25


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate is PostgreSQL's planner statistics")
def test_an_underestimated_list_shows_every_row(settings, admin_api):
    analysed_runs(settings, 30)
    make_runs(15)  # the estimate says 30 of 45

    pages, rows = walk(admin_api, "/api/portal/runs/", {"trigger": "command", "page_size": 20})

    assert pages[0]["count_is_estimate"] is True
    assert [len(page["results"]) for page in pages] == [20, 20, 5]  # no page cut short at the estimate
    assert len({row["id"] for row in rows}) == 45 == pages[-1]["count"]


def test_an_exact_count_says_so(admin_api):
    make_runs(3)
    page = admin_api.get("/api/portal/runs/", {"page_size": 2}).json()
    assert page["count"] == 3 and page["count_is_estimate"] is False and page["next"]
