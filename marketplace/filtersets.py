import django_filters

from .models import DimStatus, FactOrderLine, Platform, Source


class OrderLineFilter(django_filters.FilterSet):
    platform = django_filters.ChoiceFilter(choices=Platform.choices)
    shop = django_filters.CharFilter(field_name="shop__shop_id", help_text="marketplace shop/seller id")
    order_id = django_filters.CharFilter()
    sku = django_filters.CharFilter(field_name="product__sku")
    status = django_filters.CharFilter(field_name="status__code", lookup_expr="iexact", help_text="marketplace status")
    status_group = django_filters.ChoiceFilter(field_name="status__group", choices=DimStatus.Group.choices)
    region = django_filters.CharFilter(field_name="customer__region", lookup_expr="iexact")
    source = django_filters.ChoiceFilter(choices=Source.choices)
    is_mock = django_filters.BooleanFilter()
    date_from = django_filters.DateFilter(field_name="date__date", lookup_expr="gte", help_text="order date, inclusive")
    date_to = django_filters.DateFilter(field_name="date__date", lookup_expr="lte", help_text="order date, inclusive")

    class Meta:
        model = FactOrderLine
        fields = ["platform", "shop", "order_id", "sku", "status", "status_group", "region", "source", "is_mock",
                  "date_from", "date_to"]
