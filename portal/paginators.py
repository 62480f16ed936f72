"""A paginator that does not count a million rows to show fifty.

`SELECT COUNT(*)` over a whole big table is most of the time of a first page (34
of 44 ms at 1M rows on PostgreSQL), and a filter that still matches a big share of
it (a platform, a store) costs about as much. On PostgreSQL the planner's row
estimate is the count when it is big:
- an unfiltered list of a table estimated at ESTIMATED_COUNT_MIN_ROWS or more takes
  `pg_class.reltuples` (kept fresh by autovacuum's ANALYZE; each process re-reads it
  every RELTUPLES_SECONDS, not on every page);
- a filtered list the planner expects at ESTIMATED_COUNT_FILTERED_MIN_ROWS or more
  takes the planner's estimate of that query (EXPLAIN: planned, never run; kept
  as long by each process, so the next pages of a filter are not planned again).
Anything smaller, where exactness shows, is counted exactly; so is every list on
other databases. Big counts are estimates, as a search engine's "about 20,000
results" (`estimated` says so; the API answers `count_is_estimate`). The admin
changelists and the API pages both use it.

An estimate only numbers the pages; the rows decide where the list ends. A page of
an estimated list fetches one row more than it shows: that row, not the estimate,
says whether there is a next page, and a page is never cut short at the estimated
count. On the real last page the count becomes exact (the rows before it plus the
rows on it). A page past the real end (an overestimate: stale statistics, rows
deleted since) is counted for real before it is refused.

`count_source`: a queryset with the same rows but fewer joins (the lean API lists
page `.values()` rows joined to every shown dimension; the count needs only the
filter's joins).
"""

import inspect
import json
import time

from django.conf import settings
from django.core.paginator import EmptyPage, Page, Paginator
from django.db import connections
from django.utils.functional import cached_property
from django.utils.inspect import method_has_no_args

# The estimate moves only when (auto)ANALYZE runs: a process asks again after this
# long, not on every page (a round trip of its own).
RELTUPLES_SECONDS = 30
_reltuples = {}
# The planner's estimate of a filtered list, kept as long: the next pages of the same
# filter (and other callers asking the same) are not planned again.
PLANNED_KEPT = 500
_planned = {}


def forget_estimates():
    _reltuples.clear()
    _planned.clear()


def estimated_rows(queryset):
    """The planner's row estimate of `queryset`'s table, or None when there is
    none worth using (not PostgreSQL, a filtered or sliced queryset, never analysed)."""
    query = getattr(queryset, "query", None)
    if query is None or query.where or query.is_sliced or query.distinct or query.combinator:
        return None
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    key = (queryset.db, queryset.model._meta.db_table)
    known = _reltuples.get(key)
    if known is not None and time.monotonic() - known[0] < RELTUPLES_SECONDS:
        return known[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [queryset.model._meta.db_table])
        row = cursor.fetchone()
    estimate = None if not row or row[0] is None or row[0] < 0 else int(row[0])  # -1: never analysed
    _reltuples[key] = (time.monotonic(), estimate)
    return estimate


def planned_rows(queryset):
    """The planner's row estimate of filtered `queryset` (EXPLAIN: nothing runs), or
    None when there is none (not PostgreSQL, sliced, a union)."""
    query = getattr(queryset, "query", None)
    if query is None or query.is_sliced or query.combinator or connections[queryset.db].vendor != "postgresql":
        return None
    keys = queryset.order_by() if query.distinct else queryset.order_by().values("pk")
    sql, params = keys.query.sql_with_params()
    key = (queryset.db, sql, tuple(map(repr, params)))
    known = _planned.get(key)
    if known is not None and time.monotonic() - known[0] < RELTUPLES_SECONDS:
        return known[1]
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    if len(_planned) >= PLANNED_KEPT:
        _planned.clear()  # crude, but bounded: the next pages of the same filter fill it again
    _planned[key] = (time.monotonic(), estimate)
    return estimate


class EstimatedCountPaginator(Paginator):
    estimated = False

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, count_source=None):
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.count_source = object_list if count_source is None else count_source

    @cached_property
    def count(self):
        rows = self.count_source
        estimate = estimated_rows(rows)
        if estimate is not None and estimate >= settings.ESTIMATED_COUNT_MIN_ROWS:
            self.estimated = True
            return estimate
        if estimate is None and getattr(rows, "query", None) is not None and rows.query.where:
            planned = planned_rows(rows)
            if planned is not None and planned >= settings.ESTIMATED_COUNT_FILTERED_MIN_ROWS:
                self.estimated = True
                return planned
        return self.exact_count()

    def exact_count(self):
        rows = self.count_source
        counter = getattr(rows, "count", None)  # as Django's Paginator: a list's count() is not a row count
        if callable(counter) and not inspect.isbuiltin(counter) and method_has_no_args(counter):
            return counter()
        return len(rows)

    def _settle_count(self, count):
        self.__dict__["count"] = count
        self.__dict__.pop("num_pages", None)
        self.estimated = False

    def settle_count(self):
        """Count for real (e.g. to find the last page of an estimated list)."""
        if self.count is not None and self.estimated:  # `count` first: it says whether it estimated
            self._settle_count(self.exact_count())

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            if not self.estimated:
                raise
            # a page past the estimate may still hold rows: count them for real
            self.settle_count()
            return super().validate_number(number)

    def page(self, number):
        number = self.validate_number(number)
        if not self.estimated:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom:bottom + self.per_page + 1])  # one more: is there a next page?
        if not rows and number > 1:
            # within the estimate but past the rows: count them for real, then refuse
            self.settle_count()
            return super().page(number)
        more = len(rows) > self.per_page
        if more:
            rows = rows[:self.per_page]
            if self.count < bottom + len(rows) + 1:  # an underestimate: at least these rows and one more
                self.__dict__["count"] = bottom + len(rows) + 1
                self.__dict__.pop("num_pages", None)
        else:
            self._settle_count(bottom + len(rows))  # the real last page: the count is known now
        return EstimatedPage(rows, number, self, more)


class EstimatedPage(Page):
    """A page of an estimated list: whether a next page exists was seen, not computed."""

    def __init__(self, object_list, number, paginator, more):
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self):
        return self.more

    def end_index(self):
        return self.start_index() + len(self.object_list) - 1 if self.object_list else 0
