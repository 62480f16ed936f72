"""The marketplace's charts page and the weekly report's settings in the admin.

The charts draw what the /api/marketplace/reports/ endpoints return (the page
embeds the same serialized data, and each chart names its endpoint)."""

from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from portal.admin import queue_from_admin, runs_link

from . import reports
from .api.reports import daily_sales_data, shop_sales_data, top_products_data, traffic_data
from .conf import report_time_zone
from .models import Platform, ReportSettings

DEFAULT_DAYS = 30


class ReportFilterForm(forms.Form):
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    platform = forms.ChoiceField(choices=[("", "All platforms"), *Platform.choices], required=False)
    shop_id = forms.CharField(required=False, max_length=200, label="Shop id")
    include_mock = forms.BooleanField(required=False, label="Include mock rows")
    include_cancelled = forms.BooleanField(required=False, label="Include cancelled/returned")

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data


def default_range():
    today = timezone.now().astimezone(report_time_zone()).date()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


@admin.register(ReportSettings)
class ReportSettingsAdmin(ModelAdmin):
    list_display = ("__str__", "enabled", "weekday", "recipient_count", "include_mock", "last_sent_week", "runs",
                    "charts")
    fields = ("enabled", "weekday", "recipients", "include_mock", "last_sent_week", "last_sent_at", "retry_week",
              "retry_at", "failed_sends")
    readonly_fields = ("last_sent_week", "last_sent_at", "retry_week", "retry_at", "failed_sends")
    filter_horizontal = ("recipients",)
    actions = ["send_now"]

    def has_add_permission(self, request):
        return not ReportSettings.objects.exists() and super().has_add_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="recipients")
    def recipient_count(self, obj):
        return obj.recipients.count()

    @admin.display(description="runs")
    def runs(self, obj):
        return runs_link("marketplace", "send_weekly_report")

    @admin.display(description="charts")
    def charts(self, obj):
        return format_html('<a href="{}">Sales charts</a>', reverse("admin:marketplace_reports"))

    @admin.action(description="Send the weekly report now (last full week)")
    def send_now(self, request, queryset):
        queue_from_admin(request, "marketplace", "send_weekly_report")

    def get_urls(self):
        return [path("charts/", self.admin_site.admin_view(self.charts_view), name="marketplace_reports")] \
            + super().get_urls()

    def charts_view(self, request):
        if not request.user.has_perm("marketplace.view_factorderline"):
            raise PermissionDenied
        start, end = default_range()
        form = ReportFilterForm(request.GET or {"date_from": start, "date_to": end})
        context = {**self.admin_site.each_context(request), "title": "Marketplace sales charts", "form": form}
        if form.is_valid():
            params = {k: v for k, v in form.cleaned_data.items() if v not in (None, "", False)}
            filters = reports.ReportFilter.from_query(params)
            query = urlencode({k: (v.isoformat() if hasattr(v, "isoformat") else str(v).lower() if v is True else v)
                               for k, v in params.items()})
            context.update({
                "daily": daily_sales_data(filters),
                "top": top_products_data(filters),
                "shops": shop_sales_data(filters),
                "traffic": traffic_data(filters),
                "traffic_url": f"{reverse('marketplace-report-traffic')}?{query}",
                "daily_url": f"{reverse('marketplace-report-daily-sales')}?{query}",
                "top_url": f"{reverse('marketplace-report-top-products')}?{query}",
                "shops_url": f"{reverse('marketplace-report-shop-sales')}?{query}",
            })
        return TemplateResponse(request, "admin/marketplace/reports.html", context)
