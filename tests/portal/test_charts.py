"""The date-range choice every chart page shares: any query gives 1 to 366 days, never a 500."""

from datetime import date

import pytest
from django.test import RequestFactory
from django.urls import reverse

from portal.charts import MAX_DAYS, DateRange

ODD_QUERIES = ["end=0001-01-05", "start=2099-01-01", "start=0001-01-02", "end=9999-12-31",
               "start=2026-12-01&end=2026-11-01", "days=abc", "start=2026-13-01", "days=365&start=2001-01-01"]
TODAY = date(2026, 12, 6)


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_any_query_gives_one_to_a_year_of_days(query):
    span = DateRange.from_request(RequestFactory().get(f"/?{query}"), default_days=14, today=TODAY)
    assert 1 <= len(span.days) <= MAX_DAYS
    assert date(2000, 1, 1) <= span.start <= span.end <= date(2027, 12, 7)


def test_the_choices_give_their_days():
    assert len(DateRange.from_request(RequestFactory().get("/"), default_days=14, today=TODAY).days) == 14
    assert len(DateRange.from_request(RequestFactory().get("/?days=90"), today=TODAY).days) == 90
    span = DateRange.from_request(RequestFactory().get("/?start=2026-11-01&end=2026-11-30"), today=TODAY)
    assert (span.start, span.end) == (date(2026, 11, 1), date(2026, 11, 30))
    # a start alone: the default length from it, up to today at most
    assert DateRange.from_request(RequestFactory().get("/?start=2025-01-01"), today=TODAY).end == TODAY


@pytest.mark.django_db
def test_every_chart_page_answers_odd_ranges(admin_client):
    pages = [reverse("admin:index"), reverse("admin:sales_dashboard"), reverse("admin:marketplace_reports"),
             reverse("admin:walmart_download_edrs"), reverse("admin:campaigns_campaign_delivery_chart")]
    for page in pages:
        for query in ODD_QUERIES:
            reply = admin_client.get(f"{page}?{query}")
            assert reply.status_code == 200, (page, query, reply.status_code)
            assert len(reply.content) < 3_000_000, (page, query)  # a year of days at most
