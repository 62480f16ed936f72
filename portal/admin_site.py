"""The admin site: the home page is integration health (portal.home) with "run now"."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from unfold.sites import UnfoldAdminSite

from . import operations


class PortalAdminSite(UnfoldAdminSite):
    site_header = "Operations portal"
    site_title = "Operations portal"
    index_title = "Integration health"

    def get_urls(self):
        return [
            path("run/<str:app>/<str:name>/", self.admin_view(require_POST(self.run_now)), name="run_operation"),
        ] + super().get_urls()

    def index(self, request, extra_context=None):
        from . import home
        from .charts import DateRange

        date_range = DateRange.from_request(request, default_days=14)
        if not date_range.form.is_bound:
            date_range.form.initial = {"days": 14}  # the choice shown is the range shown
        extra_context = {
            **(extra_context or {}),
            "integrations": home.integration_cards(request.user),
            "outcome_charts": home.outcome_charts(request.user, date_range),
            "range": date_range,
            "latest_failures": home.latest_failures(request.user),
            # run pages need the portal's own view permission: without it, statuses show unlinked
            "may_see_runs": request.user.has_perm("portal.view_syncrun"),
        }
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
