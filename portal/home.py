"""The admin home's figures: one health card per integration, the 14-day chart of run
outcomes and the latest failures.

Each app gives its own backlog and lag figures through `home_figures()` on its
AppConfig (next to `is_configured`), a list of `Figure`s. `health_figures()` (a
dict for /health/ and /metrics) stays as it is: those are machine-read names, these
are the sentences a person reads, with a link to the rows behind each.

Every query here is cheap at a million rows: counts over indexed columns, and
runs read through the (app, operation, -created) and created indexes, never a
scan of a big table.
"""

from collections import namedtuple
from datetime import timedelta

from django.apps import apps
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from . import operations
from .charts import chart
from .models import SyncRun

#: label, value (a number or short text), link (the rows behind it, or None), tone
#: ("ok", "warn", "bad" or None: neutral)
Figure = namedtuple("Figure", "label value link tone", defaults=(None, None))

#: the cards' order: the sidebar's (portal.admin_navigation), Portal last
ORDER = ["walmart", "sales", "marketplace", "campaigns", "checkin", "portal"]
#: what the home page calls each integration (the app's verbose names are longer)
TITLES = {"walmart": "Walmart Retail Link", "sales": "Sales → Verkada", "marketplace": "Marketplace",
          "campaigns": "SMS campaigns", "checkin": "Check-in", "portal": "Portal"}
#: how far back a failure streak is counted, per operation (shown as "50+" beyond)
STREAK_LOOKBACK = 50
FAILED = (SyncRun.Status.FAILED, SyncRun.Status.ERRORED)
ENDED = (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL, *FAILED)
LATEST_FAILURES = 10
#: the chart's series (errored runs count as failed)
OUTCOMES = ("succeeded", "partial", "failed")


def admin_url(name, query=""):
    """An admin page's URL (None when that page is not registered), with `query` appended."""
    try:
        return reverse(name) + (f"?{query}" if query else "")
    except NoReverseMatch:
        return None


def count_tone(n, bad=False):
    """The tone of a count of things needing attention: none is ok, some is a warning
    (or bad, when any at all is an outage)."""
    if not n:
        return "ok"
    return "bad" if bad else "warn"


def _recent_runs(app, name):
    """The operation's latest runs but queued ones, newest first (the (app, operation,
    -created) index): the first is its last run, the finished ones make its streak."""
    return list(SyncRun.objects.filter(app=app, operation=name).exclude(status=SyncRun.Status.QUEUED)
                .order_by("-created").only("pk", "app", "operation", "target", "status", "created", "started",
                                           "finished", "error")[:STREAK_LOOKBACK])


def streak_of(runs):
    """How many of `runs` (any operations' of one integration) failed or errored in a row,
    counted from the one that finished last; a succeeded or partial run ends the streak."""
    ended = sorted((r for r in runs if r.status in ENDED), key=lambda r: (r.finished or r.created, r.pk), reverse=True)
    streak = 0
    for run in ended:
        if run.status not in FAILED:
            break
        streak += 1
    return streak


def _last_finished(runs):
    return max((r for r in runs if r.is_finished), key=lambda r: (r.finished or r.created, r.pk), default=None)


def _next_runs():
    """{task name: when its soonest enabled schedule runs next}, from one query."""
    from django_celery_beat.models import PeriodicTask

    soonest = {}
    for task in PeriodicTask.objects.filter(enabled=True).select_related(
            "interval", "crontab", "solar", "clocked"):
        due = operations.next_due(task)
        if task.task not in soonest or due < soonest[task.task]:
            soonest[task.task] = due
    return soonest


def _figures(config):
    hook = getattr(config, "home_figures", None)
    if not callable(hook):
        return []
    try:
        return list(hook())
    except Exception as exc:  # one app's broken figure must not take the home page down
        return [Figure("Figures", f"unavailable ({type(exc).__name__})", None, "bad")]


def integration_cards(user):
    """One card per integration the user holds a permission of, in ORDER."""
    from .setaside import runs_for_status

    open_set_aside = runs_for_status()
    grouped = operations.by_app()
    scheduled = _next_runs()
    cards = []
    for app in sorted(grouped, key=lambda a: (ORDER.index(a) if a in ORDER else len(ORDER), a)):
        if not user.has_module_perms(app):
            continue
        config = apps.get_app_config(app)
        is_configured = getattr(config, "is_configured", None)
        try:
            configured = bool(is_configured()) if callable(is_configured) else None
        except Exception:  # e.g. a secret no key decrypts: shown as not configured
            configured = False
        recent = {op.name: _recent_runs(app, op.name) for op in grouped[app]}
        rows = [{"op": op, "last_run": next(iter(recent[op.name]), None), "next_run": scheduled.get(op.task_name),
                 "may_run": op.runnable and op.user_may_run(user)} for op in grouped[app]]
        runs = [run for op_runs in recent.values() for run in op_runs]
        next_runs = [row["next_run"] for row in rows if row["next_run"]]
        aside = open_set_aside.get(app, 0)
        figures = _figures(config) + [Figure(
            "Open set-aside records", aside,
            admin_url("admin:portal_setasiderecord_changelist", f"app={app}&status__exact=open")
            if user.has_perm("portal.view_setasiderecord") else None,
            count_tone(aside))]
        cards.append({
            "app": app,
            "title": TITLES.get(app, config.verbose_name),
            "url": _app_list_url(app),
            "configured": configured,
            "last_run": _last_finished(runs),
            "streak": streak_of(runs),
            "next_run": min(next_runs, default=None),
            "figures": figures,
            "operations": rows,
        })
    return cards


def _app_list_url(app):
    try:
        return reverse("admin:app_list", args=[app])
    except NoReverseMatch:  # an app with no models in the admin
        return None


def outcome_charts(user, date_range):
    """One chart per integration: its runs' outcomes per local day (by when each run
    finished): succeeded, partial, failed (errored included)."""
    from .admin import visible_runs

    days = date_range.days
    start, end = date_range.bounds()
    # on the finished index: a run is counted on the day it ended, however long it was queued
    runs = visible_runs(SyncRun.objects.all(), user).filter(finished__gte=start, finished__lt=end, status__in=ENDED)
    index = {day: n for n, day in enumerate(days)}
    counts = {}
    per_day = (runs.order_by().annotate(day=TruncDate("finished", tzinfo=timezone.get_current_timezone()))
               .values_list("app", "status", "day").annotate(n=Count("pk")))
    for app, status, day, n in per_day:
        outcome = "failed" if status in FAILED else status
        series = counts.setdefault(app, {o: [0] * len(days) for o in OUTCOMES})
        if day in index:
            series[outcome][index[day]] += n
    labels = [day.strftime("%d %b") for day in days]
    charts = []
    for app in ORDER + sorted(set(counts) - set(ORDER)):
        if app in operations.by_app() and user.has_module_perms(app):
            series = counts.get(app) or {o: [0] * len(days) for o in OUTCOMES}
            charts.append(chart(f"run-outcomes-{app}", TITLES.get(app, app), labels, series, height=180))
    return charts


def latest_failures(user, *, days=14):
    """The newest failed or errored runs of the last `days` days (read backwards along
    the created index, so a long history costs nothing)."""
    from .admin import visible_runs

    since = timezone.now() - timedelta(days=days)
    return list(visible_runs(SyncRun.objects.all(), user).filter(created__gte=since, status__in=FAILED)
                .order_by("-created").only("pk", "app", "operation", "target", "status", "created", "finished",
                                           "error")[:LATEST_FAILURES])


def runs_by_status(*statuses):
    return dict(SyncRun.objects.filter(status__in=statuses).order_by().values_list("status")
                .annotate(n=Count("pk")).values_list("status", "n"))
