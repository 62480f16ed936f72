"""The Retail Link pages of the admin: the login page (request the code, enter
it, log out), "Download EDRs", a batch's page with its progress, zip and retry
of the failed events. Mixed into EdrReportAdmin, whose URLs they extend."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.decorators import action

from portal.charts import DateRange, chart

from portal.admin import queue_from_admin, runs_link
from portal.http import UpstreamError
from portal.models import SyncRun
from portal.operations import QueueUnavailable
from portal.runs import OperationFailed

from . import services, sessions
from .client import BrowserMissing
from .forms import DownloadEdrsForm, MfaCodeForm
from .responses import batch_zip_response

USE_PERMISSION = "walmart.use_retaillink"


class RetailLinkAdminViews:
    """Views needing the use_retaillink permission; each user sees only their own batches."""

    def retaillink_urls(self):
        view = self.admin_site.admin_view
        return [
            path("retaillink-login/", view(self.login_view), name="walmart_retaillink_login"),
            path("download/", view(self.download_view), name="walmart_download_edrs"),
            path("download/<int:run_id>/", view(self.batch_view), name="walmart_edr_batch"),
            path("download/<int:run_id>/progress/", view(self.batch_progress), name="walmart_edr_batch_progress"),
            path("download/<int:run_id>/zip/", view(self.batch_zip), name="walmart_edr_batch_zip"),
            path("download/<int:run_id>/retry/", view(self.batch_retry), name="walmart_edr_batch_retry"),
        ]

    def has_use_retaillink_permission(self, request):
        return request.user.has_perm(USE_PERMISSION)

    # The reports list's buttons (unfold's actions_list), shown to those who may use Retail Link.
    @action(description="Retail Link login", icon="login", url_path="open-retaillink-login",
            permissions=["use_retaillink"])
    def open_retaillink_login(self, request):
        return redirect("admin:walmart_retaillink_login")

    @action(description="Download EDRs", icon="download", url_path="open-download-edrs", permissions=["use_retaillink"])
    def open_download_edrs(self, request):
        return redirect("admin:walmart_download_edrs")

    def _start_batch(self, request, **params):
        try:
            params = services.batch_params(request.user, **params)
        except OperationFailed as exc:
            self.message_user(request, f"{exc} Use the Retail Link login page.", messages.ERROR)
            return None
        # queued / already queued as run #N / queue unreachable (then None)
        record = queue_from_admin(request, "walmart", "edr_batch", label="EDR batch", **params)
        if record is not None:
            self.message_user(request, format_html(
                '<a href="{}">Follow the progress of run #{}</a>.', reverse("admin:walmart_edr_batch", args=[record.pk]),
                record.pk))
        return record

    # --- views ----------------------------------------------------------------------------
    def _require_use(self, request):
        if not request.user.has_perm(USE_PERMISSION):
            raise PermissionDenied

    def _context(self, request, title, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    def login_view(self, request):
        """Request the code, enter it, see the time left, log out."""
        self._require_use(request)
        code_form = MfaCodeForm()
        status = 200
        if request.method == "POST":
            action = request.POST.get("action")
            try:
                if action == "request":
                    services.request_mfa(request.user)
                    messages.success(request, "MFA code sent to the registered phone; enter it below.")
                elif action == "authenticate":
                    code_form = MfaCodeForm(request.POST)
                    if code_form.is_valid():
                        services.authenticate(request.user, code_form.cleaned_data["mfa_code"])
                        messages.success(request, "Authenticated with Retail Link.")
                elif action == "logout":
                    services.logout(request.user)
                    messages.success(request, "Logged out of Retail Link.")
            except (OperationFailed, UpstreamError) as exc:
                messages.error(request, str(exc))
            except BrowserMissing as exc:
                messages.error(request, str(exc))
                status = 503  # the page says what to configure; nothing was sent
            if status == 503 or (code_form.is_bound and code_form.errors):
                pass  # show the form with its error
            else:
                return redirect("admin:walmart_retaillink_login")
        session = sessions.live_session(request.user)
        return TemplateResponse(request, "admin/walmart/retaillink_login.html", self._context(
            request, "Retail Link login", session=session, session_info=sessions.session_info(session) if session else None,
            code_form=code_form, download_url=reverse("admin:walmart_download_edrs"),
        ), status=status)

    def download_view(self, request):
        self._require_use(request)
        form = DownloadEdrsForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            params = {"date": form.cleaned_data["date"]} if form.cleaned_data.get("date") else {"event_ids": form.cleaned_data["event_ids"]}
            record = self._start_batch(request, **params)
            if record is not None:
                return redirect("admin:walmart_edr_batch", record.pk)
        session = sessions.live_session(request.user)
        date_range = DateRange.from_request(request, default_days=14)
        per_day = services.batches_per_day(date_range.start, date_range.end)
        return TemplateResponse(request, "admin/walmart/download_edrs.html", self._context(
            request, "Download EDRs", form=form, session=session, range=date_range,
            batches_chart=chart("edr-batches-per-day", "EDR batches per day (everyone's) and their failed events",
                                [day.isoformat() for day in per_day["days"]],
                                {"Batches": per_day["batches"], "Failed events": per_day["failed_events"]},
                                colours={"Batches": "#0ea5e9", "Failed events": "#dc2626"}),
            recent=SyncRun.objects.filter(app="walmart", operation="edr_batch", triggered_by=request.user)[:10],
        ))

    def _own_batch(self, request, run_id):
        self._require_use(request)
        return services.user_batch(request.user, run_id)

    def batch_view(self, request, run_id):
        record = self._own_batch(request, run_id)
        return TemplateResponse(request, "admin/walmart/edr_batch.html", self._context(
            request, f"EDR batch #{record.pk}", run=record, runs_link=runs_link("walmart", "edr_batch"),
            failures_open=_failures_to_retry(record),
            zip_url=reverse("admin:walmart_edr_batch_zip", args=[record.pk]), zip_attrs={"id": "batch-zip"},
            retry_attrs={"id": "batch-retry"},
        ))

    def batch_progress(self, request, run_id):
        """Polled by the progress bar."""
        record = self._own_batch(request, run_id)
        # each stored PDF opens from its row, as the API's results carry pdf_url
        summary = services.batch_summary(
            record, pdf_url=lambda report_id: reverse("admin:walmart_edrreport_pdf", args=[report_id]))
        return JsonResponse({
            "status": record.status, "finished": record.is_finished, "error": record.error,
            "done": record.progress_done, "total": record.progress_total, "percent": record.progress_percent,
            "successful": summary["successful"], "failed": summary["failed"], "results": summary["results"],
            # what the retry button retries: shown by the page when the batch ends, without a reload
            "failures_open": _failures_to_retry(record),
        })

    def batch_retry(self, request, run_id):
        """Retry only the batch's failed events (POST from the batch page)."""
        record = self._own_batch(request, run_id)
        if request.method != "POST":
            return redirect("admin:walmart_edr_batch", record.pk)
        try:
            retry = services.retry_batch_failures(record, trigger=SyncRun.Trigger.ADMIN, user=request.user)
        except OperationFailed as exc:
            self.message_user(request, str(exc), messages.WARNING)
        except QueueUnavailable as exc:  # nothing was queued
            self.message_user(request, f"Could not queue the retry: {exc}", messages.ERROR)
        else:
            self.message_user(request, format_html(
                'Retry of the failed events queued as <a href="{}">run #{}</a>; their PDFs join this batch.',
                reverse("admin:portal_syncrun_change", args=[retry.pk]), retry.pk))
        return redirect("admin:walmart_edr_batch", record.pk)

    def batch_zip(self, request, run_id):
        return batch_zip_response(self._own_batch(request, run_id))


def _failures_to_retry(record):
    """What the batch page's retry button retries: the failed events, once the batch has ended
    (the page and its progress JSON count alike; a running batch shows no button)."""
    return services.batch_failures(record).count() if record.is_finished else 0
