"""The warehouse's tables in the admin, read-only: facts leave only through a
purge (mock rows) or a re-sync, and the big ones are listed without a full count."""

from django.contrib import admin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateFilter, RelatedDropdownFilter

from portal.admin_filters import ValuesDropdownFilter
from portal.admin import ActionsWithoutSelectionMixin, queue_from_admin
from portal.admin_lists import BigTableAdminMixin

from .models import (DimCustomer, DimDate, DimProduct, DimShop, DimStatus, FactActivity, FactOrder, FactOrderLine,
                     FactTraffic)


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ExactOrderSearchMixin:
    """Search by exact order id through the natural-key index, which starts
    with the shop: every shop is named (there are few)."""

    search_fields = ("order_id",)
    search_help_text = "Exact order id"

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        shops = list(DimShop.objects.values_list("pk", flat=True))
        return queryset.filter(shop_id__in=shops, order_id=term), False


class PublishedFactsMixin:
    """Not the rows of a CSV upload still loading (services/csv_merge.py)."""

    def get_queryset(self, request):
        return super().get_queryset(request).published()


@admin.register(FactOrderLine)
class FactOrderLineAdmin(PublishedFactsMixin, ExactOrderSearchMixin, BigTableAdminMixin, ActionsWithoutSelectionMixin,
                         ReadOnlyAdmin):
    list_display = ("platform", "order_id", "line_id", "ordered_at", "shop", "product", "quantity", "paid_price",
                    "currency", "status", "source", "is_mock")
    # a from/to range on the order's local day (the date dimension), not date_hierarchy: its
    # DISTINCT over every date costs a quarter-second at 1M rows
    list_filter = (("platform", ChoicesDropdownFilter), ("date__date", RangeDateFilter),
                   ("source", ChoicesDropdownFilter), "is_mock", ("status__group", ChoicesDropdownFilter),
                   ("shop", RelatedDropdownFilter))
    list_filter_submit = True
    list_select_related = ("shop", "product", "status")
    actions = ["generate_mock_orders", "purge_mock_orders"]
    actions_without_selection = ("generate_mock_orders", "purge_mock_orders")

    def has_delete_permission(self, request, obj=None):
        return False  # facts leave only through purge (mock) or a re-sync

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_generate_permission(self, request):
        return request.user.has_perm("marketplace.add_factorderline") or request.user.is_superuser

    @admin.action(description="Generate 200 mock orders (no selection needed)", permissions=["generate"])
    def generate_mock_orders(self, request, queryset):
        queue_from_admin(request, "marketplace", "generate_mock_orders", label="Mock data generation", orders=200)

    @admin.action(description="Delete all mock orders (no selection needed)", permissions=["generate"])
    def purge_mock_orders(self, request, queryset):
        queue_from_admin(request, "marketplace", "generate_mock_orders", label="Mock data removal", purge=True)


@admin.register(FactOrder)
class FactOrderAdmin(PublishedFactsMixin, ExactOrderSearchMixin, BigTableAdminMixin, ReadOnlyAdmin):
    """Order-level money (shipping fee, vouchers, totals), one row per order."""

    list_display = ("platform", "order_id", "ordered_at", "shop", "items_total", "shipping_fee", "voucher_total",
                    "total_amount", "currency", "source", "is_mock")
    list_filter = (("platform", ChoicesDropdownFilter), ("date__date", RangeDateFilter),
                   ("source", ChoicesDropdownFilter), "is_mock", ("shop", RelatedDropdownFilter))
    list_filter_submit = True
    list_select_related = ("shop",)


@admin.register(DimShop)
class DimShopAdmin(ReadOnlyAdmin):
    list_display = ("platform", "shop_id", "name", "is_mock")
    list_filter = (("platform", ChoicesDropdownFilter), "is_mock")
    list_filter_submit = True


@admin.register(DimProduct)
class DimProductAdmin(ReadOnlyAdmin):
    list_display = ("platform", "shop", "sku", "name", "category", "price", "currency", "status", "stock",
                    "catalogue_synced_at")
    list_filter = (("platform", ChoicesDropdownFilter), ("shop", RelatedDropdownFilter), ("status", ValuesDropdownFilter))
    list_filter_submit = True
    search_fields = ("sku", "name")


@admin.register(DimCustomer)
class DimCustomerAdmin(ReadOnlyAdmin):
    list_display = ("platform", "name", "city", "region", "country")
    list_filter = (("platform", ChoicesDropdownFilter), ("country", ValuesDropdownFilter), ("region", ValuesDropdownFilter))
    list_filter_submit = True
    search_fields = ("name", "city")


@admin.register(DimStatus)
class DimStatusAdmin(ReadOnlyAdmin):
    list_display = ("platform", "code", "group")
    list_filter = (("platform", ChoicesDropdownFilter), ("group", ChoicesDropdownFilter))
    list_filter_submit = True


@admin.register(DimDate)
class DimDateAdmin(ReadOnlyAdmin):
    list_display = ("date", "year", "quarter", "month", "weekday", "iso_week")
    date_hierarchy = "date"


@admin.register(FactTraffic)
class FactTrafficAdmin(ReadOnlyAdmin):
    list_display = ("date", "shop", "product", "visitors", "page_views", "add_to_cart", "orders", "source", "is_mock")
    list_filter = (("shop__platform", ChoicesDropdownFilter), "is_mock", ("shop", RelatedDropdownFilter))
    list_filter_submit = True
    list_select_related = ("date", "shop", "product")


@admin.register(FactActivity)
class FactActivityAdmin(ReadOnlyAdmin):
    list_display = ("date", "shop", "event", "count", "source", "is_mock")
    list_filter = (("shop__platform", ChoicesDropdownFilter), ("event", ChoicesDropdownFilter), "is_mock", ("shop", RelatedDropdownFilter))
    list_filter_submit = True
    list_select_related = ("date", "shop")
