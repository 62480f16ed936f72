"""Prometheus metrics: counters from every process, gauges from the database.

Counters and histograms (runs, upstream requests, retries, rate-limit waits)
are written by whichever process did the work (web, worker, beat) into
PROMETHEUS_MULTIPROC_DIR, and /metrics sums that machine's processes: scrape
every machine that runs workers. Gauges that describe shared state (set-aside
records, backlogs, active runs) are read from the database at scrape time, so
any machine's /metrics gives the same figures.
"""

import ipaddress
import logging
import os

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

logger = logging.getLogger(__name__)

RUNS = Counter("portal_runs_total", "Finished runs", ["app", "operation", "status"])
RUN_SECONDS = Histogram(
    "portal_run_duration_seconds", "How long runs took", ["app", "operation"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200),
)
UPSTREAM_REQUESTS = Counter("portal_upstream_requests_total", "Requests to upstreams", ["upstream", "status_class"])
UPSTREAM_SECONDS = Histogram(
    "portal_upstream_request_duration_seconds", "Upstream latency", ["upstream"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_RETRIES = Counter("portal_upstream_retries_total", "Upstream requests retried", ["upstream"])
RATE_LIMIT_WAIT = Counter("portal_rate_limit_wait_seconds_total", "Seconds spent waiting for the rate limiter", ["bucket"])


def observe_run(record, seconds=None):
    try:
        RUNS.labels(record.app, record.operation, record.status).inc()
        if seconds is None and record.duration is not None:
            seconds = record.duration.total_seconds()
        if seconds is not None:
            RUN_SECONDS.labels(record.app, record.operation).observe(seconds)
    except Exception:  # metrics never break a run
        logger.warning("run metrics not recorded", exc_info=True)


def observe_upstream(upstream, status, seconds):
    try:
        status_class = f"{str(status)[0]}xx" if isinstance(status, int) else str(status)
        UPSTREAM_REQUESTS.labels(upstream, status_class).inc()
        UPSTREAM_SECONDS.labels(upstream).observe(seconds)
    except Exception:
        logger.warning("upstream metrics not recorded", exc_info=True)


def observe_retry(upstream):
    try:
        UPSTREAM_RETRIES.labels(upstream).inc()
    except Exception:
        pass


def observe_rate_limit_wait(bucket, seconds):
    try:
        if seconds > 0:
            RATE_LIMIT_WAIT.labels(bucket).inc(seconds)
    except Exception:
        pass


class DatabaseCollector:
    """Gauges read at scrape time: one truth for every machine."""

    def collect(self):
        from django.apps import apps
        from django.db.models import Count

        from .models import SetAsideRecord, SyncRun
        from .schedules import missed_schedules

        set_aside = GaugeMetricFamily("portal_set_aside_open", "Open set-aside records", labels=["app", "kind"])
        for app, kind, n in (
            SetAsideRecord.objects.filter(status=SetAsideRecord.Status.OPEN)
            .values_list("app", "kind").annotate(n=Count("pk")).values_list("app", "kind", "n")
        ):
            set_aside.add_metric([app, kind], n)
        yield set_aside
        active = GaugeMetricFamily("portal_runs_active", "Queued and running runs", labels=["app", "operation", "status"])
        for app, operation, status, n in (
            SyncRun.objects.filter(status__in=SyncRun.ACTIVE)
            .values_list("app", "operation", "status").annotate(n=Count("pk")).values_list("app", "operation", "status", "n")
        ):
            active.add_metric([app, operation, status], n)
        yield active
        missed = GaugeMetricFamily("portal_schedules_missed", "Schedules that missed their tick")
        missed.add_metric([], len(missed_schedules()))
        yield missed
        backlog = GaugeMetricFamily("portal_backlog", "Backlog figures the apps report", labels=["app", "name"])
        for config in apps.get_app_configs():
            figures = getattr(config, "health_figures", None)
            if not callable(figures):
                continue
            try:
                values = figures() or {}
            except Exception:
                logger.warning("health figures of %s failed", config.label, exc_info=True)
                continue
            for name, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    backlog.add_metric([config.label, name], value)
        yield backlog


def _allowed(request):
    token = settings.METRICS_TOKEN
    if token:
        import hmac

        header = request.headers.get("Authorization", "")
        if hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
            return True
    remote = request.META.get("REMOTE_ADDR", "")
    for allowed in settings.METRICS_ALLOWED_IPS:
        try:
            if ipaddress.ip_address(remote) in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    return False


@require_GET
def metrics_view(request):
    if not _allowed(request):
        return HttpResponseForbidden("metrics: a bearer token or an allowed address is required\n", content_type="text/plain")
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
