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
