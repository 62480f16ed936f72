"""/health/: database, broker and every integration, no login needed.

It says what is configured and how the last runs went; it never shows a secret.
Status 200 when the database and broker answer, 503 otherwise.
"""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from . import operations


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


def integration_status():
    from django.apps import apps

    result = {}
    for app, ops in operations.by_app().items():
        config = apps.get_app_config(app)
        is_configured = getattr(config, "is_configured", None)
        try:
            configured = bool(is_configured()) if callable(is_configured) else None
        except Exception as exc:  # e.g. a secret that no key decrypts: say so, keep answering
            configured = f"error: {type(exc).__name__}"
        entry = {"configured": configured, "operations": {}}
        for op in ops:
            last = op.last_run()
            entry["operations"][op.name] = {
                "last_status": last.status if last else None,
                "last_run": (last.finished or last.started).isoformat() if last and (last.finished or last.started) else None,
            }
        result[app] = entry
    return result


@require_GET
def health(request):
    database = _check_database()
    broker = _check_broker()
    body = {
        "status": "ok" if database["ok"] and broker["ok"] else "degraded",
        "database": database,
        "broker": broker,
        "integrations": integration_status() if database["ok"] else {},
    }
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
