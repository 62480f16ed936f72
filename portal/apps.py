from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "portal.admin_site.PortalAdminSite"


class PortalConfig(AppConfig):
    default = True
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from . import checks  # noqa: F401  (deploy checks)
        from .operations import Operation, register

        register(Operation("portal", "reap_runs", "Heal lost runs", "portal.reap_runs"))
        # Import every app's tasks now (not lazily in the worker) so the web
        # process can look tasks up by name when it enqueues an operation.
        from .celery import app as celery_app

        celery_app.autodiscover_tasks(force=True)

    def home_figures(self):
        """The admin home's figures: runs waiting for or held by a worker, and schedules
        that missed their tick (a stopped beat)."""
        from .home import Figure, admin_url, count_tone, runs_by_status
        from .models import SyncRun
        from .schedules import missed_schedules

        active = runs_by_status(SyncRun.Status.QUEUED, SyncRun.Status.RUNNING)
        runs = admin_url("admin:portal_syncrun_changelist")
        missed = len(missed_schedules())
        return [
            Figure("Runs queued", active.get(SyncRun.Status.QUEUED, 0), runs and f"{runs}?status__exact=queued"),
            Figure("Runs running", active.get(SyncRun.Status.RUNNING, 0), runs and f"{runs}?status__exact=running"),
            Figure("Schedules missed", missed, admin_url("admin:django_celery_beat_periodictask_changelist"),
                   count_tone(missed, bad=True)),
        ]
