"""The marketplace's charts page and the weekly report's settings in the admin.

The charts draw what the /api/marketplace/reports/ endpoints return (the page
embeds the same serialized data, and each chart names its endpoint)."""

from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget, UnfoldBooleanWidget
from unfold.admin import ModelAdmin
from unfold.decorators import action

from portal.admin import queue_from_admin, runs_link
from portal.charts import DateRange, chart

from . import reports
from .api.reports import daily_sales_data, shop_sales_data, top_products_data, traffic_data
from .conf import report_time_zone
from .models import Platform, ReportSettings

DEFAULT_DAYS = 30


class ReportFilterForm(forms.Form):
    """What the charts show besides the days (those are the shared DateRange choice)."""

    # the theme's own widgets: its stylesheet is prebuilt, so classes of our own would not be styled
    platform = forms.ChoiceField(choices=[("", "All platforms"), *Platform.choices], required=False,
                                 widget=UnfoldAdminSelectWidget)
    shop_id = forms.CharField(required=False, max_length=200, label="Shop id", widget=UnfoldAdminTextInputWidget)
    include_mock = forms.BooleanField(required=False, label="Include mock rows", widget=UnfoldBooleanWidget)
    include_cancelled = forms.BooleanField(required=False, label="Include cancelled/returned", widget=UnfoldBooleanWidget)


def local_today():
    return timezone.now().astimezone(report_time_zone()).date()


def _shop_label(row):
    return f"{row['platform']} · {row.get('shop_name') or row['shop_id']}"


def per_day(rows, days, measure, *, scale=1):
    """{platform · shop: [measure per day]} from report rows already summed per day and shop
    by the database (a few rows per day, never the order lines); days without a row are 0."""
    values = {}
    for row in rows:
        value = row[measure]
        values.setdefault(_shop_label(row), {})[str(row["date"])] = float(value) * scale if value is not None else 0
    return {label: [by_day.get(day.isoformat(), 0) for day in days] for label, by_day in values.items()}


def sales_charts(span, daily, top, traffic, endpoints):
    """The charts page's charts (portal.charts contexts), each naming the endpoint it draws."""
    days = span.days
    labels = [day.isoformat() for day in days]
    found = [
        chart("orders-per-day", "Orders per day per platform and shop", labels,
              per_day(daily["results"], days, "orders"), kind="line"),
        chart("revenue-per-day", "Revenue per day per platform and shop", labels,
              per_day(daily["results"], days, "revenue"), kind="line"),
        chart("top-products", "Top products by revenue",
              [f"{r['platform']} · {r['shop_id']} · {r['sku']} {r['name']}" for r in top["results"]],
              {"Revenue": [r["revenue"] for r in top["results"]]}),
        chart("visitors-per-day", "Visitors per day per platform and shop", labels,
              per_day(traffic["results"], days, "visitors"), kind="line"),
        chart("conversion-per-day", "Conversion per day per platform and shop (orders per visitor)", labels,
              per_day(traffic["results"], days, "conversion", scale=100), kind="line", unit="%"),
    ]
    sources = {"orders-per-day": "daily", "revenue-per-day": "daily", "top-products": "top",
               "visitors-per-day": "traffic", "conversion-per-day": "traffic"}
    for item in found:
        item["endpoint"] = endpoints[sources[item["name"]]]
    return found


@admin.register(ReportSettings)
class ReportSettingsAdmin(ModelAdmin):
    list_display = ("__str__", "enabled", "weekday", "recipient_count", "include_mock", "last_sent_week", "runs",
                    "charts")
    fields = ("enabled", "weekday", "recipients", "include_mock", "last_sent_week", "last_sent_at", "retry_week",
              "retry_at", "failed_sends")
    readonly_fields = ("last_sent_week", "last_sent_at", "retry_week", "retry_at", "failed_sends")
    filter_horizontal = ("recipients",)
    actions = ["send_now"]
    actions_list = ["charts_button"]  # the sales charts, a button above the settings

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

    # A permission method, not "marketplace.view_factorderline": unfold's system check looks a
    # dotted permission up in the database, which breaks `migrate` on a fresh one.
    @action(description="Sales charts", url_path="charts-button", icon="monitoring", permissions=["see_charts"])
    def charts_button(self, request):
        return redirect("admin:marketplace_reports")

    def has_see_charts_permission(self, request, obj=None):
        return request.user.has_perm("marketplace.view_factorderline")

    @admin.action(description="Send the weekly report now (last full week)")
    def send_now(self, request, queryset):
        queue_from_admin(request, "marketplace", "send_weekly_report")

    def get_urls(self):
        return [path("charts/", self.admin_site.admin_view(self.charts_view), name="marketplace_reports")] \
            + super().get_urls()

    def charts_view(self, request):
        if not request.user.has_perm("marketplace.view_factorderline"):
            raise PermissionDenied
        span = DateRange.from_request(request, default_days=DEFAULT_DAYS, today=local_today())
        form = ReportFilterForm(request.GET or None)
        chosen = form.cleaned_data if form.is_valid() else {}
        params = {"date_from": span.start, "date_to": span.end,
                  **{k: v for k, v in chosen.items() if v not in (None, "", False)}}
        filters = reports.ReportFilter.from_query(params)
        query = urlencode({k: v.isoformat() if hasattr(v, "isoformat") else "true" if v is True else v
                           for k, v in params.items()})
        daily, top, traffic = daily_sales_data(filters), top_products_data(filters), traffic_data(filters)
        endpoints = {name: f"{reverse(url)}?{query}" for name, url in (
            ("daily", "marketplace-report-daily-sales"), ("top", "marketplace-report-top-products"),
            ("shops", "marketplace-report-shop-sales"), ("traffic", "marketplace-report-traffic"))}
        range_params = {k: v for k, v in request.GET.items() if k in ("days", "start", "end")}
        context = {
            **self.admin_site.each_context(request), "title": "Marketplace sales charts",
            "opts": ReportSettings._meta, "form": form, "range": span, "range_params": range_params,
            "extra_params": {k: v for k, v in request.GET.items() if k in form.fields and v},
            "daily": daily, "shops": shop_sales_data(filters), "traffic": traffic, "endpoints": endpoints,
            "charts": sales_charts(span, daily, top, traffic, endpoints),
        }
        return TemplateResponse(request, "admin/marketplace/reports.html", context)
