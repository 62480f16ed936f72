"""`manage.py check --deploy` checks for running on several processes and machines."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

PROCESS_LOCAL_CACHES = ("django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache")


@register(Tags.security, deploy=True)
def shared_cache(app_configs, **kwargs):
    """API throttles (DRF) live in the default cache: a process-local cache gives each
    gunicorn worker its own allowance."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend in PROCESS_LOCAL_CACHES and settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return [Warning(
            f"CACHES['default'] is {backend.rsplit('.', 1)[-1]}: API throttles are per process.",
            hint="Set CACHE_URL=redis://… so every process of every machine shares them.", id="portal.W001",
        )]
    return []


@register(Tags.staticfiles, deploy=True)
def collected_static_files(app_configs, **kwargs):
    if not settings.DEBUG and not (settings.STATIC_ROOT / "staticfiles.json").exists():
        return [Warning(
            f"No static files manifest in {settings.STATIC_ROOT}: with DEBUG=0 the admin and the API docs have no styles.",
            hint="Run `manage.py collectstatic --noinput` before starting the web process.", id="portal.W002",
        )]
    return []
