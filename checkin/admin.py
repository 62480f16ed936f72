from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter

from portal.admin import ActionsWithoutSelectionMixin, SecretFieldsMixin, queue_from_admin, runs_link, secret_status

from .models import CheckinSession, CheckinSettings, CheckoutUser, SessionRefresh


@admin.register(CheckinSettings)
class CheckinSettingsAdmin(SecretFieldsMixin, ModelAdmin):
    # Tabs: the key, the refresh cycle, and what the portal saw (the page was one long form).
    fieldsets = [
        ("CheckOut", {"classes": ["tab"], "fields": ["checkout_api_key", "connected", "connection_checked_at"]}),
        ("Refresh cycle", {"classes": ["tab"], "fields": ["cycle_min_hours", "cycle_max_hours", "max_gap_minutes",
                                                          "next_cycle_at"]}),
        ("Runs and schedules", {"classes": ["tab"], "fields": ["runs", "schedules"]}),
    ]
    readonly_fields = ("connected", "connection_checked_at", "runs", "schedules")
    list_display = ("__str__", "api_key_status", "connected", "next_cycle_at")

    def has_add_permission(self, request):
        # one row at most, and only for who may add it
        return super().has_add_permission(request) and not CheckinSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # One row: go straight to it.
        settings_row = CheckinSettings.load()
        return redirect(reverse("admin:checkin_checkinsettings_change", args=[settings_row.pk]))

    @admin.display(description="CheckOut API key")
    def api_key_status(self, obj):
        return secret_status(obj.checkout_api_key)

    @admin.display(description="runs")
    def runs(self, obj):
        return runs_link("checkin", label="all check-in runs")

    @admin.display(description="schedules")
    def schedules(self, obj):
        url = reverse("admin:django_celery_beat_periodictask_changelist") + "?q=checkin."
        return format_html('<a href="{}">fetch users / refresh tick (beat)</a>', url)


def _queue_refreshes(modeladmin, request, emails):
    """One refresh run per user; each says queued, already queued as run #N, or
    that the queue is unreachable."""
    emails = list(emails)
    for email in emails:
        queue_from_admin(request, "checkin", "refresh_session", label=f"Refresh {email}", email=email)
    if not emails:
        modeladmin.message_user(request, "None of the selected users has a session with a cookie.", messages.WARNING)


class SessionRefreshInline(TabularInline):
    model = SessionRefresh
    fields = ("created", "result", "message", "changed_rows", "logged_upstream", "run_link")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-created", "-pk")
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("run")

    @admin.display(description="run")
    def run_link(self, obj):
        if obj.run_id is None:
            return "-"
        url = reverse("admin:portal_syncrun_change", args=[obj.run_id])
        return format_html('<a href="{}">#{} ({})</a>', url, obj.run_id, obj.run.trigger)


@admin.register(CheckoutUser)
class CheckoutUserAdmin(ActionsWithoutSelectionMixin, ModelAdmin):
    list_display = ("email", "opted_in", "checkin_report", "checkin_report_time", "session_link", "last_fetched")
    list_filter = ("opted_in", ("checkin_report", ChoicesDropdownFilter))
    search_fields = ("email",)
    readonly_fields = ("email", "opted_in", "checkin_report", "checkin_report_time", "sync", "first_seen",
                       "last_fetched", "session_link")
    actions = ["refresh_session", "fetch_users_now"]
    # Actions that need no selection (the list is empty before the first fetch).
    actions_without_selection = ("fetch_users_now",)

    def has_add_permission(self, request):
        return False  # users come from CheckOut

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("session")

    @admin.display(description="session")
    def session_link(self, obj):
        session = getattr(obj, "session", None)
        if session is None:
            return "-"
        url = reverse("admin:checkin_checkinsession_change", args=[session.pk])
        return format_html('<a href="{}">{}</a>', url, session.last_result or "never refreshed")

    @admin.action(description="Refresh session", permissions=["change"])
    def refresh_session(self, request, queryset):
        emails = CheckinSession.objects.filter(user__in=queryset, user__opted_in=True).exclude(cookie="")
        _queue_refreshes(self, request, emails.values_list("user__email", flat=True))

    @admin.action(description="Fetch users now (no selection needed)", permissions=["change"])
    def fetch_users_now(self, request, queryset):
        queue_from_admin(request, "checkin", "fetch_users")


@admin.register(CheckinSession)
class CheckinSessionAdmin(ModelAdmin):
    # The cookie is never shown: only whether one is stored.
    list_display = ("user", "cookie_status", "last_result", "last_refreshed_at", "next_refresh_at")
    list_filter = (("last_result", ChoicesDropdownFilter), "user__opted_in")
    search_fields = ("user__email",)
    fields = ("user", "cookie_status", "last_result", "last_message", "last_refreshed_at", "next_refresh_at", "runs")
    readonly_fields = ("user", "cookie_status", "last_result", "last_message", "last_refreshed_at", "runs")
    inlines = [SessionRefreshInline]
    actions = ["refresh_session"]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description="cookie")
    def cookie_status(self, obj):
        return secret_status(obj.cookie)

    @admin.display(description="runs")
    def runs(self, obj):
        return runs_link("checkin", "refresh_session", label="refresh runs")

    @admin.action(description="Refresh session", permissions=["change"])
    def refresh_session(self, request, queryset):
        eligible = queryset.filter(user__opted_in=True).exclude(cookie="")
        _queue_refreshes(self, request, eligible.values_list("user__email", flat=True))
