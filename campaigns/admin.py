"""Portals (credentials write-only), synced data to browse, campaigns to export.

Phone numbers and e-mails are personal data: list and detail pages show them
only to users holding the model's own view permission (`view_subject`,
`view_registereduser`); gallery access keys are credentials and are only ever
shown as set / not set.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter

from portal.admin_filters import ValuesDropdownFilter
from portal.admin import SecretFieldsMixin, queue_from_admin, runs_link, secret_status
from portal.models import SyncRun

from .models import Activity, Campaign, ExportDownload, Job, Portal, RegisteredUser, Subject
from .services import check_portal
from .services.downloads import export_download_response

CONTACTS_PERMISSION = "campaigns.view_subject"


class ReadOnlyAdmin(ModelAdmin):
    """Synced from Netlife: browsed here, changed only by a sync."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ContactFieldsAdmin(ReadOnlyAdmin):
    """Hides `contact_fields` from users without the model's view permission."""

    contact_fields = ()

    def can_see_contacts(self, request):
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}")

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if self.can_see_contacts(request) else [f for f in shown if f not in self.contact_fields]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return fields if self.can_see_contacts(request) else [f for f in fields if f not in self.contact_fields]

    def get_search_fields(self, request):
        fields = super().get_search_fields(request)
        return fields if self.can_see_contacts(request) else [f for f in fields if f not in self.contact_fields]


@admin.register(Portal)
class PortalAdmin(SecretFieldsMixin, ModelAdmin):
    list_display = ("key", "name", "brand", "enabled", "username", "password_status", "max_concurrent_jobs",
                    "requests_per_second", "last_synced_at", "runs")
    list_filter = ("enabled", ("brand", ChoicesDropdownFilter))
    list_filter_submit = True
    search_fields = ("key", "name")
    readonly_fields = ("last_synced_at", "runs", "sync_history")
    actions = ["sync_portal", "check_portal"]
    # tabs (unfold): the portal, how it is called, what a sync may do, its history
    fieldsets = (
        ("Portal", {"classes": ["tab"], "fields": ["key", "name", "brand", "enabled", "shop_url"]}),
        ("Connection", {"classes": ["tab"], "fields": ["base_url", "username", "password", "max_concurrent_jobs",
                                                        "requests_per_second"]}),
        ("Sync", {"classes": ["tab"], "fields": ["create_missing_access_keys", "default_country_code"]}),
        ("History", {"classes": ["tab"], "fields": ["last_synced_at", "runs", "sync_history"]}),
    )

    def get_changeform_initial_data(self, request):
        # A new portal's brand is suggested from its key (?key=... prefills it too); staff may change it.
        initial = super().get_changeform_initial_data(request)
        if initial.get("key") and not initial.get("brand"):
            from .models import suggest_brand

            initial["brand"] = suggest_brand(initial["key"])
        return initial

    @admin.display(description="sync history")
    def sync_history(self, obj):
        runs = list(obj.sync_history()) if obj.pk else []
        if not runs:
            return "no syncs yet"
        head = format_html_join("", "<th>{}</th>", ((c.replace("_", " "),) for c in ("run", "started", "status", "brand",
                                                                                   *Portal.HISTORY_COUNTERS)))
        rows = format_html_join("", "<tr><td><a href=\"{}\">#{}</a></td><td>{}</td><td>{}</td><td>{}</td>{}</tr>", (
            (reverse("admin:portal_syncrun_change", args=[run.pk]), run.pk,
             f"{run.started:%Y-%m-%d %H:%M}" if run.started else "-", run.status, (run.counters or {}).get("brand", ""),
             format_html_join("", "<td>{}</td>", (((run.counters or {}).get(c, 0),) for c in Portal.HISTORY_COUNTERS)))
            for run in runs))
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, rows)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField):
            kwargs["assume_scheme"] = "https"  # portals are https://<portal>.shop
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="password")
    def password_status(self, obj):
        return secret_status(obj.password)

    @admin.display(description="runs")
    def runs(self, obj):
        return runs_link("campaigns", "sync_portal", label="sync runs")

    @admin.action(description="Test the connection", permissions=["change"])
    def check_portal(self, request, queryset):
        # One quick read-only call per portal: run inline so staff see the answer at once.
        for portal in queryset:
            record = check_portal(trigger=SyncRun.Trigger.ADMIN, user=request.user, portal=portal.key)
            if record.status == SyncRun.Status.SUCCEEDED:
                self.message_user(request, f"{portal.key}: connected, {record.result} activities in the webshop.", messages.SUCCESS)
            else:
                self.message_user(request, f"{portal.key}: {record.error}", messages.ERROR)

    @admin.action(description="Sync the selected portals now", permissions=["change"])
    def sync_portal(self, request, queryset):
        for portal in queryset:
            queue_from_admin(request, "campaigns", "sync_portal", label=f"Sync of {portal.key}", portal=portal.key)


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("name", "portal", "uuid", "subjects_count", "buyers_count", "synced_at")
    list_filter = (("portal", RelatedDropdownFilter),)
    list_filter_submit = True
    search_fields = ("name", "uuid")


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ("name", "portal", "job", "status", "in_webshop", "starting", "subject_count")
    list_filter = (("portal", RelatedDropdownFilter), "in_webshop", ("status", ValuesDropdownFilter))
    list_filter_submit = True
    search_fields = ("name", "uuid", "job__name")
    list_select_related = ("portal", "job")

    @admin.display(description="subjects")
    def subject_count(self, obj):
        return obj.subjects.count()


@admin.register(Subject)
class SubjectAdmin(ContactFieldsAdmin):
    list_display = ("__str__", "portal", "job", "group", "has_order", "phone_number", "email", "registered_user",
                    "access_key_status", "image_count")
    list_filter = (("portal", RelatedDropdownFilter), "has_order", ("job", RelatedDropdownFilter))
    list_filter_submit = True
    search_fields = ("name", "first_name", "last_name", "external_id", "uuid", "phone_number", "email")
    list_select_related = ("portal", "job", "registered_user")
    fields = ("portal", "job", "uuid", "name", "first_name", "last_name", "external_id", "group", "country",
              "has_order", "image_count", "phone_number", "email", "delivery_contacts", "registered_user",
              "access_key_status", "activity_names", "synced_at")
    readonly_fields = fields
    contact_fields = ("phone_number", "email", "delivery_contacts", "registered_user")

    @admin.display(description="access key")
    def access_key_status(self, obj):
        return secret_status(obj.access_key)

    @admin.display(description="activities")
    def activity_names(self, obj):
        return ", ".join(a.name for a in obj.activities.all())


@admin.register(RegisteredUser)
class RegisteredUserAdmin(ContactFieldsAdmin):
    list_display = ("uuid", "portal", "username", "name", "email", "phone_number", "details_fetched_at")
    list_filter = (("portal", RelatedDropdownFilter),)
    list_filter_submit = True
    search_fields = ("uuid", "username", "email", "name")
    fields = ("portal", "uuid", "username", "name", "email", "phone_number", "details_fetched_at")
    readonly_fields = fields
    contact_fields = ("username", "name", "email", "phone_number")


@admin.register(Campaign)
class CampaignAdmin(ModelAdmin):
    list_display = ("name", "audience", "portal_keys", "export_built_at", "export_contacts", "download")
    list_filter = (("audience", ChoicesDropdownFilter),)
    list_filter_submit = True
    search_fields = ("name",)
    filter_horizontal = ("portals",)
    autocomplete_fields = ("activities",)
    readonly_fields = ("export_built_at", "export_contacts", "download", "runs")
    actions = ["build_export"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("portals")

    @admin.display(description="portals")
    def portal_keys(self, obj):
        return ", ".join(p.key for p in obj.portals.all())

    @admin.display(description="export")
    def download(self, obj):
        if not obj.pk or not obj.export_file:
            return "not built"
        url = reverse("admin:campaigns_campaign_export", args=[obj.pk])
        return format_html('<a href="{}">Download CSV ({} contacts)</a>', url, obj.export_contacts)

    @admin.display(description="runs")
    def runs(self, obj):
        return runs_link("campaigns", "build_export", label="export runs")

    @admin.action(description="Build export (contact CSV)", permissions=["change"])
    def build_export(self, request, queryset):
        for campaign in queryset:
            queue_from_admin(request, "campaigns", "build_export", label=f"Export of {campaign}", campaign=campaign.pk)

    def get_urls(self):
        return [
            path("<int:pk>/export/", self.admin_site.admin_view(self.export_view), name="campaigns_campaign_export"),
            *super().get_urls(),
        ]

    def export_view(self, request, pk):
        campaign = get_object_or_404(Campaign, pk=pk)
        if not self.has_view_permission(request, campaign) or not request.user.has_perm(CONTACTS_PERMISSION):
            raise PermissionDenied
        if not campaign.export_file:
            raise Http404("This campaign's export has not been built.")
        return export_download_response(campaign, request.user, ExportDownload.Via.ADMIN)


@admin.register(ExportDownload)
class ExportDownloadAdmin(ReadOnlyAdmin):
    """Every download of a contact CSV: who, when, which campaign. Never edited."""

    list_display = ("downloaded_at", "username", "campaign_name", "via", "contacts", "file_name")
    list_filter = (("via", ChoicesDropdownFilter),)
    list_filter_submit = True
    search_fields = ("username", "campaign_name")
    date_hierarchy = "downloaded_at"

    def has_delete_permission(self, request, obj=None):
        return False


from . import sms_admin  # noqa: E402,F401 (the SMS side registers its admin)
