"""Admin: Retail Link login page, "Download EDRs" form with a progress bar, the
reports with their PDFs, assignments, settings (secrets write-only)."""

import io

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.decorators import action

from portal.admin import SecretFieldsMixin, secret_status
from portal.admin_filters import ValuesDropdownFilter
from portal.runs import OperationFailed

from . import services
from .forms import AssignmentImportForm
from .models import EdrReport, EventAssignment, RetailLinkAccount, RetailLinkSession, RetailLinkSettings
from .admin_views import RetailLinkAdminViews
from .responses import report_pdf_response

@admin.register(RetailLinkSettings)
class RetailLinkSettingsAdmin(SecretFieldsMixin, ModelAdmin):
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
class EventAssignmentAdmin(ModelAdmin):
    list_display = ("event_id", "employee_name", "event_date")
    search_fields = ("event_id", "employee_name")
    list_filter = (("event_date", RangeDateFilter),)
    list_filter_submit = True  # the range filter needs its Apply button
    actions_list = ["import_csv"]

    @action(description="Import CSV", icon="upload_file", url_path="import-csv", permissions=["add", "change"])
    def import_csv(self, request):
        return redirect("admin:walmart_eventassignment_import")

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
class RetailLinkAccountAdmin(ModelAdmin):
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
class RetailLinkSessionAdmin(ModelAdmin):
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
class EdrReportAdmin(RetailLinkAdminViews, ModelAdmin):
    list_display = ("event_id", "event_name", "event_date", "event_type", "status", "employee_name", "pdf_link", "fetched_at")
    list_filter = (("event_date", RangeDateFilter), ("status", ValuesDropdownFilter), ("event_type", ValuesDropdownFilter))
    list_filter_submit = True  # the range filter needs its Apply button
    search_fields = ("event_id", "event_name", "employee_name")
    date_hierarchy = "event_date"
    readonly_fields = ("event_id", "event_name", "event_date", "event_type", "status", "employee_name", "pdf_link",
                       "fetched_at", "fetched_by", "data")
    # The event's data (Retail Link's JSON) is long: its own tab, the report first.
    fieldsets = [
        ("Report", {"classes": ["tab"], "fields": ["event_id", "event_name", "event_date", "event_type", "status",
                                                   "employee_name", "pdf_link", "fetched_at", "fetched_by"]}),
        ("Retail Link data", {"classes": ["tab"], "fields": ["data"]}),
    ]
    actions = ["redownload"]
    actions_list = ["open_retaillink_login", "open_download_edrs"]

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return self.retaillink_urls() + [
            path("<int:pk>/pdf/", view(self.pdf_view), name="walmart_edrreport_pdf"),
        ] + super().get_urls()

    @admin.display(description="PDF")
    def pdf_link(self, obj):
        if not obj.pdf:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("admin:walmart_edrreport_pdf", args=[obj.pk]), obj.filename)

    # --- action ---------------------------------------------------------------------------
    @admin.action(description="Download the selected EDRs again", permissions=["use_retaillink"])
    def redownload(self, request, queryset):
        self._start_batch(request, event_ids=list(queryset.values_list("event_id", flat=True)))

    def pdf_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return report_pdf_response(request, get_object_or_404(EdrReport, pk=pk), as_attachment=False)
