"""Marketplace admin: connections with their OAuth flow and token status (never
the tokens) and CSV upload; the warehouse tables (read-only, mock data) are in
admin_warehouse.py, the charts page and report settings in admin_reports.py."""

import hmac

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter
from unfold.decorators import action

from portal.admin import SecretFieldsMixin, queue_from_admin, runs_link, secret_status
from portal.http import UpstreamError
from portal.models import SyncRun

from . import services
from .services.csv_shops import UnknownShop, upload_shop
from .models import Connection, CsvUpload


def _run_link(record):
    url = reverse("admin:portal_syncrun_change", args=[record.pk])
    return format_html('<a href="{}">run #{}</a>', url, record.pk)


@admin.register(Connection)
class ConnectionAdmin(SecretFieldsMixin, ModelAdmin):
    list_display = ("name", "platform", "shop_id", "status", "token_state", "refresh_due_at", "orders_cursor",
                    "connect_link")
    list_filter = (("platform", ChoicesDropdownFilter), ("status", ChoicesDropdownFilter), "sync_enabled")
    list_filter_submit = True
    search_fields = ("name", "shop_id", "shop_name")
    fieldsets = (
        ("App", {"classes": ["tab"], "fields": ("platform", "name", "app_key", "app_secret", "country",
                                                "sync_enabled")}),
        ("Connection", {"classes": ["tab"], "fields": (
            "connect_link", "status", "shop_id", "shop_name", "token_state", "access_expires_at", "refresh_expires_at",
            "refresh_due_at", "token_refreshed_at", "last_error")}),
        ("Orders", {"classes": ["tab"], "fields": ("orders_cursor", "orders_synced_at", "products_synced_at",
                                                   "runs")}),
    )
    readonly_fields = ("connect_link", "status", "shop_id", "shop_name", "token_state", "access_expires_at",
                       "refresh_expires_at", "refresh_due_at", "token_refreshed_at", "last_error", "orders_synced_at",
                       "products_synced_at", "runs")
    actions = ["sync_orders", "sync_products", "refresh_token"]
    actions_detail = ["connect_button"]  # the OAuth flow as a button on a saved connection
    # The fieldsets leave the tokens and the pending OAuth code out of every form.
    exclude = ("access_token", "refresh_token", "oauth_code", "oauth_state", "oauth_shop_id")

    def get_secret_fields(self):
        # Only the app secret is ever typed in; the tokens are not even rendered.
        return ["app_secret"]

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Write only what the form edits: a token refresh may have rotated the
        # tokens since this page was opened, and a full save would put back the
        # spent ones (Shopee's refresh tokens are single-use).
        fields = [name for name in form.cleaned_data if name != "app_secret" or form.cleaned_data[name]]
        obj.save(update_fields=[*fields, "updated"])

    @admin.display(description="token")
    def token_state(self, obj):
        return obj.token_status()

    @admin.display(description="app secret")
    def app_secret_status(self, obj):
        return secret_status(obj.app_secret)

    @admin.display(description="connect")
    def connect_link(self, obj):
        if not obj.pk:
            return "Save first, then connect."
        url = reverse("admin:marketplace_connection_connect", args=[obj.pk])
        label = "Reconnect" if obj.has_tokens else "Connect"
        return format_html('<a class="text-primary-600 font-medium" href="{}">{}</a>', url, label)

    @admin.display(description="runs")
    def runs(self, obj):
        return runs_link("marketplace", "sync_orders", label="order sync runs")

    # --- OAuth ---------------------------------------------------------------------
    @action(description="Connect / reconnect", url_path="connect-button", icon="link", permissions=["change"])
    def connect_button(self, request, object_id):
        return redirect(reverse("admin:marketplace_connection_connect", args=[object_id]))

    def get_urls(self):
        own = [
            path("<int:pk>/connect/", self.admin_site.admin_view(self.connect_view),
                 name="marketplace_connection_connect"),
            path("oauth/<str:platform>/callback/", self.admin_site.admin_view(self.callback_view),
                 name="marketplace_oauth_callback"),
        ]
        return own + super().get_urls()

    def connect_view(self, request, pk):
        connection = get_object_or_404(Connection, pk=pk)
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        callback = request.build_absolute_uri(
            reverse("admin:marketplace_oauth_callback", args=[connection.platform]))
        try:
            url = services.authorization_url(connection, callback)
        except UpstreamError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect(reverse("admin:marketplace_connection_change", args=[pk]))
        return redirect(url)

    def callback_view(self, request, platform):
        state = request.GET.get("state", "")
        connection = Connection.objects.filter(platform=platform).exclude(oauth_state="").filter(
            oauth_state=state).first() if state else None
        if connection is None or not hmac.compare_digest(connection.oauth_state, state):
            self.message_user(request, "This authorisation link is unknown or was already used; use Connect again.",
                              messages.ERROR)
            return redirect(reverse("admin:marketplace_connection_changelist"))
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        change_url = reverse("admin:marketplace_connection_change", args=[connection.pk])
        code = request.GET.get("code", "")
        if not code:
            reason = request.GET.get("error", "no code")
            Connection.objects.filter(pk=connection.pk).update(oauth_state="")
            self.message_user(request, f"The seller did not authorise the app ({reason}).", messages.ERROR)
            return redirect(change_url)
        connection.oauth_code = code
        connection.oauth_shop_id = request.GET.get("shop_id", "")
        # Shopee's main-account grant redirects with main_account_id instead of shop_id.
        connection.oauth_main_account_id = request.GET.get("main_account_id", "")
        connection.save(update_fields=["oauth_code", "oauth_shop_id", "oauth_main_account_id", "updated"])
        record = services.connect_account(trigger=SyncRun.Trigger.ADMIN, user=request.user,
                                          connection_id=connection.pk)
        if record.status == SyncRun.Status.SUCCEEDED:
            connection.refresh_from_db()
            self.message_user(request, f"{connection} is connected (shop {connection.shop_id}).", messages.SUCCESS)
        else:
            self.message_user(request, format_html("Connecting failed ({}): {}", _run_link(record), record.error),
                              messages.ERROR)
        return redirect(change_url)

    # --- actions --------------------------------------------------------------------
    @admin.action(description="Sync orders now", permissions=["change"])
    def sync_orders(self, request, queryset):
        self._queue_for_connected(request, queryset, "sync_orders", "Sync orders of")

    def _queue_for_connected(self, request, queryset, operation, label):
        connected = queryset.filter(status=Connection.Status.CONNECTED)
        for connection in connected:
            queue_from_admin(request, "marketplace", operation, label=f"{label} {connection}",
                             connection_id=connection.pk)
        skipped = queryset.count() - connected.count()
        if skipped:
            self.message_user(request, f"{skipped} selected connection(s) are not connected and were left out.",
                              messages.WARNING)

    @admin.action(description="Sync products now", permissions=["change"])
    def sync_products(self, request, queryset):
        self._queue_for_connected(request, queryset, "sync_products", "Sync products of")

    @admin.action(description="Refresh token now", permissions=["change"])
    def refresh_token(self, request, queryset):
        for connection in queryset:
            if connection.has_tokens:
                queue_from_admin(request, "marketplace", "refresh_token", label=f"Refresh the token of {connection}",
                                 connection_id=connection.pk)


class CsvUploadForm(forms.ModelForm):
    file = forms.FileField(help_text="Order export or Seller Center report (CSV, UTF-8), any size. A background run checks every row "
                                     "(problems are listed with their line in the file) and, unless you only "
                                     "validate, loads the file all or nothing.")
    new_shop = forms.BooleanField(required=False, help_text="The shop is new (not connected, not in the "
                                                           "warehouse yet): create it.")
    validate_only = forms.BooleanField(required=False, help_text="Only check the file; load nothing.")

    class Meta:
        model = CsvUpload
        fields = ("kind", "platform", "shop")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].required = False  # left out: an order export, as before reports existed

    def clean(self):
        data = super().clean()
        if data.get("platform") and data.get("shop"):
            try:
                data["shop"] = upload_shop(data["platform"], data["shop"], data.get("new_shop", False))
            except UnknownShop as exc:
                self.add_error("shop", str(exc))
        return data


@admin.register(CsvUpload)
class CsvUploadAdmin(ModelAdmin):
    list_display = ("__str__", "kind", "platform", "shop", "mode", "status", "progress", "rows", "error_count",
                    "uploaded_by", "created")
    list_filter = (("status", ChoicesDropdownFilter), ("kind", ChoicesDropdownFilter),
                   ("platform", ChoicesDropdownFilter), ("mode", ChoicesDropdownFilter))
    list_filter_submit = True
    readonly_fields = ("kind", "platform", "shop", "filename", "size", "mode", "status", "progress", "rows_checked", "rows",
                       "error_count", "error_list", "import_run", "uploaded_by", "created")
    fields = readonly_fields
    actions = ["validate_again", "load_again", "undo_upload"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = CsvUploadForm
            kwargs["fields"] = ("kind", "platform", "shop", "new_shop", "file", "validate_only")
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("kind", "platform", "shop", "new_shop", "file", "validate_only") if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="run")
    def import_run(self, obj):
        return _run_link(obj.run) if obj.run_id else "-"

    @admin.display(description="progress")
    def progress(self, obj):
        run = obj.run
        if run is None or not run.progress_total:
            return "-"
        return f"{min(100, 100 * run.progress_done // run.progress_total)}% ({obj.rows_checked} rows checked)"

    @admin.display(description="errors")
    def error_list(self, obj):
        if not obj.errors:
            return "-"
        return format_html("<ul>{}</ul>", format_html("".join(f"<li>{{{i}}}</li>" for i in range(len(obj.errors))),
                                                      *obj.errors))

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data["file"]
        obj.filename, obj.size = upload.name[:255], upload.size
        obj.mode = CsvUpload.Mode.VALIDATE if form.cleaned_data.get("validate_only") else CsvUpload.Mode.LOAD
        obj.file = upload  # saved through the storage API, in chunks
        obj.uploaded_by = request.user
        super().save_model(request, obj, form, change)
        queue_from_admin(request, "marketplace", "import_orders_csv",
                         label=f"{'Validating' if obj.mode == CsvUpload.Mode.VALIDATE else 'Loading'} {obj.filename}",
                         upload_id=obj.pk)

    def response_add(self, request, obj, post_url_continue=None):
        return redirect(reverse("admin:marketplace_csvupload_change", args=[obj.pk]))

    def _queue(self, request, queryset, mode):
        for upload in queryset:
            CsvUpload.objects.filter(pk=upload.pk).update(mode=mode)
            queue_from_admin(request, "marketplace", "import_orders_csv", label=f"{mode.label}: {upload}",
                             upload_id=upload.pk)

    @admin.action(description="Validate again (load nothing)", permissions=["add"])
    def validate_again(self, request, queryset):
        self._queue(request, queryset, CsvUpload.Mode.VALIDATE)

    @admin.action(description="Validate and load", permissions=["add"])
    def load_again(self, request, queryset):
        self._queue(request, queryset, CsvUpload.Mode.LOAD)

    @admin.action(description="Undo: delete the rows it loaded", permissions=["add"])
    def undo_upload(self, request, queryset):
        for upload in queryset:
            queue_from_admin(request, "marketplace", "undo_csv_upload", label=f"Undo {upload}", upload_id=upload.pk)


from . import admin_reports  # noqa: E402,F401  (the charts page and report settings)
from . import admin_warehouse  # noqa: E402,F401  (the warehouse tables, read-only)
