"""The admin home: every integration with its last run, next run and "run now"."""

from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import NoReverseMatch, path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from unfold.sites import UnfoldAdminSite

from . import operations


class PortalAdminSite(UnfoldAdminSite):
    site_header = "Operations portal"
    site_title = "Operations portal"
    index_title = "Integrations"

    def get_urls(self):
        return [
            path("run/<str:app>/<str:name>/", self.admin_view(require_POST(self.run_now)), name="run_operation"),
        ] + super().get_urls()

    def integrations(self, request):
        panels = []
        for app, ops in operations.by_app().items():
            if not request.user.has_module_perms(app):
                continue
            rows = []
            for op in ops:
                rows.append({"op": op, "last_run": op.last_run(), "next_run": op.next_run_at()})
            config = apps.get_app_config(app)
            is_configured = getattr(config, "is_configured", None)
            panels.append({
                "app": app,
                "name": config.verbose_name,
                "url": _app_url(app),
                "configured": is_configured() if callable(is_configured) else None,
                "operations": rows,
            })
        return panels

    def index(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "integrations": self.integrations(request)}
        return super().index(request, extra_context)

    def run_now(self, request, app, name):
        from .admin import queue_from_admin

        try:
            op = operations.get(app, name)
        except KeyError:
            op = None
        if op is not None and not op.user_may_run(request.user):
            raise PermissionDenied
        if op is None or not op.runnable:
            # e.g. an EDR batch needs a date and a logged-in user: it has its own form.
            messages.error(request, f"{app}.{name} cannot be run from here.")
            return redirect("admin:index")
        queue_from_admin(request, app, name, label=op.label)
        back = request.POST.get("next", "")
        if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            return redirect(back)
        return redirect("admin:index")


def _app_url(app_label):
    try:
        return reverse("admin:app_list", args=[app_label])
    except NoReverseMatch:  # an app with no models in the admin
        return None


def _change_perms(app):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label=app, codename__startswith="change_").values_list(
        "codename", flat=True
    )
