"""Admin: Retail Link login page, "Download EDRs" form with a progress bar, the
reports with their PDFs, assignments, settings (secrets write-only)."""

import io

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from portal.admin import SecretFieldsMixin, queue_from_admin, runs_link, secret_status
from portal.http import UpstreamError
from portal.models import SyncRun
from portal.operations import QueueUnavailable
from portal.runs import OperationFailed

from . import services, sessions
from .client import BrowserMissing
from .forms import AssignmentImportForm, DownloadEdrsForm, MfaCodeForm
from .models import EdrReport, EventAssignment, RetailLinkAccount, RetailLinkSession, RetailLinkSettings
from .responses import batch_zip_response, report_pdf_response

USE_PERMISSION = "walmart.use_retaillink"


@admin.register(RetailLinkSettings)
class RetailLinkSettingsAdmin(SecretFieldsMixin, admin.ModelAdmin):
    list_display = ("__str__", "username_status", "password_status", "credential_status", "club_numbers")
    fields = ("username", "password", "mfa_credential_id", "club_numbers")

    @admin.display(description="username")
    def username_status(self, obj):
        return secret_status(obj.username)

    @admin.display(description="password")
    def password_status(self, obj):
        return secret_status(obj.password)

    @admin.display(description="MFA credential id")
    def credential_status(self, obj):
        return secret_status(obj.mfa_credential_id)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not RetailLinkSettings.objects.exists()


@admin.register(EventAssignment)
class EventAssignmentAdmin(admin.ModelAdmin):
    list_display = ("event_id", "employee_name", "event_date")
    search_fields = ("event_id", "employee_name")
    list_filter = ("event_date",)
    change_list_template = "admin/walmart/eventassignment/change_list.html"

    def get_urls(self):
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name="walmart_eventassignment_import"),
        ] + super().get_urls()

    def import_view(self, request):
        """Upload the scheduling app's CSV (event_id, employee_name[, event_date])."""
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        form = AssignmentImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            text = io.TextIOWrapper(form.cleaned_data["csv_file"].file, encoding="utf-8-sig", newline="")
            try:
                created, updated = services.import_event_assignments_csv(text)
            except OperationFailed as exc:
                form.add_error("csv_file", str(exc))
            else:
                self.message_user(request, f"{created} assignments created, {updated} updated.")
                return redirect("admin:walmart_eventassignment_changelist")
        return TemplateResponse(request, "admin/walmart/import_assignments.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": "Import event assignments",
            "form": form,
        })


@admin.register(RetailLinkAccount)
class RetailLinkAccountAdmin(admin.ModelAdmin):
    """The shared account's code state: when the last SMS went out and how many
    wrong codes the portal has counted (it refuses the one that would lock the
    account). The stored browser states and bearer are never shown."""

    list_display = ("__str__", "code_sent_at", "code_expires_at", "wrong_codes", "tries_left")
    fields = ("code_sent_at", "code_expires_at", "wrong_codes")
    readonly_fields = fields
    actions = ["reset_wrong_codes"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="tries left")
    def tries_left(self, obj):
        return services.tries_left(obj)

    @admin.action(description="Reset the wrong-code count (check the account is not locked first)",
                  permissions=["change"])
    def reset_wrong_codes(self, request, queryset):
        self.message_user(request, f"{queryset.update(wrong_codes=0)} account(s): the portal takes codes again.")


@admin.register(RetailLinkSession)
class RetailLinkSessionAdmin(admin.ModelAdmin):
    """Who is logged in to Retail Link; deleting a row ends that session.
    The stored browser state and bearer are never shown."""

    list_display = ("user", "stage", "created_at", "last_activity", "expires_at", "time_remaining")
    fields = ("user", "stage", "created_at", "last_activity", "expires_at", "authenticated_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="seconds left")
    def time_remaining(self, obj):
        return obj.time_remaining()


@admin.register(EdrReport)
class EdrReportAdmin(admin.ModelAdmin):
    list_display = ("event_id", "event_name", "event_date", "event_type", "status", "employee_name", "pdf_link", "fetched_at")
    list_filter = ("event_date", "status")
    search_fields = ("event_id", "event_name", "employee_name")
    date_hierarchy = "event_date"
    readonly_fields = ("event_id", "event_name", "event_date", "event_type", "status", "employee_name", "pdf_link",
                       "fetched_at", "fetched_by", "data")
    exclude = ("pdf",)
    actions = ["redownload"]
    change_list_template = "admin/walmart/edrreport/change_list.html"

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("retaillink-login/", view(self.login_view), name="walmart_retaillink_login"),
            path("download/", view(self.download_view), name="walmart_download_edrs"),
            path("download/<int:run_id>/", view(self.batch_view), name="walmart_edr_batch"),
            path("download/<int:run_id>/progress/", view(self.batch_progress), name="walmart_edr_batch_progress"),
            path("download/<int:run_id>/zip/", view(self.batch_zip), name="walmart_edr_batch_zip"),
            path("download/<int:run_id>/retry/", view(self.batch_retry), name="walmart_edr_batch_retry"),
            path("<int:pk>/pdf/", view(self.pdf_view), name="walmart_edrreport_pdf"),
        ] + super().get_urls()

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        if not obj.pdf:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("admin:walmart_edrreport_pdf", args=[obj.pk]), obj.filename)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_use_retaillink": request.user.has_perm(USE_PERMISSION)}
        return super().changelist_view(request, extra_context)

    # --- action ---------------------------------------------------------------------------
    @admin.action(description="Download the selected EDRs again", permissions=["use_retaillink"])
    def redownload(self, request, queryset):
        self._start_batch(request, event_ids=list(queryset.values_list("event_id", flat=True)))

    def has_use_retaillink_permission(self, request):
        return request.user.has_perm(USE_PERMISSION)

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
            code_form=code_form,
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
        return TemplateResponse(request, "admin/walmart/download_edrs.html", self._context(
            request, "Download EDRs", form=form, session=session,
            recent=SyncRun.objects.filter(app="walmart", operation="edr_batch", triggered_by=request.user)[:10],
        ))

    def _own_batch(self, request, run_id):
        self._require_use(request)
        return services.user_batch(request.user, run_id)

    def batch_view(self, request, run_id):
        record = self._own_batch(request, run_id)
        return TemplateResponse(request, "admin/walmart/edr_batch.html", self._context(
            request, f"EDR batch #{record.pk}", run=record, runs_link=runs_link("walmart", "edr_batch"),
            failures_open=services.batch_failures(record).count(),
        ))

    def batch_progress(self, request, run_id):
        """Polled by the progress bar."""
        record = self._own_batch(request, run_id)
        summary = services.batch_summary(record)
        return JsonResponse({
            "status": record.status, "finished": record.is_finished, "error": record.error,
            "done": record.progress_done, "total": record.progress_total, "percent": record.progress_percent,
            "successful": summary["successful"], "failed": summary["failed"], "results": summary["results"],
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

    def pdf_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return report_pdf_response(get_object_or_404(EdrReport, pk=pk), as_attachment=False)
