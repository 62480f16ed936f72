"""Health, no login needed, never a secret:

- /health/live: the process answers (for a load balancer);
- /health/ready: the database, the broker, and the encryption keys decrypt a stored secret;
- /health/: the detailed report: readiness plus, per integration, whether it is
  configured, each operation and target's last run (status, age, failure
  streak), open set-aside records, the app's backlog and lag figures, and
  missed schedules.

`status` is `ok`, `warning` (a partial run that set aside a small share of its
items) or `degraded` (503): something is down, a target's last run failed, a
partial run set aside more than HEALTH_SET_ASIDE_DEGRADED_SHARE, or a schedule
missed its tick.
"""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import operations

OK, WARNING, DEGRADED = "ok", "warning", "degraded"
_RANK = {OK: 0, WARNING: 1, DEGRADED: 2}


def _worst(*statuses):
    return max(statuses, key=lambda s: _RANK[s]) if statuses else OK


def _check_database():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "engine": connection.vendor}
    except Exception as exc:  # health must answer whatever broke
        return {"ok": False, "engine": connection.vendor, "error": type(exc).__name__}


def _check_broker():
    from .celery import app

    transport = settings.CELERY_BROKER_URL.split("://", 1)[0]
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": transport}
    except Exception as exc:
        return {"ok": False, "transport": transport, "error": type(exc).__name__}


def _check_encryption_keys():
    """Decrypt one stored secret per model that has any: a removed key shows here,
    not as every run of that app failing."""
    from django.apps import apps

    from .fields import EncryptedTextField

    checked = 0
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
        for field in fields:
            token = (
                model._default_manager.exclude(**{field.name: ""}).exclude(**{f"{field.name}__isnull": True})
                .values_list(field.attname, flat=True)
            )
            # values_list runs from_db_value, which decrypts: a failure raises here
            try:
                value = token.first()
            except Exception as exc:
                return {"ok": False, "error": f"{model._meta.label}.{field.name} cannot be decrypted ({type(exc).__name__})"}
            if value is not None:
                checked += 1
                break
    return {"ok": True, "secrets_checked": checked}


def readiness():
    database = _check_database()
    broker = _check_broker()
    keys = _check_encryption_keys() if database["ok"] else {"ok": False, "error": "database down"}
    ready = database["ok"] and broker["ok"] and keys["ok"]
    return ready, {"database": database, "broker": broker, "encryption_keys": keys}


def _set_aside_share(run):
    counters = run.counters or {}
    aside = counters.get("set_aside", 0)
    ok = counters.get("items_ok")
    if ok is not None:
        return aside / max(1, aside + ok)
    if run.progress_total:
        return aside / max(1, run.progress_total)
    return None


def run_health(run):
    """How a target's last run reflects on health."""
    if run is None:
        return OK
    if run.status in (run.Status.FAILED, run.Status.ERRORED):
        return DEGRADED
    if run.status == run.Status.PARTIAL:
        share = _set_aside_share(run)
        if share is not None and share > settings.HEALTH_SET_ASIDE_DEGRADED_SHARE:
            return DEGRADED
        return WARNING
    return OK


def _last_runs_per_target(app, name):
    """The newest finished run of each target of one operation."""
    from .models import SyncRun

    latest = {}
    for run in (
        SyncRun.objects.filter(app=app, operation=name, status__in=SyncRun.FINISHED)
        .exclude(status=SyncRun.Status.SKIPPED)
        .order_by("-finished", "-pk")
        .only("pk", "app", "operation", "target", "status", "finished", "started", "error", "counters", "progress_total")[:200]
    ):
        latest.setdefault(run.target, run)
    return latest


def integration_status():
    from django.apps import apps

    from .notifications import failure_streak
    from .setaside import runs_for_status

    now = timezone.now()
    open_set_aside = runs_for_status()
    result = {}
    for app, ops in operations.by_app().items():
        config = apps.get_app_config(app)
        is_configured = getattr(config, "is_configured", None)
        try:
            configured = bool(is_configured()) if callable(is_configured) else None
        except Exception as exc:  # e.g. a secret that no key decrypts: say so, keep answering
            configured = f"error: {type(exc).__name__}"
        statuses = []
        entry = {"configured": configured, "operations": {}, "set_aside_open": open_set_aside.get(app, 0)}
        for op in ops:
            last_by_target = _last_runs_per_target(app, op.name)
            newest = max(last_by_target.values(), key=lambda r: (r.finished, r.pk), default=None)
            targets = {}
            for target, run in sorted(last_by_target.items()):
                health = run_health(run)
                statuses.append(health)
                targets[target or "-"] = {
                    "status": health,
                    "last_status": run.status,
                    "last_run": run.finished.isoformat() if run.finished else None,
                    "age_seconds": round((now - run.finished).total_seconds()) if run.finished else None,
                    "failure_streak": failure_streak(app, op.name, run.target),
                    "error": run.error[:300] if health != OK else "",
                }
            entry["operations"][op.name] = {
                "last_status": newest.status if newest else None,
                "last_run": newest.finished.isoformat() if newest and newest.finished else None,
                "targets": targets,
            }
        figures = getattr(config, "health_figures", None)
        if callable(figures):
            try:
                entry["figures"] = figures()
            except Exception as exc:
                entry["figures"] = {"error": type(exc).__name__}
                statuses.append(WARNING)
        # An app may name problems of its own set-up (e.g. a missing browser): a warning.
        problems = getattr(config, "health_problems", None)
        if callable(problems) and problems():
            entry["problems"] = problems()
            statuses.append(WARNING)
        entry["status"] = _worst(*statuses)
        result[app] = entry
    return result


def _missed():
    from .schedules import check_missed_schedules, missed_schedules

    check_missed_schedules()  # a stopped beat also stops the reaper: health notices too
    return [
        {"schedule": m["schedule"], "operation": m["operation"], "due_at": m["due_at"].isoformat(),
         "last_tick": m["last_tick"].isoformat() if m["last_tick"] else None}
        for m in missed_schedules()
    ]


@require_GET
def live(request):
    return JsonResponse({"status": OK})


@require_GET
def ready(request):
    is_ready, checks = readiness()
    return JsonResponse({"status": OK if is_ready else DEGRADED, **checks}, status=200 if is_ready else 503)


@require_GET
def health(request):
    is_ready, checks = readiness()
    body = {"status": OK if is_ready else DEGRADED, **checks, "integrations": {}, "missed_schedules": []}
    if checks["database"]["ok"]:
        body["integrations"] = integration_status()
        body["missed_schedules"] = _missed()
        body["status"] = _worst(
            body["status"],
            *(entry["status"] for entry in body["integrations"].values()),
            DEGRADED if body["missed_schedules"] else OK,
        )
    return JsonResponse(body, status=503 if body["status"] == DEGRADED else 200)
