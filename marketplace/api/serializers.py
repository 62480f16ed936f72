from rest_framework import serializers

from portal.api.serializers import StrictBooleanField

from ..models import Connection, CsvUpload, FactOrderLine, Platform
from ..services.csv_shops import UnknownShop, upload_shop


class ConnectionSerializer(serializers.ModelSerializer):
    """A connection as staff may see it: token state, never a token or secret."""

    token_status = serializers.CharField(read_only=True)
    app_secret_set = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        fields = ["id", "platform", "name", "app_key", "app_secret_set", "country", "shop_id", "shop_name", "status",
                  "token_status", "access_expires_at", "refresh_expires_at", "refresh_due_at", "token_refreshed_at",
                  "orders_cursor", "sync_enabled", "last_error"]
        read_only_fields = fields

    def get_app_secret_set(self, obj) -> bool:
        return bool(obj.app_secret)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["token_status"] = instance.token_status()
        return data


class OrderLineSerializer(serializers.ModelSerializer):
    shop = serializers.CharField(source="shop.shop_id")
    date = serializers.DateField(source="date.date")
    sku = serializers.CharField(source="product.sku")
    product_name = serializers.CharField(source="product.name")
    variation = serializers.CharField(source="product.variation")
    customer = serializers.CharField(source="customer.name")
    city = serializers.CharField(source="customer.city")
    region = serializers.CharField(source="customer.region")
    country = serializers.CharField(source="customer.country")
    status = serializers.CharField(source="status.code")
    status_group = serializers.CharField(source="status.group")

    class Meta:
        model = FactOrderLine
        fields = ["id", "platform", "shop", "order_id", "line_id", "date", "ordered_at", "updated_at", "sku",
                  "product_name", "variation", "customer", "city", "region", "country", "status", "status_group",
                  "quantity", "unit_price", "paid_price", "currency", "source", "is_mock"]
        read_only_fields = fields


class SummaryRowSerializer(serializers.Serializer):
    date = serializers.DateField()
    platform = serializers.CharField()
    orders = serializers.IntegerField()
    lines = serializers.IntegerField()
    units = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)


class SummaryTotalsSerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)  # null: no lines


class SummarySerializer(serializers.Serializer):
    results = SummaryRowSerializer(many=True)
    totals = SummaryTotalsSerializer()


class SummaryQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    platform = serializers.ChoiceField(choices=Platform.choices, required=False)
    include_mock = serializers.BooleanField(required=False, default=False)
    include_cancelled = serializers.BooleanField(required=False, default=False)


class CsvUploadRequestSerializer(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=CsvUpload.Kind.choices, required=False, default=CsvUpload.Kind.ORDERS,
                                   help_text="orders (an order export), traffic or activity (Seller Center reports)")
    platform = serializers.ChoiceField(choices=Platform.choices)
    shop = serializers.CharField(max_length=200, required=False, default="csv",
                                 help_text="a connected shop's id (or its name), a shop the warehouse holds, or "
                                           "with new_shop=true a new one")
    new_shop = serializers.BooleanField(required=False, default=False,
                                        help_text="the shop is new: create it (else an unknown shop is refused)")
    check = serializers.BooleanField(required=False, default=False,
                                     help_text="only validate the file (the seed's /upload): nothing is loaded")

    def validate(self, data):
        try:
            data["shop"] = upload_shop(data["platform"], data["shop"], data["new_shop"])
        except UnknownShop as exc:
            raise serializers.ValidationError({"shop": [str(exc)]}) from exc
        return data


class CsvUploadSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()

    class Meta:
        model = CsvUpload
        fields = ["id", "kind", "platform", "shop", "filename", "size", "mode", "status", "rows_checked", "rows",
                  "error_count", "errors", "run", "progress", "created"]
        read_only_fields = fields

    def get_progress(self, upload) -> dict:
        run = upload.run
        return {"done": run.progress_done if run else 0, "total": run.progress_total if run else 0,
                "run_status": run.status if run else None}


class MockRequestSerializer(serializers.Serializer):
    orders = serializers.IntegerField(min_value=1, max_value=50000, default=200)
    days = serializers.IntegerField(min_value=1, max_value=3650, default=30)
    seed = serializers.IntegerField(required=False)
    purge = StrictBooleanField(default=False)


class ReportQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    platform = serializers.ChoiceField(choices=Platform.choices, required=False)
    shop_id = serializers.CharField(max_length=200, required=False)
    include_mock = serializers.BooleanField(required=False, default=False)
    include_cancelled = serializers.BooleanField(required=False, default=False)

    def validate(self, data):
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise serializers.ValidationError("date_from is after date_to.")
        return data


class TopProductsQuerySerializer(ReportQuerySerializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)


class ReportFiguresSerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    lines = serializers.IntegerField()
    units = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=18, decimal_places=2)


class ShopSalesRowSerializer(ReportFiguresSerializer):
    platform = serializers.CharField()
    shop_id = serializers.CharField()
    shop_name = serializers.CharField()


class DailySalesRowSerializer(ShopSalesRowSerializer):
    date = serializers.DateField()


class TopProductRowSerializer(ReportFiguresSerializer):
    platform = serializers.CharField()
    shop_id = serializers.CharField()
    sku = serializers.CharField()
    name = serializers.CharField()


class DailySalesReportSerializer(serializers.Serializer):
    results = DailySalesRowSerializer(many=True)
    totals = ReportFiguresSerializer()


class ShopSalesReportSerializer(serializers.Serializer):
    results = ShopSalesRowSerializer(many=True)
    totals = ReportFiguresSerializer()


class TopProductsReportSerializer(serializers.Serializer):
    results = TopProductRowSerializer(many=True)


class TrafficRowSerializer(serializers.Serializer):
    date = serializers.DateField()
    platform = serializers.CharField()
    shop_id = serializers.CharField()
    shop_name = serializers.CharField()
    visitors = serializers.IntegerField()
    page_views = serializers.IntegerField()
    add_to_cart = serializers.IntegerField()
    orders = serializers.IntegerField()
    conversion = serializers.DecimalField(max_digits=10, decimal_places=4, help_text="orders per visitor")


class ActivityRowSerializer(serializers.Serializer):
    event = serializers.CharField()
    count = serializers.IntegerField()


class TrafficReportSerializer(serializers.Serializer):
    results = TrafficRowSerializer(many=True)
    activity = ActivityRowSerializer(many=True)
