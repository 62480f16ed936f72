from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.shortcuts import redirect
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import (
    ChoicesDropdownFilter,
    RelatedDropdownFilter,
)
from unfold.decorators import action, display
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminSplitDateTimeWidget

from portal.admin_filters import LocalRangeDateTimeFilter, ValuesDropdownFilter
from portal.admin import ActionsWithoutSelectionMixin, SecretFieldsMixin, queue_from_admin, runs_link, secret_status
from portal.admin_lists import BigTableAdminMixin
from portal.charts import DateRange

from . import dashboard, mapping
from .models import Camera, CameraMapping, HelixEventType, HelixOutbox, HelixRoutingRule, Item, PointOfSale, SalesSettings, Store, SyncCursor, Transaction


def action_form(modeladmin, request, queryset, form, *, title, action_name, submit, intro):
    """The page of an action that asks for more (a range, an event type) before it acts."""
    context = {**modeladmin.admin_site.each_context(request), "title": title, "form": form, "queryset": queryset,
               "opts": modeladmin.model._meta, "action": action_name, "submit_label": submit, "intro": intro}
    return TemplateResponse(request, "admin/sales/action_form.html", context)


@admin.register(SalesSettings)
class SalesSettingsAdmin(SecretFieldsMixin, ModelAdmin):
    list_display = ("__str__", "jdsports_key", "verkada_key", "verkada_key_check", "verkada_requests_per_minute",
                    "posting_concurrency", "runs")
    readonly_fields = ("verkada_key_check",)
    # One tab per upstream: the page was a long scroll of three unrelated sections.
    fieldsets = [
        ("JD Sports", {"classes": ["tab"], "fields": ["jdsports_api_key", "initial_lookback_hours", "settle_seconds",
                                                      "lookback_hours", "backfill_max_days"]}),
        ("Verkada", {"classes": ["tab"], "fields": ["verkada_api_key", "verkada_key_check", "verkada_requests_per_minute",
                                                    "verkada_rate_headroom_percent", "posting_concurrency",
                                                    "footage_rate_share_percent"]}),
        ("Helix reconciliation", {"classes": ["tab"], "fields": ["reconcile_delay_seconds", "reconcile_window_hours"]}),
    ]

    @admin.display(description="Verkada key check")
    def verkada_key_check(self, obj):
        if obj.verkada_key_problem:
            when = f" ({obj.verkada_key_problem_at:%Y-%m-%d %H:%M} UTC)" if obj.verkada_key_problem_at else ""
            return format_html('<b style="color:#c62828">{}</b>{}', obj.verkada_key_problem, when)
        return "no problem seen" if obj.verkada_api_key else "not set"

    def has_add_permission(self, request):
        # one row at most, and only for who may add it
        return super().has_add_permission(request) and not SalesSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="JD Sports key")
    def jdsports_key(self, obj):
        return secret_status(obj.jdsports_api_key)

    @admin.display(description="Verkada key")
    def verkada_key(self, obj):
        return secret_status(obj.verkada_api_key)

    @admin.display(description="runs")
    def runs(self, obj):
        return runs_link("sales")


@admin.register(Store)
class StoreAdmin(ModelAdmin):
    list_display = ("store_id", "name", "time_zone", "address", "phone", "email", "updated")
    list_filter = (("time_zone", ValuesDropdownFilter),)
    search_fields = ("name", "store_id", "address")
    actions = ["retime_store_sales"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "time_zone" in form.changed_data:
            # Its tills' local clock times mean other instants now: read them again (and
            # move their Helix events) in a run, queued once this save commits.
            queue_from_admin(request, "sales", "retime_store_sales", store_id=obj.store_id)

    @admin.action(description="Read the selected stores' sales again in their time zones", permissions=["change"])
    def retime_store_sales(self, request, queryset):
        for store_id in queryset.values_list("store_id", flat=True):
            queue_from_admin(request, "sales", "retime_store_sales", store_id=store_id)


@admin.register(PointOfSale)
class PointOfSaleAdmin(ModelAdmin):
    list_display = ("pos_id", "name", "store", "camera_id", "updated")
    list_filter = (("store", RelatedDropdownFilter),)
    search_fields = ("name", "pos_id")


@admin.register(Camera)
class CameraAdmin(ModelAdmin):
    list_display = ("camera_id", "name", "location", "status", "model", "pos")
    list_filter = (("status", ValuesDropdownFilter), ("pos__store", RelatedDropdownFilter))
    search_fields = ("camera_id", "name")


@admin.register(CameraMapping)
class CameraMappingAdmin(ActionsWithoutSelectionMixin, ModelAdmin):
    list_display = ("jd_camera_id", "jd_camera_name", "verkada_camera_id", "verkada_name", "source", "updated")
    list_filter = (("source", ChoicesDropdownFilter),)
    search_fields = ("jd_camera_id", "verkada_camera_id", "verkada_name")
    readonly_fields = ("source", "updated")
    actions = ["prefill_camera_mapping"]
    actions_without_selection = ("prefill_camera_mapping",)

    def save_model(self, request, obj, form, change):
        from .services.cameras import follow_mapping

        # Edited by a person: the prefill leaves the row alone from now on.
        obj.source = CameraMapping.Source.MANUAL
        before = CameraMapping.objects.filter(pk=obj.pk).values_list("jd_camera_id", flat=True).first() if change else None
        super().save_model(request, obj, form, change)
        # Sales not posted yet go to the new camera when posted; posted events move there (next posting run).
        self._followed(request, follow_mapping({obj.jd_camera_id, before}))

    def delete_model(self, request, obj):
        from .services.cameras import follow_mapping

        super().delete_model(request, obj)
        self._followed(request, follow_mapping([obj.jd_camera_id]))

    def delete_queryset(self, request, queryset):
        from .services.cameras import follow_mapping

        cameras = list(queryset.values_list("jd_camera_id", flat=True))
        super().delete_queryset(request, queryset)
        self._followed(request, follow_mapping(cameras))

    def _followed(self, request, done):
        if any(done.values()):
            self.message_user(request, f"{done['waiting']} Helix event(s) not posted yet go to the mapped camera when "
                                       f"posted; {done['to_move']} posted event(s) move at the next posting run. A sale "
                                       "whose camera has no mapping now is set aside when the posting reaches it.")

    @admin.display(description="JD camera")
    def jd_camera_name(self, obj):
        camera = Camera.objects.filter(camera_id=obj.jd_camera_id).first()
        return camera.name if camera else "—"

    @admin.action(description="Prefill camera mapping from Verkada's devices", permissions=["change"])
    def prefill_camera_mapping(self, request, queryset):
        queue_from_admin(request, "sales", "prefill_camera_mapping")


@admin.register(Item)
class ItemAdmin(ModelAdmin):
    list_display = ("item_id", "name", "price", "quantity")
    search_fields = ("name", "item_id")


@admin.register(Transaction)
class TransactionAdmin(BigTableAdminMixin, ModelAdmin):
    list_display = ("transaction_id", "transaction_date", "amount", "item", "store", "camera_ref", "helix_status", "links")
    # a date filter, not date_hierarchy: its DISTINCT over every date costs a quarter-second at 1M rows
    list_filter = (("store", RelatedDropdownFilter), ("helix__status", ChoicesDropdownFilter),
                   ("transaction_date", LocalRangeDateTimeFilter))
    list_filter_submit = True  # the range filter needs its Apply button
    search_fields = ("transaction_id",)
    exact_search_fields = ("transaction_id",)  # unique, so indexed
    list_select_related = ("item", "store", "helix")
    readonly_fields = [f.name for f in Transaction._meta.fields]
    actions = ["fetch_footage_links"]
    actions_list = ["open_dashboard"]

    def has_add_permission(self, request):
        return False

    # unfold's coloured labels: posted green, refused red, waiting blue, too old / voided grey
    @display(description="Helix", ordering="helix__status", label={
        "posted": "success", "failed": "danger", "pending": "info", "posting": "info", "expired": "warning"})
    def helix_status(self, obj):
        helix = getattr(obj, "helix", None)
        return helix.status if helix is not None else "—"

    @admin.display(description="footage")
    def links(self, obj):
        if not obj.footage_url:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener">footage</a> · <a href="{}" target="_blank" rel="noopener">thumbnail</a>',
                           obj.footage_url, obj.thumbnail_url)

    @admin.action(description="Fetch footage links (in the background)", permissions=["change"])
    def fetch_footage_links(self, request, queryset):
        queue_from_admin(request, "sales", "fetch_footage_links", ids=list(queryset.values_list("pk", flat=True)))

    @action(description="Dashboard", icon="monitoring", url_path="open-dashboard", permissions=["view"])
    def open_dashboard(self, request):
        return redirect("admin:sales_dashboard")

    def get_urls(self):
        return [
            path("dashboard/", self.admin_site.admin_view(self.dashboard_view), name="sales_dashboard"),
        ] + super().get_urls()

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        # The range ends on the latest local day a store has reached (see latest_local_day).
        date_range = DateRange.from_request(request, default_days=14, today=dashboard.latest_local_day())
        context = {
            **self.admin_site.each_context(request),
            "title": "Sales dashboard",
            "range": date_range,
            "sales_charts": dashboard.sales_charts(date_range),
            "backlog": dashboard.helix_backlog(),
            "freshness": dashboard.freshness(),
        }
        return TemplateResponse(request, "admin/sales/dashboard.html", context)


class BackfillForm(forms.Form):
    start = forms.SplitDateTimeField(help_text="UTC, inclusive", widget=UnfoldAdminSplitDateTimeWidget)
    end = forms.SplitDateTimeField(help_text="UTC, exclusive", widget=UnfoldAdminSplitDateTimeWidget)

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise forms.ValidationError("The start must be before the end.")
        cap = SalesSettings.load().backfill_max_days
        if data.get("start") and data.get("end") and (data["end"] - data["start"]).total_seconds() > cap * 86400:
            raise forms.ValidationError(f"A backfill may cover at most {cap} days (Sales settings); split the range.")
        return data


@admin.register(SyncCursor)
class SyncCursorAdmin(ActionsWithoutSelectionMixin, ModelAdmin):
    list_display = ("source", "watermark", "updated", "runs")
    readonly_fields = ("source", "updated")
    actions = ["sync_sales", "backfill_sales"]
    # The list is empty until the first sync: both must work with nothing selected.
    actions_without_selection = ("sync_sales", "backfill_sales")

    @admin.display(description="runs")
    def runs(self, obj):
        return runs_link("sales", "sync_sales")

    @admin.action(description="Sync sales now (in the background)", permissions=["change"])
    def sync_sales(self, request, queryset):
        queue_from_admin(request, "sales", "sync_sales")

    @admin.action(description="Backfill a date range…", permissions=["change"])
    def backfill_sales(self, request, queryset):
        form = BackfillForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            start, end = form.cleaned_data["start"], form.cleaned_data["end"]
            queue_from_admin(request, "sales", "sync_sales", label=f"Backfill {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}",
                             start=start.isoformat(), end=end.isoformat())
            return None
        return action_form(self, request, queryset, form, title="Backfill sales", action_name="backfill_sales",
                           submit="Queue the backfill",
                           intro="Pulls every sale in the range again and stores what is missing (nothing is "
                                 "duplicated). The hourly sync's watermark is left alone.")


class RetargetForm(forms.Form):
    event_type = forms.ModelChoiceField(queryset=HelixEventType.objects.order_by("name"), widget=UnfoldAdminSelectWidget,
                                        help_text="Rows with no event in Verkada yet are posted as this type.")


class HelixEventTypeForm(forms.ModelForm):
    class Meta:
        model = HelixEventType
        fields = ["name", "active", "is_default", "event_schema", "attribute_mapping"]
        help_texts = {
            "attribute_mapping": "Attribute → sale field. Sale fields: " + ", ".join(mapping.SALE_FIELDS),
        }

    def clean(self):
        data = super().clean()
        problems = self.instance.problems(schema=data.get("event_schema"), attribute_mapping=data.get("attribute_mapping"),
                                          active=data.get("active"), is_default=data.get("is_default"))
        if problems:
            raise forms.ValidationError([error for errors in problems.values() for error in errors])
        self.instance.note_rename(data.get("name"))
        return data


@admin.register(HelixEventType)
class HelixEventTypeAdmin(ModelAdmin):
    form = HelixEventTypeForm
    list_display = ("name", "active", "is_default", "rules", "event_type_uid", "in_sync")
    list_filter = ("active", "is_default")
    readonly_fields = ("event_type_uid",)
    fieldsets = [
        (None, {"classes": ["tab"], "fields": ["name", "active", "is_default", "event_type_uid"]}),
        ("Schema and attributes", {"classes": ["tab"], "fields": ["event_schema", "attribute_mapping"]}),
    ]

    @admin.display(description="routing rules")
    def rules(self, obj):
        return ", ".join(rule.name for rule in obj.routing_rules.all()) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("routing_rules")

    @admin.display(boolean=True, description="schema in sync")
    def in_sync(self, obj):
        return bool(obj.event_type_uid) and obj.synced_schema == obj.event_schema


@admin.register(HelixRoutingRule)
class HelixRoutingRuleAdmin(ModelAdmin):
    """Which event type each sale is posted as: the first enabled rule that matches, lowest
    priority first; then the default type (Helix event types); a void no rule takes gets no event."""

    list_display = ("priority", "name", "match", "amount_at_least", "event_type", "enabled", "updated")
    list_display_links = ("name",)
    list_filter = ("enabled", ("match", ChoicesDropdownFilter), ("event_type", RelatedDropdownFilter))
    search_fields = ("name",)
    fields = ("name", "priority", "match", "amount_at_least", "event_type", "enabled")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "event_type":
            kwargs["queryset"] = HelixEventType.objects.order_by("name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(HelixOutbox)
class HelixOutboxAdmin(ModelAdmin):
    list_display = ("transaction", "camera_id", "time_ms", "status", "route", "pending_change", "attempts", "next_attempt_at",
                    "check_at", "posted_at", "last_error_short")
    list_filter = (("status", ChoicesDropdownFilter), ("pending_change", ChoicesDropdownFilter))
    search_fields = ("transaction__transaction_id", "camera_id")
    readonly_fields = [f.name for f in HelixOutbox._meta.fields]
    list_select_related = ("transaction",)
    actions = ["retry", "retarget"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Re-target to another event type…", permissions=["change"])
    def retarget(self, request, queryset):
        from portal.http import UpstreamError
        from portal.runs import OperationFailed

        from .services.helix import retarget_outbox

        form = RetargetForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            try:
                moved, left = retarget_outbox(queryset, form.cleaned_data["event_type"])
            except (UpstreamError, OperationFailed) as exc:
                self.message_user(request, f"Nothing re-targeted: {exc}", messages.ERROR)
                return None
            self.message_user(request, f"{moved} event(s) will be posted as {form.cleaned_data['event_type']}; "
                                       f"{left} left as they are (in flight, another change waiting, already that type, "
                                       "expired or voided). Posted events move at the next posting run.")
            if moved:
                queue_from_admin(request, "sales", "post_helix_events")
            return None
        return action_form(self, request, queryset, form, title="Re-target Helix events", action_name="retarget",
                           submit="Re-target",
                           intro="The selected events that are not in Verkada yet (waiting or refused) are posted as "
                                 "the chosen type, with its attributes. Posted, in-flight, expired and voided ones are "
                                 "left as they are.")

    @admin.display(description="last error")
    def last_error_short(self, obj):
        return obj.last_error[:80]

    @admin.action(description="Retry posting now", permissions=["change"])
    def retry(self, request, queryset):
        count = HelixOutbox.retry_now(queryset)
        if count:
            self.message_user(request, f"{count} event(s) due again.")
            queue_from_admin(request, "sales", "post_helix_events")
        else:
            self.message_user(request, "Nothing to retry: posted, expired and in-flight events are left as they are.", messages.WARNING)
